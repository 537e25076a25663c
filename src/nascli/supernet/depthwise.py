"""Depthwise convolutions for small feature maps as per-channel dense matrices.

On these CPUs mkldnn's depthwise conv backward costs 1-7 ms per call on 2x2-8x8 maps
whatever the kernel (bench/: 6.8 ms for a dilated 5x5 on 2x2), because it is dominated by
per-call overhead. A depthwise conv on an H x W map is a per-channel linear map
R^(HW) -> R^(H'W'): we gather the kernel taps into that (H'W' x HW) matrix and apply it with
one batched matmul. Cost no longer depends on kernel size or dilation, and several filter
banks applied to the same input become one matmul. Large maps keep conv2d (the dense
matrix grows as (HW)^2).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from nascli.spaces.cropped_conv import cropped_conv2d


@lru_cache(maxsize=256)
def _tap_index_cpu(h: int, w: int, k: int, dilation: int, stride: int) -> tuple[torch.Tensor, int, int]:
    pad = dilation * (k - 1) // 2
    ho = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    oy, ox = torch.meshgrid(torch.arange(ho), torch.arange(wo), indexing="ij")
    ky, kx = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    iy = oy.reshape(-1, 1) * stride - pad + ky.reshape(1, -1) * dilation  # (P_out, k*k)
    ix = ox.reshape(-1, 1) * stride - pad + kx.reshape(1, -1) * dilation
    valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    index = torch.full((ho * wo, h * w), k * k, dtype=torch.long)  # k*k points at a zero tap
    rows = torch.arange(ho * wo).reshape(-1, 1).expand_as(iy)
    taps = torch.arange(k * k).reshape(1, -1).expand_as(iy)
    index[rows[valid], (iy * w + ix)[valid]] = taps[valid]
    return index, ho, wo


_device_cache: dict[tuple, torch.Tensor] = {}


def tap_index(h: int, w: int, k: int, dilation: int, stride: int, device) -> tuple[torch.Tensor, int, int]:
    """(P_out x P_in) index of the kernel tap joining each output and input pixel (k*k = none)."""
    index, ho, wo = _tap_index_cpu(h, w, k, dilation, stride)
    key = (h, w, k, dilation, stride, str(device))
    if key not in _device_cache:
        _device_cache[key] = index.to(device)
    return _device_cache[key], ho, wo


def dense_matrices(weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Filters (G x k*k) -> per-filter dense maps (G x P_out x P_in)."""
    padded = torch.cat([weight, weight.new_zeros(weight.shape[0], 1)], dim=1)
    return padded[:, index]


_selector_cache: dict[tuple, torch.Tensor] = {}


def selector(index: torch.Tensor, taps: int, dtype: torch.dtype) -> torch.Tensor:
    """0/1 matrix (taps x P_out*P_in): filters @ selector = the dense maps, flattened.

    Building the maps by a matmul instead of a gather keeps the backward a matmul too (a
    gather's backward is a slow scatter-add on CPU).
    """
    key = (index.data_ptr(), tuple(index.shape), taps, dtype, str(index.device))
    if key not in _selector_cache:
        flat = index.reshape(-1)
        sel = torch.zeros(taps + 1, flat.numel(), dtype=dtype, device=index.device)
        sel[flat, torch.arange(flat.numel(), device=index.device)] = 1.0
        _selector_cache[key] = sel[:taps].contiguous()  # the last row is the zero tap
    return _selector_cache[key]


def dense_maps(weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Filters (G x taps) -> dense maps (G x P_out x P_in) by one matmul."""
    return (weight @ selector(index, weight.shape[1], weight.dtype)).view(weight.shape[0], *index.shape[-2:])


def use_dense(h: int, w: int, max_pixels: int) -> bool:
    return h * w <= max_pixels


def algorithm(h: int, w: int, k: int, dilation: int, max_pixels: int) -> str:
    """Fastest depthwise implementation for one shape on these CPUs (bench/, forward+backward).

    Measured at batch 64: 2x2 maps -> broadcast multiply-sum of the dense matrices (2.3 ms vs
    8-10 ms for conv2d); 3x3 undilated on bigger maps -> conv2d (1.4-2.2 ms); 5x5 or dilated
    kernels up to `max_pixels` -> one batched matmul (3.5-7 ms vs 8 ms); beyond -> conv2d.
    A fixed rule, not an autotuner, so a run's numerics never depend on timing noise.
    """
    p = h * w
    if p > max_pixels:
        return "conv"
    if p <= 4:
        return "mulsum"
    if k == 3 and dilation == 1:
        return "conv"
    return "bmm"


def depthwise(x: torch.Tensor, weight: torch.Tensor, k: int, dilation: int, stride: int, max_pixels: int) -> torch.Tensor:
    """Depthwise conv of x (N x G x H x W) with weight (G x k*k), 'same' padding for stride 1."""
    n, g, h, w = x.shape
    algo = algorithm(h, w, k, dilation, max_pixels)
    if algo == "conv":
        pad = dilation * (k - 1) // 2
        return cropped_conv2d(x, weight.view(g, 1, k, k), None, stride, pad, dilation, g)
    index, ho, wo = tap_index(h, w, k, dilation, stride, x.device)
    mats = dense_maps(weight, index)  # G x P_out x P_in
    if algo == "mulsum":
        return (x.reshape(n, g, 1, h * w) * mats.unsqueeze(0)).sum(-1).view(n, g, ho, wo)
    # One contiguous copy: CPU bmm clones every batch slice of a batch-transposed operand.
    out = torch.bmm(x.reshape(n, g, h * w).transpose(0, 1).contiguous(), mats.transpose(1, 2))  # G x N x P_out
    return out.transpose(0, 1).reshape(n, g, ho, wo)
