"""Every edge that reads one state of a DARTS search cell, with all 8 ops per edge.

Parameters of the 4 x E conv ops, the E factorised reductions and the BN statistics are
packed per group. Two forward paths share them:

- `forward_soft`: the SNAS/DARTS relaxation, sum_k w_k op_k(x) for every edge at once. The
  ReLU and the two pools are computed once per input (pools have no weights and their
  affine-free BN sees the same tensor on every edge), the first depthwise stage of all
  conv ops of all edges is one matmul, pointwise convs and BN are batched.
- `forward_hard`: only the chosen op of each edge runs (straight-through sampling and
  one-hot children), through slices of the same parameters.

Both compute exactly what a plain MixedOp of `nascli.spaces.ops` modules computes
(tests/test_snas.py checks values and gradients).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nascli.spaces.cropped_conv import cropped_conv2d
from nascli.spaces.darts import DARTS_OPS
from nascli.spaces.pooling import avg_pool, max_pool
from nascli.supernet.depthwise import depthwise, selector, tap_index, use_dense
from nascli.supernet.edge_group import EdgeGroup
from nascli.supernet.packed_bn import PackedBN

# (op, kernel, dilation); the first two (sep convs) have a second depthwise-pointwise stage.
CONV_KINDS = (("sep_conv_3x3", 3, 1), ("sep_conv_5x5", 5, 1), ("dil_conv_3x3", 3, 2), ("dil_conv_5x5", 5, 2))
SEP_KINDS = 2
OP_INDEX = {name: i for i, name in enumerate(DARTS_OPS)}
CONV_OFFSET = OP_INDEX["sep_conv_3x3"]
assert [OP_INDEX[k[0]] for k in CONV_KINDS] == list(range(CONV_OFFSET, CONV_OFFSET + len(CONV_KINDS)))


def _uniform(shape, fan_in: int) -> nn.Parameter:
    # nn.Conv2d's default init (kaiming uniform with a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class DartsEdgeGroup(EdgeGroup):
    ops = DARTS_OPS

    def __init__(self, c: int, num_edges: int, stride: int, dense_max_pixels: int = 64):
        super().__init__()
        e = num_edges
        self.c, self.e, self.stride, self.dense_max_pixels = c, e, stride, dense_max_pixels
        self.dw1 = nn.ParameterList(_uniform((e, c, k * k), k * k) for _, k, _ in CONV_KINDS)
        self.pw1 = _uniform((len(CONV_KINDS), e, c, c), c)
        self.bn1 = PackedBN(len(CONV_KINDS) * e * c)
        self.dw2 = nn.ParameterList(_uniform((e, c, k * k), k * k) for _, k, _ in CONV_KINDS[:SEP_KINDS])
        self.pw2 = _uniform((SEP_KINDS, e, c, c), c)
        self.bn2 = PackedBN(SEP_KINDS * e * c)
        self.bn_pool = PackedBN(2 * c)  # [max | avg], shared by every edge of the group
        if stride == 2:
            self.fr = _uniform((2, e, c // 2, c), c)  # the two offset 1x1 convs of FactorizedReduce
            self.bn_fr = PackedBN(e * c)

    # -- shared pieces -------------------------------------------------------------------
    def _pools(self, x):
        mx = max_pool(x, 3, self.stride, 1)
        av = avg_pool(x, 3, self.stride, 1)
        return self.bn_pool(mx, 0, self.c), self.bn_pool(av, self.c, 2 * self.c)

    def _fr_inputs(self, r):
        if r.shape[-1] % 2 or r.shape[-2] % 2:
            r = F.pad(r, (0, r.shape[-1] % 2, 0, r.shape[-2] % 2))
        return r[:, :, ::2, ::2], r[:, :, 1::2, 1::2]

    # -- relaxation: every op of every edge ------------------------------------------------
    def forward_soft(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W, w: E x 8 mixture weights -> E x N x C x H' x W'."""
        n, c, h, wd = x.shape
        e, t = self.e, len(CONV_KINDS)
        r = F.relu(x)
        dense = use_dense(h, wd, self.dense_max_pixels)
        y = self._stage1_dense(r) if dense else self._stage1_conv(r)  # T*E x N*P' x C, plus (ho, wo)
        y, (ho, wo) = y
        p = ho * wo
        y = torch.bmm(y, self.pw1.view(t * e, c, c).transpose(1, 2))
        y = self.bn1(y.permute(1, 0, 2).reshape(n * p, t * e * c)).view(n * p, t, e, c)
        s = self._stage2(F.relu(y[:, :SEP_KINDS]), n, ho, wo)
        s = torch.bmm(s, self.pw2.view(SEP_KINDS * e, c, c).transpose(1, 2))
        s = self.bn2(s.permute(1, 0, 2).reshape(n * p, SEP_KINDS * e * c)).view(n * p, SEP_KINDS, e, c)
        # sum_t w[e, t] * conv_t as multiply-and-sum: einsum lowers this to a degenerate bmm.
        wc = w[:, CONV_OFFSET:CONV_OFFSET + t].t().unsqueeze(-1)  # T x E x 1
        mixed = (s * wc[:SEP_KINDS]).sum(1) + (y[:, SEP_KINDS:] * wc[SEP_KINDS:]).sum(1)  # N*P x E x C
        out = mixed.view(n, ho, wo, e, c).permute(3, 0, 4, 1, 2)
        mx, av = self._pools(x)
        out = out + w[:, OP_INDEX["max_pool_3x3"]].view(e, 1, 1, 1, 1) * mx \
            + w[:, OP_INDEX["avg_pool_3x3"]].view(e, 1, 1, 1, 1) * av
        skip = x if self.stride == 1 else self._fr_all(r)
        return out + w[:, OP_INDEX["skip_connect"]].view(e, 1, 1, 1, 1) * skip

    def _stage1_dense(self, r):
        n, c, h, wd = r.shape
        e, t = self.e, len(CONV_KINDS)
        index, ho, wo = self._stage1_index(h, wd, r.device)  # T x P' x P into the concatenated taps
        p = ho * wo
        taps = torch.cat(list(self.dw1), dim=2).reshape(e * c, -1)  # (E*C) x sum k^2
        m = taps @ selector(index, taps.shape[1], taps.dtype)  # every kind's dense maps in one matmul
        m = m.view(e, c, t, p, h * wd).permute(1, 2, 0, 3, 4).reshape(c, t * e * p, h * wd)
        y = torch.bmm(r.reshape(n, c, h * wd).transpose(0, 1).contiguous(), m.transpose(1, 2))  # C x N x T*E*P
        return y.view(c, n, t * e, p).permute(2, 1, 3, 0).reshape(t * e, n * p, c), (ho, wo)

    def _stage1_index(self, h: int, w: int, device):
        """Tap indices of every first-stage kind into the concatenated (sum k^2 + 1) taps."""
        key = (h, w, str(device))
        cache = self.__dict__.setdefault("_index_cache", {})
        if key not in cache:
            parts, offset, zero = [], 0, sum(k * k for _, k, _ in CONV_KINDS)
            for _, k, dil in CONV_KINDS:
                index, ho, wo = tap_index(h, w, k, dil, self.stride, device)
                parts.append(torch.where(index == k * k, zero, index + offset))
                offset += k * k
            cache[key] = (torch.stack(parts), ho, wo)
        return cache[key]

    def _stage1_conv(self, r):
        n, c, _, _ = r.shape
        e = self.e
        outs = []
        for (_, k, dil), weight in zip(CONV_KINDS, self.dw1, strict=True):
            kernel = weight.permute(1, 0, 2).reshape(c * e, 1, k, k)  # output channel = ch * E + edge
            o = cropped_conv2d(r, kernel, None, self.stride, dil * (k - 1) // 2, dil, c)
            ho, wo = o.shape[-2:]
            outs.append(o.view(n, c, e, ho * wo).permute(2, 0, 3, 1))  # E x N x P x C
        return torch.stack(outs).reshape(len(outs) * e, n * ho * wo, c), (ho, wo)

    def _stage2(self, s, n, ho, wo):
        """Second depthwise stage of the sep convs: every (kind, edge, channel) has its own filter."""
        e, c = self.e, self.c
        s = s.reshape(n, ho, wo, SEP_KINDS * e * c).permute(0, 3, 1, 2)
        outs = [depthwise(s[:, i * e * c:(i + 1) * e * c], weight.reshape(e * c, k * k), k, dil, 1,
                          self.dense_max_pixels)
                for i, ((_, k, dil), weight) in enumerate(zip(CONV_KINDS[:SEP_KINDS], self.dw2, strict=True))]
        s = torch.cat(outs, dim=1)  # N x 2EC x H x W
        return s.view(n, SEP_KINDS * e, c, ho * wo).permute(1, 0, 3, 2).reshape(SEP_KINDS * e, n * ho * wo, c)

    def _fr_all(self, r):
        """FactorizedReduce of every edge: the same input, so each offset 1x1 conv is one conv."""
        a, b = self._fr_inputs(r)
        n, c, ho, wo = a.shape
        e, half = self.e, c // 2
        ya = F.conv2d(a, self.fr[0].reshape(e * half, c, 1, 1)).view(n, e, 1, half, ho, wo)
        yb = F.conv2d(b, self.fr[1].reshape(e * half, c, 1, 1)).view(n, e, 1, half, ho, wo)
        y = torch.cat([ya, yb], dim=2).view(n, e * c, ho, wo)  # per edge: [conv_1 | conv_2]
        return self.bn_fr(y).view(n, e, c, ho, wo).transpose(0, 1)

    # -- one op per edge (forward_hard: EdgeGroup) -------------------------------------------
    def run_op(self, x: torch.Tensor, edge: int, k: int, cache: dict | None = None) -> torch.Tensor | None:
        """The output of op k on edge `edge`, as the stand-alone op module would compute it."""
        cache = {} if cache is None else cache
        name = self.ops[k]
        if name == "none":
            return None
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            if "pools" not in cache:
                cache["pools"] = self._pools(x)
            return cache["pools"][0 if name == "max_pool_3x3" else 1]
        if "relu" not in cache:
            cache["relu"] = F.relu(x)
        r, c, e = cache["relu"], self.c, self.e
        if name == "skip_connect":
            if self.stride == 1:
                return x
            a, b = self._fr_inputs(r)
            y = torch.cat([F.conv2d(a, self.fr[0, edge].unsqueeze(-1).unsqueeze(-1)),
                           F.conv2d(b, self.fr[1, edge].unsqueeze(-1).unsqueeze(-1))], dim=1)
            return self.bn_fr(y, edge * c, (edge + 1) * c)
        t = k - CONV_OFFSET
        _, ksize, dil = CONV_KINDS[t]
        y = depthwise(r, self.dw1[t][edge], ksize, dil, self.stride, self.dense_max_pixels)
        y = F.conv2d(y, self.pw1[t, edge].unsqueeze(-1).unsqueeze(-1))
        y = self.bn1(y, (t * e + edge) * c, (t * e + edge + 1) * c)
        if t < SEP_KINDS:
            y = depthwise(F.relu(y), self.dw2[t][edge], ksize, dil, 1, self.dense_max_pixels)
            y = F.conv2d(y, self.pw2[t, edge].unsqueeze(-1).unsqueeze(-1))
            y = self.bn2(y, (t * e + edge) * c, (t * e + edge + 1) * c)
        return y
