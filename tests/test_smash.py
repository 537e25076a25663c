"""SMASH: the membank space, the conditioning encoding, the HyperNet's weights, training and the CLI."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from nascli.errors import UserError
from nascli.spaces import get_space
from nascli.spaces.base import DataShape
from nascli.spaces.membank import op_channels, path_shapes
from nascli.strategies.smash.encoding import Encoder
from nascli.strategies.smash.hypernet import HyperNet
from nascli.strategies.smash.mainnet import SmashMainNet, crop

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


def test_generated_weights_depend_on_the_conditioning():
    from nascli.strategies.smash import conditioning_sensitivity

    space, archs = _sampled(4, seed=2)
    enc = Encoder(space.cfg)
    torch.manual_seed(0)
    s = conditioning_sensitivity(HyperNet(enc, 4, 16, 2), enc, archs, seed=0)
    # Scrambling which bank each input chunk comes from changes the weights measurably.
    assert s["cosine_scrambled"] < 0.99 and s["cosine_other_z"] < 1.0


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

    def accuracy(self, arch, encoder, noises, val, scrambled):
        draws[scrambled].add(tuple(round(float(z.sum()), 6) for z in noises))
        return real_accuracy(self, arch, encoder, noises, val, scrambled)

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
    assert capacity["hypernet_params"] > 0 and capacity["mainnet_params"] > 0
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
