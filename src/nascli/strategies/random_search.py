"""Random search: the baseline every honest NAS comparison needs.

Sample N distinct architectures uniformly, train each briefly on the train split and
score it by its final-epoch val accuracy (final, not best epoch: picking the best epoch
on val would bias the score upward).
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.strategies.base import Candidate, SearchContext, Strategy, register_strategy
from nascli.train import Diverged, fit


@dataclass
class RandomConfig:
    name: str = "random"
    num_archs: int = 16
    epochs: int = 3


def arch_seed(seed: int, arch: Arch) -> int:
    """A per-architecture seed: an arch's score does not depend on what was trained before it."""
    return zlib.crc32(f"{seed}:{arch.arch_id}".encode())


def train_candidate(arch: Arch, ctx: SearchContext, epochs: int, net=None) -> Candidate:
    """Train `arch` at the space's search size (or `net`) for `epochs`; score = final val accuracy."""
    seed = arch_seed(ctx.seed, arch)
    torch.manual_seed(seed)
    size = net if net is not None else ctx.space.cfg.search
    model = ctx.runtime.prepare(ctx.space.build(arch, ctx.splits.shape, size))
    started = time.perf_counter()
    try:
        history = fit(model, ctx.splits, ctx.cfg.train, epochs=epochs, batch_size=int(ctx.cfg.budget.batch_size),
                      runtime=ctx.runtime, generator=torch.Generator().manual_seed(seed),
                      max_batches=ctx.cfg.budget.max_batches, dataset_cfg=ctx.cfg.dataset)
    except Diverged as e:
        ctx.log(event="candidate_failed", arch_id=arch.arch_id, error=str(e))
        return Candidate(arch, float("nan"), "failed", {"error": str(e)})
    last = history[-1]
    # Timings go to metrics.jsonl, not archs.csv: results files must be identical across reruns.
    ctx.log(event="candidate_trained", arch_id=arch.arch_id, train_seconds=round(time.perf_counter() - started, 3))
    return Candidate(arch, last["val_acc"], "ok", {
        "val_loss": last["val_loss"], "train_acc": last["train_acc"], "epochs": epochs,
    })


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
            rng.setstate(self.rng_state)
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
