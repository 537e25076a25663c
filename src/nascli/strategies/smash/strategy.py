"""SMASH (Brock et al. 2018): train one HyperNet that generates weights for any architecture, then rank.

    for every training batch: sample an architecture (budget and kernel size annealed upwards over
        the first half), encode it, draw z, generate its 1x1 weights, run it with the shared
        sliced weights, and update the HyperNet and the shared weights on the loss
    score N sampled architectures by val accuracy with generated weights, averaged over k draws of z

Scores are also computed with the conditioning rows scrambled (`score_scrambled`): the paper's
ablation, the HyperNet then generates weights for another wiring. Settings follow the reference
code: Adam lr 1e-3, betas (0.5, 0.999), eps 1e-4, weight decay 1e-4 except on the HyperNet,
per-iteration cosine schedule, one architecture and one z per batch.
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
from nascli.data.draws import shuffled
from nascli.errors import UserError
from nascli.precision import HYPERNET
from nascli.progress import progress_bar
from nascli.resume import as_tuples
from nascli.strategies.base import Candidate, SearchContext, TrainedStrategy, register_strategy
from nascli.strategies.smash.encoding import Encoder
from nascli.strategies.smash.hypernet import HyperNet
from nascli.strategies.smash.mainnet import SmashMainNet
from nascli.train import make_loader


@dataclass
class HyperNetConfig:
    width: int = 64  # channels of each hidden conv: the capacity knob (SMASH: small HyperNets rank worse)
    depth: int = 4
    z_channels: int = 8


@dataclass
class RefineConfig:
    steps: int = 0  # perturbations tried from each top architecture (0: off; the reference's optional phase)
    top: int = 1  # how many of the best-scored architectures are refined


@dataclass
class SmashConfig:
    name: str = "smash"
    epochs: int = 70
    batch_size: int = 32
    lr: float = 5e-2  # reference 1e-3 over ~90k steps; a CPU budget has ~2.4k (README: SMASH on digits)
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


def scramble(conditioning: torch.Tensor, arch: Arch) -> torch.Tensor:
    """The rows (input chunks) and width columns permuted: the HyperNet conditions on another wiring."""
    pg = torch.Generator().manual_seed(int(arch.arch_id, 16) % 2**31)
    c = conditioning[:, torch.randperm(conditioning.shape[1], generator=pg)]
    return c[:, :, torch.randperm(c.shape[2], generator=pg)]


def _flat(weights: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.cat([w.flatten() for per_op in weights for w in per_op])


@torch.no_grad()
def conditioning_sensitivity(hypernet: HyperNet, encoder: Encoder, archs: Sequence[Arch], seed: int) -> dict:
    """Mean cosine between the weights generated for an architecture and for (a) another z,
    (b) its scrambled conditioning. Near 1.0 means the HyperNet ignores that input: it then
    generates one set of weights for every architecture and its scores cannot rank wirings."""
    g = torch.Generator().manual_seed(seed)
    cos_z, cos_scrambled = [], []
    for arch in archs:
        c = encoder.encode(arch)
        z1, z2 = hypernet.noise(g), hypernet.noise(g)
        w = _flat(hypernet(arch, c, z1))
        cos_z.append(F.cosine_similarity(w, _flat(hypernet(arch, c, z2)), 0).item())
        cos_scrambled.append(F.cosine_similarity(w, _flat(hypernet(arch, scramble(c, arch), z1)), 0).item())
    return {"cosine_other_z": sum(cos_z) / len(cos_z), "cosine_scrambled": sum(cos_scrambled) / len(cos_scrambled)}


@register_strategy("smash")
class Smash(TrainedStrategy):
    name = "smash"
    Config = SmashConfig
    spaces = ("membank",)
    trained = "HyperNet"
    workload = HYPERNET

    def __init__(self, cfg):
        super().__init__(cfg)
        self.hypernet: HyperNet | None = None
        self.mainnet: SmashMainNet | None = None
        self._resume: dict | None = None
        self._autocast = contextlib.nullcontext  # the runtime's, once _build has seen it

    def _build(self, ctx: SearchContext) -> Encoder:
        encoder = Encoder(ctx.space.cfg)
        self._autocast = ctx.runtime.autocast
        h = self.cfg.hypernet
        torch.manual_seed(ctx.seed)
        self.hypernet = HyperNet(encoder, int(h.z_channels), int(h.width), int(h.depth)).to(ctx.runtime.device)
        self.mainnet = SmashMainNet(encoder, ctx.splits.shape, int(ctx.space.cfg.search.channels)).to(
            ctx.runtime.device)
        if self._state is not None:
            self.hypernet.load_state_dict(self._state["hypernet"])
            self.mainnet.load_state_dict(self._state["mainnet"])
        return encoder

    # -- search --------------------------------------------------------------------------------
    def search(self, ctx: SearchContext) -> list[Candidate]:
        cfg, rt = self.cfg, ctx.runtime
        if int(cfg.epochs) < 1 or int(cfg.candidates) < 1 or int(cfg.noise_samples) < 1:
            raise UserError("strategy.epochs, strategy.candidates and strategy.noise_samples must be at least 1")
        if int(cfg.refine.steps) < 0 or int(cfg.refine.top) < 1:
            raise UserError("strategy.refine.steps must be at least 0 and strategy.refine.top at least 1")
        encoder = self._build(ctx)
        saved, self._resume = self._resume, None
        if saved is None:
            hyper_params = sum(p.numel() for p in self.hypernet.parameters())
            main_params = sum(p.numel() for p in self.mainnet.parameters())
            ctx.log(event="capacity", hypernet_params=hyper_params, mainnet_params=main_params,
                    hypernet_width=int(cfg.hypernet.width), hypernet_depth=int(cfg.hypernet.depth))
        g = torch.Generator().manual_seed(ctx.seed)
        loader = make_loader(ctx.splits.train, ctx.splits, int(cfg.batch_size), rt, train=True, generator=g,
                             max_batches=ctx.cfg.budget.max_batches, dataset_cfg=ctx.cfg.dataset)
        opt = torch.optim.Adam([
            {"params": self.hypernet.parameters(), "weight_decay": 0.0},
            {"params": self.mainnet.parameters(), "weight_decay": float(cfg.weight_decay)},
        ], lr=float(cfg.lr), betas=tuple(cfg.betas), eps=float(cfg.eps))
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
                    arch = ctx.space.sample(rng, max_budget=0.5 + 0.5 * ramp, max_kernel=3 + round(4 * ramp))
                    z = self.hypernet.noise(g)
                    with rt.autocast():
                        logits = self.mainnet(x, arch, self.hypernet(arch, encoder.encode(arch), z))
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
        if not at["trained"]:
            sensitivity = conditioning_sensitivity(self.hypernet, encoder, archs[:16], ctx.seed + 3)
            ctx.log(event="hypernet_sensitivity", **sensitivity)
            if sensitivity["cosine_scrambled"] > 0.99:
                ctx.warn(f"the HyperNet generates nearly the same weights whatever the conditioning (cosine "
                         f"{sensitivity['cosine_scrambled']:.3f} with scrambled conditioning): its scores rank "
                         "architectures by the shared weights alone; train longer (strategy.epochs) or widen it")
            at["trained"] = True

        def resume_point() -> None:
            ctx.checkpoint(snapshot)

        scores = self._scores(archs, ctx, encoder, scrambled=False, label="scoring sampled architectures",
                              done=at["scores"], after_each=resume_point)
        scrambled = (self._scores(archs, ctx, encoder, scrambled=True, label="scoring with scrambled conditioning",
                                  done=at["scrambled"],
                                  after_each=resume_point)
                     if cfg.scrambled else [math.nan] * len(archs))
        self._plot(ctx, history, scores, scrambled)
        candidates = [Candidate(a, s, "ok" if math.isfinite(s) else "failed", {"score_scrambled": sc})
                      for a, s, sc in zip(archs, scores, scrambled, strict=True)]
        return candidates + self._refine(candidates, ctx, encoder)

    def resume(self, state: dict) -> None:
        self._resume = state

    @torch.no_grad()
    def _scores(self, archs: Sequence[Arch], ctx: SearchContext, encoder: Encoder, *, scrambled: bool,
                label: str, done: list[float] | None = None,
                after_each=None) -> list[float]:
        """Val accuracy with generated weights, mean over `noise_samples` fixed draws of z (the same draws with
        and without scrambling, so the ablation differs from the score by the conditioning alone). `done` holds
        the scores of the first architectures already (a resumed run) and grows as scores come."""
        cfg = self.cfg
        self.hypernet.eval()
        self.mainnet.eval()
        val = self._val(ctx)
        noises = self._noises(ctx, int(cfg.noise_samples))
        out = done if done is not None else []
        with progress_bar(label, len(archs)) as advance:
            advance(len(out))
            for arch in archs[len(out):]:
                out.append(self._accuracy(arch, encoder, noises, val, scrambled))
                if after_each is not None:
                    after_each()
                advance(1)
        return list(out)

    def _val(self, ctx: SearchContext):
        """Val batches in one fixed random order: BN uses each batch's statistics, and on the class-sorted split
        a prediction would depend on which classes share its batch once val holds more than one batch."""
        return make_loader(shuffled(ctx.splits.val, ctx.seed), ctx.splits, int(self.cfg.val_batch_size),
                           ctx.runtime, train=False)

    def _noises(self, ctx: SearchContext, n: int) -> list[torch.Tensor]:
        """The same z draws for every architecture, so scores differ by architecture only."""
        zg = torch.Generator().manual_seed(ctx.seed + 2)
        return [self.hypernet.noise(zg) for _ in range(n)]

    @torch.no_grad()
    def _accuracy(self, arch: Arch, encoder: Encoder, noises: list[torch.Tensor], val, scrambled: bool) -> float:
        """Val accuracy of `arch` with generated weights, mean over the draws of z in `noises`."""
        encoder.check(arch)
        c = encoder.encode(arch)
        if scrambled:
            c = scramble(c, arch)
        accs = []
        for z in noises:
            correct = seen = 0
            with self._autocast():
                weights = self.hypernet(arch, c, z)
                for x, y in val:
                    correct += (self.mainnet(x, arch, weights).argmax(1) == y).sum().item()
                    seen += len(y)
            accs.append(100.0 * correct / seen)
        return sum(accs) / len(accs)

    @torch.no_grad()
    def _refine(self, sampled: list[Candidate], ctx: SearchContext, encoder: Encoder) -> list[Candidate]:
        """SMASH's perturbation phase: from each of the `refine.top` best-scored architectures, `refine.steps`
        times perturb the current one (one small change) and keep the change when the HyperNet scores it at
        least as high. Every perturbed architecture is a candidate (phase "refine", its parent named), so the
        ranking, archs.csv and a later `nas correlate` see what the phase tried, not only what it kept."""
        cfg, refine = self.cfg, self.cfg.refine
        if int(refine.steps) == 0:
            return []
        val = self._val(ctx)
        noises = self._noises(ctx, int(cfg.noise_samples))
        known = {c.arch.arch_id: c.score for c in sampled}
        rng = random.Random(ctx.seed + 4)
        starts = sorted((c for c in sampled if c.status == "ok"), key=lambda c: (-c.score, c.arch.arch_id))
        starts, out = starts[: int(refine.top)], []
        with progress_bar("refining the top architectures", len(starts) * int(refine.steps)) as advance:
            for start in starts:
                current, current_score, kept = start.arch, start.score, 0
                for _ in range(int(refine.steps)):
                    child = ctx.space.perturb(current, rng)
                    if child.arch_id not in known:
                        known[child.arch_id] = self._accuracy(child, encoder, noises, val, scrambled=False)
                        scrambled_score = (self._accuracy(child, encoder, noises, val, scrambled=True)
                                           if cfg.scrambled else math.nan)
                        out.append(Candidate(child, known[child.arch_id], "ok", {
                            "score_scrambled": scrambled_score, "phase": "refine", "parent": current.arch_id}))
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
    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        if self.hypernet is None:
            self.restored_state()
            encoder = self._build(ctx)
        else:
            encoder = Encoder(ctx.space.cfg)
        return self._scores(archs, ctx, encoder, scrambled=False, label="SMASH scores")

    def live_state(self) -> dict | None:
        if self.hypernet is None:
            return None
        return {"hypernet": self.hypernet.state_dict(), "mainnet": self.mainnet.state_dict()}

    def drop_live(self) -> None:
        self.hypernet = None
