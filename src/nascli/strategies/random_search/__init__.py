"""Random search: the baseline every honest NAS comparison needs."""

from nascli.strategies.random_search.strategy import RandomConfig, RandomSearch

__all__ = ["RandomConfig", "RandomSearch"]
