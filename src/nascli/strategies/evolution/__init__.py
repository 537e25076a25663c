"""Regularized evolution (Real et al. 2019): the standard baseline for sample-based NAS."""

from nascli.strategies.evolution.strategy import Evolution, EvolutionConfig

__all__ = ["Evolution", "EvolutionConfig"]
