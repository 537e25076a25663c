"""SMASH (Brock et al. 2018): one HyperNet generates weights for any memory-bank architecture."""
