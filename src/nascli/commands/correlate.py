"""`nas correlate`: join proxy scores with true accuracy and measure how well they agree.

Inputs: a search or rank run (joined on arch_id with the retrain runs made from it, or with
its benchmark column), or any CSV with a proxy column and a truth column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nascli.arch_io import read_arch_file
from nascli.correlation import correlate, seed_ceiling, tau_difference
from nascli.errors import UserError
from nascli.figures import correlation_figure, correlation_markdown
from nascli.proxies import load_proxies
from nascli.proxies.base import odd_vote
from nascli.results import BENCH_PREFIX
from nascli.retrain_identity import device_type, differing, result_settings, settings_hash
from nascli.rundir import RunDir, read_results_csv
from nascli.spaces.base import get_space

BASELINES = ("params", "flops")
RETRAIN_TRUTHS = ("test_acc", "val_acc", "test_acc_at_best_val", "best_val_acc")


@dataclass
class Joined:
    frame: pd.DataFrame  # one row per architecture (after collapsing), proxy and truth columns
    proxies: list[str]
    directions: dict[str, int]
    truth: str
    per_seed: np.ndarray | None  # architectures x seeds of truth, when repeats exist
    source: str  # what was used, in words
    collapsed: dict
    excluded: dict = field(default_factory=dict)  # rows left out and why (failed scores, no truth), counted
    groups: np.ndarray | None = None  # collapse=false: each row's functional group (the bootstrap resamples groups)
    retrains: dict | None = None  # the settings of the retrains averaged into the truth (hash, mixed or not)


@dataclass
class CorrelateOutcome:
    run: RunDir
    results: list[dict]
    joined: Joined
    noise_ceiling: dict | None


def run_correlate(cfg: DictConfig, *, source: str | None, run_root: Path, argv: list[str],
                  overrides: list[str]) -> CorrelateOutcome:
    if cfg.mixed not in ("refuse", "ok"):
        raise UserError(f"mixed={cfg.mixed} is not a choice; use mixed=refuse (the default) or mixed=ok")
    if cfg.bootstrap_unit not in ("group", "row"):
        raise UserError(f"bootstrap_unit={cfg.bootstrap_unit} is not a choice; use bootstrap_unit=group (the "
                        "default) or bootstrap_unit=row")
    joined = join_inputs(cfg, source, run_root)
    versus = cfg.versus
    if versus is not None and versus not in joined.proxies:
        raise UserError(f"versus={versus} is not one of the proxy columns being correlated "
                        f"({', '.join(joined.proxies)}); add it to proxy=... or pick one of those")
    results = []
    for name in joined.proxies:
        res = correlate(joined.frame[name].to_numpy(), joined.frame[joined.truth].to_numpy(), name=name,
                        direction=joined.directions.get(name, 1), k=int(cfg.top_k), resamples=int(cfg.bootstrap),
                        confidence=float(cfg.confidence), seed=int(cfg.seed),
                        given=joined.frame[cfg.given].to_numpy() if cfg.given else None, given_name=cfg.given,
                        groups=joined.groups)
        results.append(res)
    if versus is not None:
        _compare_with(results, joined, versus, cfg)
    ceiling = seed_ceiling(joined.per_seed) if joined.per_seed is not None else None
    run = RunDir.create(run_root, "correlate", "_".join(joined.proxies)[:60], cfg, argv=argv, overrides=overrides,
                        device="cpu", extra={"source": joined.source, "truth": joined.truth, "n": len(joined.frame)})
    with run.running():
        doc = {"source": joined.source, "truth": joined.truth, "n": len(joined.frame), "collapsed": joined.collapsed,
               "excluded": joined.excluded, "noise_ceiling": ceiling, "given": cfg.given, "versus": versus,
               "retrains": joined.retrains, "results": results}
        run.write_json(RunDir.CORRELATION, doc)
        run.write_csv("table.csv", joined.frame)
        run.write_text("report.md", correlation_markdown(doc))
        run.save_plot("scatter.png", correlation_figure(joined.frame, results, joined.truth))
        run.update_manifest(summary={r["proxy"]: {"kendall_tau": r["kendall_tau"], "spearman_rho": r["spearman_rho"]}
                                     for r in results})
    return CorrelateOutcome(run, results, joined, ceiling)


def _compare_with(results: list[dict], joined: Joined, versus: str, cfg: DictConfig) -> None:
    """Each other proxy's τ minus `versus`'s, with a paired bootstrap interval (e.g. SMASH's score against its
    scrambled-conditioning ablation: is it above it, beyond resampling noise?)."""
    def oriented(name: str) -> np.ndarray:
        return joined.frame[name].to_numpy(dtype=float) * (1 if joined.directions.get(name, 1) >= 0 else -1)

    truth, reference = joined.frame[joined.truth].to_numpy(dtype=float), oriented(versus)
    for r in results:
        if r["proxy"] == versus:
            continue
        diff = tau_difference(oriented(r["proxy"]), reference, truth, int(cfg.bootstrap), float(cfg.confidence),
                              int(cfg.seed), joined.groups)
        r["versus"], r["delta_kendall_tau"] = versus, diff["delta_kendall_tau"]
        if "ci" in diff:
            r["ci"]["delta_kendall_tau"] = diff["ci"]


# -- inputs ---------------------------------------------------------------------------------
def join_inputs(cfg: DictConfig, source: str | None, run_root: Path) -> Joined:
    if source is None:
        run = RunDir.latest(run_root, "search")
        return join_run(cfg, run, run_root, f"latest search run {run.path}")
    if source == "latest" and not Path(source).exists():
        run = _latest_scored(run_root)
        return join_run(cfg, run, run_root, f"latest {run.manifest.get('kind')} run {run.path}")
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        return join_csv(cfg, path)
    if path.is_dir():
        run = RunDir.open(path)
        run.require_finished()
        if run.manifest.get("kind") not in ("search", "rank"):
            raise UserError(f"{path} is a {run.manifest.get('kind')} run; pass a search or rank run, or a CSV")
        return join_run(cfg, run, run_root, f"{run.manifest.get('kind')} run {run.path}")
    if path.is_file():
        raise UserError(f"{source} is not a CSV file or a run directory; nas correlate takes a search or rank run "
                        "directory, or a CSV with proxy and truth columns")
    raise UserError(f"{source} does not exist; pass a search or rank run directory or a CSV file")


def _latest_scored(run_root: Path) -> RunDir:
    """`latest`: the newest finished search or rank run (the two kinds whose scores correlate)."""
    run = RunDir.latest_of(run_root, ("search", "rank"))
    if run is None:
        raise UserError(f"no finished search or rank run under {run_root}; run nas search or nas rank first")
    return run


def _columns(cfg: DictConfig) -> list[str] | None:
    if cfg.proxy is None:
        return None
    cols = [c.strip() for c in str(cfg.proxy).split(",") if c.strip()]
    return cols or None


def _given(cfg: DictConfig) -> list[str]:
    """The column partial τ holds fixed (`given=params`), as a list of zero or one names."""
    return [str(cfg.given)] if cfg.get("given") else []


def _directions(cols: list[str], declared: dict[str, int], cfg: DictConfig) -> dict[str, int]:
    lower = set(cfg.lower_is_better)
    out = {}
    for c in cols:
        known = load_proxies()
        d = declared.get(c, known[c].direction if c in known else 1)
        out[c] = -1 if c in lower else d
    return out


def join_csv(cfg: DictConfig, path: Path) -> Joined:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} as CSV ({e})") from None
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c.lower() != "index"]
    cols = _columns(cfg)
    if cols is None or cfg.truth is None:
        raise UserError(f"name the columns of {path.name}: proxy=COLUMN truth=COLUMN (numeric columns: "
                        f"{', '.join(numeric)})")
    needed = list(dict.fromkeys([*cols, *_given(cfg)]))
    for c in [*needed, cfg.truth]:
        if c not in frame.columns:
            raise UserError(f"{path.name} has no column '{c}'; numeric columns: {', '.join(numeric)}")
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise UserError(f"column '{c}' of {path.name} is not numeric")
    key = next((k for k in ("arch_id", "arch_str") if k in frame.columns), None)
    keep = [k for k in (key,) if k] + list(dict.fromkeys([*needed, cfg.truth]))
    frame = frame[keep]
    before = len(frame)
    if key:  # exact duplicates of one architecture count once
        frame = frame.groupby(key, as_index=False, sort=False).mean(numeric_only=True)
    collapsed = {"rule": f"exact {key}" if key else "none", "rows": before, "kept": len(frame)}
    _no_nan(frame, needed, cfg.truth)
    return Joined(frame, cols, _directions(cols, {}, cfg), cfg.truth, None, f"CSV {path}", collapsed)


def join_run(cfg: DictConfig, run: RunDir, run_root: Path, described: str) -> Joined:
    archs_csv = run.path / RunDir.ARCHS
    if not archs_csv.is_file():
        raise UserError(f"{run.path} has no archs.csv; it did not finish (status {run.manifest.get('status')})")
    frame = read_results_csv(archs_csv, ("arch_id", "status")).drop_duplicates("arch_id")
    # Architectures whose scoring failed are left out of the correlation, and counted: a sample with
    # rows missing is no longer uniform, so the count is reported with every result.
    failed = frame[frame["status"] != "ok"]
    excluded = {"failed": len(failed), "failed_arch_ids": failed["arch_id"].tolist()[:50]} if len(failed) else {}
    frame = frame[frame["status"] == "ok"]
    declared: dict[str, int] = {}
    proxies_json = run.path / RunDir.PROXIES
    if proxies_json.is_file():
        meta = json.loads(proxies_json.read_text())
        run_cols, declared = list(meta["columns"]), dict(meta["directions"])
    else:
        run_cols = ["score"]
    cols = _columns(cfg) or list(dict.fromkeys([*run_cols, *[b for b in BASELINES if b in frame.columns]]))
    frame = _add_combined(cfg, frame, cols, declared)
    needed = list(dict.fromkeys([*cols, *_given(cfg)]))  # the proxies and the column partial τ holds fixed
    for c in needed:
        if c not in frame.columns:
            raise UserError(f"the run has no score column '{c}'; it has: {', '.join(dict.fromkeys(run_cols + list(BASELINES)))}")

    bench_cols = [c for c in frame.columns if c.startswith(BENCH_PREFIX)]
    truth = cfg.truth
    pivot, retrains_used = None, None
    if (truth is None and not bench_cols) or truth in RETRAIN_TRUTHS:
        truth = truth or "test_acc"
        retrains, how = retrain_results(run, frame["arch_id"].tolist(), run_root)
        retrains_used = _one_setting(retrains, cfg.mixed)
        described += f" + {retrains['run'].nunique()} retrain runs ({how})"
        pivot = retrains.pivot_table(index="arch_id", columns="seed", values=truth, aggfunc="mean")
        before = len(frame)
        frame = frame.merge(pivot.mean(axis=1).rename(truth), left_on="arch_id", right_index=True)
        if before > len(frame):
            excluded["not_retrained"] = before - len(frame)
    else:
        if truth is None:
            config_metric = run.config.get("benchmark", {}).get("metric")
            truth = BENCH_PREFIX + config_metric if BENCH_PREFIX + str(config_metric) in bench_cols else bench_cols[0]
        elif truth not in frame.columns and BENCH_PREFIX + truth in frame.columns:
            truth = BENCH_PREFIX + truth
        if truth not in frame.columns:
            raise UserError(f"no truth column '{truth}' in the run; use truth= one of "
                            f"{', '.join([*RETRAIN_TRUTHS, *bench_cols])}")
        missing = int(frame[truth].isna().sum())
        if missing:
            excluded["no_truth"] = missing
        frame = frame[frame[truth].notna()]
        kind = "benchmark column" if truth.startswith(BENCH_PREFIX) else "column"
        described += f" (truth: {kind} {truth})"
    if frame.empty:
        raise UserError(f"no architecture of {run.path} has a true accuracy; retrain some first "
                        f"(`nas retrain {run.path} --sample 8`)")
    frame = frame.assign(functional_key=functional_keys(frame, run))
    key_of = dict(zip(frame["arch_id"], frame["functional_key"], strict=True))
    groups = None
    if cfg.collapse:
        frame, collapsed = collapse_functional(frame, run, needed, truth)
    else:
        collapsed = {"rule": "none (collapse=false)", "rows": len(frame), "kept": len(frame), "groups": []}
        groups = frame["functional_key"].to_numpy() if cfg.bootstrap_unit == "group" else None
    per_seed = None
    if pivot is not None and pivot.shape[1] > 1:
        # The seed columns line up with the rows as they are now: a collapsed row's are its members' means.
        seeds = pivot.loc[list(key_of)].groupby(key_of).mean() if cfg.collapse else pivot
        per_seed = seeds.loc[frame["functional_key" if cfg.collapse else "arch_id"]].to_numpy()
    _no_nan(frame, needed, truth)
    keep = ["arch_id", *[c for c in ("description",) if c in frame.columns], *needed, truth]
    return Joined(frame[keep].reset_index(drop=True), cols, _directions(cols, declared, cfg), truth, per_seed,
                  described, collapsed, excluded, groups, retrains_used)


def _add_combined(cfg: DictConfig, frame: pd.DataFrame, cols: list[str], declared: dict[str, int]) -> pd.DataFrame:
    """A combined proxy asked for by name (vote, rank_mean) that the run lacks is computed from its member
    columns here, over the run's architectures, as `nas rank` would have: no re-scoring needed."""
    known = load_proxies()
    # rank_mean=a,b or vote=a,b,c on the command line recomputes even a column the run has (other members asked for).
    chosen = {name: [m.strip() for m in str(cfg.get(name) or "").split(",") if m.strip()] for name in ("rank_mean", "vote")}
    wanted = [c for c in cols if c in known and known[c].combined and (c not in frame.columns or chosen.get(c))]
    for name in wanted:
        members = chosen.get(name) or list(known[name].members) or [c for c in cols if c in frame.columns and c not in wanted]
        if name == "vote":
            odd_vote(members)
        missing = [m for m in members if m not in frame.columns]
        if missing or len(members) < 2:
            raise UserError(f"{name} combines {', '.join(members) or 'nothing'}, but the run has no column "
                            f"'{(missing or ['?'])[0]}'; score it with `nas rank` or set rank_mean=a,b")
        dirs = {m: declared.get(m, known[m].direction if m in known else 1) for m in members}
        frame = frame.assign(**{name: known[name].fn(frame[members], dirs)})
        declared[name] = 1
    return frame


def functional_keys(frame: pd.DataFrame, run: RunDir) -> list[str]:
    """Each row's function: architectures with one key compute the same function (nb201: equal up to dead
    edges); other spaces key by arch_id."""
    space_name = run.manifest.get("space") or run.config.space.name
    space = get_space(space_name)
    keys = []
    for arch_id in frame["arch_id"]:
        path = run.arch_file(arch_id)
        keys.append(space.functional_key(read_arch_file(path)) if path.is_file() else arch_id)
    return keys


def collapse_functional(frame: pd.DataFrame, run: RunDir, cols: list[str], truth: str):
    """Average architectures that compute the same function (the `functional_key` column)."""
    space_name = run.manifest.get("space") or run.config.space.name
    groups = frame.groupby("functional_key", sort=False)
    merged = groups.first()
    merged[[*cols, truth]] = groups[[*cols, truth]].mean()
    merged = merged.reset_index()
    dup = [g["arch_id"].tolist() for _, g in groups if len(g) > 1]
    return merged, {"rule": "functional" if space_name == "nb201" else "exact arch_id", "rows": len(frame),
                    "kept": len(merged), "groups": dup}


def retrain_results(run: RunDir, arch_ids: list[str], run_root: Path) -> tuple[pd.DataFrame, str]:
    """result.json of finished retrain runs: those made from `run`, else any with a matching arch_id and the
    same dataset; each with the hash of the settings its result depends on (`retrain_identity`)."""
    base = Path(run_root) / "retrain"
    rows, wanted = [], set(arch_ids)
    for result in sorted(base.glob("*/result.json")) if base.is_dir() else []:
        try:
            r = json.loads(result.read_text())
            manifest = json.loads((result.parent / RunDir.MANIFEST).read_text())
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            continue  # a damaged retrain run is not truth
        if manifest.get("status") != "done" or r.get("arch_id") not in wanted:
            continue
        settings = manifest.get("settings") or _settings_of_older_run(result.parent, manifest)
        if settings is None:
            continue  # no readable config: its settings cannot be matched
        rows.append({**{k: r.get(k) for k in ("arch_id", "seed", "dataset", *RETRAIN_TRUTHS)},
                     "run": str(result.parent), "source_run": manifest.get("source_run"),
                     "settings_hash": settings_hash(settings), "settings": settings})
    frame = pd.DataFrame(rows, columns=["arch_id", "seed", "dataset", *RETRAIN_TRUTHS, "run", "source_run",
                                        "settings_hash", "settings"])
    mine = frame[frame["source_run"].map(lambda p: _same(p, run.path))]
    if len(mine):
        return mine, f"made from this run, under {base}"
    dataset = run.manifest.get("dataset")
    same_data = frame[frame["dataset"] == dataset]
    if len(same_data):
        return same_data, f"matched by arch_id on {dataset}, under {base}"
    raise UserError(f"no retrain run under {base} matches an architecture of {run.path}; run "
                    f"`nas retrain {run.path} --sample 8` first (or pass --run-root)")


def _settings_of_older_run(path: Path, manifest: dict) -> dict | None:
    """A retrain run written before manifests carried their settings: read them from its config.yaml (its
    thread count is unknown)."""
    try:
        cfg = OmegaConf.load(path / RunDir.CONFIG)
    except (OSError, OmegaConfBaseException, ValueError):
        return None
    return result_settings(cfg, threads=manifest.get("torch_threads"), device=device_type(manifest.get("device")))


def _one_setting(retrains: pd.DataFrame, mixed: str) -> dict:
    """The retrains' settings, when they are one; retrains of different settings (epochs, network size, data,
    threads, ...) are refused with the keys that differ, unless mixed=ok."""
    by_hash = retrains.drop_duplicates("settings_hash")
    differ = differing(by_hash["settings"].tolist())
    out = {"settings_hash": sorted(by_hash["settings_hash"]), "mixed": len(by_hash) > 1}
    if len(by_hash) > 1:
        if mixed != "ok":
            named = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in list(differ.items())[:4])
            raise UserError(f"the retrains to average were trained with different settings ({named}); retrain them "
                            "alike, or pass mixed=ok to average them anyway")
        out["differing"] = differ
    return out


def _same(a, b) -> bool:
    try:
        return a is not None and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _no_nan(frame: pd.DataFrame, cols: list[str], truth: str) -> None:
    for c in [*cols, truth]:
        bad = int(frame[c].isna().sum())
        if bad:
            raise UserError(f"{bad} row(s) have no value for '{c}'; drop or re-score them before correlating")
