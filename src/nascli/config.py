"""Compose a command's config with Hydra's compose API and validate it against schemas.

One function, `compose(command, overrides, config_dir)`, is the only way configs are
made; the resolved result is what gets saved into every run directory.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nascli.errors import UserError
from nascli.rundir import CHECKPOINT_SUFFIXES, RunDir
from nascli.schema import OPEN_UNIT, RANGES, SCHEMAS

GROUPS = ("strategy", "space", "dataset", "device", "budget", "executor")

# Keys whose value is a comma-separated list (`proxy=synflow,naswot`). Hydra's grammar reads
# a,b as a sweep, which compose() rejects, so such values are quoted before composing.
COMMA_KEYS = {"rank": ("proxy", "rank_mean", "vote"), "correlate": ("proxy", "rank_mean", "vote")}


def _quote_lists(command: str, overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key in COMMA_KEYS.get(command, ()) and "," in value and value[:1] not in "'\"[":
            o = f"{key}='{value}'"
        out.append(o)
    return out


def conf_dir() -> Path:
    """conf/ at the repository root in a checkout; nascli/conf inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "conf", here / "conf"):
        if (candidate / "search.yaml").is_file():
            return candidate
    raise RuntimeError(f"nascli's conf/ directory is missing (looked beside {here})")


def compose(command: str, overrides: list[str] | tuple[str, ...] = (), config_dir: str | Path | None = None) -> DictConfig:
    if command not in SCHEMAS:
        raise UserError(f"unknown command config '{command}'")
    overrides = _quote_lists(command, list(overrides))
    if config_dir is not None:
        user = Path(config_dir).expanduser().resolve()
        if not user.is_dir():
            raise UserError(f"--config-dir {config_dir} is not a directory; pass a folder of config groups")
        overrides.append(f"hydra.searchpath=[file://{user}]")
    for o in overrides:
        _check_override_key(o)
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="nas"):
            cfg = hydra_compose(config_name=command, overrides=overrides)
    except MissingConfigException as e:
        raise UserError(_missing_option(str(e))) from None
    except HydraException as e:
        # Hydra sometimes wraps the real message (e.g. an interpolation parse error) as the cause.
        text = str(e) or str(e.__cause__ or "") or type(e).__name__
        raise UserError(_hydra_message(text)) from None
    except OmegaConfBaseException as e:
        raise UserError(f"bad config: {_first_line(str(e))}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
        problem = getattr(e, "problem", None) or _first_line(str(e))
        raise UserError(f"YAML syntax error in {where}: {problem}; fix that file") from None
    return validate(command, cfg)


def validate(command: str, cfg: DictConfig) -> DictConfig:
    """Resolve interpolations, then check every node against its schema."""
    from nascli.executors.base import executor_class
    from nascli.spaces.base import space_class
    from nascli.strategies.base import strategy_class
    from nascli.tracking.base import tracker_class

    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise UserError(f"cannot resolve config: {_first_line(str(e))}") from None
    # Check `???` before merging into schemas: merging a missing value keeps the schema default.
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"'{missing[0]}' must be set; add {missing[0]}=VALUE to the command line")
    plain = OmegaConf.to_container(cfg)
    plugin_nodes = {}
    for key, resolver in (("strategy", strategy_class), ("space", space_class), ("executor", executor_class),
                          ("tracking", tracker_class)):
        if key in plain:
            node = plain.pop(key) or {}
            name = node.get("name") if isinstance(node, dict) else None
            if not name:
                raise UserError(f"config group '{key}' has no name; choose one with {key}=NAME")
            plugin_nodes[key] = _merge(resolver(name).Config, node, key)
    merged = _merge(SCHEMAS[command], plain, "")
    for key, node in plugin_nodes.items():
        OmegaConf.update(merged, key, node, force_add=True)
    OmegaConf.set_struct(merged, True)
    _check_ranges(merged)
    return merged


def _check_ranges(cfg: DictConfig) -> None:
    """Numbers out of their range fail here, with the key named, not as a crash deep in a run."""
    for key, (low, high) in RANGES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or isinstance(value, bool):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            want = f"at least {low}" if high is None else f"between {low} and {high}"
            raise UserError(f"{key}={value} is out of range: it must be {want}; e.g. {key}={low if low else high}")
    for key in OPEN_UNIT:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not 0 < value < 1:
            raise UserError(f"{key}={value} is out of range: it must be a fraction in (0, 1), e.g. {key}=0.2")


# What `--resume` may change: budgets that make the run longer. Anything else would make the resumed run
# a different experiment from the one its first half ran.
RESUME_EXTENDABLE = ("budget.epochs", "strategy.epochs", "strategy.num_archs")


def resume_config(run: RunDir, overrides: list[str]) -> tuple[DictConfig, dict]:
    """The run's own config.yaml, with budget extensions applied (returned separately, to record)."""
    cfg = run.config
    changed = {}
    for o in overrides:
        _check_override_key(o)
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        old = OmegaConf.select(cfg, key, default=None)
        if key not in RESUME_EXTENDABLE or old is None:
            allowed = [k for k in RESUME_EXTENDABLE if OmegaConf.select(cfg, k, default=None) is not None]
            raise UserError(f"'{key}' cannot change on resume (the run's config.yaml is its config); only "
                            f"{', '.join(allowed)} may be extended")
        try:
            new = int(value)
        except ValueError:
            raise UserError(f"{key}={value} is not an integer; write e.g. {key}={old + 1}") from None
        if new < int(old):
            raise UserError(f"{key}={new} would shorten the run ({key} is {old}); resume only extends budgets")
        OmegaConf.update(cfg, key, new)
        changed[key] = {"from": int(old), "to": new}
    return validate(str(run.manifest.get("kind")), cfg), changed


def _merge(schema: type, node: dict, prefix: str) -> DictConfig:
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as e:
        key = ".".join(k for k in (prefix, getattr(e, "full_key", "") or "") if k)
        text = _first_line(str(e))
        if "not in" in text or "Key '" in text:
            raise UserError(f"unknown config key '{key}'; check its spelling (`--print-config` lists valid keys)") from None
        raise UserError(f"bad value for '{key}': {text}") from None


def _check_override_key(override: str) -> None:
    """Catch `strategy=` style overrides with an empty value early, with a clear message."""
    key, sep, value = override.partition("=")
    if not sep:
        raise UserError(f"'{override}' is not an override; write key=value (e.g. strategy=random budget.epochs=5)")
    if not key.lstrip("+~"):
        raise UserError(f"'{override}' has no key before '='; write KEY=VALUE, e.g. strategy={value or 'snas'}")
    if key.lstrip("+~") in GROUPS and value == "":
        raise UserError(f"'{override}' names no {key.lstrip('+~')}; write {key}=NAME")


def _missing_option(text: str) -> str:
    # Hydra: "In 'search': Could not find 'strategy/foo'\n\nAvailable options in 'strategy':\n\ta\n\tb ..."
    lines = [ln.strip() for ln in text.splitlines()]
    first = next((ln for ln in lines if "Could not find" in ln), lines[0] if lines else text)
    missing = first.split("Could not find", 1)[-1].strip().strip("'")
    group, _, option = missing.partition("/")
    options = []
    if "Available options" in text:
        block = text.split("Available options", 1)[1].splitlines()[1:]
        for ln in block:
            if not ln.startswith("\t") or ln.strip().startswith("provider="):
                break
            options.append(ln.strip())
    if option and options:
        return f"unknown {group} '{option}'; choose one of: {', '.join(options)}"
    return f"config not found: {missing}; check the name (`nas --help` lists the config groups)"


def _hydra_message(text: str) -> str:
    first = _first_line(text)
    if first.startswith("Could not override"):
        key = first.split("'")[1] if "'" in first else first
        return (f"unknown config key '{key}'; check its spelling (`--print-config` lists valid keys), "
                f"or append a new key with +{key}=VALUE")
    if "no viable alternative" in first or "mismatched input" in first or "extraneous input" in first:
        return f"cannot parse override ({first}); see Hydra's override grammar, e.g. key=value or key=[a,b]"
    return first


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), text)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


# -- configs inherited from an earlier run ----------------------------------------------------------
def inherited_overrides(ref: str, overrides: list[str], groups: tuple[str, ...] = ("dataset",)
                        ) -> tuple[list[str], str | None]:
    """Overrides that reuse a run's config groups (by default its dataset).

    A user who searched on Fashion-MNIST expects `nas retrain <run>/arch.json` to train on
    Fashion-MNIST too. An explicit `dataset=` on the command line wins; `dataset.key=`
    overrides still apply on top. The same holds for every group in `groups`.
    """
    path = Path(ref).expanduser()
    run_dir = path if path.is_dir() else path.parent
    if path.suffix in CHECKPOINT_SUFFIXES:
        run_dir = path.parent.parent
    if not (run_dir / RunDir.CONFIG).is_file() or not (run_dir / RunDir.MANIFEST).is_file():
        return [], None
    try:
        run_cfg = OmegaConf.to_container(OmegaConf.load(run_dir / RunDir.CONFIG))
    except Exception:
        return [], None
    inherited = []
    for group in groups:
        node = run_cfg.get(group)
        if any(o.split("=", 1)[0].lstrip("+~") == group for o in overrides):
            continue
        if node is not None and not isinstance(node, dict):  # a top-level value such as the seed
            inherited.append(f"{group}={hydra_value(node)}")
            continue
        if not isinstance(node, dict):
            continue
        if "name" in node:  # a config group (dataset=NAME); plain sections (train) carry keys only
            inherited.append(f"{group}={node['name']}")
        inherited += [f"{key}={hydra_value(v)}" for key, v in _flat(node, group) if key != f"{group}.name"]
    return inherited, str(run_dir)


def inherited_groups(ref: str) -> tuple[str, ...]:
    """What `nas retrain REF` takes from the run REF belongs to: a retrain checkpoint carries its whole
    training setup (space sizes, dataset, budget, optimiser); an architecture from a search run only
    its dataset."""
    path = Path(ref).expanduser()
    if path.suffix in CHECKPOINT_SUFFIXES and RunDir.kind_of(path.parent.parent) == "retrain":
            return ("space", "dataset", "budget", "train", "seed")
    return ("dataset",)


def _flat(node: dict, prefix: str):
    """(dotted key, leaf value) pairs of a nested config node."""
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}.{k}")
        else:
            yield f"{prefix}.{k}", v


def hydra_value(v) -> str:
    """A Python value written in Hydra's override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    text = str(v).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
