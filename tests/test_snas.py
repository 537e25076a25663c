"""SNAS: relaxation, temperature, fused supernet ops, derivation, penalty, determinism, CLI."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import torch

from nascli.config import compose
from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.spaces import get_space
from nascli.spaces.base import DataShape
from nascli.spaces.darts import DARTS_OPS
from nascli.spaces.ops import make_op
from nascli.strategies.base import SearchContext, strategy_class
from nascli.strategies.snas.penalty import PRESETS, PenaltyConfig, ResourcePenalty
from nascli.strategies.snas.relaxation import gumbel_like, sample, temperature
from nascli.supernet import build_supernet
from nascli.supernet.darts_group import CONV_KINDS, DartsEdgeGroup

from .conftest import TINY, needs_shared


# -- temperature ---------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "exponential"])
def test_temperature_runs_from_initial_to_final_over_the_real_steps(schedule):
    taus = [temperature(i / 99, 1.0, 0.03, schedule) for i in range(100)]
    assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(0.03)
    assert all(a > b for a, b in zip(taus, taus[1:], strict=False))
    mid = temperature(0.5, 1.0, 0.03, schedule)
    expected = (1.0 + 0.03) / 2 if schedule == "linear" else (1.0 * 0.03) ** 0.5  # arithmetic / geometric mean
    assert mid == pytest.approx(expected)


def test_temperature_constant_and_clamped():
    assert temperature(0.7, 0.5, 0.03, "constant") == 0.5
    assert temperature(1.5, 1.0, 0.1, "linear") == pytest.approx(0.1)
    assert temperature(-1, 1.0, 0.1, "linear") == pytest.approx(1.0)


# -- relaxation ----------------------------------------------------------------------------
def test_gumbel_max_draws_follow_softmax_alpha():
    """argmax(alpha + G) is an exact sample of softmax(alpha): the hard relaxation's expectation
    (and the tau -> 0 limit of the soft one) is the op mixture softmax(alpha)."""
    g = torch.Generator().manual_seed(0)
    alpha = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    n = 40000
    draws = (alpha + gumbel_like(alpha.expand(n, -1), g)).argmax(-1)
    freq = torch.bincount(draws, minlength=5).float() / n
    assert torch.allclose(freq, torch.softmax(alpha, -1)[0], atol=0.01)
    # the straight-through hard sample is one-hot in the forward pass ...
    s = sample(alpha.expand(n, -1), tau=0.5, hard=True, generator=g)
    assert torch.equal(s.weights.detach().sum(-1), torch.ones(n)) and set(s.weights.detach().unique().tolist()) <= {0, 1}
    hard_freq = s.weights.detach().mean(0)
    assert torch.allclose(hard_freq, torch.softmax(alpha, -1)[0], atol=0.01)
    # ... and soft samples are points of the simplex
    soft = sample(alpha.expand(100, -1), tau=1.0, hard=False, generator=g).weights
    assert torch.allclose(soft.sum(-1), torch.ones(100)) and (soft > 0).all()


def test_straight_through_gradient_is_the_soft_gradient():
    alpha = torch.randn(3, 8, requires_grad=True)
    cost = torch.randn(3, 8)
    hard = sample(alpha, 0.7, True, torch.Generator().manual_seed(1))
    (hard.weights * cost).sum().backward()
    g_hard = alpha.grad.clone()
    alpha.grad = None
    soft = sample(alpha, 0.7, False, torch.Generator().manual_seed(1))
    (soft.weights * cost).sum().backward()
    assert torch.allclose(g_hard, alpha.grad)


def standalone(group: DartsEdgeGroup, edge: int, name: str) -> torch.nn.Module:
    """The plain nascli.spaces.ops module for (edge, op), with the fused group's weights copied in."""
    c, s = group.c, group.stride
    op = make_op(name, c, s, affine=False, bn_after_pool=True)
    with torch.no_grad():
        if name.startswith(("sep", "dil")):
            t = [k[0] for k in CONV_KINDS].index(name)
            k = CONV_KINDS[t][1]
            first = op[0] if name.startswith("sep") else op
            first[1].weight.copy_(group.dw1[t][edge].view(c, 1, k, k))
            first[2].weight.copy_(group.pw1[t, edge].view(c, c, 1, 1))
            if name.startswith("sep"):
                op[1][1].weight.copy_(group.dw2[t][edge].view(c, 1, k, k))
                op[1][2].weight.copy_(group.pw2[t, edge].view(c, c, 1, 1))
        if name == "skip_connect" and s == 2:
            op.conv_1.weight.copy_(group.fr[0, edge].view(c // 2, c, 1, 1))
            op.conv_2.weight.copy_(group.fr[1, edge].view(c // 2, c, 1, 1))
    return op


@pytest.mark.parametrize("stride,hw,dense", [(1, 4, 64), (1, 7, 0), (2, 6, 64), (2, 5, 0)])
def test_fused_edge_group_equals_the_plain_mixed_op(stride, hw, dense):
    """Our batched supernet computes exactly sum_k w_k op_k(x) of the plain ops, values and gradients."""
    torch.manual_seed(0)
    group = DartsEdgeGroup(8, 3, stride, dense)
    x = torch.randn(5, 8, hw, hw, requires_grad=True)
    w = torch.softmax(torch.randn(3, len(DARTS_OPS)), -1).requires_grad_()
    fused = group.forward_soft(x, w)
    ref = torch.stack([sum(w[e, k] * standalone(group, e, n)(x) for k, n in enumerate(DARTS_OPS))
                       for e in range(3)])
    assert fused.shape == ref.shape
    assert torch.allclose(fused, ref, atol=1e-5)
    g_fused = torch.autograd.grad(fused.square().sum(), [x, w])
    g_ref = torch.autograd.grad(ref.square().sum(), [x, w])
    for a, b in zip(g_fused, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    # the hard path runs one op per edge and agrees with the same op alone
    for e in range(3):
        for k, name in enumerate(DARTS_OPS[1:], start=1):
            assert torch.allclose(group.run_op(x, e, k), standalone(group, e, name)(x), atol=1e-5)


# -- supernets and derivation --------------------------------------------------------------
def space_and_net(name: str, **search):
    cfg = compose("search", [f"space={name}", *[f"space.search.{k}={v}" for k, v in search.items()]])
    space = get_space(name, cfg.space)
    shape = DataShape(channels=1, height=8, width=8, num_classes=10)
    return space, build_supernet(space, shape)


@pytest.mark.parametrize("name,search", [("darts", {"channels": 4, "layers": 3}),
                                         ("nb201", {"channels": 4, "cells_per_stage": 1})])
def test_derived_genotypes_are_valid_and_onehot_round_trips(name, search):
    space, net = space_and_net(name, **search)
    g = torch.Generator().manual_seed(0)
    rules = ("snas", "darts") if name == "darts" else ("snas",)
    for _trial in range(20):
        alphas = {t: torch.randn(net.num_edges, len(net.ops), generator=g) * 3 for t in net.cell_types}
        for rule in rules:
            arch = space.make(net.derive(alphas, rule))  # make() validates against the space
            assert space.make(arch.genotype).arch_id == arch.arch_id
    x = torch.randn(2, 1, 8, 8)
    for seed in range(5):
        arch = space.sample(random.Random(seed))
        onehot = net.onehot(arch)
        # one-hot weights as logits derive back to the same architecture
        again = space.make(net.derive({t: s.weights * 10 for t, s in onehot.items()}, "snas"))
        assert again.arch_id == arch.arch_id
        assert net(x, onehot).shape == (2, 10)


def test_penalty_is_normalised_by_the_space_cell_counts():
    _, net = space_and_net("darts", channels=4, layers=5)
    assert net.cell_counts() == {"normal": 3, "reduce": 2}
    pen = ResourcePenalty(net, DataShape(1, 8, 8, 10), PenaltyConfig(preset="mild"))
    assert pen.weight == PRESETS["mild"]
    # skip (stride 1) and none cost nothing, a separable conv costs more than a pool
    unit = pen.unit["normal"]
    ops = list(net.ops)
    assert unit[:, ops.index("none")].abs().max() == 0
    assert (unit[:, ops.index("sep_conv_5x5")] > unit[:, ops.index("max_pool_3x3")]).all()
    uniform = {t: torch.full((net.num_edges, len(ops)), 1 / len(ops)) for t in net.cell_types}
    only_none = {t: torch.nn.functional.one_hot(torch.zeros(net.num_edges, dtype=torch.long), len(ops)).float()
                 for t in net.cell_types}
    assert pen.expected(only_none) == 0 < pen.expected(uniform)


def tiny_search(*overrides, run=None):
    cfg = compose("search", ["strategy=snas", *TINY, "space.search.channels=4", "space.search.layers=3",
                             "budget.max_batches=null", "dataset.subset=600", "strategy.epochs=3",
                             "strategy.warmup_epochs=1", "strategy.batch_size=64", "strategy.num_samples=2",
                             "strategy.recalib_batches=2", "strategy.final_eval_passes=1", *overrides])
    runtime = resolve(cfg.device)
    generator = seed_everything(int(cfg.seed))
    space = get_space(cfg.space.name, cfg.space)
    splits = load_splits(cfg.dataset)
    history = []

    class Recorder:
        def log(self, **record):
            history.append(record)

        def save_plot(self, *args):
            pass

    ctx = SearchContext(cfg, space, splits, runtime, generator, Recorder())
    strategy = strategy_class("snas")(cfg.strategy)
    candidates = strategy.search(ctx)
    return strategy, candidates, [r for r in history if r.get("event") == "epoch"], ctx


def test_penalty_lowers_the_expected_child_parameters():
    """Same data and seed: a stronger resource penalty gives a cheaper expected child."""
    expected = {}
    for preset in ("none", "moderate", "aggressive"):
        _, _, history, _ = tiny_search(f"strategy.penalty.preset={preset}", "strategy.alpha_lr=0.3")
        expected[preset] = history[-1]["expected_params"]
    assert expected["none"] > expected["moderate"] > expected["aggressive"], expected


def test_search_is_deterministic_and_the_checkpoint_scores_the_same():
    first, cands1, hist1, ctx = tiny_search()
    second, cands2, hist2, _ = tiny_search()
    assert [c.arch.arch_id for c in cands1] == [c.arch.arch_id for c in cands2]
    assert [c.score for c in cands1] == [c.score for c in cands2]
    for t in first.alphas:
        assert torch.equal(first.alphas[t], second.alphas[t])
    drop = ("seconds", "time")
    assert [{k: v for k, v in r.items() if k not in drop} for r in hist1] == \
           [{k: v for k, v in r.items() if k not in drop} for r in hist2]
    # score() from a reloaded checkpoint gives the candidates' weight-sharing scores back
    restored = strategy_class("snas")(ctx.cfg.strategy)
    restored.load_state_dict(first.state_dict())
    archs = [c.arch for c in cands1]
    assert restored.score(archs, ctx) == [c.score for c in cands1]
    record = hist1[-1]
    for key in ("tau", "train_ce", "train_penalty", "supernet_acc", "child_acc", "expected_cost", "entropy",
                "op_probs", "child_param_free", "child_live_edges"):
        assert key in record, key
    assert record["tau"] == pytest.approx(0.03)
    assert sum(record["op_probs"]["normal"].values()) == pytest.approx(1.0)


# -- CLI -----------------------------------------------------------------------------------
def test_snas_search_cli_writes_plots_and_retrains(cli, run_root):
    res = cli("search", "strategy=snas", *TINY, "strategy.epochs=2", "strategy.warmup_epochs=1",
              "strategy.hard=true", "--run-root", run_root)
    assert res.exit_code == 0, res.stderr + res.stdout
    run = next((run_root / "search").iterdir())
    for name in ("plots/alpha_normal.png", "plots/alpha_reduce.png", "plots/curves.png", "checkpoints/strategy.pt",
                 "arch.json", "archs.csv"):
        assert (run / name).is_file(), name
    archs = pd.read_csv(run / "archs.csv")
    derived = archs[archs["origin"] == "derived"]
    assert len(derived) == 1 and bool(derived["selected"].iloc[0])
    assert json.loads((run / "arch.json").read_text())["arch_id"] == derived["arch_id"].iloc[0]
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e.get("event") == "epoch"] == [1, 2]
    res = cli("retrain", run / "arch.json", "budget=smoke", "space.retrain.channels=4", "space.retrain.layers=3",
              "--run-root", run_root)
    assert res.exit_code == 0, res.stderr + res.stdout


def test_snas_rejects_a_space_without_a_supernet(cli, run_root):
    res = cli("search", "strategy=snas", "space=pnas", *TINY[:2], "--run-root", run_root)
    assert res.exit_code == 2 and "space=" in res.stderr and "Traceback" not in res.stderr


@needs_shared
def test_snas_on_nb201_looks_up_the_found_cell(cli, run_root):
    from .conftest import SHARED

    table = SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv"
    res = cli("search", "strategy=snas", "space=nb201", "dataset=digits", "budget=smoke", "space.search.channels=4",
              "strategy.epochs=2", "strategy.warmup_epochs=1", f"benchmark.table={table}", "--run-root", run_root)
    assert res.exit_code == 0, res.stderr + res.stdout
    run = next((run_root / "search").iterdir())
    archs = pd.read_csv(run / "archs.csv")
    truth = pd.read_csv(table).set_index("arch_str")["cifar10_test_200ep"]
    for description, value in zip(archs["description"], archs["bench_cifar10_test_200ep"], strict=True):
        assert value == pytest.approx(truth[description])
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("child_truth" in e for e in epochs if e.get("event") == "epoch")
