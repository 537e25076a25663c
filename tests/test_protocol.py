"""The measurement protocol: which images each step reads, and that compared things are measured alike.

Splits are stored class-sorted, so "the first batch" is one class: proxies and BN calibration must draw
class-mixed batches and batch-statistic evaluations must not see sorted ones. Strategies that are compared
train the same child with the same recipe; a search never trains on the val split it ranks on; the test
images do not move with the split seed.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nascli.config import compose
from nascli.data import Split, Splits, load_splits
from nascli.data.draws import class_mixed_batches
from nascli.device import resolve
from tests.conftest import TINY, run_of


def sorted_splits(n_train: int = 600, n_val: int = 300, classes: int = 10, side: int = 8) -> Splits:
    """Synthetic data stored the way real splits are: sorted by class."""
    g = torch.Generator().manual_seed(0)

    def split(n):
        y = torch.arange(classes).repeat_interleave(n // classes)
        return Split(torch.randint(0, 256, (len(y), 1, side, side), generator=g, dtype=torch.uint8), y)

    return Splits("sorted", split(n_train), split(n_val), split(100), [str(c) for c in range(classes)], [0.5], [0.25])


def test_class_mixed_draws_cover_every_class_are_disjoint_and_seeded():
    y = np.repeat(np.arange(10), 50)
    batches = class_mixed_batches(y, 64, 3, seed=0)
    assert [len(b) for b in batches] == [64, 64, 64]
    assert len(np.unique(np.concatenate(batches))) == 192  # disjoint
    for b in batches:
        assert np.bincount(y[b], minlength=10).min() >= 6  # stratified: 6-7 of each class
        assert not np.all(np.diff(y[b]) >= 0)  # and not left in class order
    assert all(np.array_equal(a, b) for a, b in zip(batches, class_mixed_batches(y, 64, 3, seed=0), strict=True))
    assert not np.array_equal(batches[0], class_mixed_batches(y, 64, 3, seed=1)[0])


def test_proxy_batches_have_every_class_and_batch_seed_draws_another():
    from nascli.commands.rank import proxy_batches

    splits, runtime = sorted_splits(), resolve(OmegaConf.create({"type": "cpu", "amp": False,
                                                                  "channels_last": False, "threads": None}))
    cfg = compose("rank", ["batches=2"])
    batches, indices = proxy_batches(cfg, splits, runtime, 64)
    assert len(batches) == 2
    for (x, y), idx in zip(batches, indices, strict=True):
        assert len(torch.unique(y)) == 10 and x.shape == (64, 1, 8, 8)
        assert torch.equal(y, splits.train.y[idx])
    other = proxy_batches(compose("rank", ["batches=2", "proxies.batch_seed=1"]), splits, runtime, 64)[1]
    assert other != indices and proxy_batches(cfg, splits, runtime, 64)[1] == indices


def test_rank_run_records_which_training_images_its_proxies_saw(cli, run_root):
    res = cli("rank", "--sample", "2", "proxy=naswot,snip", "batch_size=32", *TINY, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    doc = json.loads((run_of(res) / "proxy_batches.json").read_text())
    assert doc["split"] == "train" and doc["batch_seed"] == 0
    assert len(doc["indices"]["32"]) == 1 and len(set(doc["indices"]["32"][0])) == 32
    assert sum(c > 0 for c in doc["class_counts"]["32"][0]) == 10


def _ctx(splits, overrides):
    cfg = compose("search", [*overrides, "dataset=digits"])
    return SimpleNamespace(cfg=cfg, seed=0, splits=splits, runtime=resolve(cfg.device))


def test_snas_calibrates_bn_on_mixed_batches_and_evaluates_on_mixed_val_batches():
    from nascli.strategies.snas.strategy import Snas

    splits = sorted_splits()
    ctx = _ctx(splits, ["strategy=snas"])
    _, _, calib, val = Snas(ctx.cfg.strategy)._loaders(ctx)
    assert len(calib) == int(ctx.cfg.strategy.recalib_batches)
    assert all(len(torch.unique(y)) == 10 for _, y in calib)
    _, first_val = next(iter(val))
    assert len(torch.unique(first_val)) >= 9  # 128 of 300 images in a fixed random order
    assert torch.equal(first_val, next(iter(Snas(ctx.cfg.strategy)._loaders(ctx)[3]))[1])  # the same order


def test_smash_scores_on_mixed_val_batches():
    from nascli.strategies.smash.strategy import Smash

    splits = sorted_splits()
    ctx = _ctx(splits, ["strategy=smash", "strategy.val_batch_size=100"])
    _, first_val = next(iter(Smash(ctx.cfg.strategy)._val(ctx)))
    assert len(torch.unique(first_val)) >= 9


@pytest.mark.parametrize("space", ["pnas", "nb201"])
def test_random_evolution_and_pnas_train_the_same_child_with_the_same_recipe(space, monkeypatch):
    """Strategies compared with each other must train one network size with one recipe."""
    import nascli.strategies.short_training as short_training
    from nascli.commands.search import _prepare
    from nascli.spaces.base import space_class
    from nascli.strategies.base import SearchContext

    seen: dict[str, set] = {}
    built = []
    real_build = space_class(space).build

    def build(self, arch, shape, size, **kw):  # the network size each candidate is built at
        built.append(json.dumps(OmegaConf.to_container(size) if not isinstance(size, dict) else size))
        return real_build(self, arch, shape, size, **kw)

    def fake_fit(model, splits, cfg, *, epochs, batch_size, **kw):  # the recipe it is trained with
        seen.setdefault(strategy, set()).add((built[-1], epochs, batch_size, kw.get("max_batches"),
                                              json.dumps(OmegaConf.to_container(cfg))))
        return [{"val_acc": 50.0, "val_loss": 1.0, "train_acc": 50.0}]

    monkeypatch.setattr(space_class(space), "build", build)
    monkeypatch.setattr(short_training, "fit", fake_fit)
    extra = {"pnas": ["strategy.max_evaluations=3", "strategy.predictor.epochs=1", "strategy.predictor.members=1"],
             "evolution": ["strategy.evaluations=3", "strategy.population=2", "strategy.sample=2"], "random": ["budget.candidates=3"]}
    for strategy in ("random", "evolution", "pnas"):
        cfg = compose("search", [f"strategy={strategy}", f"space={space}", "dataset=digits", "executor.workers=1",
                                 *extra[strategy]])
        strategy_cls, space_obj, table, runtime, generator, splits, executor = _prepare(cfg)
        ctx = SearchContext(cfg, space_obj, splits, runtime, generator, run=None, benchmark=table, executor=executor)
        strategy_cls(cfg.strategy).search(ctx)
    assert seen["random"] == seen["evolution"] == seen["pnas"] and len(seen["random"]) == 1


def test_search_refuses_to_train_candidates_on_val(cli, run_root):
    res = cli("search", "strategy=random", *TINY, "train.include_val=true", "--run-root", run_root)
    assert res.exit_code == 2 and "train.include_val" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (run_root / "search").exists()


def test_test_subset_does_not_move_with_split_seed():
    base = compose("search", ["dataset=digits", "dataset.test_subset=100"]).dataset
    a = load_splits(base)
    b = load_splits(OmegaConf.merge(base, {"split_seed": 1}))
    assert len(a.test) == 100 and torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.val.y, b.val.y)
    c = load_splits(OmegaConf.merge(base, {"test_subset_seed": 1}))
    assert not torch.equal(a.test.x, c.test.x)


def _nb201_full_table(path, shuffle_metric: bool):
    """Every NB201 cell with a made-up validation column (conv-heavy cells better, plus noise) and a test column;
    with `shuffle_metric` the test column is permuted over the cells, the validation column left as it is."""
    import pandas as pd

    from nascli.spaces import get_space

    space = get_space("nb201")
    cells = space.enumerate()
    rng = np.random.default_rng(0)
    convs = np.array([sum(op.startswith("nor_conv") for op in space.edge_ops(a)) for a in cells], dtype=float)
    valid = 60 + 4 * convs + rng.normal(0, 2, len(cells))
    test = valid + 8 + rng.normal(0, 1, len(cells))
    if shuffle_metric:
        test = rng.permutation(test)
    pd.DataFrame({"arch_str": [space.arch_str(a) for a in cells], "made_up_valid_12ep": valid,
                  "made_up_test": test}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def made_up_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    return {shuffled: _nb201_full_table(root / f"table_{shuffled}.csv", shuffled) for shuffled in (False, True)}


@pytest.mark.parametrize("strategy,extra", [
    ("random", ["strategy.num_archs=20"]),
    ("evolution", ["strategy.evaluations=20", "strategy.population=8", "strategy.sample=3"]),
    ("pnas", ["strategy.beam=4", "strategy.levels=3", "strategy.predictor.members=2", "strategy.predictor.epochs=20"]),
])
def test_a_table_search_never_decides_on_the_reported_metric(strategy, extra, made_up_tables, cli, tmp_path):
    """The default fitness is the table's validation column: with the test column shuffled over the cells, every
    strategy evaluates the same cells in the same order; only what is reported (the incumbent) changes."""
    import pandas as pd

    runs = {}
    for shuffled in (False, True):
        table = made_up_tables[shuffled]
        root = tmp_path / f"runs_{shuffled}"
        res = cli("search", f"strategy={strategy}", "space=nb201", "strategy.evaluator=table", *extra,
                  f"benchmark.table={table}", "benchmark.metric=made_up_test", "dataset=digits", "--run-root", root)
        assert res.exit_code == 0, res.output
        assert "optimises the reported metric" not in res.stderr
        runs[shuffled] = next((root / "search").iterdir())
    seen = {s: pd.read_csv(runs[s] / "evaluations.csv", dtype={"arch_id": str}) for s in runs}
    assert seen[False]["arch_id"].tolist() == seen[True]["arch_id"].tolist()
    assert seen[False]["fitness"].tolist() == seen[True]["fitness"].tolist()
    assert seen[False]["metric"].tolist() != seen[True]["metric"].tolist()
    frame = seen[False]
    # the incumbent is the metric of the best cell by fitness among the evaluations so far
    for k in (1, len(frame) // 2, len(frame)):
        head = frame.iloc[:k]
        assert frame["incumbent"].iloc[k - 1] == head.loc[head["fitness"].idxmax(), "metric"]
    assert (frame["table_epochs"] == 12 * frame["evaluation"]).all()
    protocol = json.loads((runs[False] / "manifest.json").read_text())["summary"]["protocol"]
    assert protocol["fitness"] == "made_up_valid_12ep" and protocol["metric"] == "made_up_test"
    assert protocol["evaluations"] == len(frame) and not protocol["fitness_is_metric"]


def test_searching_on_the_reported_metric_is_allowed_with_a_recorded_warning(made_up_tables, cli, tmp_path):
    table = made_up_tables[False]
    res = cli("search", "strategy=random", "space=nb201", "strategy.evaluator=table", "strategy.num_archs=5",
              f"benchmark.table={table}", "benchmark.metric=made_up_test", "benchmark.fitness=made_up_test",
              "dataset=digits", "--run-root", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    assert "the search optimises the reported metric" in res.stderr
    manifest = json.loads((next((tmp_path / "runs" / "search").iterdir()) / "manifest.json").read_text())
    assert any("optimises the reported metric" in w for w in manifest["summary"]["warnings"])
    assert manifest["summary"]["protocol"]["fitness_is_metric"]
    res = cli("search", "strategy=random", "space=nb201", "strategy.evaluator=table", f"benchmark.table={table}",
              "benchmark.metric=made_up_test", "benchmark.fitness=nope", "dataset=digits", "--run-root", tmp_path / "bad")
    assert res.exit_code == 2 and "benchmark.fitness 'nope' is not a column" in res.stderr
