"""Every config group file composes and validates; typos fail with the key named."""

from __future__ import annotations

import pytest
from omegaconf.errors import ConfigAttributeError

from nascli.config import GROUPS, compose, conf_dir
from nascli.errors import UserError

CONF = conf_dir()
COMMAND_GROUPS = {"search": tuple(g for g in GROUPS if g != "executor"),
                  "retrain": tuple(g for g in GROUPS if g not in ("strategy", "executor")),
                  "rank": tuple(g for g in GROUPS if g != "strategy")}


def group_files():
    for group in GROUPS:
        for path in sorted((CONF / group).glob("*.yaml")):
            yield group, path.stem


@pytest.mark.parametrize("group,option", list(group_files()))
def test_every_group_file_composes_and_validates(group, option):
    extra = ["dataset.root=/tmp/images"] if option == "imagefolder" else []
    for command, groups in COMMAND_GROUPS.items():
        if group in groups:
            cfg = compose(command, [f"{group}={option}", *extra])
            assert cfg[group] is not None
            assert cfg.command == command


def test_budget_drives_strategy_defaults():
    cfg = compose("search", ["budget=smoke"])
    assert cfg.strategy.num_archs == cfg.budget.candidates == 4
    cfg = compose("search", ["budget=smoke", "strategy.num_archs=7"])
    assert cfg.strategy.num_archs == 7


@pytest.mark.parametrize("overrides,message", [
    (["strategy=nope"], "unknown strategy 'nope'; choose one of:"),
    (["dataset=nope"], "unknown dataset 'nope'"),
    (["space=nope"], "unknown space 'nope'"),
    (["budget.epochz=3"], "unknown config key 'budget.epochz'"),
    (["+dataset.colour=1"], "unknown config key 'dataset.colour'"),
    (["+strategy.temperature=1"], "unknown config key 'strategy.temperature'"),
    (["budget.epochs=many"], "bad value for 'budget.epochs'"),
    (["seed=[1"], "cannot parse override"),
    (["seed"], "is not an override"),
    (["dataset=imagefolder"], "'dataset.root' must be set"),
])
def test_bad_config_is_a_user_error(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compose("search", overrides)


def test_user_config_dir_adds_groups(tmp_path):
    (tmp_path / "budget").mkdir()
    (tmp_path / "budget" / "tiny.yaml").write_text(
        "name: tiny\nepochs: 1\nsearch_epochs: 1\ncandidates: 2\ncandidate_epochs: 1\nbatch_size: 8\nmax_batches: 1\n")
    cfg = compose("search", ["budget=tiny"], config_dir=tmp_path)
    assert cfg.budget.name == "tiny" and cfg.strategy.num_archs == 2
    with pytest.raises(UserError, match="unknown budget 'tiny'"):
        compose("search", ["budget=tiny"])


def test_config_is_struct_so_code_typos_fail():
    cfg = compose("search", [])
    with pytest.raises(ConfigAttributeError):
        _ = cfg.budget.epochz
