"""device.amp / device.channels_last: the modes, the `auto` rule, bf16 on the CPU, and what runs record of them."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from nascli import precision
from nascli.datashape import DataShape
from nascli.device import resolve, same_precision
from nascli.errors import UserError
from nascli.precision import RULE, WORKLOADS, amp_mode, choose, layout_mode
from nascli.retrain_identity import result_settings, settings_hash

from .conftest import TINY


@pytest.mark.parametrize("value,mode", [(False, "off"), (True, "bf16"), ("False", "off"), ("True", "bf16"),
                                        ("off", "off"), ("bf16", "bf16"), ("BF16", "bf16"), (None, "off")])
def test_amp_modes_and_the_booleans_older_configs_wrote(value, mode):
    assert amp_mode(value) == mode


@pytest.mark.parametrize("value", ["fp16", "fast"])
def test_amp_modes_nascli_cannot_run_are_refused(value):
    with pytest.raises(UserError, match=f"device.amp={value}"):
        amp_mode(value)


@pytest.mark.parametrize("value,mode", [(False, "false"), (True, "true"), ("False", "false"), ("auto", "auto"),
                                        (None, "false"), ("on", "true")])
def test_layout_modes_and_the_booleans_older_configs_wrote(value, mode):
    assert layout_mode(value) == mode


def test_an_unknown_layout_is_refused():
    with pytest.raises(UserError, match="device.channels_last=nhwc"):
        layout_mode("nhwc")


def _device(amp, channels_last="auto"):
    return OmegaConf.create({"type": "cpu", "amp": amp, "channels_last": channels_last, "threads": None,
                             "deterministic": True})


def test_bf16_on_a_cpu_without_it_runs_with_one_warning_line(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(precision, "_warned", set())  # once per process: this test must see the first time
    runtime = resolve(_device("bf16", False))
    assert runtime.amp and "bf16" in runtime.describe()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "device.amp=off" in lines[0]
    resolve(_device("bf16", False))  # a search resolves again per candidate: still the one line
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    resolve(_device("bf16", False))
    assert capsys.readouterr().err == ""


RULED = sorted({*RULE, (precision.ZERO_COST, "darts"), (precision.NETWORK, "a_plugin_space")})


@pytest.mark.parametrize("workload,space", RULED)
@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("side", [8, 16, 32, None])
def test_auto_follows_the_shipped_rule(workload, space, native, side, monkeypatch, capsys):
    """The rule is a table, not a timing: the same workload, space, input size and CPU always give the same
    answer; what the bench has not measured keeps float32 NCHW."""
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    cpu = torch.device("cpu")
    chosen = choose("auto", "auto", cpu, workload, space, side)
    size = "large" if side is not None and side >= precision.BF16_MIN_SIDE else "small"
    bf16_rule, layout_rule = RULE.get((workload, space), {}).get(size, (False, False))
    assert chosen.bf16 == (bf16_rule and native)
    assert chosen.channels_last == layout_rule
    assert chosen == choose("auto", "auto", cpu, workload, space, side)
    assert chosen.reason and capsys.readouterr().err == ""  # auto never warns: it never picks emulated bf16
    # explicit settings win over the rule, except that zero-cost proxies always score in float32
    forced = choose("bf16" if native else "off", False, cpu, workload, space, side)
    assert forced.bf16 == (native and workload != precision.ZERO_COST) and not forced.channels_last


def test_every_strategy_and_space_has_a_measured_rule():
    """A strategy's workload on each space it searches (and each space's fixed networks) is in the table, so
    `auto` changes nothing nascli ships by guesswork."""
    from nascli.spaces.base import SPACES, load_space_plugins
    from nascli.strategies.base import STRATEGIES, load_strategy_plugins

    load_space_plugins()
    load_strategy_plugins()
    for space in SPACES:
        assert (precision.NETWORK, space) in RULE, space
    for name, cls in STRATEGIES.items():
        for space in cls.spaces or SPACES:
            if cls.workload != precision.NETWORK:
                assert (cls.workload, space) in RULE, (name, space)
    assert set(WORKLOADS) >= {w for w, _ in RULE}


def test_the_runtime_records_what_ran_and_why(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    big = resolve(_device("auto"), precision.NETWORK, DataShape(3, 32, 32, 10), "darts")
    small = resolve(_device("auto"), precision.NETWORK, DataShape(1, 8, 8, 10), "darts")
    assert big.record()["amp"] == "bf16" and big.record()["channels_last"] is True
    assert small.record()["amp"] == "off" and "darts at 8 px" in small.record()["reason"]
    assert big.record()["settings"] == {"amp": "auto", "channels_last": "auto"}


def test_resume_refuses_another_precision(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    shape = DataShape(3, 32, 32, 10)
    started = resolve(_device("auto"), precision.NETWORK, shape, "nb201").record()
    same_precision(started, resolve(_device("auto"), precision.NETWORK, shape, "nb201"))
    same_precision(None, resolve(_device("auto"), precision.NETWORK, shape, "nb201"))  # runs from before the record
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # the same run on a CPU without bf16
    with pytest.raises(UserError, match="amp=bf16 .* would continue with amp=off"):
        same_precision(started, resolve(_device("auto"), precision.NETWORK, shape, "nb201"))


def test_float32_retrains_keep_the_settings_hash_they_had_when_amp_was_a_boolean():
    def cfg(amp):
        return OmegaConf.create({"dataset": {"name": "digits"}, "space": {"name": "darts"}, "budget": {"epochs": 1},
                                 "train": {}, "device": {"amp": amp, "channels_last": False}})

    def hashed(amp):
        return settings_hash(result_settings(cfg(amp), threads=1, device="cpu"))

    assert hashed(False) == hashed("off") == hashed("False")
    assert hashed("bf16") == hashed(True) != hashed("off")
    # a run under `auto` hashes what ran: the same as the explicit setting that runs the same
    ran = {"amp": "off", "channels_last": False, "reason": "float32: device.amp=auto"}
    assert settings_hash(result_settings(cfg("auto"), threads=1, device="cpu", precision=ran)) == hashed("off")


def test_bf16_retrain_on_the_cpu_is_deterministic_and_recorded(cli, tmp_path):
    def retrain(amp, root):
        res = cli("retrain", "darts:DARTS_V2", *TINY, f"device.amp={amp}", "device.threads=1", "--run-root", root)
        assert res.exit_code == 0, res.stderr
        run = next((root / "retrain").iterdir())
        losses = [json.loads(line).get("train_loss") for line in (run / "metrics.jsonl").read_text().splitlines()]
        result = json.loads((run / "result.json").read_text())
        return {**result, "losses": [x for x in losses if x is not None]}, json.loads((run / "manifest.json").read_text())

    first, manifest = retrain("bf16", tmp_path / "a")
    again, _ = retrain("bf16", tmp_path / "b")
    plain, plain_manifest = retrain("off", tmp_path / "c")
    keys = ("val_acc", "test_acc", "test_acc_at_best_val", "best_epoch", "losses")
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}
    assert "bf16" in manifest["device"] and "bf16" not in plain_manifest["device"]
    assert manifest["precision"]["amp"] == "bf16" and plain_manifest["precision"]["amp"] == "off"
    assert manifest["precision"]["settings"]["amp"] == "bf16"
    assert manifest["settings"]["device"]["amp"] == "bf16" and plain_manifest["settings"]["device"]["amp"] is False
    assert manifest["settings_hash"] != plain_manifest["settings_hash"]
    # bf16 really ran: the same seed and batches give other training losses than float32
    assert first["losses"] and first["losses"] != plain["losses"]
