"""Zero-cost proxies: scores of an untrained network from one or a few batches.

Each follows its paper's definition (Abdelfattah et al. 2021 for synflow, snip, grad_norm and
jacob_cov; Mellor et al. 2021 for naswot) and its paper's batch size (64 in the zero-cost study,
128 for NASWOT). The measurements come from a shared Probe (one forward per batch for all of them).

Degenerate networks (a disconnected cell, an all-`none` cell: the output ignores the input) get the
worst score for each proxy's direction, never the best: synflow, snip and grad_norm see no gradient
(0, their least value); jacob_cov sees an all-zero Jacobian (its least value, -n(log k + 1/k));
naswot gives them -n, below any kernel that tells images apart.
"""

from __future__ import annotations

import numpy as np
import torch

from nascli.proxies.base import register_proxy
from nascli.proxies.probe import Probe

JACOB_K = 1e-5


@register_proxy("synflow", uses=("synflow",), batch_size=None,
                about="sum |theta * dR/dtheta| with R = sum of outputs of the |theta| network on an all-ones input",
                degenerate="0 (no gradient reaches any weight), the least possible")
def synflow(probe: Probe, batch_size: int | None) -> float:
    return probe.synflow()


@register_proxy("snip", uses=("loss_grads",),
                about="sum |theta * dL/dtheta| (connection sensitivity) on a training batch",
                degenerate="0 (no gradient reaches any weight), the least possible")
def snip(probe: Probe, batch_size: int) -> float:
    return float(np.mean([p.snip for p in probe.passes(batch_size)]))


@register_proxy("grad_norm", uses=("loss_grads",),
                about="sum over layers of the L2 norm of dL/dtheta on a training batch",
                degenerate="0 (no gradient reaches any weight), the least possible")
def grad_norm(probe: Probe, batch_size: int) -> float:
    return float(np.mean([p.grad_norm for p in probe.passes(batch_size)]))


@register_proxy("naswot", uses=("activation_kernel",), batch_size=128,
                about="log|K_H|, K_H the Hamming-similarity kernel of the ReLU activation patterns of a batch",
                degenerate="-n (n the batch size), below every kernel that tells images apart")
def naswot(probe: Probe, batch_size: int) -> float:
    return float(np.mean([naswot_score(p.kernel, p.constant_output) for p in probe.passes(batch_size)]))


def naswot_score(kernel: torch.Tensor, constant_output: bool) -> float:
    """log det K, finite for every network.

    K counts agreeing units, so it is an integer PSD matrix: when it is non-singular, det K >= 1 and
    log det K >= 0. A singular K (two images the ReLUs cannot tell apart) has log det -inf in the paper's
    code; here it scores rank(K) - n, in [-(n - 1), -1]: still below every non-singular kernel, and
    ordered by how many images the network separates. A network whose output ignores its input scores
    -n whatever its dead layers' codes.
    """
    n = kernel.shape[0]
    if constant_output:
        return float(-n)
    eig = torch.linalg.eigvalsh(kernel)
    # numpy's matrix_rank tolerance: largest eigenvalue x size x machine epsilon.
    tol = float(eig[-1]) * n * torch.finfo(kernel.dtype).eps
    rank = int((eig > tol).sum())
    if rank < n:
        return float(rank - n)
    return float(torch.log(eig).sum())


@register_proxy("jacob_cov", uses=("input_grad",),
                about="-sum(log(v + k) + 1/(v + k)), v the eigenvalues of the correlation matrix of the input "
                      "Jacobians of a batch (k = 1e-5)",
                degenerate="-n(log k + 1/k) (an all-zero Jacobian), the least possible")
def jacob_cov(probe: Probe, batch_size: int) -> float:
    return float(np.mean([jacob_cov_score(p.input_jacobian) for p in probe.passes(batch_size)]))


def jacob_cov_score(jacobian: torch.Tensor) -> float:
    corr = torch.corrcoef(jacobian.double())
    # An image whose Jacobian is constant (all zero when the output ignores the input) has no correlation:
    # a zero row, which adds zero eigenvalues and so lowers the score, as it should.
    corr = torch.nan_to_num(corr, nan=0.0)
    eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    return float(-(torch.log(eig + JACOB_K) + 1.0 / (eig + JACOB_K)).sum())
