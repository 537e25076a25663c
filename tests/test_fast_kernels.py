"""nascli's fast CPU kernels compute exactly what the library layers compute (outputs and gradients), and the
FLOP counter still sees the library layers."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nascli.arch_io import resolve_arch
from nascli.config import compose
from nascli.measure import count_flops
from nascli.spaces import DataShape, get_space
from nascli.spaces.cropped_conv import DepthwiseConv, reaching_taps
from nascli.spaces.ops import OPS
from nascli.spaces.pooling import AvgPool, MaxPool
from nascli.spaces.reference_kernels import reference_kernels

# (kernel, dilation, padding) of DARTS's depthwise convs (sep_conv_3x3/5x5/7x7, dil_conv_3x3/5x5), and one
# with less padding than "same".
DEPTHWISE = [(3, 1, 1), (5, 1, 2), (7, 1, 3), (3, 2, 2), (5, 2, 4), (5, 1, 1)]
SIZES = [(1, 1), (2, 2), (3, 5), (4, 4), (7, 7), (8, 8)]
# Every kernel on every map where at least one output window fits (nn.Conv2d refuses the others too).
CASES = [(k, d, p, size) for k, d, p in DEPTHWISE for size in SIZES
         if all(s + 2 * p - d * (k - 1) >= 1 for s in size)]


@pytest.mark.parametrize(("kernel", "dilation", "padding", "size"), CASES)
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_equals_the_full_kernel_in_outputs_and_gradients(kernel, dilation, padding, size, stride):
    torch.manual_seed(0)
    conv = DepthwiseConv(4, kernel, stride, padding, dilation).double()
    x = torch.randn(3, 4, *size, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    with reference_kernels():
        ref = conv(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, (x, conv.weight), grad)
    want = torch.autograd.grad(ref, (x, conv.weight), grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_reaching_taps_drop_only_taps_that_read_padding_everywhere():
    assert reaching_taps(8, 5, 2, 4) == (0, 4)  # 8 pixels: every tap of a dilated 5x5 reaches the image
    assert reaching_taps(4, 5, 2, 4) == (1, 3)  # offsets -2, 0, 2
    assert reaching_taps(2, 5, 2, 4) == (2, 2)  # the centre alone
    assert reaching_taps(2, 5, 1, 2) == (1, 3)  # the central 3x3
    assert reaching_taps(1, 3, 1, 5) == (0, 2)  # no tap reaches the image: the kernel stays whole


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_darts_ops_on_small_maps_keep_their_values_and_layout(layout):
    torch.manual_seed(0)
    for name, stride, size in itertools.product(("sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"), (1, 2), (2, 4)):
        op = OPS[name](8, stride, True, False).train()
        x = torch.randn(16, 8, size, size).contiguous(memory_format=layout)
        out = op(x)
        with reference_kernels():
            ref = op(x)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        assert out.is_contiguous(memory_format=layout) == ref.is_contiguous(memory_format=layout)


def test_pools_equal_the_library_pools():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    for pool in (AvgPool(3, 1, 1), AvgPool(3, 2, 1), MaxPool(3, 1, 1), MaxPool(3, 2, 1)):
        out = pool(x)
        with reference_kernels():
            ref = pool(x)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_the_flop_counter_counts_the_nominal_kernels():
    """A 5x5 on a 2x2 map counts as a 5x5: FLOPs are what the layer nominally computes."""
    conv = nn.Sequential(DepthwiseConv(8, 5, 1, 4, 2))
    plain = nn.Sequential(nn.Conv2d(8, 8, 5, 1, 4, dilation=2, groups=8, bias=False))
    shape = DataShape(8, 2, 2, 10)
    assert count_flops(conv, shape) == count_flops(plain, shape) == 2 * 8 * 25 * 4
    # ...while the fast path really runs the centre tap alone there.
    counter = FlopCounterMode(display=False)
    with counter:
        conv(torch.randn(1, 8, 2, 2))
    assert counter.get_total_flops() == 2 * 8 * 1 * 4


def test_a_darts_network_on_digits_gives_the_library_kernels_logits():
    """At 8x8 the network reaches 2x2, where the 5x5 and dilated kernels are cropped."""
    space = get_space("darts")
    arch = resolve_arch("darts:DARTS_V2")
    model = space.build(arch, DataShape(1, 8, 8, 10), compose("retrain", ["dataset=digits"]).space.retrain)
    x = torch.randn(8, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        out = model(x)
        with reference_kernels():
            ref = model(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fused_sgd_and_foreach_clipping_give_the_per_tensor_loops_bits():
    from nascli.train import clip_gradients, sgd

    torch.manual_seed(0)
    model = get_space("darts").build(resolve_arch("darts:DARTS_V2"), DataShape(1, 8, 8, 10),
                                     compose("retrain", ["dataset=digits"]).space.retrain)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    settings = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 3e-4}

    def train(fast: bool) -> dict:
        model.load_state_dict(start)
        opt = sgd(model.parameters(), **settings) if fast else torch.optim.SGD(model.parameters(), **settings)
        assert bool(opt.defaults["fused"]) == fast
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            if fast:
                clip_gradients(model.parameters(), 0.5)
            else:
                nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
        return {k: v.clone() for k, v in model.state_dict().items()}

    fast, loop = train(True), train(False)
    assert all(torch.equal(fast[k], loop[k]) for k in fast)
