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
from nascli.spaces.reference_kernels import reference_kernels


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

        _forward_hooked(model, x, [m for m in model.modules() if isinstance(m, nn.ReLU)], count, pre=True)
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
    with reference_kernels():
        torch.manual_seed(seed)
        model = space.build(arch, shape, size)
        fresh = {k: v.clone() for k, v in model.state_dict().items()}
        row = {}
        for name in names:
            model.load_state_dict(fresh)
            row[name] = REFERENCE[name](model, batches, shape)
        row.update(arch_cost(space, arch, shape))
    return row


# -- the later proxies, each from its formula with passes of its own -------------------------------------------

def _weights(model):
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_backward(model, x, y):
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(_logits(model(x)), y)
    loss.backward()


def plain(model, batches, shape):
    values = []
    for x, y in batches:
        _loss_backward(model, x, y)
        values.append(sum(float((w.detach() * w.grad).sum()) for w in _weights(model) if w.grad is not None))
    return float(np.mean(values))


def l2_norm(model, batches, shape):
    return float(sum(float(w.detach().norm()) for w in _weights(model)))


def fisher(model, batches, shape):
    values = []
    for x, y in batches:
        acts = []

        def keep(module, inputs, output, acts=acts):
            output.retain_grad()
            acts.append(output)

        hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            _loss_backward(model, x, y)
        finally:
            for h in hooks:
                h.remove()
        total = 0.0
        for a in acts:
            if a.grad is None:
                continue
            g_nk = (a.detach() * a.grad).sum(dim=(2, 3)) if a.dim() == 4 else a.detach() * a.grad
            total += float((0.5 * g_nk.double().pow(2).mean(0)).sum())
        values.append(total)
    return float(np.mean(values))


def grasp(model, batches, shape):
    """NASLib's two passes: the gradient without a graph, then z = g_const . g(graph) and its backward."""
    values = []
    for x, y in batches:
        model.train()
        weights = _weights(model)
        first = torch.autograd.grad(F.cross_entropy(_logits(model(x)), y), weights, allow_unused=True)
        model.zero_grad(set_to_none=True)
        second = torch.autograd.grad(F.cross_entropy(_logits(model(x)), y), weights, create_graph=True,
                                     allow_unused=True)
        z = sum((a * b).sum() for a, b in zip(first, second, strict=True) if a is not None and b is not None)
        if isinstance(z, torch.Tensor) and z.requires_grad:
            z.backward()
        values.append(-sum(float((w.detach().double() * w.grad.double()).sum()) for w in weights
                           if w.grad is not None))
        model.zero_grad(set_to_none=True)
    return float(np.mean(values))


def epe_nas(model, batches, shape):
    values = []
    for x, y in batches:
        model.train()
        x = x.detach().float().requires_grad_(True)
        out = _logits(model(x))
        out.backward(torch.ones_like(out))
        jac = x.grad.reshape(x.shape[0], -1).numpy().astype(np.float64)
        labels = y.numpy()
        scores = {}
        for c in np.unique(labels):
            rows = jac[labels == c]
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.nan_to_num(np.atleast_2d(np.corrcoef(rows)), nan=0.0)
            scores[c] = np.sum(np.log(np.abs(corr) + 1e-5))
        total = sum(abs(scores[a] - scores[b]) for a in scores for b in scores)
        values.append(total / len(scores))
    return float(np.mean(values))


def zico(model, batches, shape):
    values = []
    for x, y in batches:
        per_layer = {}
        half = x.shape[0] // 2
        for part in (slice(0, half), slice(half, None)):
            _loss_backward(model, x[part], y[part])
            for i, w in enumerate(_weights(model)):
                grad = w.grad if w.grad is not None else torch.zeros_like(w)
                per_layer.setdefault(i, []).append(grad.reshape(-1).double().numpy())
        total = 0.0
        for grads in per_layer.values():
            g = np.array(grads)
            std = np.std(g, axis=0)
            nz = np.nonzero(std)[0]
            s = np.sum(np.mean(np.abs(g), axis=0)[nz] / std[nz])
            if s != 0:
                total += np.log(s)
        values.append(float(total))
    return float(np.mean(values))


def _forward_hooked(model, x, modules, hook, pre=False):
    """One training-mode forward without gradients with `hook` on `modules` (a pre-hook: it sees their inputs)."""
    model.train()
    hooks = [m.register_forward_pre_hook(hook) if pre else m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()


def meco(model, batches, shape):
    values = []
    for x, _ in batches:
        terms = []

        def hook(module, inputs, output, terms=terms):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                fea = output[0].detach().reshape(output.shape[1], -1).double()
                if fea.shape[0] < 2 or fea.shape[1] < 2:
                    return
                corr = torch.corrcoef(fea)
                corr[torch.isnan(corr)] = 0
                corr[torch.isinf(corr)] = 0
                terms.append(float(torch.min(torch.real(torch.linalg.eigvals(corr)))))

        _forward_hooked(model, x, list(model.modules()), hook)
        values.append(sum(terms))
    return float(np.mean(values))


def swap(model, batches, shape):
    values = []
    for x, _ in batches:
        feats = []

        def hook(module, inputs, output, feats=feats, n=x.shape[0]):
            if inputs[0].dim() == 4:
                feats.append(output.detach().reshape(n, -1).clone())

        _forward_hooked(model, x, [m for m in model.modules() if isinstance(m, nn.ReLU)], hook)
        patterns = torch.sign(torch.cat(feats, dim=1)).T
        values.append(float(torch.unique(patterns, dim=0).shape[0]))
    return float(np.mean(values))


def _az_pass(model, x, seed_index):
    """AZ-NAS from its code's formulas: standard normal input of the batch's shape, re-initialise, hook the stem
    and cells, then the 'straight-forward way' (a batched outer product) for each block's Jacobian matrix."""
    g = torch.Generator().manual_seed(seed_index)
    noise = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = torch.empty(m.weight.shape)
                nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=g)
                m.weight.copy_(w)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
    model.train()
    feats = []
    blocks = [model.stem, *model.cells]
    hooks = [b.register_forward_hook(lambda mod, i, o: feats.append(o)) for b in blocks]
    try:
        model(noise)
    finally:
        for h in hooks:
            h.remove()
    ents = []
    for f in feats:
        b, c, h, w = f.shape
        feat = f.detach().permute(0, 2, 3, 1).contiguous().view(b * h * w, c).double()
        feat = feat - feat.mean(dim=0, keepdim=True)
        s = torch.linalg.eigvalsh(feat.T @ feat / feat.shape[0]).clamp_min(0)
        p = s / s.sum()
        e = float((-p * torch.log(p + 1e-8)).sum())
        ents.append(e)
    scores = []
    for i in reversed(range(1, len(feats))):
        f_out, f_in = feats[i], feats[i - 1]
        g_out = (torch.bernoulli(torch.full(f_out.shape, 0.5), generator=g) - 0.5) * 2
        g_in = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True)[0]
        if g_out.shape[2] != g_in.shape[2]:
            g_in = nn.PixelUnshuffle(g_in.shape[2] // g_out.shape[2])(g_in)
        bo, co, ho, wo = g_out.shape
        ci = g_in.shape[1]
        go = g_out.permute(0, 2, 3, 1).reshape(-1, 1, co).double()
        gi = g_in.permute(0, 2, 3, 1).reshape(-1, ci, 1).double()
        mat = torch.bmm(gi, go).mean(dim=0)
        top = float(torch.linalg.svdvals(mat).max())
        scores.append(-top - 1 / (top + 1e-6) + 2)
    return np.sum(ents), np.min(np.array(ents[1:]) - np.array(ents[:-1])), np.mean(scores)


def _az(term):
    def score(model, batches, shape, seed=0):
        return float(np.mean([_az_pass(model, x, seed * 1000 + i)[term] for i, (x, _) in enumerate(batches)]))
    return score


REFERENCE.update({"plain": plain, "l2_norm": l2_norm, "fisher": fisher, "grasp": grasp, "epe_nas": epe_nas,
                  "zico": zico, "meco": meco, "swap": swap, "az_expressivity": _az(0), "az_progressivity": _az(1),
                  "az_trainability": _az(2)})
