"""device.amp: the precision modes, bf16 on the CPU, and what a retrain records of them."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from nascli import device
from nascli.device import amp_mode, resolve
from nascli.errors import UserError
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


def test_bf16_on_a_cpu_without_it_runs_with_one_warning_line(monkeypatch, capsys):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    device._warn_emulated_bf16.cache_clear()  # once per process: this test must see the first time
    runtime = resolve(OmegaConf.create({"type": "cpu", "amp": "bf16", "channels_last": False, "threads": None,
                                        "deterministic": True}))
    assert runtime.amp and "bf16" in runtime.describe()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "device.amp=off" in lines[0]
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    resolve(OmegaConf.create({"type": "cpu", "amp": "bf16", "channels_last": False, "threads": None,
                              "deterministic": True}))
    assert capsys.readouterr().err == ""


def test_float32_retrains_keep_the_settings_hash_they_had_when_amp_was_a_boolean():
    def cfg(amp):
        return OmegaConf.create({"dataset": {"name": "digits"}, "space": {"name": "darts"}, "budget": {"epochs": 1},
                                 "train": {}, "device": {"amp": amp, "channels_last": False}})

    def hashed(amp):
        return settings_hash(result_settings(cfg(amp), threads=1, device="cpu"))

    assert hashed(False) == hashed("off") == hashed("False")
    assert hashed("bf16") == hashed(True) != hashed("off")


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
    assert "[bf16]" in manifest["device"] and "bf16" not in plain_manifest["device"]
    assert manifest["settings"]["device"]["amp"] == "bf16" and plain_manifest["settings"]["device"]["amp"] is False
    assert manifest["settings_hash"] != plain_manifest["settings_hash"]
    # bf16 really ran: the same seed and batches give other training losses than float32
    assert first["losses"] and first["losses"] != plain["losses"]
