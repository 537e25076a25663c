"""SNAS (Xie et al. 2019): a stochastic Gumbel-softmax supernet with a resource penalty.

strategy.py runs the search; relaxation.py is the Gumbel-softmax sampling and temperature schedule,
penalty.py the expected resource cost; the supernet itself is built from nascli.supernet's blocks.
"""

from nascli.strategies.snas.strategy import Snas, SnasConfig

__all__ = ["Snas", "SnasConfig"]
