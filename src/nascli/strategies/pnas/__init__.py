"""PNAS (Liu et al. 2018): progressive cell growth guided by a learned accuracy predictor.

strategy.py runs the levels; growth.py says how cells of each space grow, predictor.py is the LSTM/MLP
ensemble, evaluators.py scores children (short training or a benchmark-table lookup).
"""

from nascli.strategies.pnas.strategy import Pnas, PnasConfig

__all__ = ["Pnas", "PnasConfig"]
