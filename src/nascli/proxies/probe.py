"""One freshly initialised network and every measurement the zero-cost proxies read from it, each made once.

The zero-cost literature computes each proxy with its own forward and backward pass. Most of that is
the same work: snip, grad_norm, jacob_cov and naswot all run the same batch through the same network in
training mode (batch-statistic BN), so their forward is identical. A probe runs one forward per batch
for all of them, one cross-entropy backward for the weight gradients (snip, grad_norm), and one backward
to the input for the Jacobian (jacob_cov), with naswot's ReLU codes recorded on the way; synflow (a
different, data-free network) and the size counts are made once on demand. Every pass starts from the
same freshly initialised weights, so the scores equal those of separate passes.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nascli.device import memory_format_of
from nascli.latency import LatencySettings, measure_latency_ms
from nascli.measure import count_flops, count_params
from nascli.proxies.base import Proxy, weight_layers
from nascli.spaces.base import DataShape

# Agreement counts are integers; float32 sums them exactly while every partial sum stays below 2**24.
_EXACT_FLOAT32 = 2**24


@dataclass
class TrainPass:
    """What one training-mode pass over one batch measured."""

    constant_output: bool  # every image got the same logits: the output ignores the input
    kernel: torch.Tensor | None = None  # naswot: n x n agreement counts of the ReLU codes (float64)
    snip: float | None = None  # sum over weight layers of |w * dL/dw|
    grad_norm: float | None = None  # sum over weight layers of ||dL/dw||
    input_jacobian: torch.Tensor | None = None  # n x (C*H*W) gradient of the summed logits w.r.t. the input


class Probe:
    def __init__(self, model: nn.Module, data: dict[int, list[tuple[torch.Tensor, torch.Tensor]]],
                 shape: DataShape, proxies: list[Proxy], batch_sizes: dict[str, int | None],
                 size: dict[str, int] | None = None, latency=None):
        """`latency`: (model, shape) -> ms, the latency proxy's clock (default: measured, LatencySettings())."""
        self.model = model
        self.data = data  # batch size -> the batches of that size (in the model's memory format)
        self.shape = shape
        self._fresh = {k: v.clone() for k, v in model.state_dict().items()}
        self._dirty = False
        # What each batch size's passes must measure: the union over the proxies that read it.
        self._needs: dict[int, set[str]] = {}
        for p in proxies:
            if p.needs_data:
                self._needs.setdefault(batch_sizes[p.name], set()).update(p.uses)
        self._passes: dict[tuple[int, int], TrainPass] = {}
        self._synflow: float | None = None
        self._size = size  # params / flops, when already known for an architecture of the same size
        self._latency_fn = latency or (lambda model, shape: measure_latency_ms(model, shape, LatencySettings()))
        self._latency: float | None = None

    # -- state ---------------------------------------------------------------------------------
    def restore(self) -> None:
        """Back to the freshly initialised weights and BN statistics (a pass updates the statistics)."""
        if self._dirty:
            self.model.load_state_dict(self._fresh)
            self._dirty = False
        self.model.zero_grad(set_to_none=True)

    # -- measurements --------------------------------------------------------------------------
    def passes(self, batch_size: int) -> list[TrainPass]:
        return [self._train_pass(batch_size, i) for i in range(len(self.data[batch_size]))]

    def degenerate(self) -> bool | None:
        """Whether the network's output ignores its input (known once any data pass ran)."""
        done = list(self._passes.values())
        if done:
            return any(p.constant_output for p in done)
        if self._synflow is not None:
            return self._synflow == 0.0
        return None

    def size(self) -> dict[str, int]:
        if self._size is None:
            self._size = {"params": count_params(self.model), "flops": count_flops(self.model, self.shape)}
        return self._size

    def latency(self) -> float:
        """Milliseconds per eval-mode forward (timing reads no weights' values: no restore needed)."""
        if self._latency is None:
            self._latency = float(self._latency_fn(self.model, self.shape))
        return self._latency

    def synflow(self) -> float:
        if self._synflow is None:
            self.restore()
            self._synflow = _synflow(self.model, self.shape)
            self._dirty = True
        return self._synflow

    def _train_pass(self, batch_size: int, index: int) -> TrainPass:
        key = (batch_size, index)
        if key not in self._passes:
            self.restore()
            x, y = self.data[batch_size][index]
            self._passes[key] = _train_pass(self.model, x, y, self._needs.get(batch_size, set()))
            self._dirty = True
        return self._passes[key]


def _logits(out):
    # Networks with an auxiliary head return (logits, aux) while training.
    return out[0] if isinstance(out, tuple) else out


def _train_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, needs: set[str]) -> TrainPass:
    model.train()
    want_kernel = "activation_kernel" in needs
    want_loss = "loss_grads" in needs
    want_input = "input_grad" in needs
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device) if want_kernel else None
    hooks = []
    if want_kernel:
        counted: dict[int, tuple[weakref.ref, torch.Tensor]] = {}

        def count(module, inputs):
            t = inputs[0]
            # Edges that read the same node apply their own ReLU to the same tensor: the codes (and
            # their kernel) are the same, so they are computed once and added once per ReLU.
            seen = counted.get(id(t))
            if seen is not None and seen[0]() is t:
                kernel.add_(seen[1])
                return
            k = _agreement(t.detach())
            counted[id(t)] = (weakref.ref(t), k)
            kernel.add_(k)

        hooks = [m.register_forward_pre_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    grad_needed = want_loss or want_input
    x = x.detach().float().requires_grad_(want_input)
    try:
        with torch.set_grad_enabled(grad_needed):
            logits = _logits(model(x))
    finally:
        for h in hooks:
            h.remove()
    out = TrainPass(constant_output=bool(torch.equal(logits, logits[:1].expand_as(logits))), kernel=kernel)
    if want_loss:
        # Gradients of the conv and linear weights only: the input's and BN's are never read, so not computed.
        weights = weight_layers(model)
        grads = torch.autograd.grad(F.cross_entropy(logits, y), weights, retain_graph=want_input, allow_unused=True)
        layers = [(w.detach(), g) for w, g in zip(weights, grads, strict=True) if g is not None]
        out.snip = sum(float((w * g).abs().sum()) for w, g in layers)
        out.grad_norm = sum(float(g.norm()) for _, g in layers)
    if want_input:
        (jac,) = torch.autograd.grad(logits.sum(), x)
        out.input_jacobian = jac.reshape(n, -1).detach()
    return out


def _agreement(activations: torch.Tensor) -> torch.Tensor:
    """n x n count of units on which two images' ReLUs agree (both active or both off), float64.

    c c^T + (1-c)(1-c)^T = 2 c c^T - s_i - s_j + D for 0/1 codes c with row sums s: one matmul, in
    float32 where that is exact. The order of the units does not matter, so a channels_last tensor is
    read in its memory order (no copy).
    """
    n = activations.shape[0]
    if activations.dim() == 4 and activations.is_contiguous(memory_format=torch.channels_last):
        activations = activations.permute(0, 2, 3, 1)
    flat = activations.reshape(n, -1)
    d = flat.shape[1]
    dtype = torch.float32 if d < _EXACT_FLOAT32 else torch.float64
    c = torch.empty(flat.shape, dtype=dtype, device=flat.device)
    torch.gt(flat, 0, out=c)
    s = c.sum(1, dtype=torch.float64)
    gram = (c @ c.T).double()
    return 2 * gram - s[:, None] - s[None, :] + d


@contextmanager
def positive_weights(model: nn.Module) -> Iterator[None]:
    """Every floating-point weight and buffer made positive inside the block, signs restored after."""
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in model.state_dict().items():
                if name in signs:
                    p.mul_(signs[name].to(p.dtype))


def _synflow(model: nn.Module, shape: DataShape) -> float:
    """Synaptic flow of the |theta| network on an all-ones image, exact whatever its magnitude.

    Data-free: every weight made positive, BN in eval mode with fresh statistics (a positive scaling,
    standing in for the BN-free networks of the zero-cost paper). The product of |theta| along a deep
    path overflows float32 in large conv-heavy networks (forward and backward alike, so scaling the
    input cannot help): then the pass is repeated in float64, the reference's precision, which holds
    every NB201 cell. A network whose output ignores its input has no gradient anywhere: 0, the least
    possible score.
    """
    model.eval()
    weight = next(model.parameters())
    layout = memory_format_of(model)
    with positive_weights(model):
        try:
            score = _synflow_pass(model, shape, weight.device, torch.float32, layout)
            if not math.isfinite(score):
                score = _synflow_pass(model.double(), shape, weight.device, torch.float64, layout)
        finally:
            model.float()  # float32 -> float64 -> float32 is exact: the weights come back unchanged
            model.zero_grad(set_to_none=True)
    if not math.isfinite(score):
        raise RuntimeError(f"synflow is {score} even in float64")
    return score


def _synflow_pass(model: nn.Module, shape: DataShape, device, dtype, layout) -> float:
    model.zero_grad(set_to_none=True)
    x = torch.ones(1, shape.channels, shape.height, shape.width, device=device, dtype=dtype)
    x = x.contiguous(memory_format=layout)
    model(x).sum().backward()
    return sum(float((w.detach().double() * w.grad.double()).abs().sum())
               for w in weight_layers(model) if w.grad is not None)
