"""Zero-cost proxies: scores of an untrained network from one or a few batches.

Each follows its paper's definition (Abdelfattah et al. 2021 for synflow, snip, grad_norm;
Mellor et al. 2021 for naswot and jacob_cov). Batches are (x, y) pairs on the model's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascli.proxies.base import register_proxy, weight_layers


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


@register_proxy("synflow", needs_data=False,
                about="sum |theta * dR/dtheta| with R = sum of outputs of the |theta| network on an all-ones input")
def synflow(model: nn.Module, batches, shape) -> float:
    # Synaptic flow is data-free: all weights made positive and an all-ones input. BN in eval mode
    # with fresh statistics is a positive scaling, which stands in for the BN-free networks of the
    # zero-cost paper. The |theta| network is then positively homogeneous in its input, so the
    # score at input s*1 is s times the score at 1: float32 with a small s avoids overflow where
    # float64 (the reference's choice) would run CPU convolutions tens of times slower.
    model = model.eval()
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    device = next(model.parameters()).device
    score = float("inf")
    for log_scale in (0, -20, -40):
        model.zero_grad(set_to_none=True)
        x = torch.full((1, shape.channels, shape.height, shape.width), 10.0 ** log_scale, device=device)
        model(x).sum().backward()
        total = sum(float((w.detach().double() * w.grad.double()).abs().sum())
                    for w in weight_layers(model) if w.grad is not None)
        if math.isfinite(total) and total > 0:
            score = total / 10.0 ** log_scale
            break
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name in signs:
                p.mul_(signs[name])
    model.zero_grad(set_to_none=True)
    return score


def _per_batch_gradient_score(model: nn.Module, batches, per_layer) -> float:
    """Mean over batches of sum over weight layers of per_layer(w), after one backward of the CE loss."""
    model.train()
    values = []
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(_logits(model(x)), y).backward()
        values.append(sum(per_layer(w) for w in weight_layers(model) if w.grad is not None))
    return _mean(values)


@register_proxy("snip", about="sum |theta * dL/dtheta| (connection sensitivity) on a training batch")
def snip(model: nn.Module, batches, shape) -> float:
    return _per_batch_gradient_score(model, batches, lambda w: float((w.detach() * w.grad).abs().sum()))


@register_proxy("grad_norm", about="sum over layers of the L2 norm of dL/dtheta on a training batch")
def grad_norm(model: nn.Module, batches, shape) -> float:
    return _per_batch_gradient_score(model, batches, lambda w: float(w.grad.norm()))


@register_proxy("naswot", needs_grad=False,
                about="log|K_H|, K_H the Hamming-similarity kernel of the ReLU activation patterns of a batch")
def naswot(model: nn.Module, batches, shape) -> float:
    model.train()
    values = []
    for x, _ in batches:
        n = x.shape[0]
        kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

        def count(module, inputs, n=n, kernel=kernel):
            # Units that agree (both active or both off) between two images: c c^T + (1-c)(1-c)^T.
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
    return _mean(values)


@register_proxy("jacob_cov", about="-sum(log(v + k) + 1/(v + k)), v the eigenvalues of the correlation "
                                   "matrix of the input Jacobians of a batch (k = 1e-5)")
def jacob_cov(model: nn.Module, batches, shape) -> float:
    model.train()
    values = []
    for x, _ in batches:
        x = x.detach().float().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        _logits(model(x)).sum().backward()
        jac = x.grad.reshape(x.shape[0], -1).double()
        corr = torch.corrcoef(jac)
        corr = torch.nan_to_num(corr, nan=0.0)
        eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
        k = 1e-5
        values.append(float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum()))
    return _mean(values)


def _logits(out):
    # Networks with an auxiliary head return (logits, aux) while training.
    return out[0] if isinstance(out, tuple) else out
