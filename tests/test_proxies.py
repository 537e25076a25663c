"""Zero-cost proxies: finite on every architecture of every space, degenerate cells scored worst, synflow exact,
the shared probe equal to one pass per proxy, and the combined proxies."""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from scipy import stats

from nascli.config import compose
from nascli.errors import UserError
from nascli.proxies import PROXIES, get_proxies, load_proxies, plan_proxies
from nascli.proxies.base import LOWEST
from nascli.proxies.combined import rank_mean, vote
from nascli.proxies.probe import Probe
from nascli.proxies.scoring import ScoringSetup, score_chunk
from nascli.proxies.zero_cost import naswot_score
from nascli.spaces import DataShape, get_space
from nascli.spaces.base import SPACES, load_space_plugins

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reference_proxies import reference_row  # noqa: E402
from tests.conftest import fake_nb201_table, run_of  # noqa: E402

load_proxies()
load_space_plugins()
NETWORK_PROXIES = sorted(n for n, p in PROXIES.items() if not p.combined)
SMALL = {  # networks small enough to score in well under a second each
    "nb201": ["space.retrain.channels=4", "space.retrain.cells_per_stage=1"],
    "darts": ["space.retrain.channels=4", "space.retrain.layers=3"],
    "pnas": ["space.retrain.channels=4", "space.retrain.layers=3"],
    "membank": [],
}
RGB = DataShape(3, 16, 16, 10)


def _data(shape: DataShape, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, shape.channels, shape.height, shape.width, generator=g)
    y = torch.randint(0, shape.num_classes, (n,), generator=g)
    return [(x, y)]


def _setup(space_name: str, names: list[str], shape: DataShape = RGB, n: int = 16, extra=(), **kw) -> ScoringSetup:
    cfg = compose("rank", [f"space={space_name}", *SMALL.get(space_name, []), *extra])
    sizes = {p: (None if PROXIES[p].batch_size is None else n) for p in names}
    data = {n: _data(shape, n)} if any(sizes.values()) else {}
    return ScoringSetup(space_name, OmegaConf.to_container(cfg.space), "retrain", shape, names, sizes, data, 0, **kw)


def test_every_proxy_is_registered_with_a_direction_and_a_documented_degenerate_score():
    assert {"synflow", "naswot", "snip", "grad_norm", "jacob_cov", "params", "flops", "vote", "rank_mean"} <= set(PROXIES)
    for name, proxy in PROXIES.items():
        assert proxy.direction in (1, -1), name
        assert proxy.combined or proxy.degenerate, f"{name} does not say how it scores a degenerate network"
    with pytest.raises(UserError, match="unknown proxy 'synflw'"):
        get_proxies("synflw")


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_every_proxy_is_finite_on_sampled_architectures_of_every_space(space_name):
    shape = DataShape(1, 8, 8, 10) if space_name == "membank" else RGB
    setup = _setup(space_name, NETWORK_PROXIES, shape)
    space = get_space(space_name)
    rng = random.Random(3)
    rows = score_chunk(setup, [space.sample(rng).genotype for _ in range(3)])
    for row in rows:
        assert row["status"] == "ok", row
        for name in NETWORK_PROXIES:
            assert math.isfinite(row[name]), (space_name, name, row)


# Degenerate and extreme NB201 cells: the list.
CELLS = {
    "disconnected": "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|",
    "all_none": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "all_skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "all_pool": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "all_conv3x3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}
ZERO_COST = ["synflow", "naswot", "snip", "grad_norm", "jacob_cov"]


# Proxies that see whether a network works (the size and latency baselines count it as built).
FUNCTIONAL = [n for n in NETWORK_PROXIES if n not in ("params", "flops", "latency")]


@pytest.fixture(scope="module")
def extreme_rows():
    setup = _setup("nb201", [*FUNCTIONAL, "params"], n=24, extra=["space.retrain.channels=8"])
    space = get_space("nb201")
    rows = score_chunk(setup, [space.make({"arch_str": s}).genotype for s in CELLS.values()])
    return dict(zip(CELLS, rows, strict=True))


def test_degenerate_cells_score_finite_and_worst(extreme_rows):
    for cell, row in extreme_rows.items():
        assert row["status"] == "ok", (cell, row)
        for name in [*FUNCTIONAL, "params"]:
            assert math.isfinite(row[name]), (cell, name)
    assert extreme_rows["disconnected"]["degenerate"] == 1 and extreme_rows["all_none"]["degenerate"] == 1
    assert all(extreme_rows[c]["degenerate"] == 0 for c in ("all_skip", "all_pool", "all_conv3x3"))
    connected = ("all_skip", "all_pool", "all_conv3x3")
    for name in FUNCTIONAL:  # the direction applied: the degenerate cells rank below every working one
        sign = PROXIES[name].direction
        worst = max(sign * extreme_rows[c][name] for c in ("disconnected", "all_none"))
        best_degenerate_beats = [c for c in connected if sign * extreme_rows[c][name] <= worst]
        assert not best_degenerate_beats, f"{name}: degenerate cells score above {best_degenerate_beats}"
    # the documented worst values
    for cell in ("disconnected", "all_none"):
        row = extreme_rows[cell]
        assert row["synflow"] == 0.0 and row["snip"] == 0.0 and row["grad_norm"] == 0.0
        assert row["naswot"] == -24.0
        assert row["jacob_cov"] == pytest.approx(-24 * (math.log(1e-5) + 1e5))
        for name in ("fisher", "l2_norm", "epe_nas", "zico", "meco", "swap", "az_expressivity"):
            assert row[name] == 0.0, name
        for name in ("plain", "grasp", "az_progressivity", "az_trainability"):
            assert row[name] == LOWEST, name
    # sensible order among working cells: the all-3x3 network is the largest and flows the most
    assert extreme_rows["all_conv3x3"]["synflow"] > extreme_rows["all_pool"]["synflow"]
    assert extreme_rows["all_conv3x3"]["params"] > extreme_rows["all_skip"]["params"] == extreme_rows["all_none"]["params"]


def test_synflow_never_overflows_on_the_largest_nb201_cell():
    # At the benchmark's size (C=16, N=5) the all-3x3 cell's |theta| products overflow float32; the
    # float64 repeat must give a finite score equal to a float64 computation from scratch.
    setup = _setup("nb201", ["synflow"], DataShape(3, 32, 32, 10),
                   extra=["space.retrain.channels=16", "space.retrain.cells_per_stage=5"])
    space = get_space("nb201")
    arch = space.make({"arch_str": CELLS["all_conv3x3"]})
    (row,) = score_chunk(setup, [arch.genotype])
    assert row["status"] == "ok" and math.isfinite(row["synflow"]) and row["synflow"] > 1e38
    torch.manual_seed(0)
    model = space.build(arch, DataShape(3, 32, 32, 10), OmegaConf.create({"channels": 16, "cells_per_stage": 5}))
    assert row["synflow"] == pytest.approx(_synflow_in_float64(model, 32), rel=1e-9)


def _synflow_in_float64(model, size: int) -> float:
    """synflow from its definition, in float64 throughout (the zero-cost reference's precision)."""
    model = model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model(torch.ones(1, 3, size, size, dtype=torch.float64)).sum().backward()
    return sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_synflow_float32_equals_float64_where_it_does_not_overflow():
    space = get_space("nb201")
    size = OmegaConf.create({"channels": 4, "cells_per_stage": 1})
    arch = space.preset("resnet")
    torch.manual_seed(0)
    model = space.build(arch, RGB, size)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    ours = Probe(model, {}, RGB, [PROXIES["synflow"]], {"synflow": None}).synflow()
    # synflow restores the weights it made positive
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())
    assert ours == pytest.approx(_synflow_in_float64(model, 16), rel=1e-5)


def test_naswot_of_a_singular_kernel_is_below_every_regular_one():
    regular = torch.tensor([[3.0, 1.0], [1.0, 3.0]], dtype=torch.float64)  # det 8
    assert naswot_score(regular, False) == pytest.approx(math.log(8.0))
    twins = torch.tensor([[3.0, 3.0, 1.0], [3.0, 3.0, 1.0], [1.0, 1.0, 3.0]], dtype=torch.float64)  # rank 2
    assert naswot_score(twins, False) == -1.0
    assert naswot_score(regular, True) == -2.0  # output ignores input: -n
    identity = torch.eye(5, dtype=torch.float64)  # det 1, the least regular integer kernel: log det 0
    assert naswot_score(identity, False) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_shared_probe_equals_one_pass_per_proxy(space_name):
    """The probe (one build, shared passes, fast pooling) gives the scores of the pre-probe implementation."""
    names = ["synflow", "naswot", "snip", "grad_norm", "jacob_cov", "params"]
    setup = _setup(space_name, names, n=16)
    space = get_space(space_name, compose("rank", [f"space={space_name}", *SMALL[space_name]]).space)
    rng = random.Random(5)
    archs = [space.sample(rng) for _ in range(3)]
    rows = score_chunk(setup, [a.genotype for a in archs])
    for arch, row in zip(archs, rows, strict=True):
        ref = reference_row(space, arch, RGB, space.cfg.retrain, setup.data[16], names, 0)
        for name in names:
            assert row[name] == pytest.approx(ref[name], rel=1e-4), (name, arch.arch_id)
        assert (row["params"], row["flops"]) == (ref["params"], ref["flops"])


LATER = ["fisher", "grasp", "plain", "l2_norm", "epe_nas", "zico", "meco", "swap", "az_expressivity",
         "az_progressivity", "az_trainability"]


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_later_proxies_agree_with_their_formulas_computed_directly(space_name):
    """Each later proxy, read from passes it shares with the others, equals its formula computed with passes of
    its own (bench/reference_proxies.py: separate forwards, NASLib's two-pass grasp, torch.unique for SWAP,
    MeCo's general eigensolver, AZ-NAS's batched outer product)."""
    names = [*LATER, "snip"]
    setup = _setup(space_name, names, n=16)
    space = get_space(space_name, compose("rank", [f"space={space_name}", *SMALL[space_name]]).space)
    rng = random.Random(11)
    archs = [space.sample(rng) for _ in range(3)]
    rows = score_chunk(setup, [a.genotype for a in archs])
    for arch, row in zip(archs, rows, strict=True):
        assert row["status"] == "ok", row
        ref = reference_row(space, arch, RGB, space.cfg.retrain, setup.data[16], names, 0)
        for name in names:
            # grasp's second-order sums run in another order in the two-pass form; ZiCo divides by |g1 - g2|, which
            # magnifies the last-bit differences of the reference's pooling kernels (1.1e-4 relative, seen with
            # two pytest workers' thread counts)
            loose = name in ("grasp", "zico")
            assert row[name] == pytest.approx(ref[name], rel=1e-3 if loose else 1e-4, abs=1e-9), \
                (name, arch.arch_id)
        assert row["swap"] == ref["swap"]  # a count: exact


def test_az_terms_read_noise_of_the_batch_shape_not_the_images():
    """AZ-NAS's NB201 code feeds its re-initialised network standard normal noise: another batch of images of the
    same shape gives the same terms, another seed other noise (and other terms)."""
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    genotypes = [get_space("nb201").sample(random.Random(3)).genotype]
    base = _setup("nb201", names)
    other_images = replace(base, data={16: _data(RGB, 16, seed=1)})
    other_seed = replace(base, seed=1)
    first, second, third = (score_chunk(s, genotypes)[0] for s in (base, other_images, other_seed))
    assert all(math.isfinite(first[n]) for n in names)
    assert [first[n] for n in names] == [second[n] for n in names]
    assert [first[n] for n in names] != [third[n] for n in names]


def test_channels_last_and_worker_assignment_do_not_change_results_beyond_rounding():
    names = ["synflow", "naswot", "snip", "jacob_cov"]
    space = get_space("nb201")
    rng = random.Random(7)
    genotypes = [space.sample(rng).genotype for _ in range(4)]
    plain = score_chunk(_setup("nb201", names), genotypes)
    nhwc = score_chunk(_setup("nb201", names, channels_last=True), genotypes)
    split = score_chunk(_setup("nb201", names), genotypes[2:]) + score_chunk(_setup("nb201", names), genotypes[:2])
    for a, b in zip(plain, nhwc, strict=True):
        for n in names:
            # NHWC convolution kernels sum in another order: snip differed by 2.2e-4 relative with one thread
            assert a[n] == pytest.approx(b[n], rel=1e-3), n
    assert split[2:] + split[:2] == plain  # a score depends on the architecture alone, not on its chunk


def test_nb201_size_key_determines_params_and_flops():
    from nascli.measure import arch_cost

    space = get_space("nb201", compose("rank", ["space=nb201", *SMALL["nb201"]]).space)
    a = space.make({"arch_str": "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"})
    b = space.make({"arch_str": "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|nor_conv_3x3~2|"})
    c = space.make({"arch_str": "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"})
    assert space.size_key(a) == space.size_key(b) != space.size_key(c)
    assert arch_cost(space, a, RGB) == arch_cost(space, b, RGB) != arch_cost(space, c, RGB)
    assert len({space.size_key(x) for x in space.enumerate()}) == 210  # multisets of 6 edges over 4 non-none ops
    assert len(space.enumerate()) == 15625


def test_cached_sizes_follow_the_data_shape():
    """One process scoring one space config on two datasets: the second's params are its own (the stem reads
    the data's channels), not the counts cached for the first."""
    from nascli.measure import arch_cost

    space = get_space("nb201", compose("rank", ["space=nb201", *SMALL["nb201"]]).space)
    arch = space.preset("resnet")
    for shape in (RGB, DataShape(1, 8, 8, 10), RGB):
        (row,) = score_chunk(_setup("nb201", ["params"], shape), [arch.genotype])
        assert row["params"] == arch_cost(space, arch, shape)["params"], shape


# -- combined proxies -------------------------------------------------------------------------------
def test_rank_mean_averages_direction_aware_ranks():
    scores = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [40.0, 30.0, 20.0, 10.0]})
    assert list(rank_mean(scores, {"a": 1, "b": -1})) == [1.0, 2.0, 3.0, 4.0]
    assert list(rank_mean(scores, {"a": 1, "b": 1})) == [2.5, 2.5, 2.5, 2.5]


def test_vote_is_the_copeland_count_of_pairwise_majorities():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.normal(size=(40, 3)), columns=["synflow", "jacob_cov", "snip"])
    scores.iloc[5, 1] = np.nan
    got = vote(scores, {"synflow": 1, "jacob_cov": 1, "snip": 1})
    values = scores.to_numpy()
    valid = [i for i in range(40) if not np.isnan(values[i]).any()]
    for i in range(40):
        if i not in valid:
            assert np.isnan(got[i])
            continue
        wins = sum(1 for j in valid if j != i and (values[i] > values[j]).sum() >= 2)
        assert got[i] == wins
    # three identical members: the vote is the plain ranking
    same = pd.DataFrame({"synflow": [3.0, 1.0, 2.0], "jacob_cov": [3.0, 1.0, 2.0], "snip": [3.0, 1.0, 2.0]})
    assert list(vote(same, {})) == [2, 0, 1]


def test_plan_adds_the_members_combined_proxies_need():
    plan = plan_proxies("params,vote,rank_mean", ["synflow", "naswot"])
    assert plan.columns == ["params", "vote", "rank_mean"]
    assert plan.members == {"vote": ("synflow", "jacob_cov", "snip"), "rank_mean": ("synflow", "naswot")}
    assert [p.name for p in plan.network] == ["params", "synflow", "jacob_cov", "snip", "naswot"]
    with pytest.raises(UserError, match="at least two"):
        plan_proxies("rank_mean", ["synflow"])
    with pytest.raises(UserError, match="not 'vote'"):
        plan_proxies("rank_mean", ["synflow", "vote"])


def test_vote_takes_the_members_it_is_given():
    assert plan_proxies("vote").members == {"vote": ("synflow", "jacob_cov", "snip")}
    plan = plan_proxies("vote", vote=["params", "synflow", "meco"])
    assert plan.members == {"vote": ("params", "synflow", "meco")}
    assert {p.name for p in plan.network} == {"params", "synflow", "meco"}
    with pytest.raises(UserError, match="odd number"):
        plan_proxies("vote", vote=["params", "synflow"])


def test_az_nas_sums_log_ranks_and_swap_reg_favours_the_larger_networks():
    from nascli.proxies.combined import az_nas, swap_reg

    # rank 3 of 3 in every term: log(1) * 4 = 0, the best; rank 1 everywhere: 4 log(1/3)
    terms = pd.DataFrame({"az_expressivity": [0.1, 0.5, 0.9], "az_progressivity": [-3.0, -2.0, -1.0],
                          "az_trainability": [-0.9, -0.5, -0.1], "flops": [1e6, 2e6, 3e6]})
    out = az_nas(terms, {c: 1 for c in terms})
    assert out[2] == pytest.approx(0.0) and out[0] == pytest.approx(4 * math.log(1 / 3))
    scores = pd.DataFrame({"swap": [100.0, 100.0], "params": [1e6, 2e6]})
    reg = swap_reg(scores, {"swap": 1, "params": 1})
    assert reg[1] == pytest.approx(100.0) and reg[0] == pytest.approx(100 * math.exp(-1.0 / 1.5))


def test_combined_proxy_on_real_scores_follows_its_members(extreme_rows):
    frame = pd.DataFrame(list(extreme_rows.values()))
    combined = rank_mean(frame[["synflow", "naswot"]], {"synflow": 1, "naswot": 1})
    tau = stats.kendalltau(combined, frame["synflow"].rank() + frame["naswot"].rank()).statistic
    assert tau == pytest.approx(1.0)


# -- `nas rank` / `nas correlate` with the new options ----------------------------------------------
NB201_TINY = ["space=nb201", "space.retrain.channels=4", "space.retrain.cells_per_stage=1", "dataset=digits"]


def test_rank_table_shows_every_proxy_with_its_direction(cli, run_root):
    res = cli("rank", "--sample", "4", "proxy=synflow,naswot,params,rank_mean", *NB201_TINY, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    for header in ("synflow↑", "naswot↑", "rank_mean↑", "params"):
        assert header in res.stdout
    run = run_of(res)
    assert not (run / "archs.partial.csv").exists()  # folded into archs.csv at the end
    doc = json.loads((run / "proxies.json").read_text())
    assert doc["combined"] == {"rank_mean": ["synflow", "naswot", "params"]}
    assert doc["batch_size"] == {"synflow": None, "naswot": 128, "params": None}


def test_a_chunk_that_raises_is_kept_as_failed_rows(cli, run_root, monkeypatch):
    import nascli.commands.rank as rank_cmd

    calls = {"n": 0}

    def second_chunk_raises(setup, genotypes):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost its network")
        return score_chunk(setup, genotypes)

    monkeypatch.setattr(rank_cmd, "score_chunk", second_chunk_raises)
    res = cli("rank", "--sample", "5", "proxy=params", "chunk=2", "executor.workers=1", "executor.retries=0",
              *NB201_TINY, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "rank").iterdir())
    archs = pd.read_csv(run / "archs.csv")
    assert len(archs) == 5 and archs["status"].tolist() == ["ok", "ok", "failed", "failed", "ok"]
    assert archs["error"].iloc[2].startswith("RuntimeError") or "worker lost" in archs["error"].iloc[2]
    assert json.loads((run / "manifest.json").read_text())["summary"]["failed"] == 2
    assert len(pd.read_csv(run / "ranked.csv")) == 3


def test_a_killed_rank_run_keeps_every_finished_chunk(cli, run_root, monkeypatch):
    import nascli.commands.rank as rank_cmd

    calls = {"n": 0}

    def dies_on_third_chunk(setup, genotypes):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what Ctrl-C or a kill mid-chunk looks like from here
        return score_chunk(setup, genotypes)

    monkeypatch.setattr(rank_cmd, "score_chunk", dies_on_third_chunk)
    res = cli("rank", "--sample", "7", "proxy=params", "chunk=2", "executor.workers=1", *NB201_TINY, "--run-root", run_root)
    assert res.exit_code == 130
    run = next((run_root / "rank").iterdir())
    partial = pd.read_csv(run / "archs.partial.csv")
    assert len(partial) == 4 and partial["params"].notna().all()  # chunks 1 and 2, the third lost
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"


def test_rank_all_lists_a_finite_space_and_refuses_an_infinite_one(cli, run_root):
    res = cli("rank", "--all", "proxy=params", "space=darts", "dataset=digits", "--run-root", run_root)
    assert res.exit_code == 2 and "--sample" in res.stderr


def test_two_workers_give_the_rows_of_one_process():
    from nascli.executors import make_executor

    space = get_space("nb201")
    rng = random.Random(11)
    tasks = [[space.sample(rng).genotype for _ in range(2)] for _ in range(3)]
    setup = _setup("nb201", ["synflow", "naswot", "params"])
    device = OmegaConf.create({"threads": 1})
    one = dict(make_executor(OmegaConf.create({"name": "local", "workers": "1"}), device).run(score_chunk, setup, tasks))
    pool = make_executor(OmegaConf.create({"name": "local", "workers": "2"}), device)
    assert pool.describe() == {"name": "local", "workers": 2, "threads_per_worker": 1}
    two = dict(pool.run(score_chunk, setup, tasks))
    assert [one[i] for i in range(3)] == [two[i] for i in range(3)]


def test_correlate_counts_failed_rows_and_combines_columns(cli, run_root, tmp_path):
    table, _ = fake_nb201_table(tmp_path / "bench.csv", 12)
    res = cli("rank", table, "proxy=synflow,naswot,params", *NB201_TINY, f"benchmark.table={table}",
              "benchmark.metric=acc", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = run_of(res)
    frame = pd.read_csv(run / "archs.csv", dtype={"arch_id": str})
    frame.loc[0, "status"] = "failed"  # as if one cell's scoring had failed
    frame.to_csv(run / "archs.csv", index=False)
    res = cli("correlate", run, "proxy=synflow,naswot,rank_mean", "rank_mean=synflow,params", "collapse=false",
              "bootstrap=0", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    assert "1 architecture(s) whose scoring failed" in res.stderr
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert doc["excluded"]["failed"] == 1 and doc["n"] == 11
    got = {r["proxy"]: r for r in doc["results"]}
    ok = frame[frame["status"] == "ok"]
    expected = stats.rankdata(ok["synflow"]) / 2 + stats.rankdata(ok["params"]) / 2
    assert got["rank_mean"]["spearman_rho"] == pytest.approx(stats.spearmanr(expected, ok["bench_acc"]).statistic)
