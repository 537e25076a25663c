"""Random search: the baseline every honest NAS comparison needs.

Sample N distinct architectures uniformly, train each briefly on the train split and
score it by its final-epoch val accuracy (final, not best epoch: picking the best epoch
on val would bias the score upward).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.resume import as_tuples
from nascli.strategies.base import Candidate, SearchContext, Strategy, register_strategy
from nascli.strategies.short_training import train_candidate


@dataclass
class RandomConfig:
    name: str = "random"
    num_archs: int = 16
    epochs: int = 3


@register_strategy("random")
class RandomSearch(Strategy):
    name = "random"
    Config = RandomConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.done: list[Candidate] = []
        self.rng_state = None

    def search(self, ctx: SearchContext) -> list[Candidate]:
        n, epochs = int(self.cfg.num_archs), int(self.cfg.epochs)
        if n < 1 or epochs < 1:
            raise UserError("strategy.num_archs and strategy.epochs must be at least 1")
        rng = random.Random(ctx.seed)
        if self.rng_state is not None:
            rng.setstate(as_tuples(self.rng_state))
        seen = {c.arch.arch_id for c in self.done}
        with progress_bar("random search", n) as advance:
            advance(len(self.done))
            while len(self.done) < n:
                arch = self._sample_new(ctx, rng, seen)
                if arch is None:
                    break  # the space is smaller than n: every architecture was seen
                seen.add(arch.arch_id)
                cand = train_candidate(arch, ctx, epochs)
                self.done.append(cand)
                self.rng_state = rng.getstate()
                best = max((c.score for c in self.done if c.status == "ok"), default=float("nan"))
                ctx.log(event="candidate", index=len(self.done), arch_id=arch.arch_id, score=cand.score,
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
        epochs = int(self.cfg.epochs)
        scores = []
        with progress_bar("training candidates", len(archs)) as advance:
            for arch in archs:
                scores.append(train_candidate(arch, ctx, epochs).score)
                advance(1)
        return scores

    def state_dict(self) -> dict:
        return {
            "done": [{"arch": c.arch.to_json(), "score": c.score, "status": c.status, "extra": c.extra}
                     for c in self.done],
            "rng_state": self.rng_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.done = [Candidate(Arch(d["arch"]["space"], d["arch"]["genotype"]), d["score"], d["status"], d["extra"])
                     for d in state.get("done", [])]
        self.rng_state = state.get("rng_state")

    def resume(self, state: dict) -> None:
        # Each candidate trains from its own seed: the finished ones plus the sampler's state are the search.
        self.load_state_dict(state)
