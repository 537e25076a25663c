"""SMASH (Brock et al. 2018): one HyperNet generates weights for any architecture of a space.

strategy.py trains and scores; networks.py registers, per space, what is generated and what runs it:
membank (encoding.py lays out the conditioning tensor, hypernet.py generates the 1x1 weights, mainnet.py runs
an architecture with them and the shared sliced weights) and nb201 (nb201.py: conv edges generated, NB201's
skeleton shared).
"""

from nascli.strategies.smash.strategy import Smash, SmashConfig, conditioning_sensitivity

__all__ = ["Smash", "SmashConfig", "conditioning_sensitivity"]
