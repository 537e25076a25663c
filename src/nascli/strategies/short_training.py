"""Short training of one candidate: how random search and PNAS's `train` evaluator score an architecture.

The score is the final-epoch val accuracy (not the best epoch: picking the best epoch on val would bias
the score upward), and each architecture trains from its own seed, so its score does not depend on what
was trained before it or on which worker trained it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from omegaconf import OmegaConf

from nascli.arch import Arch
from nascli.data import Splits
from nascli.device import Runtime, pick_device, torch_threads
from nascli.executors.base import TaskFailure
from nascli.strategies.base import Candidate, SearchContext
from nascli.train import Diverged, fit


def arch_seed(seed: int, arch: Arch) -> int:
    """A per-architecture seed: an arch's score does not depend on what was trained before it."""
    return zlib.crc32(f"{seed}:{arch.arch_id}".encode())


def train_candidate(arch: Arch, ctx: SearchContext, epochs: int) -> Candidate:
    """Train `arch` at the space's search size for `epochs`; score = final val accuracy. Every strategy that
    trains candidates (random, pnas, evolution) trains them here: one network size, one recipe."""
    seed = arch_seed(ctx.seed, arch)
    torch.manual_seed(seed)
    model = ctx.runtime.prepare(ctx.space.build(arch, ctx.splits.shape, ctx.space.cfg.search))
    started = time.perf_counter()
    try:
        with torch_threads(candidate_threads(ctx)):
            history = fit(model, ctx.splits, ctx.cfg.train, epochs=epochs,
                          batch_size=int(ctx.cfg.budget.batch_size), runtime=ctx.runtime,
                          generator=torch.Generator().manual_seed(seed), max_batches=ctx.cfg.budget.max_batches,
                          dataset_cfg=ctx.cfg.dataset)
    except Diverged as e:
        ctx.log(event="candidate_failed", arch_id=arch.arch_id, error=str(e))
        return Candidate(arch, float("nan"), "failed", {"error": str(e)})
    last = history[-1]
    # Timings go to metrics.jsonl, not archs.csv: results files must be identical across reruns.
    ctx.log(event="candidate_trained", arch_id=arch.arch_id, train_seconds=round(time.perf_counter() - started, 3))
    return Candidate(arch, last["val_acc"], "ok", {
        "val_loss": last["val_loss"], "train_acc": last["train_acc"], "epochs": epochs,
    })


# -- candidates on an executor -------------------------------------------------------------------
@dataclass
class TrainingJob:
    """What every candidate-training task shares; sent to each worker once."""

    cfg: dict  # the run's config, as plain containers
    splits: Splits  # on the CPU; each task moves it to its device
    epochs: int
    # The search's runtime: its precision was chosen once where the search started, and every worker trains in
    # it, whatever its CPU (each worker picks only its own device).
    runtime: Runtime


def candidate_threads(ctx: SearchContext) -> int:
    """device.threads, else one: two workers of one thread each beat one process of two on two cores, and
    a fixed count keeps every candidate's score the same for any worker count."""
    return int(ctx.cfg.device.threads or 1)


def train_task(job: TrainingJob, arch_doc: dict) -> dict:
    """One candidate, trained where the executor puts it (module-level: it is pickled to workers)."""
    from nascli.spaces.base import get_space

    cfg = OmegaConf.create(job.cfg)
    with torch_threads(None):  # pick_device() may set device.threads: this process's count is restored after
        runtime = replace(job.runtime, device=pick_device(cfg.device))
    ctx = SearchContext(cfg, get_space(cfg.space.name, cfg.space), job.splits.to(runtime.device), runtime,
                        generator=None)
    started = time.perf_counter()
    cand = train_candidate(Arch(arch_doc["space"], arch_doc["genotype"]), ctx, job.epochs)
    return {"score": cand.score, "status": cand.status, "extra": cand.extra,
            "seconds": round(time.perf_counter() - started, 3)}


def train_on_executor(archs: Sequence[Arch], ctx: SearchContext, epochs: int) -> Iterator[tuple[int, Candidate]]:
    """Train `archs` on ctx.executor; yield (index, candidate) in index order, whatever order they finish in,
    so logs and checkpoints are the same for any worker count."""
    job = TrainingJob(OmegaConf.to_container(ctx.cfg), ctx.splits.to("cpu"), epochs, ctx.runtime)
    finished: dict[int, Any] = {}
    nxt = 0
    for index, result in ctx.executor.run(train_task, job, [a.to_json() for a in archs]):
        finished[index] = result
        while nxt in finished:
            result, arch = finished.pop(nxt), archs[nxt]
            if isinstance(result, TaskFailure):
                ctx.log(event="candidate_failed", arch_id=arch.arch_id, error=result.error, attempts=result.attempts)
                cand = Candidate(arch, float("nan"), "failed", {"error": result.error})
            else:
                if result["status"] == "failed":
                    ctx.log(event="candidate_failed", arch_id=arch.arch_id, error=result["extra"].get("error"))
                ctx.log(event="candidate_trained", arch_id=arch.arch_id, train_seconds=result["seconds"])
                cand = Candidate(arch, result["score"], result["status"], result["extra"])
            yield nxt, cand
            nxt += 1
