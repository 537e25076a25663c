"""SMASH (Brock et al. 2018): train one HyperNet that generates weights for any architecture, then rank.

    for every training batch: sample an architecture (membank: budget and kernel size annealed upwards over
        the first half; nb201: uniform), encode it, draw z, generate its weights, run it with the shared
        weights, and update the HyperNet and the shared weights on the loss
    score N sampled architectures by val accuracy with generated weights, averaged over k draws of z

What is generated per space lives in `networks.py` (membank: the 1x1 bottlenecks, the paper's space; nb201: the
conv edges of every cell, the space a benchmark table can judge). `strategy.hypernet.conditioning=none` swaps the
HyperNet for freely learned shared weights of the same layout: the single-path one-shot control (SPOS).
Scores are also computed with the conditioning scrambled (`score_scrambled`): the paper's ablation, the
HyperNet then generates weights for another wiring. Settings follow the reference code: Adam, betas
(0.5, 0.999), eps 1e-4, weight decay 1e-4 except on the HyperNet, per-iteration cosine schedule, one
architecture and one z per batch.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nascli import distributed
from nascli.arch import Arch
from nascli.data import Split
from nascli.data.draws import shuffled
from nascli.errors import UserError
from nascli.precision import HYPERNET
from nascli.progress import progress_bar
from nascli.resume import as_tuples
from nascli.strategies.base import Candidate, SearchContext, TrainedStrategy, register_strategy
from nascli.strategies.smash.networks import (
    SmashNetworks,
    build_networks,
    conditioning_of,
    learning_rate,
    training_sample,
)
from nascli.train import make_loader
from nascli.val_tally import ValTally, scored


@dataclass
class HyperNetConfig:
    width: int = 64  # channels of each hidden conv: the capacity knob (SMASH: small HyperNets rank worse)
    depth: int = 4
    z_channels: int = 8
    conditioning: str = "arch"  # arch: SMASH's HyperNet | none: freely learned shared weights (the SPOS control)


@dataclass
class RefineConfig:
    steps: int = 0  # perturbations tried from each top architecture (0: off; the reference's optional phase)
    top: int = 1  # how many of the best-scored architectures are refined


@dataclass
class SmashConfig:
    name: str = "smash"
    epochs: int = 70
    batch_size: int = 32
    lr: float | None = None  # Adam; null: the measured default of the space and generator (networks.DEFAULT_LR)
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    eps: float = 1e-4
    weight_decay: float = 1e-4  # shared weights only; 0 on the HyperNet, as the reference
    anneal_fraction: float = 0.5  # max budget 0.5 -> 1 and max kernel 3 -> 7 over this part of training
    candidates: int = 250  # architectures sampled and ranked after training
    noise_samples: int = 2  # draws of z averaged per score (the reference used 1)
    val_batch_size: int = 512  # batch-statistics BN needs large batches (and class-mixed ones: val is shuffled)
    scrambled: bool = True  # also score with scrambled conditioning (the paper's ablation), with the same z draws
    hypernet: HyperNetConfig = field(default_factory=HyperNetConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)


def _flat(weights) -> torch.Tensor:
    """Every generated weight as one vector (membank: per block, per op; nb201: per (position, edge))."""
    items = list(weights.values() if isinstance(weights, dict) else (w for per_op in weights for w in per_op))
    return torch.cat([w.flatten() for w in items]) if items else torch.zeros(0)


@torch.no_grad()
def conditioning_sensitivity(nets: SmashNetworks, archs: Sequence[Arch], seed: int) -> dict:
    """Mean cosine between the weights generated for an architecture and for (a) another z,
    (b) its scrambled conditioning. Near 1.0 means the HyperNet ignores that input: it then
    generates one set of weights for every architecture and its scores cannot rank wirings."""
    g = torch.Generator().manual_seed(seed)
    cos_z, cos_scrambled = [], []
    for arch in archs:
        z1, z2 = nets.generator.noise(g), nets.generator.noise(g)
        w = _flat(nets.weights(arch, z1))
        if not len(w):  # a cell with no generated weight (no conv edge): nothing to compare
            continue
        cos_z.append(F.cosine_similarity(w, _flat(nets.weights(arch, z2)), 0).item())
        cos_scrambled.append(F.cosine_similarity(w, _flat(nets.weights(arch, z1, scrambled=True)), 0).item())
    n = max(len(cos_z), 1)
    return {"cosine_other_z": sum(cos_z) / n, "cosine_scrambled": sum(cos_scrambled) / n, "archs": len(cos_z)}


@register_strategy("smash")
class Smash(TrainedStrategy):
    name = "smash"
    Config = SmashConfig
    spaces = ("membank", "nb201")
    trained = "HyperNet"
    estimator = "val accuracy with HyperNet-generated weights"
    workload = HYPERNET

    def __init__(self, cfg):
        super().__init__(cfg)
        self.nets: SmashNetworks | None = None
        self._resume: dict | None = None
        self._autocast = contextlib.nullcontext  # the runtime's, once _build has seen it

    @property
    def hypernet(self):
        return None if self.nets is None else self.nets.generator

    @property
    def mainnet(self):
        return None if self.nets is None else self.nets.mainnet

    @classmethod
    def check_config(cls, cfg, space) -> None:
        conditioning_of(cfg.hypernet)
        if space.name != "membank" and float(cfg.anneal_fraction) != SmashConfig.anneal_fraction:
            raise UserError(f"strategy.anneal_fraction anneals membank's op budget and kernel size; {space.name} "
                            "cells are sampled uniformly from the first step: drop the override")

    def _build(self, ctx: SearchContext) -> SmashNetworks:
        self.check_config(self.cfg, ctx.space)
        self._autocast = ctx.runtime.autocast
        torch.manual_seed(ctx.seed)
        nets = build_networks(ctx.space, ctx.splits.shape, self.cfg.hypernet)
        nets.generator.to(ctx.runtime.device)
        nets.mainnet.to(ctx.runtime.device)
        if self._state is not None:
            nets.generator.load_state_dict(self._state["hypernet"])
            nets.mainnet.load_state_dict(self._state["mainnet"])
        self.nets = nets
        return nets

    # -- search --------------------------------------------------------------------------------
    def search(self, ctx: SearchContext) -> list[Candidate]:
        cfg, rt = self.cfg, ctx.runtime
        if int(cfg.epochs) < 1 or int(cfg.candidates) < 1 or int(cfg.noise_samples) < 1:
            raise UserError("strategy.epochs, strategy.candidates and strategy.noise_samples must be at least 1")
        if int(cfg.refine.steps) < 0 or int(cfg.refine.top) < 1:
            raise UserError("strategy.refine.steps must be at least 0 and strategy.refine.top at least 1")
        nets = self._build(ctx)
        saved, self._resume = self._resume, None
        if saved is None:
            ctx.log(event="capacity", hypernet_params=nets.hypernet_params(),
                    shared_params=sum(p.numel() for p in nets.shared_params()),
                    conditioning=conditioning_of(cfg.hypernet), lr=learning_rate(cfg, ctx.space.name),
                    hypernet_width=int(cfg.hypernet.width),
                    hypernet_depth=int(cfg.hypernet.depth))
        g = torch.Generator().manual_seed(ctx.seed)
        loader = make_loader(ctx.splits.train, ctx.splits, int(cfg.batch_size), rt, train=True, generator=g,
                             max_batches=ctx.cfg.budget.max_batches, dataset_cfg=ctx.cfg.dataset)
        groups = [{"params": nets.shared_params(), "weight_decay": float(cfg.weight_decay)}]
        if nets.conditioned:
            groups.insert(0, {"params": nets.hypernet_parameters(), "weight_decay": 0.0})
        opt = torch.optim.Adam(groups, lr=learning_rate(cfg, ctx.space.name), betas=tuple(cfg.betas),
                               eps=float(cfg.eps))
        total = int(cfg.epochs) * len(loader)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
        rng = random.Random(ctx.seed)
        # Where the search is (a resumed run starts from here): training position, then scoring position.
        at = {"epoch": 0, "step": 0, "sums": None, "history": [], "trained": False, "scores": [], "scrambled": []}
        if saved is not None:
            self.hypernet.load_state_dict(saved["hypernet"])
            self.mainnet.load_state_dict(saved["mainnet"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            g.set_state(saved["generator"])
            loader.load_state_dict(saved["loader"])
            rng.setstate(as_tuples(saved["rng"]))
            at = saved["at"]

        def snapshot() -> dict:
            return {"hypernet": self.hypernet.state_dict(), "mainnet": self.mainnet.state_dict(),
                    "opt": opt.state_dict(), "sched": sched.state_dict(), "generator": g.get_state(),
                    "loader": loader.state_dict(), "rng": rng.getstate(), "at": dict(at)}

        history = at["history"]
        with progress_bar("smash: training the HyperNet", total) as advance:
            advance(at["step"])
            for epoch in range(at["epoch"], int(cfg.epochs)):
                started = time.perf_counter()
                sums = at["sums"] or {"loss": 0.0, "correct": 0, "seen": 0}
                at["sums"] = sums
                self.hypernet.train()
                self.mainnet.train()
                for x, y in loader:
                    x, y = distributed.shard(x, y)  # every rank read the global batch and samples the same arch
                    step = at["step"]
                    ramp = min(1.0, step / max(1.0, float(cfg.anneal_fraction) * total))
                    arch = training_sample(ctx.space, rng, ramp)
                    z = self.hypernet.noise(g)
                    with rt.autocast():
                        logits = self.mainnet(x, arch, nets.weights(arch, z))
                    loss = F.cross_entropy(logits.float(), y)
                    if not torch.isfinite(loss):
                        raise UserError(f"SMASH training diverged at step {step} (loss {loss.item()}); "
                                        "lower strategy.lr")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients([*self.hypernet.parameters(), *self.mainnet.parameters()])
                    opt.step()
                    sched.step()
                    at["step"] = step + 1
                    sums["loss"] += loss.item() * len(y)
                    sums["correct"] += (logits.argmax(1) == y).sum().item()
                    sums["seen"] += len(y)
                    ctx.checkpoint(snapshot)
                    advance(1)
                record = {"epoch": epoch + 1, "train_loss": sums["loss"] / sums["seen"],
                          "train_acc": 100.0 * sums["correct"] / sums["seen"],
                          "lr": sched.get_last_lr()[0], "seconds": round(time.perf_counter() - started, 2)}
                history.append(record)
                ctx.log(event="epoch", **record)
                at.update(epoch=epoch + 1, sums=None)
                ctx.checkpoint(snapshot, boundary=True)
                advance(0, epoch=f"{epoch + 1}/{cfg.epochs}", loss=round(record["train_loss"], 3))
        archs, seen_ids = [], set()
        sample_rng = random.Random(ctx.seed + 1)
        while len(archs) < int(cfg.candidates):
            arch = ctx.space.sample(sample_rng)
            if arch.arch_id not in seen_ids:
                seen_ids.add(arch.arch_id)
                archs.append(arch)
        self.hypernet.eval()
        if not at["trained"] and nets.conditioned:
            sensitivity = conditioning_sensitivity(nets, archs[:16], ctx.seed + 3)
            ctx.log(event="hypernet_sensitivity", **sensitivity)
            if sensitivity["archs"] and sensitivity["cosine_scrambled"] > 0.99:
                ctx.warn(f"the HyperNet generates nearly the same weights whatever the conditioning (cosine "
                         f"{sensitivity['cosine_scrambled']:.3f} with scrambled conditioning): its scores rank "
                         "architectures by the shared weights alone; train longer (strategy.epochs) or widen it")
            at["trained"] = True

        def resume_point() -> None:
            ctx.checkpoint(snapshot)

        scores = self._scores(archs, ctx, scrambled=False, label="scoring sampled architectures",
                              done=at["scores"], after_each=resume_point)
        # Without conditioning there is nothing to scramble: the column stays empty (NaN) rather than a copy.
        scrambled = (self._scores(archs, ctx, scrambled=True, label="scoring with scrambled conditioning",
                                  done=at["scrambled"], after_each=resume_point)
                     if cfg.scrambled and nets.conditioned else [[math.nan, 0]] * len(archs))
        self._plot(ctx, history, [s for s, _ in scores], [s for s, _ in scrambled])
        candidates = [Candidate(a, s, "ok" if math.isfinite(s) else "failed",
                                {"score_scrambled": sc, "degenerate": int(d)})
                      for a, (s, d), (sc, _) in zip(archs, scores, scrambled, strict=True)]
        return candidates + self._refine(candidates, ctx)

    def resume(self, state: dict) -> None:
        self._resume = state

    @torch.no_grad()
    def _scores(self, archs: Sequence[Arch], ctx: SearchContext, *, scrambled: bool, label: str,
                done: list | None = None, after_each=None, val=None) -> list[list]:
        """[val accuracy with generated weights, degenerate] per architecture, the accuracy a mean over
        `noise_samples` fixed draws of z (the same draws with and without scrambling, so the ablation differs
        from the score by the conditioning alone). `done` holds the first architectures' rows already (a
        resumed run) and grows as rows come."""
        self.hypernet.eval()
        self.mainnet.eval()
        val = self._val(ctx) if val is None else val
        noises = self._noises(ctx)
        out = done if done is not None else []
        with progress_bar(label, len(archs)) as advance:
            advance(len(out))
            for arch in archs[len(out):]:
                out.append(list(self._accuracy(arch, noises, val, scrambled)))
                if after_each is not None:
                    after_each()
                advance(1)
        return [list(row) for row in out]

    def _val(self, ctx: SearchContext, images: int | None = None):
        """Val batches in one fixed random order: BN uses each batch's statistics, and on the class-sorted split
        a prediction would depend on which classes share its batch once val holds more than one batch.
        `images`: the first that many of that order only (`nas rank`'s stated evaluation set)."""
        val = shuffled(ctx.splits.val, ctx.seed)
        if images is not None and images < len(val):
            val = Split(val.x[:images], val.y[:images])
        return make_loader(val, ctx.splits, int(self.cfg.val_batch_size), ctx.runtime, train=False)

    def _noises(self, ctx: SearchContext) -> list[torch.Tensor]:
        """The same z draws for every architecture, so scores differ by architecture only (one draw when the
        generator takes no noise: more would compute the same score again)."""
        zg = torch.Generator().manual_seed(ctx.seed + 2)
        n = int(self.cfg.noise_samples) if self.hypernet.z_channels else 1
        return [self.hypernet.noise(zg) for _ in range(n)]

    @torch.no_grad()
    def _accuracy(self, arch: Arch, noises: list[torch.Tensor], val, scrambled: bool) -> tuple[float, bool]:
        """(val accuracy of `arch` with generated weights, mean over the draws of z in `noises`; whether the
        network is degenerate, `nascli.val_tally`: it scores 0)."""
        self.nets.encoder.check(arch)
        tallies = []
        for z in noises:
            tally = ValTally()
            with self._autocast():
                weights = self.nets.weights(arch, z, scrambled)
                for x, y in val:
                    tally.add(self.mainnet(x, arch, weights), y)
            tallies.append(tally)
        return scored(sum(t.accuracy for t in tallies) / len(tallies), all(t.constant for t in tallies))

    @torch.no_grad()
    def _refine(self, sampled: list[Candidate], ctx: SearchContext) -> list[Candidate]:
        """SMASH's perturbation phase: from each of the `refine.top` best-scored architectures, `refine.steps`
        times perturb the current one (one small change) and keep the change when the HyperNet scores it at
        least as high. Every perturbed architecture is a candidate (phase "refine", its parent named), so the
        ranking, archs.csv and a later `nas correlate` see what the phase tried, not only what it kept."""
        cfg, refine = self.cfg, self.cfg.refine
        if int(refine.steps) == 0:
            return []
        val = self._val(ctx)
        noises = self._noises(ctx)
        known = {c.arch.arch_id: c.score for c in sampled}
        perturb = getattr(ctx.space, "perturb", ctx.space.mutate)  # membank's small change, else a mutation
        rng = random.Random(ctx.seed + 4)
        starts = sorted((c for c in sampled if c.status == "ok"), key=lambda c: (-c.score, c.arch.arch_id))
        starts, out = starts[: int(refine.top)], []
        with progress_bar("refining the top architectures", len(starts) * int(refine.steps)) as advance:
            for start in starts:
                current, current_score, kept = start.arch, start.score, 0
                for _ in range(int(refine.steps)):
                    child = perturb(current, rng)
                    if child.arch_id not in known:
                        known[child.arch_id], degenerate = self._accuracy(child, noises, val, scrambled=False)
                        scrambled_score = (self._accuracy(child, noises, val, scrambled=True)[0]
                                           if cfg.scrambled and self.nets.conditioned else math.nan)
                        out.append(Candidate(child, known[child.arch_id], "ok", {
                            "score_scrambled": scrambled_score, "degenerate": int(degenerate), "phase": "refine",
                            "parent": current.arch_id}))
                    if known[child.arch_id] >= current_score:
                        current, current_score, kept = child, known[child.arch_id], kept + 1
                    advance(1)
                ctx.log(event="refine", start=start.arch.arch_id, start_score=start.score, kept=kept,
                        end=current.arch_id, end_score=current_score)
        for c in sampled:
            c.extra["phase"] = "sampled"
        return out

    def _plot(self, ctx, history, scores, scrambled) -> None:
        if ctx.run is None:
            return
        from nascli.strategies.smash.figures import smash_figure

        ctx.run.save_plot("smash.png", smash_figure(history, scores, scrambled))

    # -- rank ----------------------------------------------------------------------------------
    def _ready(self, ctx: SearchContext) -> None:
        if self.nets is None:
            self.restored_state()
            self._build(ctx)

    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        return self.score_details(archs, ctx)[0]

    def score_details(self, archs: Sequence[Arch], ctx: SearchContext) -> tuple[list[float], list[dict]]:
        self._ready(ctx)
        rows = self._scores(archs, ctx, scrambled=False, label="SMASH scores")
        return [s for s, _ in rows], [{"degenerate": int(d)} for _, d in rows]

    def can_scramble(self) -> bool:
        """Whether `nas rank own.scrambled=true` can score the conditioning ablation (not without a HyperNet)."""
        return conditioning_of(self.cfg.hypernet) == "arch"

    def scoring_inputs(self, ctx: SearchContext, val_images: int | None, scrambled: bool = False) -> dict:
        """What scoring any architecture reads, made once in the main process for every worker: the val batches
        (the first `val_images` of the fixed order), the z draws, and whether to score the ablation too."""
        self._ready(ctx)
        return {"val": [(x.cpu(), y.cpu()) for x, y in self._val(ctx, val_images)], "noises": self._noises(ctx),
                "scrambled": bool(scrambled)}

    def score_prepared(self, archs: Sequence[Arch], inputs: dict, ctx: SearchContext) -> list[dict]:
        """One row per architecture from `scoring_inputs`: the score, whether it is degenerate."""
        self._ready(ctx)
        self.hypernet.eval()
        self.mainnet.eval()
        val = [(ctx.runtime.to_input(x), y.to(ctx.runtime.device)) for x, y in inputs["val"]]
        noises = inputs["noises"]
        rows = []
        for arch in archs:
            score, degenerate = self._accuracy(arch, noises, val, scrambled=False)
            row = {"score": score, "degenerate": int(degenerate)}
            if inputs.get("scrambled"):  # the same z draws and images, the conditioning scrambled
                row["scrambled"] = self._accuracy(arch, noises, val, scrambled=True)[0]
            rows.append(row)
        return rows

    def live_state(self) -> dict | None:
        if self.nets is None:
            return None
        return {"hypernet": self.hypernet.state_dict(), "mainnet": self.mainnet.state_dict()}

    def drop_live(self) -> None:
        self.nets = None
