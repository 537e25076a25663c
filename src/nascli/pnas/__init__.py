"""PNAS's parts: cell growth per space, the accuracy predictor, candidate evaluators."""
