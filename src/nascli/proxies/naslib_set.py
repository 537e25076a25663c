"""The rest of NAS-Bench-Suite-Zero's gradient and Jacobian proxies: fisher, grasp, plain, l2_norm and epe_nas.

Each follows the code of NASLib (White et al. 2022), which took fisher, grasp and plain from the zero-cost
study (Abdelfattah et al. 2021), at its batch size of 64. Where that code would give a degenerate network
(its output ignores its input) a score inside the working range, the score here is the proxy's worst:
0 for the non-negative ones, the lowest finite float for plain and grasp, which have no least value.
"""

from __future__ import annotations

import numpy as np
import torch

from nascli.proxies.base import LOWEST, register_proxy
from nascli.proxies.probe import Probe, mean_over_passes

EPE_K = 1e-5


@register_proxy("fisher", uses=("output_grads",),
                about="sum over conv/linear outputs a and channels of 0.5 * mean over images of "
                      "(sum over positions of a * dL/da)^2 (Turner et al. 2020)",
                degenerate="0 (no gradient reaches any layer output), the least possible")
def fisher(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: p.fisher, 0.0)


@register_proxy("grasp", uses=("hessian_grad",),
                about="-sum theta * (H g) over conv/linear weights, g = dL/dtheta, H the loss Hessian "
                      "(Wang et al. 2020, as NASLib signs it)",
                degenerate="the lowest finite float (grasp has no least value; the code's 0 lies mid-range)")
def grasp(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: p.grasp, LOWEST)


@register_proxy("plain", uses=("loss_grads",),
                about="sum theta * dL/dtheta over conv/linear weights (no absolute value)",
                degenerate="the lowest finite float (plain has no least value; the code's 0 lies mid-range)")
def plain(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: p.plain, LOWEST)


@register_proxy("l2_norm", uses=("weights",),
                about="sum over conv/linear layers of the L2 norm of the initial weights",
                degenerate="0 (the code counts the dead cell's weights too; a batch's forward tells it is dead)")
def l2_norm(probe: Probe, batch_size: int) -> float:
    if any(p.constant_output for p in probe.passes(batch_size)):
        return 0.0
    return float(sum(float(w.norm()) for w in probe.fresh_weights()))


@register_proxy("epe_nas", uses=("input_grad",),
                about="per class c, s_c = sum log(|R_c| + 1e-5) with R_c the correlation of the class's input "
                      "Jacobians; score = sum over class pairs |s_c - s_c'| / classes (Lopes et al. 2021)",
                degenerate="0 (every class alike), the least possible")
def epe_nas(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: epe_nas_score(p.input_jacobian, p.labels), 0.0)


def epe_nas_score(jacobian: torch.Tensor, labels: torch.Tensor) -> float:
    """A class with one image has the correlation matrix [1]; a constant Jacobian row has no correlation (0,
    where the code's NaN would make the whole score NaN)."""
    per_class = []
    for c in torch.unique(labels):
        rows = jacobian[labels == c].double()
        if rows.shape[0] == 1:
            corr = torch.ones(1, 1, dtype=torch.float64)
        else:
            corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0)
        per_class.append(float(torch.log(corr.abs() + EPE_K).sum()))
    s = np.array(per_class)
    return float(np.abs(s[:, None] - s[None, :]).sum() / len(s))
