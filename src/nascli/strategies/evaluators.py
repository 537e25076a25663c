"""Candidate evaluators for strategies that evaluate cells one by one (pnas, evolution): short training,
or a benchmark-table lookup (`strategy.evaluator`).

Both return a Candidate whose score is a val accuracy in percent, so a strategy's budget
accounting (evaluations, seconds) and PNAS's predictor see the same thing either way. The strategy's
config supplies `epochs`; the child network is the space's search size, for every strategy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.registry import load_plugins, lookup, registrar
from nascli.strategies.base import Candidate, SearchContext
from nascli.strategies.short_training import train_candidate, train_on_executor

FITNESS_IS_METRIC = "the search optimises the reported metric"

# How a strategy scores a child; a third party adds one through the `nascli.evaluators` entry-point group.
EVALUATORS: dict[str, type] = {}
register_evaluator = registrar(EVALUATORS)


def evaluator_class(name: str) -> type:
    load_plugins("nascli.evaluators", ("nascli.strategies.evaluators",))
    return lookup(EVALUATORS, name, "evaluator (strategy.evaluator)")


@dataclass
class Evaluator(ABC):
    cfg: object  # the strategy's config (epochs, child)
    # A lookup costs nothing to repeat, and each call is one recorded evaluation of the protocol: a strategy
    # that would reuse an earlier result for a repeated architecture asks again.
    lookup = False

    def check(self, ctx: SearchContext) -> None:  # noqa: B027 - optional hook: most evaluators need no check
        """Raise UserError before any work if this evaluator cannot run with ctx."""

    @abstractmethod
    def __call__(self, arch: Arch, ctx: SearchContext) -> Candidate:
        """Score one child (val accuracy in percent, or a failed Candidate)."""

    def evaluate_many(self, archs: list[Arch], ctx: SearchContext) -> Iterator[tuple[int, Candidate]]:
        """(index, candidate) in index order; an evaluator whose children are independent work may hand
        them to ctx.executor."""
        for i, arch in enumerate(archs):
            yield i, self(arch, ctx)


@register_evaluator("train")
class TrainEvaluator(Evaluator):
    """Train the child for `epochs` on the train split; score = final-epoch val accuracy. The child is the
    space's search size, `space.search`, as random search trains it: strategies that are compared train the
    same network with the same recipe (`train:`, `budget.batch_size`)."""

    def __call__(self, arch: Arch, ctx: SearchContext) -> Candidate:
        return train_candidate(arch, ctx, int(self.cfg.epochs))

    def evaluate_many(self, archs: list[Arch], ctx: SearchContext) -> Iterator[tuple[int, Candidate]]:
        if ctx.executor is None:
            yield from super().evaluate_many(archs, ctx)
        else:  # a level's children train in parallel, each from its own seed
            yield from train_on_executor(archs, ctx, int(self.cfg.epochs))


@register_evaluator("table")
class TableEvaluator(Evaluator):
    """Look the cell up in benchmark.table: no training at all. The score is the fitness column (the table's
    validation column by default), never the reported metric unless benchmark.fitness names it; every lookup
    is logged as an `evaluation` event, from which the search writes evaluations.csv (nascli.protocol)."""

    lookup = True

    def check(self, ctx: SearchContext) -> None:
        if ctx.benchmark is None:
            raise UserError("strategy.evaluator=table needs a benchmark table; add "
                            "benchmark.table=../shared/benchmarks/nb201/nb201_cifar10.csv")
        fitness = ctx.benchmark.require_fitness()
        if fitness == ctx.benchmark.metric and not any(FITNESS_IS_METRIC in w for w in ctx.warnings):
            ctx.warn(f"benchmark.fitness = benchmark.metric = {fitness}: {FITNESS_IS_METRIC}; NB201's protocol "
                     "searches on the validation column (drop benchmark.fitness)")

    def __call__(self, arch: Arch, ctx: SearchContext) -> Candidate:
        fitness = ctx.benchmark.fitness(ctx.space, arch)
        if fitness is None:
            return Candidate(arch, float("nan"), "failed", {"error": "not in the benchmark table"})
        # The reported metric is logged beside, for the anytime curve; nothing here decides on it.
        ctx.log(event="evaluation", arch_id=arch.arch_id, fitness=float(fitness),
                metric=ctx.benchmark.value(ctx.space, arch))
        return Candidate(arch, float(fitness), "ok", {})
