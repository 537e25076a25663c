"""The zero-cost proxies as nascli computed them before the shared probe: the speed and equality yardstick.

Each proxy runs its own passes on a freshly reloaded network (snip, grad_norm, jacob_cov and naswot
each do their own training-mode forward), naswot's kernel is two float64 matmuls per ReLU, synflow
retries at smaller input scales, pooling runs through PyTorch's own kernels, and the size columns
rebuild the network. Kept here only to measure the new path against (bench/proxies.py) and to test
that both give the same scores (tests/test_proxies.py); nascli itself never imports it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascli.measure import arch_cost
from nascli.proxies.base import weight_layers
from nascli.proxies.probe import positive_weights
from nascli.spaces.pooling import reference_pooling


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def synflow(model, batches, shape):
    model = model.eval()
    device = next(model.parameters()).device
    score = float("inf")
    with positive_weights(model):
        for log_scale in (0, -20, -40):
            model.zero_grad(set_to_none=True)
            x = torch.full((1, shape.channels, shape.height, shape.width), 10.0 ** log_scale, device=device)
            model(x).sum().backward()
            total = sum(float((w.detach().double() * w.grad.double()).abs().sum())
                        for w in weight_layers(model) if w.grad is not None)
            if math.isfinite(total) and total > 0:
                score = total / 10.0 ** log_scale
                break
    model.zero_grad(set_to_none=True)
    return score


def _per_batch(model, batches, per_layer):
    model.train()
    values = []
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(_logits(model(x)), y).backward()
        values.append(sum(per_layer(w) for w in weight_layers(model) if w.grad is not None))
    return float(np.mean(values))


def snip(model, batches, shape):
    return _per_batch(model, batches, lambda w: float((w.detach() * w.grad).abs().sum()))


def grad_norm(model, batches, shape):
    return _per_batch(model, batches, lambda w: float(w.grad.norm()))


def naswot(model, batches, shape):
    model.train()
    values = []
    for x, _ in batches:
        n = x.shape[0]
        kernel = torch.zeros(n, n, dtype=torch.float64)

        def count(module, inputs, n=n, kernel=kernel):
            codes = (inputs[0].detach().reshape(n, -1) > 0).double()
            kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

        hooks = [m.register_forward_pre_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for h in hooks:
                h.remove()
        sign, logdet = torch.linalg.slogdet(kernel)
        values.append(float(logdet) if float(sign) > 0 else float("-inf"))
    return float(np.mean(values))


def jacob_cov(model, batches, shape):
    model.train()
    values = []
    for x, _ in batches:
        x = x.detach().float().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        _logits(model(x)).sum().backward()
        jac = x.grad.reshape(x.shape[0], -1).double()
        corr = torch.nan_to_num(torch.corrcoef(jac), nan=0.0)
        eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
        k = 1e-5
        values.append(float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum()))
    return float(np.mean(values))


def params(model, batches, shape):
    return float(sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name))


REFERENCE = {"synflow": synflow, "snip": snip, "grad_norm": grad_norm, "naswot": naswot, "jacob_cov": jacob_cov,
             "params": params}


def reference_row(space, arch, shape, size, batches, names: list[str], seed: int) -> dict:
    """One architecture's scores the old way: build, then every proxy from a reloaded fresh state, then the
    size columns from a second build (what `nas rank` did per architecture)."""
    with reference_pooling():
        torch.manual_seed(seed)
        model = space.build(arch, shape, size)
        fresh = {k: v.clone() for k, v in model.state_dict().items()}
        row = {}
        for name in names:
            model.load_state_dict(fresh)
            row[name] = REFERENCE[name](model, batches, shape)
        row.update(arch_cost(space, arch, shape))
    return row
