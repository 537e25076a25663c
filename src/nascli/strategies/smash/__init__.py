"""SMASH (Brock et al. 2018): one HyperNet generates weights for any memory-bank architecture.

strategy.py trains and scores; encoding.py lays out the conditioning tensor, hypernet.py generates the
1x1 weights, mainnet.py runs an architecture with them and the shared sliced weights.
"""

from nascli.strategies.smash.strategy import Smash, SmashConfig, conditioning_sensitivity

__all__ = ["Smash", "SmashConfig", "conditioning_sensitivity"]
