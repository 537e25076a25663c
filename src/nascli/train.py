"""The fit / evaluate loop shared by `nas retrain` and strategies that train candidates."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascli.data import Augment, Split, Splits, TensorLoader
from nascli.data.draws import class_mixed_batches, subset
from nascli.device import Runtime
from nascli.progress import progress_bar


@dataclass
class TrainConfig:
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    grad_clip: float = 5.0  # max gradient norm; 0 turns clipping off
    label_smoothing: float = 0.0
    auxiliary_weight: float = 0.0  # > 0 adds the auxiliary head at 2/3 depth (DARTS: 0.4)
    drop_path: float = 0.0  # final drop-path probability, ramped linearly from 0 (DARTS: 0.2)
    cutout: int = 0  # cutout square side in pixels (DARTS: 16 on CIFAR)
    include_val: bool = False  # train on train+val; val accuracy is then no longer held out


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def make_loader(split: Split, splits: Splits, batch_size: int, runtime: Runtime, *, train: bool,
                generator: torch.Generator | None = None, cutout: int = 0, max_batches: int | None = None,
                dataset_cfg=None) -> TensorLoader:
    augment = None
    if train and dataset_cfg is not None:
        augment = Augment(int(dataset_cfg.crop_padding), bool(dataset_cfg.flip), int(cutout))
    elif train:
        augment = Augment(cutout=int(cutout))
    return TensorLoader(split, batch_size, splits.mean, splits.std, shuffle=train, augment=augment,
                        generator=generator, max_batches=max_batches if train else None,
                        channels_last=runtime.channels_last)


def drawn_batches(split: Split, splits: Splits, batch_size: int, count: int, seed: int,
                  runtime: Runtime) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[list[int]]]:
    """`count` seeded, class-mixed batches of `split` (normalised, never augmented) and their indices into it:
    what a zero-cost proxy scores on and what a BN recalibration reads, the same batches every time."""
    indices = class_mixed_batches(split.y, batch_size, count, seed)
    loader = make_loader(subset(split, np.concatenate(indices)), splits, batch_size, runtime, train=False)
    return list(loader), [i.tolist() for i in indices]


@torch.no_grad()
def evaluate(model: nn.Module, loader: TensorLoader, runtime: Runtime) -> dict[str, float]:
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        with runtime.autocast():
            logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return {"loss": loss_sum / max(seen, 1), "acc": 100.0 * correct / max(seen, 1)}


def _one_kernel(params: list[torch.Tensor]) -> bool:
    """Whether the fused / foreach kernels serve these tensors (CPU and CUDA do)."""
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def sgd(params, **settings) -> torch.optim.SGD:
    """SGD with its fused kernel where the device has one: bit-identical steps to the per-tensor loop
    (checked in tests/test_fast_kernels.py), one kernel call instead of one per tensor."""
    params = list(params)
    return torch.optim.SGD(params, fused=_one_kernel(params) or None, **settings)


def clip_gradients(params, max_norm: float) -> torch.Tensor:
    """nn.utils.clip_grad_norm_ through the foreach kernels where they exist (the same norm and gradients)."""
    params = [p for p in params if p.grad is not None]
    return nn.utils.clip_grad_norm_(params, max_norm, foreach=_one_kernel(params) or None)


def make_optimizer(model: nn.Module, cfg: TrainConfig, epochs: int):
    opt = sgd(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=bool(cfg.nesterov),
              weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(epochs), 1), eta_min=cfg.lr_min)
    return opt, sched


def train_epoch(model, loader, opt, cfg: TrainConfig, runtime: Runtime, advance=None, sums: dict | None = None,
                after_step: Callable[[dict], None] | None = None) -> dict[str, float]:
    """One pass over `loader` (or the rest of a resumed pass, whose running sums are `sums`); `after_step`
    sees the running sums after every optimiser step (a resume checkpoint point)."""
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=float(cfg.label_smoothing))
    sums = dict(sums) if sums else {"loss_sum": 0.0, "correct": 0, "seen": 0}
    for x, y in loader:
        with runtime.autocast():
            out = model(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = criterion(logits.float(), y)
            if aux is not None and cfg.auxiliary_weight > 0:
                loss = loss + cfg.auxiliary_weight * criterion(aux.float(), y)
        if not math.isfinite(loss.item()):
            raise Diverged(f"loss became {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip and cfg.grad_clip > 0:
            clip_gradients(model.parameters(), cfg.grad_clip)
        opt.step()
        sums["loss_sum"] += loss.item() * len(y)
        sums["correct"] += (logits.argmax(1) == y).sum().item()
        sums["seen"] += len(y)
        if after_step:
            after_step(sums)
        if advance:
            advance(1)
    seen = max(sums["seen"], 1)
    return {"loss": sums["loss_sum"] / seen, "acc": 100.0 * sums["correct"] / seen}


EpochHook = Callable[[dict, nn.Module, torch.optim.Optimizer, object], None]
# checkpoint(build_state, boundary): resume.Checkpointer.step, or anything with its signature.
CheckpointHook = Callable[[Callable[[], dict], bool], None]


def fit(model: nn.Module, splits: Splits, cfg: TrainConfig, *, epochs: int, batch_size: int, runtime: Runtime,
        generator: torch.Generator, max_batches: int | None = None, dataset_cfg=None,
        on_epoch: EpochHook | None = None, description: str | None = None,
        checkpoint: CheckpointHook | None = None, resume: dict | None = None) -> list[dict]:
    """Train `model` for `epochs` on the train split, evaluating on val after each epoch.

    With `checkpoint`, the full training state (model, optimiser, schedule, data order and position, the
    generator, the epoch's running sums, the history) is offered after every step and saved at least once
    per epoch; `resume` is such a state, and training continues from it as if it had never stopped."""
    train_split = splits.train
    if cfg.include_val:
        train_split = Split(torch.cat([splits.train.x, splits.val.x]), torch.cat([splits.train.y, splits.val.y]))
    loader = make_loader(train_split, splits, batch_size, runtime, train=True, generator=generator,
                         cutout=cfg.cutout, max_batches=max_batches, dataset_cfg=dataset_cfg)
    val_loader = make_loader(splits.val, splits, max(batch_size, 256), runtime, train=False)
    opt, sched = make_optimizer(model, cfg, epochs)
    history, start_epoch, sums = [], 0, None
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        sched.T_max = max(int(epochs), 1)  # a resume may extend the budget: the schedule follows it
        loader.load_state_dict(resume["loader"])
        generator.set_state(resume["generator"])
        history, start_epoch, sums = list(resume["history"]), int(resume["epoch"]), resume["sums"]

    def state(epoch: int, running: dict | None) -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "loader": loader.state_dict(), "generator": generator.get_state(), "epoch": epoch,
                "sums": dict(running) if running else None, "history": list(history)}

    steps = epochs * len(loader)
    with progress_bar(description or "training", steps if description else None) as advance:
        if description:
            advance(start_epoch * len(loader) + (int(resume["loader"]["next"]) if sums else 0))
        for epoch in range(start_epoch, epochs):
            if hasattr(model, "set_drop_path"):
                model.set_drop_path(cfg.drop_path * epoch / max(epochs, 1))
            started = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            after_step = None
            if checkpoint is not None:
                def after_step(running, epoch=epoch):
                    checkpoint(lambda: state(epoch, running), False)
            train = train_epoch(model, loader, opt, cfg, runtime, advance if description else None, sums, after_step)
            sums = None
            sched.step()
            val = evaluate(model, val_loader, runtime)
            record = {"epoch": epoch + 1, "lr": lr, "train_loss": train["loss"], "train_acc": train["acc"],
                      "val_loss": val["loss"], "val_acc": val["acc"], "seconds": time.perf_counter() - started}
            history.append(record)
            if description:
                advance(0, epoch=f"{epoch + 1}/{epochs}", val_acc=round(val["acc"], 2))
            if on_epoch:
                on_epoch(record, model, opt, sched)
            if checkpoint is not None:
                checkpoint(lambda epoch=epoch: state(epoch + 1, None), True)
    return history
