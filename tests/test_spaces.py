"""Every registered search space: sample -> JSON round trip -> build -> forward -> params."""

from __future__ import annotations

import json
import random

import pytest
import torch

from nascli.arch_io import arch_from_json, resolve_arch
from nascli.errors import UserError
from nascli.measure import cost
from nascli.spaces import SPACES, DataShape, get_space, load_space_plugins
from nascli.spaces.nb201 import parse_arch_str, to_arch_str

load_space_plugins()
SPACE_NAMES = sorted(SPACES)
SHAPE = DataShape(channels=1, height=8, width=8, num_classes=10)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_sample_roundtrip_build_forward(name):
    space = get_space(name)
    rng = random.Random(0)
    for _ in range(3):
        arch = space.sample(rng)
        doc = json.loads(json.dumps(arch.to_json()))
        again = arch_from_json(doc, "roundtrip")
        assert again == arch and again.arch_id == arch.arch_id and len(arch.arch_id) == 12
        model = space.build(arch, SHAPE, space.cfg.search)
        out = model(torch.randn(2, 1, 8, 8))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        counted = cost(model, SHAPE)
        assert counted["params"] > 0 and counted["flops"] > 0


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_sampling_is_seeded(name):
    space = get_space(name)
    same_seed = [space.sample(random.Random(7)).arch_id for _ in range(2)]
    rng = random.Random(8)
    one_stream = [space.sample(rng).arch_id for _ in range(4)]
    assert same_seed[0] == same_seed[1]
    assert len(set(one_stream)) > 1


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_presets_are_valid_and_build(name):
    space = get_space(name)
    assert space.presets, f"{name} has no presets"
    for preset in space.presets:
        arch = space.preset(preset)
        model = space.build(arch, SHAPE, space.cfg.search)
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def test_darts_presets_match_published_sizes():
    """DARTS_V2 at the paper's CIFAR-10 size (C=36, 20 cells) has 3.3M params."""
    space = get_space("darts")
    net = space.cfg.retrain.copy()
    net.channels, net.layers = 36, 20
    shape = DataShape(3, 32, 32, 10)
    params = cost(space.build(space.preset("DARTS_V2"), shape, net), shape)["params"]
    assert 3.2e6 < params < 3.45e6
    aggressive = cost(space.build(space.preset("SNAS_aggressive"), shape, net), shape)["params"]
    assert 2.2e6 < aggressive < 2.4e6  # paper: 2.3M


def test_edge_all_children_equal_their_compact_form():
    space = get_space("darts")
    for cell in ("mild", "moderate", "aggressive"):
        assert space.preset(f"SNAS_{cell}_edge_all") == space.preset(f"SNAS_{cell}")


# NAS-Bench-201 reports these parameter counts (C=16, N=5, 10 classes): its smallest
# network (all-skip / all-none cells) 0.0733 M, the all-3x3 cell 1.5315 M, the best
# CIFAR-10 cell 1.0735 M.
@pytest.mark.parametrize("arch_str,params", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 1_531_546),
    ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|", 73_306),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 73_306),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", 1_073_466),
])
def test_nb201_parameter_counts(arch_str, params):
    space = get_space("nb201")
    shape = DataShape(3, 32, 32, 10)
    model = space.build(space.make(arch_str), shape, space.cfg.retrain)
    assert cost(model, shape)["params"] == params


def test_nb201_arch_strings_roundtrip():
    text = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    assert to_arch_str(parse_arch_str(text)) == text
    space = get_space("nb201")
    arch = resolve_arch(f"nb201:{text}")
    assert space.arch_str(arch) == text
    assert arch == space.make({"cell": parse_arch_str(text)})


@pytest.mark.parametrize("genotype,message", [
    ({"normal": [[["conv_9x9", 0], ["skip_connect", 1]]] * 4, "reduce": [[["skip_connect", 0]]] * 4}, "unknown op"),
    ({"normal": [[["skip_connect", 7]]] * 4, "reduce": [[["skip_connect", 0]]] * 4}, "out of range"),
    ({"normal": [[["skip_connect", 0]]] * 3, "reduce": [[["skip_connect", 0]]] * 4}, "nodes"),
    ({"normal": [[["skip_connect", 0]]] * 4}, "lacks 'reduce'"),
    ({"normal": [[["skip_connect", 0], ["max_pool_3x3", 0]]] * 4, "reduce": [[["skip_connect", 0]]] * 4},
     "more than once"),
])
def test_darts_rejects_invalid_genotypes(genotype, message):
    with pytest.raises(UserError, match=message):
        get_space("darts").make(genotype)


def test_canonical_form_ignores_edge_order_and_none_edges():
    space = get_space("darts")
    base = space.preset("DARTS_V2").genotype
    shuffled = {k: ([list(reversed(n)) for n in v] if isinstance(v[0], list) else v) for k, v in base.items()}
    with_none = json.loads(json.dumps(base))
    with_none["normal"][3].append(["none", 1])
    assert space.make(shuffled) == space.make(base) == space.make(with_none)


def test_pnas_blocks_are_unordered():
    space = get_space("pnas")
    a = space.make({"normal": [[["sep_conv_3x3", 0], ["max_pool_3x3", 1]]]})
    b = space.make({"normal": [[["max_pool_3x3", 1], ["sep_conv_3x3", 0]]]})
    assert a == b
