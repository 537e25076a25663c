"""SNAS: Stochastic Neural Architecture Search (Xie et al., ICLR 2019).

A supernet whose every edge holds every op; per-edge logits alpha are relaxed with
Gumbel-softmax at an annealed temperature, one sample per forward per cell type. Weights
and alpha are updated from the same training batch (single-level, as SNAS) or, with
`bilevel`, alpha from a held-out half of the train split (DARTS first order). The loss adds
the expected resource cost of the sampled child. The child is the argmax op per edge with
`none` edges dropped (SNAS) or DARTS's top-2 rule.

Fixes to the reference code (strategies.md section 2 and 4): the temperature follows the real number
of steps; constants come from the op and cell counts; one alpha optimiser whatever the
device count; ranking and monitoring use the val split, never test; children are scored
with BN statistics recomputed for them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from nascli import distributed
from nascli.arch import Arch
from nascli.data import Split
from nascli.data.draws import shuffled
from nascli.errors import UserError
from nascli.latency import latency_settings
from nascli.latency_table import LatencyTable
from nascli.precision import SUPERNET
from nascli.progress import progress_bar
from nascli.spaces.ops import PARAMETER_FREE
from nascli.strategies.base import Candidate, SearchContext, TrainedStrategy, register_strategy
from nascli.strategies.snas.penalty import PenaltyConfig, ResourcePenalty, check_penalty
from nascli.strategies.snas.relaxation import entropy, gumbel_like, sample, temperature
from nascli.supernet import Supernet, build_supernet
from nascli.supernet.evaluate import child_accuracy, child_score, supernet_accuracy
from nascli.train import clip_gradients, drawn_batches, make_loader, sgd


@dataclass
class SnasConfig:
    name: str = "snas"
    epochs: int = 10
    warmup_epochs: int = 0  # weights only, on the softmax(alpha) mixture, before sampling starts (not in SNAS)
    batch_size: int = 64
    hard: bool = False  # straight-through: run only the sampled op of each edge
    bilevel: bool = False  # alpha from a held-out half of train (DARTS first order) instead of the same batch
    tau_initial: float = 1.0
    tau_final: float = 0.03
    tau_schedule: str = "linear"  # linear | exponential | constant
    alpha_init_mean: float = 1.0  # SNAS initialises log-alpha ~ N(1, 0.01)
    alpha_init_std: float = 0.01
    alpha_optimizer: str = "adam"  # adam | sgd; one setting whatever the device count
    alpha_lr: float = 3e-3
    alpha_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    alpha_weight_decay: float = 0.0  # SNAS used 1e-3 over 150 epochs; on a CPU budget it keeps alpha too flat
    alpha_grad_clip: float = 10.0
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    derive: str = "snas"  # snas: argmax per edge, none edges dropped | darts: top-2 inputs per node
    num_samples: int = 16  # extra children drawn from the final distribution and ranked with the child
    recalib_batches: int = 10  # seeded class-mixed train batches that recompute a child's BN statistics
    supernet_eval_passes: int = 2  # val passes (fresh samples each batch) averaged for supernet_acc per epoch
    final_eval_passes: int = 10  # the same, for the final supernet_acc / child_acc comparison
    dense_max_pixels: int = 64  # depthwise convs on maps up to this many pixels run as matmuls
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)


def collapse_count(arch: Arch, space_name: str) -> tuple[int, int]:
    """(parameter-free ops, live edges) of the child's normal cell (nb201: its one cell).

    DARTS's failure mode is a normal cell of skips and pools; reduction cells are left out
    because pools are a sound choice there (DARTS_V2's reduce cell is mostly max pools).
    """
    cell = "cell" if space_name == "nb201" else "normal"
    ops = [op for node in arch.genotype.get(cell, []) for op, _ in node if op != "none"]
    return sum(op in PARAMETER_FREE for op in ops), len(ops)


@register_strategy("snas")
class Snas(TrainedStrategy):
    name = "snas"
    Config = SnasConfig
    spaces = ("darts", "nb201")
    trained = "supernet"
    estimator = "the one-hot child's val accuracy in the supernet, BN recalibrated"
    workload = SUPERNET

    def __init__(self, cfg):
        super().__init__(cfg)
        self.net: Supernet | None = None
        self.alphas: dict[str, nn.Parameter] = {}
        self._resume: dict | None = None

    def resume(self, state: dict) -> None:
        self._resume = state

    # -- set-up --------------------------------------------------------------------------
    def setup(self, ctx: SearchContext) -> None:
        self._check()

    def _check(self) -> None:
        cfg = self.cfg
        if cfg.derive not in ("snas", "darts"):
            raise UserError(f"strategy.derive={cfg.derive} is not a rule; use snas or darts")
        if cfg.tau_schedule not in ("linear", "exponential", "constant"):
            raise UserError(f"strategy.tau_schedule={cfg.tau_schedule}; use linear, exponential or constant")
        if not (cfg.tau_initial > 0 and cfg.tau_final > 0):
            raise UserError("strategy.tau_initial and strategy.tau_final must be positive")
        if cfg.penalty.form not in ("log", "linear") or cfg.penalty.estimator not in ("reparam", "expected"):
            raise UserError("strategy.penalty.form is log|linear and strategy.penalty.estimator is reparam|expected")
        check_penalty(cfg.penalty)
        if cfg.epochs < 1:
            raise UserError("strategy.epochs must be at least 1")
        if cfg.alpha_optimizer not in ("adam", "sgd"):
            raise UserError(f"strategy.alpha_optimizer={cfg.alpha_optimizer}; use adam or sgd")

    def _build(self, ctx: SearchContext) -> None:
        torch.manual_seed(ctx.seed)
        net = build_supernet(ctx.space, ctx.splits.shape, int(self.cfg.dense_max_pixels))
        self.net = net.to(ctx.runtime.device)
        g = torch.Generator().manual_seed(ctx.seed)
        k = len(net.ops)
        self.alphas = {
            t: nn.Parameter((self.cfg.alpha_init_mean + self.cfg.alpha_init_std *
                             torch.randn(net.num_edges, k, generator=g)).to(ctx.runtime.device))
            for t in net.cell_types
        }
        if self._state is not None:
            net.load_state_dict(self._state["supernet"])
            with torch.no_grad():
                for t, a in self.alphas.items():
                    a.copy_(self._state["alphas"][t])

    def _penalty(self, ctx: SearchContext) -> ResourcePenalty:
        """The resource penalty; with cost=latency its table is timed (or read from the run root's cache) by
        rank 0 and sent to the other ranks, so that every rank optimises the same objective."""
        cfg, rt = self.cfg, ctx.runtime
        if cfg.penalty.cost != "latency":
            return ResourcePenalty(self.net, ctx.splits.shape, cfg.penalty)
        root = ctx.run.path.parent.parent if ctx.run is not None else None
        table = LatencyTable.cached(ctx.space, latency_settings(ctx.cfg.get("latency"), rt.amp), root, rt.device,
                                    rt.channels_last)
        penalty = None
        if distributed.is_main():
            penalty = ResourcePenalty(self.net, ctx.splits.shape, cfg.penalty, table, ctx.space)
            table.save()
        state = distributed.broadcast(table.state() if distributed.is_main() else None)
        if penalty is None:
            table.load_state(state)
            penalty = ResourcePenalty(self.net, ctx.splits.shape, cfg.penalty, table, ctx.space)
        ctx.log(event="latency_table", path=str(table.path) if table.path else None, entries=len(table.ops),
                fixed_ms=round(penalty.fixed_ms, 4))
        return penalty

    def _loaders(self, ctx: SearchContext, val_images: int | None = None):
        cfg, splits, rt = self.cfg, ctx.splits, ctx.runtime
        bs, max_batches = int(cfg.batch_size), ctx.cfg.budget.max_batches
        g = torch.Generator().manual_seed(ctx.seed)
        train = splits.train
        alpha_loader = None
        if cfg.bilevel:
            # DARTS splits train in two: weights on one half, alpha on the other. The val
            # split stays untouched: it ranks children.
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed)).to(train.x.device)
            half = len(train) // 2
            alpha_split = Split(train.x[perm[half:]], train.y[perm[half:]])
            train = Split(train.x[perm[:half]], train.y[perm[:half]])
            alpha_loader = make_loader(alpha_split, splits, bs, rt, train=True, generator=g, max_batches=max_batches,
                                       dataset_cfg=ctx.cfg.dataset)
        loader = make_loader(train, splits, bs, rt, train=True, generator=g, max_batches=max_batches,
                             dataset_cfg=ctx.cfg.dataset)
        # A child's BN statistics are recomputed on the same seeded, class-mixed training batches for every
        # child (the split is stored class-sorted: its first batches would be one class).
        calib, _ = drawn_batches(splits.train, splits, bs, int(cfg.recalib_batches), ctx.seed, rt)
        # Batch-statistics BN (supernet_acc) needs batches big enough for stable statistics, and class-mixed
        # ones: on sorted val batches a prediction would depend on which classes share its batch.
        val_split = shuffled(splits.val, ctx.seed)
        if val_images is not None and val_images < len(val_split):  # `nas rank`'s stated evaluation set
            val_split = Split(val_split.x[:val_images], val_split.y[:val_images])
        val = make_loader(val_split, splits, 128, rt, train=False)
        return loader, alpha_loader, calib, val

    # -- search --------------------------------------------------------------------------
    def search(self, ctx: SearchContext) -> list[Candidate]:
        self._check()
        cfg = self.cfg
        self._build(ctx)
        net, alphas, rt = self.net, self.alphas, ctx.runtime
        penalty = self._penalty(ctx)
        loader, alpha_loader, calib, val = self._loaders(ctx)
        epochs = int(cfg.epochs)
        opt_w = sgd(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, T_max=epochs, eta_min=cfg.lr_min)
        # One alpha optimiser, whatever the device count (the reference used SGD on one GPU, Adam on many).
        if cfg.alpha_optimizer == "adam":
            opt_a = torch.optim.Adam(alphas.values(), lr=cfg.alpha_lr, betas=tuple(cfg.alpha_betas),
                                     weight_decay=cfg.alpha_weight_decay)
        else:
            opt_a = torch.optim.SGD(alphas.values(), lr=cfg.alpha_lr, weight_decay=cfg.alpha_weight_decay)
        gumbel = torch.Generator(device=rt.device).manual_seed(ctx.seed)
        warmup = int(cfg.warmup_epochs)
        if warmup >= epochs:
            raise UserError(f"strategy.warmup_epochs={warmup} leaves no search epochs of strategy.epochs={epochs}")
        total = (epochs - warmup) * len(loader)  # the temperature anneals over the sampling steps only
        # Where the search is: everything a resumed run needs besides the models, optimisers and generators.
        at = {"epoch": 0, "step": 0, "tau": cfg.tau_initial, "sums": None, "history": [], "children": []}
        alpha_iter = iter(())
        if self._resume is not None:
            saved, self._resume = self._resume, None
            net.load_state_dict(saved["supernet"])
            with torch.no_grad():
                for t, a in alphas.items():
                    a.copy_(saved["alphas"][t])
            opt_w.load_state_dict(saved["opt_w"])
            opt_a.load_state_dict(saved["opt_a"])
            sched.load_state_dict(saved["sched"])
            sched.T_max = epochs
            gumbel.set_state(saved["gumbel"])
            loader.generator.set_state(saved["data_generator"])  # shared by both loaders
            loader.load_state_dict(saved["loader"])
            if alpha_loader is not None and saved["alpha_loader"]["order"] is not None:
                alpha_loader.load_state_dict(saved["alpha_loader"])
                alpha_iter = iter(alpha_loader)
            at = {**saved["at"], "history": [{**r, "child": Arch(r["child"]["space"], r["child"]["genotype"])}
                                             for r in saved["at"]["history"]]}
            at["children"] = [(r["epoch"], r["child"]) for r in at["history"]]

        def snapshot() -> dict:
            history = [{**r, "child": r["child"].to_json()} for r in at["history"]]
            return {"supernet": net.state_dict(), "alphas": {t: a.detach() for t, a in alphas.items()},
                    "opt_w": opt_w.state_dict(), "opt_a": opt_a.state_dict(), "sched": sched.state_dict(),
                    "gumbel": gumbel.get_state(), "data_generator": loader.generator.get_state(),
                    "loader": loader.state_dict(),
                    "alpha_loader": alpha_loader.state_dict() if alpha_loader is not None else {"order": None},
                    "at": {**{k: v for k, v in at.items() if k not in ("history", "children")},
                           "history": history}}

        history, children = at["history"], at["children"]
        with progress_bar(f"snas search ({'hard' if cfg.hard else 'soft'})", epochs * len(loader)) as advance:
            advance(at["epoch"] * len(loader) + (int(loader.state_dict()["next"]) if at["sums"] else 0))
            for epoch in range(at["epoch"], epochs):
                net.train()
                started = time.perf_counter()
                warming = epoch < warmup
                sums = at["sums"] or {"loss": 0.0, "ce": 0.0, "penalty": 0.0, "correct": 0, "seen": 0}
                at["sums"] = sums
                for x, y in loader:
                    x, y = distributed.shard(x, y)  # every rank read the global batch; each trains on its slice
                    tau = temperature(at["step"] / max(total - 1, 1), cfg.tau_initial, cfg.tau_final,
                                      cfg.tau_schedule)
                    at["tau"] = tau
                    if warming:
                        # Warm-up: train the weights on the deterministic softmax(alpha) mixture.
                        loss, ce, pen, logits = self._warmup_step(net, x, y, opt_w, rt)
                        self._accumulate(sums, loss, ce, pen, logits, y)
                        ctx.checkpoint(snapshot)
                        advance(1)
                        continue
                    if cfg.bilevel:
                        try:
                            xa, ya = next(alpha_iter)
                        except StopIteration:
                            alpha_iter = iter(alpha_loader)
                            xa, ya = next(alpha_iter)
                        xa, ya = distributed.shard(xa, ya)
                        s_a = {t: sample(a, tau, cfg.hard, gumbel) for t, a in alphas.items()}
                        with rt.autocast():
                            loss_a = F.cross_entropy(net(xa, s_a).float(), ya) + penalty.loss(s_a, alphas)
                        opt_a.zero_grad(set_to_none=True)
                        net.zero_grad(set_to_none=True)
                        loss_a.backward()
                        distributed.average_gradients(alphas.values())
                        nn.utils.clip_grad_norm_(alphas.values(), cfg.alpha_grad_clip)
                        opt_a.step()
                    samples = {t: sample(a, tau, cfg.hard, gumbel) for t, a in alphas.items()}
                    with rt.autocast():
                        logits = net(x, samples)
                        ce = F.cross_entropy(logits.float(), y)
                    pen = penalty.loss(samples, alphas)
                    loss = ce if cfg.bilevel else ce + pen
                    opt_w.zero_grad(set_to_none=True)
                    opt_a.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients([*net.parameters(), *alphas.values()])
                    clip_gradients(net.parameters(), cfg.grad_clip)
                    opt_w.step()
                    if not cfg.bilevel:
                        nn.utils.clip_grad_norm_(alphas.values(), cfg.alpha_grad_clip)
                        opt_a.step()
                    if not torch.isfinite(loss):
                        raise RuntimeError(f"SNAS loss became {loss.item()} at epoch {epoch + 1}; lower strategy.lr")
                    self._accumulate(sums, loss, ce, pen, logits, y)
                    at["step"] += 1
                    ctx.checkpoint(snapshot)
                    advance(1)
                sched.step()
                record = self._epoch_record(ctx, epoch, at["tau"], sums, started, penalty, calib, val, gumbel)
                history.append(record)
                children.append((epoch + 1, record["child"]))
                if distributed.world_size() > 1 and not distributed.all_agree(record["child"].arch_id):
                    raise RuntimeError(f"ranks derived different children at epoch {epoch + 1}: the data-parallel "
                                       "run diverged; report this with the command line")
                ctx.log(event="epoch", **{k: v for k, v in record.items() if k != "child"})
                at.update(epoch=epoch + 1, sums=None)
                ctx.checkpoint(snapshot, boundary=True)
                advance(0, epoch=f"{epoch + 1}/{epochs}", child=round(record["child_acc"], 1),
                        supernet=round(record["supernet_acc"], 1))
        self._plots(ctx, history)
        return self._candidates(ctx, children, history, calib, val, gumbel)

    def _warmup_step(self, net, x, y, opt_w, rt):
        from nascli.supernet import Sample

        samples = {t: Sample(torch.softmax(a.detach(), -1)) for t, a in self.alphas.items()}
        with rt.autocast():
            logits = net(x, samples)
            ce = F.cross_entropy(logits.float(), y)
        opt_w.zero_grad(set_to_none=True)
        ce.backward()
        distributed.average_gradients(net.parameters())
        clip_gradients(net.parameters(), self.cfg.grad_clip)
        opt_w.step()
        return ce, ce, torch.zeros(()), logits

    @staticmethod
    def _accumulate(sums, loss, ce, pen, logits, y) -> None:
        sums["loss"] += loss.item() * len(y)
        sums["ce"] += ce.item() * len(y)
        sums["penalty"] += float(pen.detach()) * len(y)
        sums["correct"] += (logits.argmax(1) == y).sum().item()
        sums["seen"] += len(y)

    @torch.no_grad()
    def _epoch_record(self, ctx, epoch, tau, sums, started, penalty, calib, val, gumbel) -> dict:
        net, alphas, cfg, rt = self.net, self.alphas, self.cfg, ctx.runtime
        child = ctx.space.make(net.derive(alphas, cfg.derive))
        eval_gen = torch.Generator(device=rt.device).manual_seed(ctx.seed + 7919 * (epoch + 1))

        def sampled():
            return {t: sample(a, tau, cfg.hard, eval_gen) for t, a in alphas.items()}

        supernet_acc = supernet_accuracy(net, val, sampled, int(cfg.supernet_eval_passes), rt)
        child_acc = child_accuracy(net, net.onehot(child), calib, val, int(cfg.recalib_batches), rt)
        free, live = collapse_count(child, ctx.space.name)
        probs = {t: torch.softmax(a.detach().float(), -1).cpu() for t, a in alphas.items()}
        record = {
            "epoch": epoch + 1, "tau": tau, "lr": self._lr(epoch),
            "train_loss": sums["loss"] / sums["seen"], "train_ce": sums["ce"] / sums["seen"],
            "train_penalty": sums["penalty"] / sums["seen"], "train_acc": 100.0 * sums["correct"] / sums["seen"],
            "supernet_acc": supernet_acc, "child_acc": child_acc,
            "expected_cost": float(penalty.expected({t: p.to(rt.device) for t, p in probs.items()})),
            "expected_params": penalty.expected_params(alphas),
            **({"expected_latency_ms": float(penalty.expected_latency_ms({t: p.to(rt.device) for t, p in probs.items()}))}
               if penalty.latency_ms is not None else {}),
            "entropy": {t: entropy(a).tolist() for t, a in alphas.items()},
            "mean_entropy": {t: float(entropy(a).mean()) for t, a in alphas.items()},
            "op_probs": {t: dict(zip(net.ops, p.mean(0).tolist(), strict=True)) for t, p in probs.items()},
            # softmax(α) per edge: what `nas report` draws as one heatmap per epoch
            "alpha": {t: [[round(v, 5) for v in row] for row in p.tolist()] for t, p in probs.items()},
            "child_arch_id": child.arch_id, "child_param_free": free, "child_live_edges": live,
            "seconds": time.perf_counter() - started, "child": child,
        }
        if live and free / live > 0.5:
            record["skip_collapse"] = True
        truth = ctx.truth(child)
        if truth is not None:
            record["child_truth"] = truth
        return record

    def _lr(self, epoch: int) -> float:
        import math

        cfg = self.cfg
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / max(int(cfg.epochs), 1)))

    def _candidates(self, ctx, children, history, calib, val, gumbel) -> list[Candidate]:
        """The final child (SNAS's answer), every epoch's child and samples of the final distribution,
        all scored the same way with the final weights."""
        cfg, net, rt = self.cfg, self.net, ctx.runtime
        final = children[-1][1]
        origins: dict[str, tuple[Arch, str]] = {final.arch_id: (final, "derived")}
        for epoch, child in children:
            origins.setdefault(child.arch_id, (child, f"epoch-{epoch}"))
        g = torch.Generator(device=rt.device).manual_seed(ctx.seed + 104729)
        for _ in range(int(cfg.num_samples)):
            # Gumbel-max: argmax(alpha + G) is an exact draw from softmax(alpha) per edge.
            noisy = {t: a.detach() + gumbel_like(a.detach(), g) for t, a in self.alphas.items()}
            arch = ctx.space.make(net.derive(noisy, cfg.derive))
            origins.setdefault(arch.arch_id, (arch, "sample"))
        last = history[-1]
        # The final comparison averages more passes: a 2-pass estimate is a few points noisy.
        final_gen = torch.Generator(device=rt.device).manual_seed(ctx.seed + 15485863)
        final_supernet = supernet_accuracy(net, val, lambda: {t: sample(a, last["tau"], cfg.hard, final_gen)
                                                              for t, a in self.alphas.items()},
                                           int(cfg.final_eval_passes), rt)
        out = []
        with progress_bar("scoring children", len(origins)) as advance:
            for arch, origin in origins.values():
                acc, degenerate = child_score(net, net.onehot(arch), calib, val, int(cfg.recalib_batches), rt)
                free, live = collapse_count(arch, ctx.space.name)
                extra = {"origin": origin, "selected": origin == "derived", "param_free": free, "live_edges": live,
                         "degenerate": int(degenerate)}
                if origin == "derived":
                    extra["supernet_acc"] = final_supernet
                out.append(Candidate(arch, acc, "ok", extra))
                advance(1)
        derived = out[0]
        ctx.log(event="child", arch_id=derived.arch.arch_id, child_acc=derived.score,
                supernet_acc=final_supernet, gap=derived.score - final_supernet)
        if last.get("skip_collapse"):
            ctx.warn(f"the derived child's normal cell is {derived.extra['param_free']} of {derived.extra['live_edges']} "
                     "parameter-free ops (skip/pool collapse); consider a milder penalty or more epochs")
        return out

    def _plots(self, ctx: SearchContext, history: list[dict]) -> None:
        if ctx.run is None:
            return
        from nascli.strategies.snas.figures import alpha_heatmap, snas_curves

        for t, a in self.alphas.items():
            ctx.run.save_plot(f"alpha_{t}.png", alpha_heatmap(torch.softmax(a.detach().float(), -1).cpu(),
                                                               self.net.ops, self.net.n_inputs, f"softmax(alpha) {t}"))
        ctx.run.save_plot("curves.png", snas_curves(history))

    # -- proxy for `nas rank` ---------------------------------------------------------------
    def _ready(self, ctx: SearchContext) -> None:
        if self.net is None:
            self.restored_state()
            self._build(ctx)

    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        return self.score_details(archs, ctx)[0]

    def score_details(self, archs: Sequence[Arch], ctx: SearchContext) -> tuple[list[float], list[dict]]:
        """The one-hot child's val accuracy with the supernet's weights and its own recalibrated BN statistics
        (the search's child score), and whether it is degenerate."""
        rows = self.score_prepared(archs, self.scoring_inputs(ctx, None), ctx)
        return [r["score"] for r in rows], [{"degenerate": r["degenerate"]} for r in rows]

    def scoring_inputs(self, ctx: SearchContext, val_images: int | None, scrambled: bool = False) -> dict:
        """What scoring any child reads, made once in the main process: the recalibration batches (the search's
        seeded class-mixed train batches) and the val batches (the first `val_images` of its fixed order)."""
        del scrambled  # a supernet has no conditioning to scramble (`nas rank` refuses own.scrambled before this)
        self._ready(ctx)
        _, _, calib, val = self._loaders(ctx, val_images)
        return {"calib": [(x.cpu(), y.cpu()) for x, y in calib], "val": [(x.cpu(), y.cpu()) for x, y in val]}

    def score_prepared(self, archs: Sequence[Arch], inputs: dict, ctx: SearchContext) -> list[dict]:
        self._ready(ctx)
        rt = ctx.runtime
        calib = [(rt.to_input(x), y.to(rt.device)) for x, y in inputs["calib"]]
        val = [(rt.to_input(x), y.to(rt.device)) for x, y in inputs["val"]]
        rows = []
        for arch in archs:
            acc, degenerate = child_score(self.net, self.net.onehot(arch), calib, val, int(self.cfg.recalib_batches),
                                          rt)
            rows.append({"score": acc, "degenerate": int(degenerate)})
        return rows

    def live_state(self) -> dict | None:
        if self.net is None:
            return None
        return {"supernet": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                "alphas": {t: a.detach().cpu() for t, a in self.alphas.items()}}

    def drop_live(self) -> None:
        self.net = None
