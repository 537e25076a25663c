"""One freshly initialised network and every measurement the zero-cost proxies read from it, each made once.

The zero-cost literature computes each proxy with its own forward and backward pass. Most of that is
the same work: snip, grad_norm, jacob_cov and naswot all run the same batch through the same network in
training mode (batch-statistic BN), so their forward is identical. A probe runs one forward per batch
for all of them, one cross-entropy backward for the weight gradients (snip, grad_norm), and one backward
to the input for the Jacobian (jacob_cov), with naswot's ReLU codes recorded on the way; synflow (a
different, data-free network) and the size counts are made once on demand. Every pass starts from the
same freshly initialised weights, so the scores equal those of separate passes.

The later proxies read the same passes where their papers' passes are the same computation: SWAP's
activation patterns are naswot's ReLU codes; MeCo reads every module's output of the forward; fisher
reads the gradients at the conv and linear outputs of the cross-entropy backward that snip uses, and
grasp differentiates that backward once more (its Hessian-gradient product); epe_nas reads jacob_cov's
input Jacobian. ZiCo needs the gradients of two halves of a batch (two passes of their own), and AZ-NAS
re-initialises the network as its code does (kaiming normal, fan-in), so both run passes of their own.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from nascli.device import layout_of, memory_format_of
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
    labels: torch.Tensor | None = None  # the batch's classes (epe_nas groups the Jacobians by class)
    plain: float | None = None  # sum over weight layers of w * dL/dw (no absolute value)
    fisher: float | None = None  # sum over conv/linear outputs a of 0.5 mean_n (sum_hw a * dL/da)^2
    grasp: float | None = None  # -sum over weight layers of w * (H dL/dw)
    patterns: int | None = None  # SWAP: distinct sample-wise ReLU patterns over all units
    meco: float | None = None  # sum over module outputs of the least eigenvalue of the first image's channel correlation
    weight_grads: list[torch.Tensor | None] | None = None  # dL/dw of every weight layer (ZiCo)


@dataclass
class BlockPass:
    """AZ-NAS's measurements of the block (stem and cell) outputs, on its own kaiming-initialised weights."""

    constant_output: bool
    trainability: float  # mean over block pairs of (2 - s - 1/s), s the pair's Jacobian spectral norm
    features: list[torch.Tensor]  # the block outputs (detached): the two entropy terms read them when asked

    @cached_property
    def entropies(self) -> list[float]:
        """Per block, the entropy of its channel covariance's normalised eigenvalues (computed on first use:
        az_trainability alone never pays for it)."""
        out = []
        for f in self.features:
            c = f.shape[1]
            flat = f.permute(0, 2, 3, 1).reshape(-1, c).double()
            flat = flat - flat.mean(0, keepdim=True)
            s = torch.linalg.eigvalsh(flat.T @ flat / flat.shape[0]).clamp_min(0.0)
            total = float(s.sum())
            out.append(0.0 if total == 0.0 else float(-((s / total) * torch.log(s / total + 1e-8)).sum()))
        return out

    @property
    def expressivity(self) -> float:
        """The sum over blocks of the entropy (AZ-NAS's code sums the raw entropies: a wider stage can add more)."""
        return float(np.sum(self.entropies))

    @property
    def progressivity(self) -> float:
        """The least increase of the entropy from one block to the next."""
        return float(np.min(np.diff(self.entropies))) if len(self.entropies) > 1 else 0.0


class Probe:
    def __init__(self, model: nn.Module, data: dict[int, list[tuple[torch.Tensor, torch.Tensor]]],
                 shape: DataShape, proxies: list[Proxy], batch_sizes: dict[str, int | None],
                 size: dict[str, int] | None = None, latency=None, seed: int = 0):
        """`latency`: (model, shape) -> ms, the latency proxy's clock (default: measured, LatencySettings()).
        `seed`: AZ-NAS's re-initialisation and random backward signs (the architecture's score depends on it
        and on nothing else)."""
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
        self._halves: dict[tuple[int, int], list[TrainPass]] = {}
        self._blocks: dict[tuple[int, int], BlockPass] = {}
        self.seed = seed
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

    def half_passes(self, batch_size: int) -> list[list[TrainPass]]:
        """Per batch, its two halves' weight gradients, each half its own training-mode pass (ZiCo)."""
        return [self._half_pass(batch_size, i) for i in range(len(self.data[batch_size]))]

    def block_passes(self, batch_size: int) -> list[BlockPass]:
        """Per batch, AZ-NAS's block measurements."""
        return [self._block_pass(batch_size, i) for i in range(len(self.data[batch_size]))]

    def fresh_weights(self) -> list[torch.Tensor]:
        """The conv and linear weights as initialised."""
        self.restore()
        return [w.detach() for w in weight_layers(self.model)]

    def degenerate(self) -> bool | None:
        """Whether the network's output ignores its input (known once any data pass ran)."""
        done = [*self._passes.values(), *self._blocks.values(), *(h for hs in self._halves.values() for h in hs)]
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

    def _half_pass(self, batch_size: int, index: int) -> list[TrainPass]:
        key = (batch_size, index)
        if key not in self._halves:
            x, y = self.data[batch_size][index]
            half = x.shape[0] // 2
            self._halves[key] = []
            for part in (slice(0, half), slice(half, None)):
                self.restore()
                self._halves[key].append(_train_pass(self.model, x[part], y[part], {"weight_grads"}))
                self._dirty = True
        return self._halves[key]

    def _block_pass(self, batch_size: int, index: int) -> BlockPass:
        key = (batch_size, index)
        if key not in self._blocks:
            self.restore()
            x, _ = self.data[batch_size][index]
            generator = torch.Generator().manual_seed(self.seed * 1000 + index)
            self._blocks[key] = _block_pass(self.model, x, generator)
            self._dirty = True
        return self._blocks[key]


def mean_over_passes(passes: list[TrainPass], score, worst: float) -> float:
    """A proxy's mean over its batches' passes: `score(pass)`, or `worst` where the output ignores the input."""
    return float(np.mean([worst if p.constant_output else score(p) for p in passes]))


def _logits(out):
    # Networks with an auxiliary head return (logits, aux) while training.
    return out[0] if isinstance(out, tuple) else out


def _train_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, needs: set[str]) -> TrainPass:
    model.train()
    want_kernel = "activation_kernel" in needs
    want_patterns = "relu_patterns" in needs
    want_fisher = "output_grads" in needs
    want_hessian = "hessian_grad" in needs
    want_loss = bool(needs & {"loss_grads", "output_grads", "hessian_grad", "weight_grads"})
    want_input = "input_grad" in needs
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device) if want_kernel else None
    packed: list[np.ndarray] = []
    meco: list[float] = []
    outputs: list[torch.Tensor] = []
    hooks = []
    if want_kernel or want_patterns:
        counted: dict[int, tuple[weakref.ref, torch.Tensor | None]] = {}

        def count(module, inputs):
            t = inputs[0]
            # Edges that read the same node apply their own ReLU to the same tensor: the codes (and
            # their kernel) are the same, so they are computed once and added once per ReLU. A repeated
            # tensor adds no new pattern, so SWAP reads it once.
            seen = counted.get(id(t))
            if seen is not None and seen[0]() is t:
                if want_kernel:
                    kernel.add_(seen[1])
                return
            k = None
            if want_kernel:
                k = _agreement(t.detach())
                kernel.add_(k)
            if want_patterns and t.dim() == 4:
                packed.append(_sample_patterns(t.detach()))
            counted[id(t)] = (weakref.ref(t), k)

        hooks += [m.register_forward_pre_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    if "feature_corr" in needs:
        corr_seen: dict[tuple[int, int], tuple[weakref.ref, float]] = {}

        def correlate(module, inputs, output):
            # MeCo's code hooks every module, the same tensor again when a container returns its last
            # layer's output: each module counts, the eigenvalues are computed once per tensor version.
            # One channel, or one position (a pooled output), has no correlation to measure: its term is 0.
            if not (isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[1] > 1
                    and output.shape[2] * output.shape[3] > 1):
                return
            key = (id(output), output._version)
            seen = corr_seen.get(key)
            if seen is None or seen[0]() is not output:
                seen = (weakref.ref(output), _least_correlation_eigenvalue(output[0].detach()))
                corr_seen[key] = seen
            meco.append(seen[1])

        hooks += [m.register_forward_hook(correlate) for m in model.modules()]
    if want_fisher:
        def keep(module, inputs, output):
            outputs.append(output)

        hooks += [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grad_needed = want_loss or want_input
    x = x.detach().float().requires_grad_(want_input)
    try:
        with torch.set_grad_enabled(grad_needed):
            logits = _logits(model(x))
    finally:
        for h in hooks:
            h.remove()
    out = TrainPass(constant_output=bool(torch.equal(logits, logits[:1].expand_as(logits))), kernel=kernel,
                    labels=y)
    if want_patterns:
        out.patterns = _distinct_patterns(packed, n)
    if "feature_corr" in needs:
        out.meco = float(sum(meco))
    if want_loss:
        # Gradients of the conv and linear weights (and, for fisher, their outputs) only: the input's and
        # BN's are never read, so not computed.
        weights = weight_layers(model)
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, weights + outputs, retain_graph=want_input or want_hessian,
                                    create_graph=want_hessian, allow_unused=True)
        weight_grads = grads[:len(weights)]
        layers = [(w.detach(), g.detach()) for w, g in zip(weights, weight_grads, strict=True) if g is not None]
        out.snip = sum(float((w * g).abs().sum()) for w, g in layers)
        out.grad_norm = sum(float(g.norm()) for _, g in layers)
        out.plain = sum(float((w * g).sum()) for w, g in layers)
        if "weight_grads" in needs:
            out.weight_grads = [None if g is None else g.detach() for g in weight_grads]
        if want_fisher:
            out.fisher = sum(_fisher(a.detach(), g.detach()) for a, g in zip(outputs, grads[len(weights):], strict=True)
                             if g is not None)
        if want_hessian:
            out.grasp = _grasp(weights, weight_grads, retain=want_input)
    if want_input:
        (jac,) = torch.autograd.grad(logits.sum(), x)
        out.input_jacobian = jac.reshape(n, -1).detach()
    return out


def _fisher(activation: torch.Tensor, grad: torch.Tensor) -> float:
    """0.5 * mean over images of (sum over positions of a * dL/da)^2, summed over channels (Turner et al.)."""
    g_nk = (activation * grad).sum(dim=(2, 3)) if activation.dim() == 4 else activation * grad
    return float(g_nk.double().pow(2).mean(0).mul(0.5).sum())


def _grasp(weights: list[torch.Tensor], grads, retain: bool) -> float:
    """-sum w * Hg: g the loss gradient (held constant), H the Hessian, Hg = d(g_const . g)/dw (Wang et al.)."""
    pairs = [(w, g) for w, g in zip(weights, grads, strict=True) if g is not None and g.requires_grad]
    if not pairs:  # no weight's gradient depends on the weights: the Hessian-gradient product is 0
        return 0.0
    z = sum((g.detach() * g).sum() for _, g in pairs)
    hg = torch.autograd.grad(z, [w for w, _ in pairs], retain_graph=retain, allow_unused=True)
    return -sum(float((w.detach().double() * h.double()).sum()) for (w, _), h in zip(pairs, hg, strict=True)
                if h is not None)


def _sample_patterns(activations: torch.Tensor) -> np.ndarray:
    """Each unit's on/off pattern over the batch's images, packed into 64-bit words: units x words."""
    n = activations.shape[0]
    if activations.is_contiguous(memory_format=torch.channels_last):
        activations = activations.permute(0, 2, 3, 1)  # unit order does not matter: read memory order
    codes = (activations.reshape(n, -1) > 0).T.contiguous().numpy()
    bits = np.packbits(codes, axis=1)
    width = -(-bits.shape[1] // 8) * 8
    if width != bits.shape[1]:
        bits = np.pad(bits, ((0, 0), (0, width - bits.shape[1])))
    return np.ascontiguousarray(bits).view(np.uint64)


def _distinct_patterns(packed: list[np.ndarray], n: int) -> int:
    """SWAP: how many distinct sample-wise patterns the units of every ReLU show together."""
    if not packed:
        return 0
    words = np.concatenate(packed)
    if words.shape[1] == 1:
        # pandas counts by hashing without sorting: 7x faster than np.unique on the ~1.5M words of a cell
        return int(pd.unique(words[:, 0]).size)
    return int(np.unique(words, axis=0).shape[0])


def _least_correlation_eigenvalue(feature: torch.Tensor) -> float:
    """MeCo's term: the least eigenvalue of the C x C Pearson correlation of one image's channels over positions
    (a constant channel has no correlation: 0, as MeCo's code sets NaN and inf to 0)."""
    corr = torch.corrcoef(feature.reshape(feature.shape[0], -1).double())
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def _block_modules(model: nn.Module) -> list[nn.Module]:
    """The blocks whose outputs AZ-NAS compares: the stem and every cell where the network has them, else its
    top-level children."""
    if isinstance(getattr(model, "stem", None), nn.Module) and isinstance(getattr(model, "cells", None), nn.ModuleList):
        return [model.stem, *model.cells]
    return list(model.children())


def _kaiming_fan_in(model: nn.Module, generator: torch.Generator) -> None:
    """AZ-NAS's initialisation: kaiming normal (fan-in, ReLU gain) conv and linear weights, zero biases, unit BN."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fresh = torch.empty(m.weight.shape, dtype=torch.float32)
                nn.init.kaiming_normal_(fresh, mode="fan_in", nonlinearity="relu", generator=generator)
                m.weight.copy_(fresh)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()


def _block_pass(model: nn.Module, x: torch.Tensor, generator: torch.Generator) -> BlockPass:
    """AZ-NAS (Lee and Ham, 2024), following its code: expressivity and progressivity from the eigenvalues of each
    block output's channel covariance over images and positions; trainability from the spectral norm of each
    block's Jacobian, estimated with a random-sign backward from the block's output to its input."""
    # AZ-NAS's code scores NB201 on standard normal noise of the batch's shape, not on images (its notebook lists
    # az_nas among the random-input proxies): `x` gives the shape and layout only.
    noise = torch.randn(x.shape, generator=generator).to(x.device).contiguous(memory_format=layout_of(x))
    _kaiming_fan_in(model, generator)
    model.train()
    features: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: features.append(output))
             for m in _block_modules(model)]
    try:
        logits = _logits(model(noise))
    finally:
        for h in hooks:
            h.remove()
    constant = bool(torch.equal(logits, logits[:1].expand_as(logits)))
    features = [f for f in features if isinstance(f, torch.Tensor) and f.dim() == 4]
    terms = []
    for i in reversed(range(1, len(features))):
        f_out, f_in = features[i], features[i - 1]
        if not (f_out.requires_grad and f_in.requires_grad):
            terms.append(-math.inf)
            continue
        # torch.rand(...) < 0.5 is the draw torch.bernoulli(0.5) makes (the same values, the same generator
        # state after) at half its cost. The signs are stored in the output's layout: NCHW signs against a
        # channels_last network mix layouts in every op of the backward.
        signs = torch.rand(f_out.shape, generator=generator).lt_(0.5).mul_(2).sub_(1)
        signs = signs.to(f_out.device, f_out.dtype).contiguous(memory_format=layout_of(f_out))
        (g_in,) = torch.autograd.grad(f_out, f_in, signs, retain_graph=True, allow_unused=True)
        if g_in is None:
            g_in = torch.zeros_like(f_in)
        if g_in.shape == signs.shape and torch.equal(g_in, signs):
            terms.append(-math.inf)  # an identity block: AZ-NAS's code scores it -inf
            continue
        if g_in.shape[2:] != signs.shape[2:]:
            g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // signs.shape[2])
        b, co, h, w = signs.shape
        g_out_flat = signs.permute(0, 2, 3, 1).reshape(-1, co).double()
        g_in_flat = g_in.detach().permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
        top = float(torch.linalg.svdvals(g_in_flat.T @ g_out_flat / (b * h * w)).max())
        terms.append(-top - 1.0 / (top + 1e-6) + 2.0)
    trainability = float(np.mean(terms)) if terms else 0.0
    return BlockPass(constant, trainability, [f.detach() for f in features])


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
