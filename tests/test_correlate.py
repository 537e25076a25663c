"""Correlation statistics, proxies, `nas rank`, batch retrain and `nas correlate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nascli.correlation import correlate, partial_kendall, seed_ceiling, tau_difference
from nascli.errors import UserError
from nascli.spaces import get_space
from tests.conftest import SHARED, TINY, fake_nb201_table, needs_shared, run_of, tree_digest

# Fixed data with ties in both columns (τ-b differs from τ-a there).
PROXY = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0, 8.0])
TRUTH = np.array([70.1, 65.2, 72.9, 66.0, 74.5, 80.3, 68.8, 71.0, 75.2, 69.9, 73.3, 79.4])


def test_statistics_equal_scipy_on_fixed_data():
    res = correlate(PROXY, TRUTH, name="p", resamples=0)
    assert res["kendall_tau"] == pytest.approx(stats.kendalltau(PROXY, TRUTH, variant="b").statistic, abs=1e-12)
    assert res["kendall_p"] == pytest.approx(stats.kendalltau(PROXY, TRUTH, variant="b").pvalue, abs=1e-12)
    assert res["spearman_rho"] == pytest.approx(stats.spearmanr(PROXY, TRUTH).statistic, abs=1e-12)
    assert res["pearson_r"] == pytest.approx(stats.pearsonr(PROXY, TRUTH).statistic, abs=1e-12)
    assert res["n"] == 12
    # τ-b on tied data is not τ-a: the test would not notice the wrong variant otherwise.
    assert res["kendall_tau"] != pytest.approx(stats.kendalltau(PROXY, TRUTH, variant="c").statistic, abs=1e-6)


def test_direction_is_applied_never_abs():
    truth = np.arange(10.0)
    assert correlate(truth * 2, truth, name="up", resamples=0)["kendall_tau"] == pytest.approx(1.0)
    reversed_proxy = -truth
    assert correlate(reversed_proxy, truth, name="down", resamples=0)["kendall_tau"] == pytest.approx(-1.0)
    assert correlate(reversed_proxy, truth, name="down", direction=-1, resamples=0)["spearman_rho"] == pytest.approx(1.0)
    res = correlate(reversed_proxy, truth, name="down", direction=-1, resamples=0, k=3)
    assert res["precision_at_k"] == 1.0 and res["best_true_in_proxy_top_k"]


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded():
    res = correlate(PROXY, TRUTH, name="p", resamples=500, seed=3)
    again = correlate(PROXY, TRUTH, name="p", resamples=500, seed=3)
    for key in ("kendall_tau", "spearman_rho", "pearson_r"):
        lo, hi = res["ci"][key]
        assert lo <= res[key] <= hi
        assert hi - lo > 0.01  # 12 points: a real interval, not a degenerate one
        assert again["ci"][key] == res["ci"][key]


def test_too_few_points_and_nan_are_user_errors():
    with pytest.raises(UserError, match="at least 3"):
        correlate([1.0, 2.0], [3.0, 4.0], name="p")
    with pytest.raises(UserError, match="NaN"):
        correlate([1.0, float("nan"), 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], name="p")


def test_minus_infinity_is_the_worst_score_not_an_error():
    # naswot of a cell whose output is constant: log det of a singular kernel = -inf
    proxy = np.array([-np.inf, 1.0, 2.0, 3.0, 4.0])
    truth = np.array([10.0, 50.0, 60.0, 70.0, 80.0])
    res = correlate(proxy, truth, name="naswot", resamples=100)
    assert res["kendall_tau"] == pytest.approx(1.0) and res["spearman_rho"] == pytest.approx(1.0)
    assert np.isnan(res["pearson_r"]) and "pearson_r" not in res["ci"]


def test_seed_ceiling_is_the_mean_pairwise_tau():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20)
    seeds = np.stack([base + 0.3 * rng.normal(size=20) for _ in range(3)], axis=1)
    expected = np.mean([stats.kendalltau(seeds[:, i], seeds[:, j]).statistic for i, j in ((0, 1), (0, 2), (1, 2))])
    assert seed_ceiling(seeds)["seed_to_seed_kendall_tau"] == pytest.approx(expected)
    assert seed_ceiling(seeds[:, :1]) is None


@pytest.mark.parametrize("k", [2, 4])
def test_noise_ceiling_is_for_the_mean_of_the_seeds_that_the_truth_is(k):
    """A perfect score (the expected accuracy) against a k-seed mean truth reaches the ceiling, which is above
    the single seed-to-seed τ; two independent k-seed truths agree at mean_of_seeds_kendall_tau."""
    rng = np.random.default_rng(1)
    expected_acc = rng.normal(size=3000)
    seeds = expected_acc[:, None] + rng.normal(size=(3000, k))
    other = expected_acc[:, None] + rng.normal(size=(3000, k))
    c = seed_ceiling(seeds)
    truth = seeds.mean(1)
    assert c["ceiling_kendall_tau"] == pytest.approx(stats.kendalltau(expected_acc, truth).statistic, abs=0.02)
    assert c["mean_of_seeds_kendall_tau"] == pytest.approx(stats.kendalltau(other.mean(1), truth).statistic, abs=0.02)
    assert c["seed_to_seed_kendall_tau"] < c["mean_of_seeds_kendall_tau"] < c["ceiling_kendall_tau"]


def test_precision_at_k_does_not_depend_on_the_order_of_tied_rows():
    proxy = np.array([9.0, 8.0, 8.0, 8.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # three tie at the 2nd place
    truth = np.array([5.0, 9.0, 1.0, 1.0, 8.0, 2.0, 2.0, 2.0, 0.0, 0.0])
    first = correlate(proxy, truth, name="p", resamples=0, k=2)
    # proxy top 2: row 0, and one of rows 1-3 (1/3 each); truth top 2: rows 1 and 4.
    assert first["precision_at_k"] == pytest.approx((1 / 3) / 2)
    assert first["best_true_in_proxy_top_k"] == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(len(proxy))
        again = correlate(proxy[order], truth[order], name="p", resamples=0, k=2)
        for key in ("precision_at_k", "top_k_overlap", "best_true_in_proxy_top_k", "truth_of_proxy_best"):
            assert again[key] == pytest.approx(first[key])
    plain = correlate(np.arange(10.0), np.arange(10.0), name="p", resamples=0, k=3)
    assert plain["top_k_overlap"] == 3 and plain["precision_at_k"] == 1.0  # no ties: the plain overlap


def test_bootstrap_resamples_groups_of_equivalent_rows_not_rows():
    """Ten architectures each present five times (equal up to dead edges): resampling rows would treat 50
    points as independent and give an interval far narrower than the ten architectures support."""
    rng = np.random.default_rng(0)
    truth = np.linspace(0, 1, 10)
    proxy = truth + rng.normal(scale=0.4, size=10)
    groups = np.repeat(np.arange(10), 5)
    by_rows = correlate(np.repeat(proxy, 5), np.repeat(truth, 5), name="p", resamples=400, seed=1)
    by_groups = correlate(np.repeat(proxy, 5), np.repeat(truth, 5), name="p", resamples=400, seed=1, groups=groups)
    alone = correlate(proxy, truth, name="p", resamples=400, seed=1)

    def width(r):
        return r["ci"]["kendall_tau"][1] - r["ci"]["kendall_tau"][0]

    assert by_groups["bootstrap_groups"] == 10 and by_groups["kendall_tau"] == by_rows["kendall_tau"]
    assert width(by_groups) > 1.5 * width(by_rows)
    assert width(by_groups) == pytest.approx(width(alone), rel=0.35)
    lo, hi = by_groups["ci"]["kendall_tau"]
    assert lo <= by_groups["kendall_tau"] <= hi
    # Singleton groups are plain row resampling: the same interval as without groups.
    assert correlate(proxy, truth, name="p", resamples=400, seed=1, groups=np.arange(10))["ci"] == alone["ci"]


def test_nb201_functional_key_collapses_dead_edges():
    space = get_space("nb201")
    a = space.from_ref("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    b = space.from_ref("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    c = space.from_ref("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|")
    assert a.arch_id != b.arch_id
    assert space.functional_key(a) == space.functional_key(b)  # node 2 only ever holds zeros
    assert space.functional_key(a) != space.functional_key(c)
    # node 1's output feeds only node 2, which never reaches the output... here it does (via 3<-1)
    d = space.from_ref("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|none~2|")
    e = space.from_ref("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|")
    assert space.functional_key(d) == space.functional_key(e)  # nodes 1, 2 cannot reach the output


def _write_csv(path, proxy, truth, extra=None):
    frame = pd.DataFrame({"arch_id": [f"a{i}" for i in range(len(proxy))], "proxy": proxy, "truth": truth,
                          **(extra or {})})
    frame.to_csv(path, index=False)
    return path


def test_correlate_csv_equals_scipy_and_writes_its_files(cli, run_root, tmp_path):
    path = _write_csv(tmp_path / "t.csv", PROXY, TRUTH, {"loss": -PROXY})
    res = cli("correlate", path, "proxy=proxy,loss", "truth=truth", "lower_is_better=[loss]", "bootstrap=200",
              "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "correlate").iterdir())
    assert {"correlation.json", "table.csv", "report.md", "manifest.json", "config.yaml"} <= \
        {p.name for p in run.iterdir()}
    assert (run / "plots" / "scatter.png").stat().st_size > 1000
    doc = json.loads((run / "correlation.json").read_text())
    by = {r["proxy"]: r for r in doc["results"]}
    tau = stats.kendalltau(PROXY, TRUTH).statistic
    assert by["proxy"]["kendall_tau"] == pytest.approx(tau)
    assert by["loss"]["kendall_tau"] == pytest.approx(tau) and by["loss"]["direction"] == -1
    assert "τ" in (run / "report.md").read_text()


def test_partial_tau_is_kendalls_formula_and_zero_for_a_proxy_that_only_tracks_the_given_column(cli, run_root,
                                                                                                    tmp_path):
    rng = np.random.default_rng(0)
    params = rng.uniform(1e4, 1e5, 40)
    skill = rng.normal(size=40)
    truth = np.log(params) + skill  # accuracy: size plus something size does not explain
    def tau(a, b):
        return stats.kendalltau(a, b, variant="b").statistic
    knows_skill = skill + 0.3 * rng.normal(size=40)
    expected = (tau(knows_skill, truth) - tau(knows_skill, params) * tau(truth, params)) / np.sqrt(
        (1 - tau(knows_skill, params) ** 2) * (1 - tau(truth, params) ** 2))
    assert partial_kendall(knows_skill, truth, params) == pytest.approx(expected, abs=1e-12)
    size_only = np.sqrt(params)  # a proxy that is params in disguise: τ > 0, nothing beyond size
    assert tau(size_only, truth) > 0.3 and partial_kendall(size_only, truth, params) != partial_kendall(
        size_only, truth, params)  # NaN: params orders it perfectly
    assert abs(partial_kendall(size_only + 10 * rng.normal(size=40), truth, params)) < 0.15
    assert partial_kendall(knows_skill, truth, params) > 0.4
    # Through the CLI: given=params adds the partial τ and its bootstrap interval to every other proxy.
    path = _write_csv(tmp_path / "p.csv", knows_skill, truth, {"params": params})
    res = cli("correlate", path, "proxy=proxy,params", "truth=truth", "given=params", "bootstrap=200",
              "--run-root", run_root)
    assert res.exit_code == 0, res.output
    assert "partial" in res.output
    run = next((run_root / "correlate").iterdir())
    by = {r["proxy"]: r for r in json.loads((run / "correlation.json").read_text())["results"]}
    assert by["proxy"]["partial_kendall_tau"] == pytest.approx(expected, abs=1e-12)
    low, high = by["proxy"]["ci"]["partial_kendall_tau"]
    assert low < expected < high and "partial_kendall_tau" not in by["params"]
    assert "partial τ given params" in (run / "report.md").read_text()


def test_versus_gives_each_proxy_its_tau_difference_with_a_paired_interval(cli, run_root, tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    ablation = truth + 1.0 * rng.normal(size=60)  # a weaker proxy...
    better = ablation + 0.3 * (truth - ablation) + 0.1 * rng.normal(size=60)  # ...and one that adds some of what it misses
    expected = stats.kendalltau(better, truth).statistic - stats.kendalltau(ablation, truth).statistic
    diff = tau_difference(better, ablation, truth, 500, 0.95, 0)
    assert diff["delta_kendall_tau"] == pytest.approx(expected, abs=1e-12)
    low, high = diff["ci"]
    assert 0 < low < expected < high  # paired: the difference is reliably above 0...
    separate = [correlate(x, truth, name="x", resamples=500)["ci"]["kendall_tau"] for x in (better, ablation)]
    assert separate[1][1] > separate[0][0]  # ...although the two proxies' own intervals overlap
    # Through the CLI: versus=ablation adds the difference column (lower-is-better columns are negated first).
    path = _write_csv(tmp_path / "v.csv", better, truth, {"ablation": ablation, "loss": -ablation})
    res = cli("correlate", path, "proxy=proxy,ablation,loss", "truth=truth", "lower_is_better=[loss]",
              "versus=ablation", "bootstrap=300", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    assert f"{expected:.3f}" in res.output  # the difference column
    run = next((run_root / "correlate").iterdir())
    doc = json.loads((run / "correlation.json").read_text())
    by = {r["proxy"]: r for r in doc["results"]}
    assert doc["versus"] == "ablation" and "delta_kendall_tau" not in by["ablation"]
    assert by["proxy"]["delta_kendall_tau"] == pytest.approx(expected, abs=1e-12)
    assert by["loss"]["delta_kendall_tau"] == pytest.approx(0.0, abs=1e-12)  # the same order, negated back
    assert by["proxy"]["ci"]["delta_kendall_tau"][0] > 0
    assert "τ − τ(ablation)" in (run / "report.md").read_text()
    # A versus column that is not being correlated: one line, exit 2, no run written.
    res = cli("correlate", path, "proxy=proxy", "truth=truth", "versus=ablation", "--run-root", tmp_path / "r2")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "versus=ablation" in res.stderr
    assert not (tmp_path / "r2" / "correlate").exists() or not any((tmp_path / "r2" / "correlate").iterdir())


@pytest.mark.parametrize("case, message", [
    ("two_rows", "at least 3"),
    ("nan", "no value for 'proxy'"),
    ("missing_column", "no column 'acc'"),
    ("no_columns_named", "proxy=COLUMN truth=COLUMN"),
])
def test_correlate_csv_errors_exit_2(cli, run_root, tmp_path, case, message):
    path = tmp_path / "t.csv"
    args = ["proxy=proxy", "truth=truth"]
    if case == "two_rows":
        _write_csv(path, [1.0, 2.0], [3.0, 4.0])
    elif case == "nan":
        _write_csv(path, [1.0, None, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    elif case == "missing_column":
        _write_csv(path, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
        args = ["proxy=proxy", "truth=acc"]
    else:
        _write_csv(path, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
        args = []
    res = cli("correlate", path, *args, "--run-root", run_root)
    assert res.exit_code == 2
    assert message in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_rank_search_retrain_correlate_end_to_end(cli, run_root):
    """random search -> rank with proxies -> retrain --sample -> correlate (the README's digits flow)."""
    res = cli("search", "strategy=random", *TINY, "budget.candidates=6", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    search_run = next((run_root / "search").iterdir())
    before = tree_digest(search_run)

    res = cli("rank", search_run / "archs.csv", "proxy=params", "space=darts", "--run-root", run_root)
    assert res.exit_code == 0, res.output  # a run's archs.csv is an architecture set too
    assert len(pd.read_csv(run_of(res) / "ranked.csv")) == 6
    res = cli("rank", search_run, "proxy=synflow,naswot,params", "batch_size=16", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    rank_run = run_of(res)
    ranked = pd.read_csv(rank_run / "ranked.csv")
    assert len(ranked) == 6 and {"arch_id", "score", "rank", "params", "flops", "synflow", "naswot"} <= set(ranked)
    assert ranked["score"].is_monotonic_decreasing
    assert (ranked["score"] == ranked["synflow"]).all()

    res = cli("retrain", search_run, "--sample", "4", "--seeds", "0,1", "budget=smoke", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    results = [json.loads(p.read_text()) for p in (run_root / "retrain").glob("*/result.json")]
    assert len(results) == 8 and {r["seed"] for r in results} == {0, 1}
    manifests = [json.loads(p.read_text()) for p in (run_root / "retrain").glob("*/manifest.json")]
    # The thread count a result depends on is explicit: a batch's retrains train with one thread each.
    assert {m["torch_threads"] for m in manifests} == {1} and len({m["settings_hash"] for m in manifests}) == 1
    assert all(m["settings"]["device"]["threads"] == 1 for m in manifests)
    assert len({r["arch_id"] for r in results}) == 4

    res = cli("correlate", "bootstrap=100", "--run-root", run_root)  # bare: the latest search run
    assert res.exit_code == 0, res.output
    assert str(search_run) in res.stderr
    doc = json.loads(next((run_root / "correlate").iterdir()).joinpath("correlation.json").read_text())
    assert doc["n"] == 4 and doc["truth"] == "test_acc"
    assert [r["proxy"] for r in doc["results"]] == ["score", "params", "flops"]
    assert doc["noise_ceiling"]["seeds"] == 2

    res = cli("correlate", rank_run, "bootstrap=0", "--run-root", run_root)  # the rank run joins the same retrains
    assert res.exit_code == 0, res.output
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert [r["proxy"] for r in doc["results"]] == ["synflow", "naswot", "params", "flops"]
    assert doc["n"] == 4 and doc["retrains"]["mixed"] is False and len(doc["retrains"]["settings_hash"]) == 1
    assert tree_digest(search_run) == before  # nothing in the search run changed

    # One more retrain of other settings: its accuracy is not averaged with the others unless mixed=ok.
    res = cli("retrain", search_run, "--top", "1", "budget=smoke", "budget.epochs=1", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    correlations = set((run_root / "correlate").iterdir())
    res = cli("correlate", "bootstrap=0", "--run-root", run_root)
    assert res.exit_code == 2 and "budget.epochs: " in res.stderr and "mixed=ok" in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and set((run_root / "correlate").iterdir()) == correlations
    res = cli("correlate", "bootstrap=0", "mixed=ok", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert doc["retrains"]["mixed"] is True and sorted(doc["retrains"]["differing"]["budget.epochs"]) == [1, 2]


def test_correlate_without_retrains_is_a_user_error(cli, run_root):
    res = cli("search", "strategy=random", *TINY, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    res = cli("correlate", "--run-root", run_root)
    assert res.exit_code == 2 and "nas retrain" in res.stderr
    res = cli("correlate", run_root / "nope", "--run-root", run_root)
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_rank_sampled_nb201_with_benchmark_and_errors(cli, run_root, tmp_path):
    table, _ = fake_nb201_table(tmp_path / "bench.csv", 40)
    common = ["space=nb201", "space.retrain.channels=4", "space.retrain.cells_per_stage=1", "dataset=digits",
              f"benchmark.table={table}", "benchmark.metric=acc", "--run-root", run_root]
    res = cli("rank", "--sample", "5", "proxy=synflow,params", *common)
    assert res.exit_code == 0, res.output
    res = cli("rank", table, "proxy=params", *common)  # a CSV of arch strings
    assert res.exit_code == 0, res.output
    rank_run = run_of(res)
    ranked = pd.read_csv(rank_run / "ranked.csv")
    assert ranked["bench_acc"].notna().all()
    res = cli("correlate", rank_run, "bootstrap=0", "--run-root", run_root)  # truth: the benchmark column
    assert res.exit_code == 0, res.output
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert doc["truth"] == "bench_acc" and doc["collapsed"]["rule"] == "functional"
    assert doc["n"] == doc["collapsed"]["kept"] <= 40

    for args, message in ((["--sample", "3", "proxy=synflw"], "unknown proxy"),
                          (["--sample", "3"], "proxy=NAME"),
                          ([str(tmp_path / "missing.json"), "proxy=params"], "does not exist")):
        res = cli("rank", *args, *common)
        assert res.exit_code == 2 and message in res.stderr, res.output


@needs_shared
def test_nb201_table_12_epoch_column_matches_scipy(cli, run_root):
    path = SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv"
    if not path.is_file():
        pytest.skip("nb201_cifar10.csv is not in ../shared")
    res = cli("correlate", path, "proxy=cifar10valid_valid_12ep", "truth=cifar10_test_200ep", "bootstrap=0",
              "--run-root", run_root)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(path)
    doc = json.loads(next((run_root / "correlate").iterdir()).joinpath("correlation.json").read_text())
    r = doc["results"][0]
    assert r["kendall_tau"] == pytest.approx(
        stats.kendalltau(frame["cifar10valid_valid_12ep"], frame["cifar10_test_200ep"]).statistic, abs=1e-9)
    assert r["spearman_rho"] == pytest.approx(
        stats.spearmanr(frame["cifar10valid_valid_12ep"], frame["cifar10_test_200ep"]).statistic, abs=1e-9)
    assert 0.55 < r["kendall_tau"] < 0.65 and 0.72 < r["spearman_rho"] < 0.82


def test_equivalent_cells_keep_their_noise_ceiling_when_collapsed_and_are_resampled_together(cli, run_root,
                                                                                             tmp_path):
    """Two pairs of NB201 cells equal up to dead edges, each retrained with two seeds (result files written
    here, no training): collapsing averages each pair's seeds too, so the noise ceiling is still computed;
    without collapsing, the bootstrap resamples the pairs as units."""
    dead = ["|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
            "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
            "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"]
    alive = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
             "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|",
             "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|"]
    csv = tmp_path / "cells.csv"
    pd.DataFrame({"arch_str": dead + alive}).to_csv(csv, index=False)
    res = cli("rank", csv, "proxy=params", "space=nb201", "space.retrain.channels=4",
              "space.retrain.cells_per_stage=1", "dataset=digits", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    rank_run = run_of(res)
    settings = {"budget": {"epochs": 1}, "device": {"threads": 1}}
    for i, arch_id in enumerate(pd.read_csv(rank_run / "archs.csv")["arch_id"]):
        for seed in (0, 1):
            run = run_root / "retrain" / f"r{i}_{seed}"
            run.mkdir(parents=True)
            (run / "result.json").write_text(json.dumps({"arch_id": arch_id, "seed": seed, "dataset": "digits",
                                                         "test_acc": 50.0 + 5 * i + 3 * seed * (i % 2)}))
            (run / "manifest.json").write_text(json.dumps({"kind": "retrain", "status": "done", "settings": settings,
                                                           "source_run": str(rank_run)}))
    res = cli("correlate", rank_run, "bootstrap=50", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert doc["collapsed"]["rows"] == 7 and doc["collapsed"]["kept"] == doc["n"] == 5
    assert doc["noise_ceiling"]["seeds"] == 2 and doc["noise_ceiling"]["ceiling_kendall_tau"] > 0
    res = cli("correlate", rank_run, "bootstrap=50", "collapse=false", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    doc = json.loads(run_of(res).joinpath("correlation.json").read_text())
    assert doc["n"] == 7 and doc["results"][0]["bootstrap_groups"] == 5 and doc["noise_ceiling"]["seeds"] == 2
    res = cli("correlate", rank_run, "bootstrap=50", "collapse=false", "bootstrap_unit=row", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    assert "bootstrap_groups" not in json.loads(run_of(res).joinpath("correlation.json").read_text())["results"][0]
    res = cli("correlate", rank_run, "bootstrap_unit=cell", "--run-root", run_root)
    assert res.exit_code == 2 and "bootstrap_unit=row" in res.stderr


def test_retrains_written_before_settings_were_recorded_are_matched_by_their_config(tmp_path):
    """A retrain run whose manifest has no `settings` (an older nascli) is matched by its config.yaml."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from nascli.commands.correlate import retrain_results
    from nascli.config import compose
    from nascli.retrain_identity import result_settings, settings_hash

    for name, epochs in (("old", 5), ("new", 5)):
        run = tmp_path / "retrain" / name
        run.mkdir(parents=True)
        cfg = compose("retrain", [f"budget.epochs={epochs}"])
        OmegaConf.save(cfg, run / "config.yaml")
        manifest = {"status": "done", "device": "cpu", "torch_threads": 1, "source_run": str(tmp_path / "src")}
        if name == "new":
            manifest["settings"] = result_settings(cfg, threads=1, device="cpu")
        (run / "manifest.json").write_text(json.dumps(manifest))
        (run / "result.json").write_text(json.dumps({"arch_id": "a", "seed": 0, "dataset": "digits", "test_acc": 90}))
    source = SimpleNamespace(path=tmp_path / "src", manifest={"dataset": "digits"})
    frame, _ = retrain_results(source, ["a"], tmp_path)
    assert len(frame) == 2 and frame["settings_hash"].nunique() == 1
    assert frame["settings_hash"].iloc[0] == settings_hash(result_settings(cfg, threads=1, device="cpu"))
