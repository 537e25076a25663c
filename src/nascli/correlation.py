"""Rank-correlation statistics between a proxy and true accuracy, all through scipy.stats.

The proxy's direction is applied before anything is computed (a lower-is-better proxy is
negated), never abs() of the result: a proxy that orders architectures backwards scores -1.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

from nascli.errors import UserError

MIN_POINTS = 3


def _check(proxy: np.ndarray, truth: np.ndarray, name: str) -> None:
    if len(proxy) != len(truth):
        raise ValueError("proxy and truth differ in length")
    if len(proxy) < MIN_POINTS:
        raise UserError(f"only {len(proxy)} architecture(s) have both '{name}' and a true accuracy; correlation "
                        f"needs at least {MIN_POINTS}: retrain more (`nas retrain RUN --sample K`) or check the join")
    if np.any(np.isnan(proxy)) or not np.all(np.isfinite(truth)):
        raise UserError(f"'{name}' or the truth has NaN values (or infinite truth); drop the failed rows or re-score")


def point_estimates(proxy: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tau = stats.kendalltau(proxy, truth, variant="b")
    rho = stats.spearmanr(proxy, truth)
    # Rank statistics order -inf (a proxy's "worst") correctly; Pearson r has no value there.
    finite = bool(np.all(np.isfinite(proxy)))
    r = stats.pearsonr(proxy, truth) if finite and np.ptp(proxy) > 0 and np.ptp(truth) > 0 else None
    return {"kendall_tau": _num(tau.statistic), "kendall_p": _num(tau.pvalue),
            "spearman_rho": _num(rho.statistic), "spearman_p": _num(rho.pvalue),
            "pearson_r": _num(r.statistic) if r is not None else float("nan"),
            "pearson_p": _num(r.pvalue) if r is not None else float("nan")}


def _finite_or_zero(fn):
    """`fn` as a bootstrap statistic: a resample may repeat one architecture n times (no spread), where scipy
    warns and returns NaN; such a resample carries no order, so it counts as 0."""
    def stat(*samples):
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            v = fn(*samples)
        return 0.0 if not np.isfinite(v) else v
    return stat


def _percentile_interval(samples: tuple[np.ndarray, ...], fn, resamples: int, confidence: float,
                         seed: int) -> list[float]:
    """Paired percentile interval of fn(*samples) from scipy.stats.bootstrap (architectures resampled with
    replacement, the same rows of every sample)."""
    res = stats.bootstrap(samples, _finite_or_zero(fn), paired=True, vectorized=False, n_resamples=int(resamples),
                          confidence_level=float(confidence), method="percentile",
                          random_state=np.random.default_rng(seed))
    return [_num(res.confidence_interval.low), _num(res.confidence_interval.high)]


def bootstrap_intervals(proxy: np.ndarray, truth: np.ndarray, resamples: int, confidence: float,
                        seed: int) -> dict[str, list[float]]:
    """Paired percentile intervals of τ-b, ρ and r (r only where every score is finite)."""
    if resamples <= 0:
        return {}
    stat_fns = {
        "kendall_tau": lambda x, y: stats.kendalltau(x, y, variant="b").statistic,
        "spearman_rho": lambda x, y: stats.spearmanr(x, y).statistic,
        "pearson_r": lambda x, y: np.corrcoef(x, y)[0, 1],
    }
    return {key: _percentile_interval((proxy, truth), fn, resamples, confidence, seed)
            for key, fn in stat_fns.items() if key != "pearson_r" or np.all(np.isfinite(proxy))}


def partial_kendall(proxy: np.ndarray, truth: np.ndarray, given: np.ndarray) -> float:
    """Kendall's partial τ (Kendall 1942) of proxy and truth with `given` held fixed:
    (τ_pt − τ_pg·τ_tg) / sqrt((1 − τ_pg²)(1 − τ_tg²)), each τ-b from scipy.stats.kendalltau. It asks whether
    the proxy orders architectures beyond what `given` (e.g. params) already explains: a proxy that only
    tracks size scores about 0. NaN where `given` orders the proxy or the truth perfectly."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        pt, pg, tg = (stats.kendalltau(a, b, variant="b").statistic
                      for a, b in ((proxy, truth), (proxy, given), (truth, given)))
    denominator = (1 - pg * pg) * (1 - tg * tg)
    if not (np.isfinite(pt) and np.isfinite(pg) and np.isfinite(tg)) or denominator <= 1e-12:
        return float("nan")
    return float((pt - pg * tg) / math.sqrt(denominator))


def partial_interval(proxy: np.ndarray, truth: np.ndarray, given: np.ndarray, resamples: int, confidence: float,
                     seed: int) -> list[float]:
    return _percentile_interval((proxy, truth, given), partial_kendall, resamples, confidence, seed)


def tau_difference(proxy: np.ndarray, other: np.ndarray, truth: np.ndarray, resamples: int, confidence: float,
                   seed: int) -> dict:
    """τ-b(proxy, truth) − τ-b(other, truth), with a paired percentile bootstrap interval: every resample draws
    the same architectures for both proxies, so the interval is that of the difference itself. Two proxies that
    agree with each other have overlapping intervals of their own even when one is reliably better; whether
    the difference's interval excludes 0 is the test. Both arrays with their directions already applied."""
    tau = _finite_or_zero(lambda a, b: stats.kendalltau(a, b, variant="b").statistic)  # each term: no spread, 0

    def difference(x, o, y):
        return tau(x, y) - tau(o, y)

    proxy, other, truth = (np.asarray(a, dtype=float) for a in (proxy, other, truth))
    out = {"delta_kendall_tau": float(difference(proxy, other, truth))}
    if resamples > 0:
        out["ci"] = _percentile_interval((proxy, other, truth), difference, resamples, confidence, seed)
    return out


def top_k(proxy: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    """precision@K: share of the proxy's top K that are in the true top K (= top-K overlap / K).

    K is capped at half the points: beyond that the overlap is high by construction."""
    k = max(1, min(int(k), len(proxy) // 2))
    by_proxy = set(np.argsort(-proxy, kind="stable")[:k].tolist())
    by_truth = set(np.argsort(-truth, kind="stable")[:k].tolist())
    overlap = len(by_proxy & by_truth)
    best_true = int(np.argmax(truth))
    return {"k": k, "top_k_overlap": overlap, "precision_at_k": overlap / k,
            "best_true_in_proxy_top_k": best_true in by_proxy,
            "truth_of_proxy_best": float(truth[int(np.argmax(proxy))]), "best_truth": float(truth[best_true])}


def correlate(proxy, truth, *, name: str, direction: int = 1, k: int = 10, resamples: int = 2000,
              confidence: float = 0.95, seed: int = 0, given=None, given_name: str | None = None) -> dict:
    """Every statistic for one proxy column. `direction` -1 negates the proxy first. With `given` (a column
    such as params, named `given_name`), also Kendall's partial τ of the proxy and truth given that column."""
    proxy = np.asarray(proxy, dtype=float) * (1 if direction >= 0 else -1)
    truth = np.asarray(truth, dtype=float)
    _check(proxy, truth, name)
    out = {"proxy": name, "direction": 1 if direction >= 0 else -1, "n": int(len(proxy))}
    out.update(point_estimates(proxy, truth))
    out["ci"] = bootstrap_intervals(proxy, truth, resamples, confidence, seed)
    if given is not None and name != given_name:
        given = np.asarray(given, dtype=float)
        out["given"] = given_name
        out["partial_kendall_tau"] = partial_kendall(proxy, truth, given)
        if resamples > 0 and np.isfinite(out["partial_kendall_tau"]):
            out["ci"]["partial_kendall_tau"] = partial_interval(proxy, truth, given, resamples, confidence, seed)
    out["confidence"] = float(confidence)
    out.update(top_k(proxy, truth, k))
    return out


def seed_ceiling(per_seed: np.ndarray) -> dict | None:
    """Kendall τ between repeat-seed truths (columns) averaged over seed pairs: the noise ceiling."""
    per_seed = np.asarray(per_seed, dtype=float)
    if per_seed.ndim != 2 or per_seed.shape[1] < 2:
        return None
    taus = []
    for i in range(per_seed.shape[1]):
        for j in range(i + 1, per_seed.shape[1]):
            ok = np.isfinite(per_seed[:, i]) & np.isfinite(per_seed[:, j])
            if ok.sum() >= MIN_POINTS:
                taus.append(stats.kendalltau(per_seed[ok, i], per_seed[ok, j], variant="b").statistic)
    if not taus:
        return None
    return {"seed_to_seed_kendall_tau": float(np.mean(taus)), "pairs": len(taus), "seeds": int(per_seed.shape[1])}


def _num(v) -> float:
    v = float(v)
    return v if math.isfinite(v) else float("nan")
