"""Search strategies: plugins registered by name, found through `strategy_class(name)`."""

from nascli.strategies.base import (
    STRATEGIES,
    Candidate,
    SearchContext,
    Strategy,
    register_strategy,
    strategy_class,
)

__all__ = ["STRATEGIES", "Candidate", "SearchContext", "Strategy", "register_strategy", "strategy_class"]
