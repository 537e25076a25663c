"""Regularized evolution (Real et al. 2019, "aging evolution").

    population = P random architectures, evaluated
    repeat until `evaluations` architectures were evaluated:
        sample S members of the population uniformly (without replacement)
        parent = the best of the sample; child = mutate(parent); evaluate child
        add the child, remove the oldest member (not the worst: that is the "regularized" part)
    return every evaluated architecture, in evaluation order

Defaults follow the paper's NAS-Bench-201 setting (P=20, S=5, one-edge mutation). Works on every space
that defines `mutate` (nb201, darts, pnas), with the `train` or `table` evaluator, as PNAS does.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.spaces.base import SearchSpace
from nascli.strategies.base import Candidate, SearchContext, Strategy, register_strategy
from nascli.strategies.evaluators import evaluator_class


@dataclass
class EvolutionConfig:
    name: str = "evolution"
    evaluations: int = 100  # architectures evaluated in all, the initial population included
    population: int = 20  # P
    sample: int = 5  # S: tournament size
    epochs: int = 3  # child training epochs (train evaluator)
    evaluator: str = "train"  # train | table


@register_strategy("evolution")
class Evolution(Strategy):
    name = "evolution"
    Config = EvolutionConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self._replay: list[Candidate] = []

    def setup(self, ctx: SearchContext) -> None:
        self._check(ctx)

    def _check(self, ctx: SearchContext):
        cfg = self.cfg
        if type(ctx.space).mutate is SearchSpace.mutate:
            ctx.space.mutate(None, random.Random(0))  # raises the UserError naming the spaces that can
        if int(cfg.evaluations) < 2 or int(cfg.population) < 2 or not 1 <= int(cfg.sample) <= int(cfg.population):
            raise UserError("evolution needs strategy.evaluations >= 2, strategy.population >= 2 and "
                            "1 <= strategy.sample <= strategy.population")
        evaluator = evaluator_class(cfg.evaluator)(cfg)
        evaluator.check(ctx)
        return evaluator

    def resume(self, state: dict) -> None:
        # The run is a deterministic function of its seed and the evaluations: a resumed run replays the
        # loop and takes the checkpoint's evaluations instead of training them again.
        self._replay = [Candidate.from_plain(d) for d in state["evaluated"]]

    def search(self, ctx: SearchContext) -> list[Candidate]:
        cfg = self.cfg
        evaluator = self._check(ctx)
        total, size, tournament = int(cfg.evaluations), int(cfg.population), int(cfg.sample)
        if size > total // 2:
            # A population as large as the budget would leave no evolution at all: random search in disguise.
            message = (f"strategy.population={size} leaves too few of the {total} evaluations to evolve; "
                       f"using a population of {max(2, total // 2)}")
            if message not in ctx.warnings:  # a resumed run has it from its checkpoint already
                ctx.warn(message)
            size = max(2, total // 2)
            tournament = min(tournament, size)
        rng = random.Random(ctx.seed)
        replay = self._replay  # a resumed run's evaluations, in order
        ctx.muted = bool(replay)
        history: list[Candidate] = []
        known: dict[str, Candidate] = {}
        population: deque[Candidate] = deque()

        def record(cand: Candidate, parent: Candidate | None) -> Candidate:
            from_checkpoint = len(history) < len(replay)
            if from_checkpoint:
                saved = replay[len(history)]
                assert saved.arch.arch_id == cand.arch.arch_id, "a resumed evolution diverged from its checkpoint"
                cand = saved
            cand.extra.update(evaluation=len(history) + 1, generation="initial" if parent is None else "mutation",
                              parent=None if parent is None else parent.arch.arch_id)
            history.append(cand)
            known.setdefault(cand.arch.arch_id, cand)
            if from_checkpoint:
                ctx.muted = len(history) < len(replay)  # past the checkpoint, records are new again
            else:
                ok = [c.score for c in history if c.status == "ok"]
                ctx.log(event="candidate", evaluation=len(history), arch_id=cand.arch.arch_id, score=cand.score,
                        status=cand.status, parent=cand.extra["parent"], best=max(ok, default=None))
                ctx.checkpoint(lambda: {"evaluated": [c.to_plain() for c in history]}, boundary=True)
            return cand

        def evaluate(arch: Arch) -> Candidate:
            if len(history) < len(replay):
                return Candidate(arch, float("nan"))  # record() takes the checkpoint's result
            if arch.arch_id in known and not evaluator.lookup:
                # A child equal to an earlier architecture counts as an evaluation, as in the paper; its
                # result is the earlier one (training is seeded by arch_id, so it would be the same).
                old = known[arch.arch_id]
                return Candidate(arch, old.score, old.status, {k: v for k, v in old.extra.items()
                                                               if k not in ("evaluation", "generation", "parent")})
            return next(evaluator.evaluate_many([arch], ctx))[1]

        with progress_bar("regularized evolution", total) as advance:
            # The initial population is independent work: drawn up front, evaluated together (in parallel
            # where the evaluator and executor allow), taken in draw order.
            initial, seen = [], set()
            while len(initial) < size:
                arch = ctx.space.sample(rng)
                if arch.arch_id in seen and len(seen) < 10 * size:
                    continue  # distinct initial members where the space allows
                seen.add(arch.arch_id)
                initial.append(arch)
            done = min(len(replay), len(initial))
            cached = ((i, Candidate(a, float("nan"))) for i, a in enumerate(initial[:done]))
            fresh = ((done + i, c) for i, c in evaluator.evaluate_many(initial[done:], ctx))
            for _, cand in itertools.chain(cached, fresh):
                population.append(record(cand, None))
                advance(1)
            while len(history) < total:
                contenders = rng.sample(list(population), tournament)
                parent = max(contenders, key=_fitness)
                child = ctx.space.mutate(parent.arch, rng)
                population.append(record(evaluate(child), parent))
                population.popleft()  # the oldest dies, however good
                best = max((c.score for c in history if c.status == "ok"), default=float("nan"))
                advance(1, best=round(best, 2))
        ctx.muted = False
        return history

    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        """The evaluator's score (a short training, or the table) of each architecture."""
        evaluator = self._check(ctx)
        scores = []
        with progress_bar("evaluating", len(archs)) as advance:
            for _, cand in evaluator.evaluate_many(list(archs), ctx):
                scores.append(cand.score)
                advance(1)
        return scores


def _fitness(cand: Candidate) -> float:
    # A failed child (NaN score) never wins a tournament.
    return cand.score if cand.status == "ok" and cand.score == cand.score else float("-inf")
