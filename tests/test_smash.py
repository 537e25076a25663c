"""SMASH: the membank and nb201 networks, the conditioning encoding, the HyperNet's weights, training, ranking and the CLI."""

from __future__ import annotations

import json
import math
import random

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from nascli.errors import UserError
from nascli.spaces import get_space
from nascli.spaces.base import DataShape
from nascli.spaces.membank import op_channels, path_shapes
from nascli.strategies.smash.encoding import Encoder
from nascli.strategies.smash.hypernet import HyperNet
from nascli.strategies.smash.mainnet import SmashMainNet, crop
from nascli.strategies.smash.networks import SMASH_NETWORKS, build_networks

SHAPE = DataShape(1, 8, 8, 10)


def _sampled(n: int, seed: int = 0):
    space = get_space("membank")
    rng = random.Random(seed)
    return space, [space.sample(rng) for _ in range(n)]


def test_sampling_is_seeded_and_genotypes_round_trip_through_json():
    space, archs = _sampled(30)
    _, again = _sampled(30)
    assert [a.arch_id for a in archs] == [a.arch_id for a in again]
    assert len({a.arch_id for a in archs}) == 30
    for arch in archs:
        back = space.make(json.loads(json.dumps(arch.to_json()))["genotype"])
        assert back.arch_id == arch.arch_id and back.genotype == arch.genotype
    # Annealing limits what training samples early on.
    small = [space.sample(random.Random(s), max_budget=0.5, max_kernel=3) for s in range(20)]
    assert all(k == 3 for a in small for b in a.genotype["blocks"] for op in b["ops"] for p in op["paths"]
               for k, _, _ in p)


def test_encoding_is_deterministic_and_marks_reads_and_writes():
    space, archs = _sampled(10)
    enc = Encoder(space.cfg)
    for arch in archs:
        c = enc.encode(arch)
        assert torch.equal(c, enc.encode(space.make(arch.genotype)))
        assert c.shape == (enc.channels, enc.rows, enc.columns)
        block = arch.genotype["blocks"][0]
        op, per_bank = block["ops"][0], block["bank_channels"] // enc.unit
        # One row per unit-channel chunk of the op's input, each marked with the bank it comes from.
        for k, bank in enumerate(op["read"]):
            for u in range(per_bank):
                cell = c[:, enc.first_row(0, 0) + k * per_bank + u, 0]
                assert cell[enc.offsets["read"] + bank] == 1 and cell[enc.offsets["chunk"] + u] == 1
                assert cell[enc.offsets["read"]: enc.offsets["read"] + enc.max_banks].sum() == 1 - (enc.max_banks - 1)
                assert all(cell[enc.offsets["write"] + w] == 1 for w in op["write"])
                assert cell[enc.offsets["block"]] == 1
        # Columns beyond the op's width, and rows beyond its input, stay at -1.
        n_in = len(op["read"]) * per_bank
        assert (c[:, enc.first_row(0, 0): enc.first_row(0, 0) + n_in, op["width"] // enc.unit:] == -1).all()
        assert (c[:, enc.first_row(0, 0) + n_in: enc.first_row(0, 1)] == -1).all()
    assert len({enc.encode(a).numpy().tobytes() for a in archs}) == len(archs)


def test_generated_weights_fit_every_sampled_architecture():
    space, archs = _sampled(25, seed=3)
    enc = Encoder(space.cfg)
    torch.manual_seed(0)
    hyper, main = HyperNet(enc, 4, 16, 2), SmashMainNet(enc, SHAPE, 8)
    x = torch.randn(6, 1, 8, 8)
    for arch in archs:
        weights = hyper(arch, enc.encode(arch), hyper.noise())
        for block, per_op in zip(arch.genotype["blocks"], weights, strict=True):
            for op, w in zip(block["ops"], per_op, strict=True):
                assert w.shape == (op["width"], len(op["read"]) * block["bank_channels"], 1, 1)
                assert w.norm().item() == pytest.approx(1.0, rel=1e-4)
        assert main(x, arch, weights).shape == (6, 10)


@pytest.mark.parametrize("space_name", sorted(SMASH_NETWORKS))
def test_generated_weights_depend_on_the_conditioning(space_name):
    from nascli.strategies.smash import conditioning_sensitivity

    space = get_space(space_name)
    rng = random.Random(2)
    archs = [space.sample(rng) for _ in range(6)]
    torch.manual_seed(0)
    nets = build_networks(space, SHAPE, OmegaConf.create({"z_channels": 4, "width": 16, "depth": 2}))
    s = conditioning_sensitivity(nets, archs, seed=0)
    # Scrambling the conditioning (membank: which bank each input chunk comes from; nb201: which edge holds which
    # op) changes the weights measurably.
    assert s["archs"] >= 1 and s["cosine_scrambled"] < 0.99 and s["cosine_other_z"] < 1.0


def test_an_architecture_that_does_not_fit_the_hypernet_is_a_user_error():
    space, (arch,) = _sampled(1)
    genotype = json.loads(json.dumps(arch.genotype))
    genotype["blocks"][0]["ops"] *= 4  # more ops than space.max_ops
    with pytest.raises(UserError, match="max_ops"):
        Encoder(space.cfg).check(space.make(genotype))


def test_every_op_writes_unit_scale_outputs_whatever_its_kernel_dilation_and_groups():
    # Unit filters over the taps that reach the map: a 7x7 and a cut 1x1 add the same scale into a bank.
    space, archs = _sampled(12, seed=5)
    enc = Encoder(space.cfg)
    torch.manual_seed(0)
    main = SmashMainNet(enc, SHAPE, 8)
    stds = {}
    for arch in archs:
        for b, block in enumerate(arch.genotype["blocks"]):
            for j, op in enumerate(block["ops"]):
                _, c_out = op_channels(block, op)
                for p, path in enumerate(op["paths"]):
                    for q, (conv, (i, o)) in enumerate(zip(path, path_shapes(op["width"], c_out, path), strict=True)):
                        k, d, g = conv
                        size = 8 // 2 ** b
                        w = main.path_weight(b, j, p, q, tuple(conv), (i, o), (size, size))
                        assert w.shape[:2] == (o, i // g)
                        assert w.flatten(1).norm(dim=1).tolist() == pytest.approx([1.0] * o, rel=1e-5)
                        x = torch.randn(64, i, size, size)
                        kh = w.shape[-1]
                        y = F.conv2d(x, w, padding=d * (kh - 1) // 2, dilation=d, groups=g)
                        raw = F.conv2d(x, crop(main.conv_slot(b, j, p, q)[:o, : i // g], kh, kh),
                                       padding=d * (kh - 1) // 2, dilation=d, groups=g)
                        stds.setdefault((k, d, g, size), []).append((y.std().item(), raw.std().item()))
    unit = [sum(s for s, _ in v) / len(v) for v in stds.values()]
    raw = [sum(r for _, r in v) / len(v) for v in stds.values()]
    # Raw slices spread output scales over ~30x; unit filters leave only the taps a border pixel loses to padding.
    assert len(stds) >= 10 and max(raw) / min(raw) > 5 and max(unit) / min(unit) < 2.5, stds


def test_a_hypernet_training_step_lowers_the_loss_on_a_fixed_batch():
    space, (arch,) = _sampled(1, seed=1)
    enc = Encoder(space.cfg)
    torch.manual_seed(0)
    hyper, main = HyperNet(enc, 4, 32, 2), SmashMainNet(enc, SHAPE, 8)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    opt = torch.optim.Adam([*hyper.parameters(), *main.parameters()], lr=1e-2)
    c, z = enc.encode(arch), hyper.noise(torch.Generator().manual_seed(0))
    before = F.cross_entropy(main(x, arch, hyper(arch, c, z)), y).item()
    for _ in range(10):
        loss = F.cross_entropy(main(x, arch, hyper(arch, c, z)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = F.cross_entropy(main(x, arch, hyper(arch, c, z)), y).item()
    assert after < before - 0.3
    # The HyperNet itself learned: its weights received gradients and moved.
    assert all(p.grad is not None for p in hyper.parameters())


def test_sampled_architectures_build_run_and_train_freely():
    space, archs = _sampled(5, seed=4)
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for arch in archs:
        net = space.build(arch, SHAPE, space.cfg.retrain)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        first = F.cross_entropy(net(x), y).item()
        for _ in range(15):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert F.cross_entropy(net(x), y).item() < first


def test_smash_search_ranks_retrains_and_rank_scores(cli, run_root, monkeypatch):
    from nascli.strategies.smash.strategy import Smash

    draws = {False: set(), True: set()}  # the z draws each score averaged, with and without scrambling
    real_accuracy = Smash._accuracy

    def accuracy(self, arch, noises, val, scrambled):
        draws[scrambled].add(tuple(round(float(z.sum()), 6) for z in noises))
        return real_accuracy(self, arch, noises, val, scrambled)

    monkeypatch.setattr(Smash, "_accuracy", accuracy)
    res = cli("search", "strategy=smash", "dataset=digits", "strategy.epochs=2", "strategy.candidates=12",
              "strategy.noise_samples=2", "strategy.hypernet.width=16", "strategy.hypernet.depth=2",
              "budget.max_batches=6", "space.max_ops=3", "strategy.refine.steps=4", "strategy.refine.top=2",
              "--run-root", run_root)
    assert res.exit_code == 0, res.output
    # The ablation differs from the score by the conditioning alone: the same two draws of z for both.
    assert draws[False] == draws[True] and len(next(iter(draws[False]))) == 2 and len(draws[False]) == 1
    run = next((run_root / "search").iterdir())
    archs = pd.read_csv(run / "archs.csv")
    assert archs["score"].between(0, 100).all() and archs["score_scrambled"].notna().all()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # The perturbation phase: 12 sampled, then up to 2 x 4 perturbed children, each naming a parent it came from.
    sampled, refined = archs[archs["phase"] == "sampled"], archs[archs["phase"] == "refine"]
    assert len(sampled) == 12 and 1 <= len(refined) <= 8 and refined["arch_id"].is_unique
    assert set(refined["parent"]) <= set(archs["arch_id"])
    walks = [r for r in records if r.get("event") == "refine"]
    best_two = sampled.sort_values(["score", "arch_id"], ascending=[False, True])["arch_id"].head(2).tolist()
    assert [w["start"] for w in walks] == best_two
    assert all(w["end_score"] >= w["start_score"] for w in walks)
    capacity = next(r for r in records if r.get("event") == "capacity")
    assert capacity["hypernet_params"] > 0 and capacity["shared_params"] > 0 and capacity["conditioning"] == "arch"
    sensitivity = next(r for r in records if r.get("event") == "hypernet_sensitivity")
    assert -1 <= sensitivity["cosine_scrambled"] <= 1 and -1 <= sensitivity["cosine_other_z"] <= 1
    assert (run / "plots" / "smash.png").is_file() and (run / "checkpoints" / "strategy.pt").is_file()
    res = cli("retrain", run / "arch.json", "budget=smoke", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    res = cli("rank", run, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(next((run_root / "rank").iterdir()) / "ranked.csv")
    # score() reproduces the search's scores when the number of noise draws is the same.
    merged = ranked.merge(archs, on="arch_id")
    assert merged["strategy_smash"].tolist() == pytest.approx(merged["score_y"].tolist())


def test_a_perturbation_is_one_small_valid_change_that_the_hypernet_can_hold():
    space, archs = _sampled(40, seed=6)
    enc = Encoder(space.cfg)
    rng = random.Random(0)
    for arch in archs:
        child = space.perturb(arch, rng)
        assert child.arch_id != arch.arch_id
        enc.check(child)  # inside the sampler's limits
        assert space.make(child.genotype).arch_id == child.arch_id
        changed = [b for b, (x, y) in enumerate(zip(arch.genotype["blocks"], child.genotype["blocks"], strict=True))
                   if x != y]
        assert len(changed) == 1
        before, after = arch.genotype["blocks"][changed[0]]["ops"], child.genotype["blocks"][changed[0]]["ops"]
        # one op changed, or one op added or removed
        assert abs(len(before) - len(after)) == 1 or sum(x != y for x, y in zip(before, after, strict=True)) == 1


def test_bad_membank_genotype_is_a_user_error():
    space = get_space("membank")
    with pytest.raises(UserError, match="groups"):
        space.make({"blocks": [{"banks": 2, "bank_channels": 4, "ops": [
            {"read": [0], "write": [1], "width": 6, "paths": [[[3, 1, 4]]]}]}]})
    with pytest.raises(UserError, match="bank indices"):
        space.make({"blocks": [{"banks": 2, "bank_channels": 4, "ops": [
            {"read": [5], "write": [1], "width": 4, "paths": [[[3, 1, 1]]]}]}]})


# -- every space SMASH generates weights for (the SMASH_NETWORKS registry) ----------------------------------
DEGENERATE = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # no edge at all
              "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"]  # output cut off


@pytest.mark.parametrize("conditioning", ["arch", "none"])
@pytest.mark.parametrize("space_name", sorted(SMASH_NETWORKS))
def test_smash_searches_every_registered_space(space_name, conditioning, cli, run_root):
    res = cli("search", "strategy=smash", f"space={space_name}", "dataset=digits", "budget=smoke",
              f"strategy.hypernet.conditioning={conditioning}", "space.search.channels=8", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "search").iterdir())
    archs = pd.read_csv(run / "archs.csv")
    assert (archs["status"] == "ok").all() and archs["score"].between(0, 100).all()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    capacity = next(r for r in records if r.get("event") == "capacity")
    assert capacity["conditioning"] == conditioning and capacity["shared_params"] > 0
    # the control has nothing to scramble and no HyperNet: its ablation column stays empty
    assert (capacity["hypernet_params"] > 0) == (conditioning == "arch")
    assert archs["score_scrambled"].notna().all() == (conditioning == "arch")


@pytest.mark.parametrize("space_name", sorted(SMASH_NETWORKS))
def test_conditioning_none_has_no_hypernet_parameters(space_name):
    from nascli.strategies.smash.hypernet import FreeWeights
    from nascli.strategies.smash.nb201 import NB201FreeWeights, NB201HyperNet

    space = get_space(space_name)
    nets = build_networks(space, SHAPE, OmegaConf.create({"z_channels": 4, "width": 16, "depth": 2,
                                                          "conditioning": "none"}))
    assert nets.hypernet_params() == 0 and nets.hypernet_parameters() == []
    assert not any(isinstance(m, HyperNet | NB201HyperNet) for m in nets.generator.modules())
    assert isinstance(nets.generator, FreeWeights | NB201FreeWeights)
    # the free weights are shared weights: every one is in the shared (weight-decayed) group
    assert {id(p) for p in nets.generator.parameters()} <= {id(p) for p in nets.shared_params()}
    rng = random.Random(0)
    a, b = space.sample(rng), space.sample(rng)
    wa, wb = nets.weights(a, nets.generator.noise()), nets.weights(b, nets.generator.noise())
    if space_name == "nb201":  # the same op on the same edge of the same cell position: the same weight
        ops_a, ops_b = space.edge_ops(a), space.edge_ops(b)
        same = [(p, e) for (p, e) in wa if (p, e) in wb and ops_a[e] == ops_b[e]]
        assert all(torch.equal(wa[k], wb[k]) for k in same)
    with_z = build_networks(space, SHAPE, OmegaConf.create({"z_channels": 4, "width": 16, "depth": 2,
                                                            "conditioning": "arch"}))
    assert with_z.hypernet_params() > 0


def test_nb201_hypernet_generates_exactly_the_conv_edges():
    space = get_space("nb201")
    nets = build_networks(space, SHAPE, OmegaConf.create({"z_channels": 4, "width": 16, "depth": 2}))
    arch = space.make({"arch_str": "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|"
                                   "nor_conv_3x3~2|"})
    weights = nets.weights(arch, nets.generator.noise(torch.Generator().manual_seed(0)))
    positions = 3 * int(space.cfg.search.cells_per_stage)
    assert sorted(weights) == [(p, e) for p in range(positions) for e in (0, 1, 5)]
    c = int(space.cfg.search.channels)
    for (p, e), w in weights.items():
        width = c * 2 ** (p // int(space.cfg.search.cells_per_stage))
        assert w.shape == (width, width, 1 if e == 1 else 3, 1 if e == 1 else 3)
        assert w.norm().item() == pytest.approx(1.0, rel=1e-5)
    logits = nets.mainnet(torch.randn(8, 1, 8, 8), arch, weights)
    assert logits.shape == (8, 10) and torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def nb201_estimators(tmp_path_factory):
    """A smoke-budget SMASH (HyperNet) and SNAS search on nb201 / digits, each searched once for the tests below."""
    from typer.testing import CliRunner

    from nascli.cli import app

    root = tmp_path_factory.mktemp("nb201_estimators")
    runs = {}
    for strategy in ("smash", "snas"):
        res = CliRunner().invoke(app, ["search", f"strategy={strategy}", "space=nb201", "dataset=digits",
                                       "budget=smoke", "space.search.channels=4", "executor.workers=1",
                                       "--run-root", str(root / strategy)])
        assert res.exit_code == 0, res.output
        runs[strategy] = next((root / strategy / "search").iterdir())
    return runs


@pytest.mark.parametrize("strategy", ["smash", "snas"])
def test_rank_with_the_runs_own_score_scores_degenerate_cells_worst(strategy, nb201_estimators, cli, tmp_path):
    run = nb201_estimators[strategy]
    space = get_space("nb201")
    rng = random.Random(5)
    cells = list(dict.fromkeys([*DEGENERATE, *(space.arch_str(space.sample(rng)) for _ in range(18))]))
    csv = tmp_path / "cells.csv"
    pd.DataFrame({"arch_str": cells}).to_csv(csv, index=False)
    scores = {}
    for workers in (1, 2):  # in this process and in a pool of two: the same scores
        root = tmp_path / f"runs{workers}"
        res = cli("rank", run, csv, f"executor.workers={workers}", "chunk=6", "--run-root", root)
        assert res.exit_code == 0, res.output
        rank = next((root / "rank").iterdir())
        archs = pd.read_csv(rank / "archs.csv").set_index("description")
        scores[workers] = archs[f"strategy_{strategy}"]
        # the CSV's cells only (the run scores; its own candidates are not added), nothing dropped
        assert sorted(archs.index) == sorted(cells) and (archs["status"] == "ok").all()
        assert archs[f"strategy_{strategy}"].map(math.isfinite).all()
        assert set(archs.index[archs["degenerate"] == 1]) == set(DEGENERATE)
        worst = archs.loc[DEGENERATE, f"strategy_{strategy}"]
        assert (worst == 0).all() and (archs.drop(index=DEGENERATE)[f"strategy_{strategy}"] > 0).all()
        manifest = json.loads((rank / "manifest.json").read_text())
        assert manifest["summary"]["degenerate"] == 2 and manifest["own_score"]["val_images"] > 0
        assert not (rank / "archs.partial.csv").exists()
    assert scores[1].sort_index().tolist() == scores[2].sort_index().tolist()


def test_rank_with_a_run_refuses_cells_of_another_space(nb201_estimators, cli, tmp_path):
    run = nb201_estimators["smash"]
    res = cli("rank", run, "--sample", "3", "space=darts", "--run-root", tmp_path / "runs")
    assert res.exit_code == 2 and "rank its cells with space=nb201" in res.stderr, res.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override,fragment", [
    ("strategy.hypernet.conditioning=maybe", "strategy.hypernet.conditioning=maybe is not a choice"),
    ("strategy.anneal_fraction=0.3", "strategy.anneal_fraction anneals membank's op budget"),
])
def test_smash_nb201_refuses_options_it_does_not_support(override, fragment, cli, tmp_path):
    res = cli("search", "strategy=smash", "space=nb201", "dataset=digits", "budget=smoke", override,
              "--run-root", tmp_path / "runs")
    assert res.exit_code == 2 and fragment in res.stderr and "Traceback" not in res.output, res.output
    assert not (tmp_path / "runs").exists()


def test_rank_scores_smashs_ablation_on_any_cells(nb201_estimators, cli, tmp_path, monkeypatch):
    import nascli.commands.rank as rank_module

    loads = []
    real_load = rank_module.load_splits
    monkeypatch.setattr(rank_module, "load_splits", lambda dataset: loads.append(dataset) or real_load(dataset))
    root = tmp_path / "runs"
    res = cli("rank", nb201_estimators["smash"], "--sample", "5", "own.scrambled=true", "executor.workers=1",
              "--run-root", root)
    assert res.exit_code == 0, res.output
    archs = pd.read_csv(next((root / "rank").iterdir()) / "archs.csv")
    assert archs["strategy_smash_scrambled"].between(0, 100).all() and archs["strategy_smash"].between(0, 100).all()
    assert len(loads) == 1  # the rank inherits the run's dataset: its splits are decoded once, not again for the run
    # a supernet has no conditioning to scramble: one line, nothing written
    res = cli("rank", nb201_estimators["snas"], "--sample", "2", "own.scrambled=true", "--run-root", tmp_path / "no")
    assert res.exit_code == 2 and "own.scrambled=true scores SMASH's conditioning ablation" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "no").exists()
