"""Random search: the baseline every honest NAS comparison needs.

Sample N distinct architectures uniformly, train each briefly on the train split and
score it by its final-epoch val accuracy (final, not best epoch: picking the best epoch
on val would bias the score upward), or look each up in a benchmark table's fitness column
(`strategy.evaluator=table`), the baseline of a table-evaluated comparison.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.strategies.base import Candidate, SearchContext, Strategy, register_strategy
from nascli.strategies.evaluators import evaluator_class


@dataclass
class RandomConfig:
    name: str = "random"
    num_archs: int = 16
    epochs: int = 3
    evaluator: str = "train"  # train: short training, val accuracy | table: benchmark.table lookup (nb201)


@register_strategy("random")
class RandomSearch(Strategy):
    name = "random"
    Config = RandomConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.done: list[Candidate] = []

    def search(self, ctx: SearchContext) -> list[Candidate]:
        n, epochs = int(self.cfg.num_archs), int(self.cfg.epochs)
        if n < 1 or epochs < 1:
            raise UserError("strategy.num_archs and strategy.epochs must be at least 1")
        # The sample is drawn up front (training never touches this RNG), so a resumed search and one on
        # any number of workers train the same architectures; they finish in any order and are taken in
        # sample order.
        rng = random.Random(ctx.seed)
        archs, seen = [], set()
        while len(archs) < n:
            arch = self._sample_new(ctx, rng, seen)
            if arch is None:
                break  # the space is smaller than n: every architecture was seen
            seen.add(arch.arch_id)
            archs.append(arch)
        evaluator = evaluator_class(self.cfg.get("evaluator", "train"))(self.cfg)
        evaluator.check(ctx)
        done = len(self.done)
        with progress_bar("random search", len(archs)) as advance:
            advance(done)
            for _, cand in evaluator.evaluate_many(archs[done:], ctx):
                self.done.append(cand)
                best = max((c.score for c in self.done if c.status == "ok"), default=float("nan"))
                ctx.log(event="candidate", index=len(self.done), arch_id=cand.arch.arch_id, score=cand.score,
                        status=cand.status, best=best)
                ctx.checkpoint(self.state_dict, boundary=True)
                advance(1, score=round(cand.score, 2), best=round(best, 2))
        return list(self.done)

    @staticmethod
    def _sample_new(ctx: SearchContext, rng: random.Random, seen: set[str]) -> Arch | None:
        for _ in range(1000):
            arch = ctx.space.sample(rng)
            if arch.arch_id not in seen:
                return arch
        return None

    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        evaluator = evaluator_class(self.cfg.get("evaluator", "train"))(self.cfg)
        evaluator.check(ctx)
        scores = []
        with progress_bar("scoring candidates", len(archs)) as advance:
            for arch in archs:
                scores.append(evaluator(arch, ctx).score)
                advance(1)
        return scores

    def state_dict(self) -> dict:
        return {
            "done": [{"arch": c.arch.to_json(), "score": c.score, "status": c.status, "extra": c.extra}
                     for c in self.done],
        }

    def load_state_dict(self, state: dict) -> None:
        self.done = [Candidate.from_plain(d) for d in state.get("done", [])]

    def resume(self, state: dict) -> None:
        # Each candidate trains from its own seed and the sample is redrawn from the run's seed: the
        # finished candidates are the whole state.
        self.load_state_dict(state)
