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
                         seed: int, groups: np.ndarray | None = None) -> list[float]:
    """Paired percentile interval of fn(*samples) from scipy.stats.bootstrap (architectures resampled with
    replacement, the same rows of every sample). With `groups` (a label per row), whole groups are resampled:
    rows of one group (architectures that compute the same function) are not independent draws, and resampling
    them one by one would make the interval too narrow."""
    stat, data, paired = _finite_or_zero(fn), samples, True
    if groups is not None and len(np.unique(groups)) < len(groups):
        ids, rows = _group_rows(np.asarray(groups))
        stat, data, paired = _finite_or_zero(lambda g: fn(*(s[rows(g)] for s in samples))), (ids,), False
    res = stats.bootstrap(data, stat, paired=paired, vectorized=False, n_resamples=int(resamples),
                          confidence_level=float(confidence), method="percentile",
                          random_state=np.random.default_rng(seed))
    return [_num(res.confidence_interval.low), _num(res.confidence_interval.high)]


def _group_rows(groups: np.ndarray):
    """(one id per group, picked group ids -> the row indices of those groups, concatenated in pick order)."""
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def rows(picked: np.ndarray) -> np.ndarray:
        picked = np.asarray(picked, dtype=int)
        lengths = sizes[picked]
        shift = np.repeat(starts[picked] - (np.cumsum(lengths) - lengths), lengths)
        return order[shift + np.arange(lengths.sum())]

    return np.arange(len(sizes)), rows


def bootstrap_intervals(proxy: np.ndarray, truth: np.ndarray, resamples: int, confidence: float,
                        seed: int, groups: np.ndarray | None = None) -> dict[str, list[float]]:
    """Paired percentile intervals of τ-b, ρ and r (r only where every score is finite)."""
    if resamples <= 0:
        return {}
    stat_fns = {
        "kendall_tau": lambda x, y: stats.kendalltau(x, y, variant="b").statistic,
        "spearman_rho": lambda x, y: stats.spearmanr(x, y).statistic,
        "pearson_r": lambda x, y: np.corrcoef(x, y)[0, 1],
    }
    return {key: _percentile_interval((proxy, truth), fn, resamples, confidence, seed, groups)
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
                     seed: int, groups: np.ndarray | None = None) -> list[float]:
    return _percentile_interval((proxy, truth, given), partial_kendall, resamples, confidence, seed, groups)


def tau_difference(proxy: np.ndarray, other: np.ndarray, truth: np.ndarray, resamples: int, confidence: float,
                   seed: int, groups: np.ndarray | None = None) -> dict:
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
        out["ci"] = _percentile_interval((proxy, other, truth), difference, resamples, confidence, seed, groups)
    return out


def _membership(values: np.ndarray, k: int) -> np.ndarray:
    """Each row's probability of being in the top k when ties are broken uniformly at random: 1 above the k-th
    largest value, 0 below it, and the places left shared equally by the rows tied at it. It does not depend
    on the order of the rows."""
    kth = np.sort(values)[::-1][k - 1]
    above, tied = values > kth, values == kth
    p = above.astype(float)
    p[tied] = (k - above.sum()) / tied.sum()
    return p


def top_k(proxy: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    """precision@K: the expected share of the proxy's top K that are in the true top K (= top-K overlap / K),
    ties in either ranking broken uniformly at random and independently, so the value does not depend on the
    order of the rows (without ties it is the plain overlap / K). `best_true_in_proxy_top_k` is the probability
    that the best architecture by truth is in the proxy's top K; `truth_of_proxy_best` the expected truth of
    the proxy's best.

    K is capped at half the points: beyond that the overlap is high by construction."""
    k = max(1, min(int(k), len(proxy) // 2))
    in_proxy, in_truth = _membership(proxy, k), _membership(truth, k)
    overlap = float(np.sum(in_proxy * in_truth))
    best_true = truth == truth.max()
    return {"k": k, "top_k_overlap": overlap, "precision_at_k": overlap / k,
            "best_true_in_proxy_top_k": float(in_proxy[best_true].mean()),
            "truth_of_proxy_best": float(truth[proxy == proxy.max()].mean()), "best_truth": float(truth.max())}


def correlate(proxy, truth, *, name: str, direction: int = 1, k: int = 10, resamples: int = 2000,
              confidence: float = 0.95, seed: int = 0, given=None, given_name: str | None = None,
              groups=None) -> dict:
    """Every statistic for one proxy column. `direction` -1 negates the proxy first. With `given` (a column
    such as params, named `given_name`), also Kendall's partial τ of the proxy and truth given that column.
    With `groups` (a label per row), the bootstrap resamples whole groups."""
    proxy = np.asarray(proxy, dtype=float) * (1 if direction >= 0 else -1)
    truth = np.asarray(truth, dtype=float)
    groups = np.asarray(groups) if groups is not None else None
    _check(proxy, truth, name)
    out = {"proxy": name, "direction": 1 if direction >= 0 else -1, "n": int(len(proxy))}
    out.update(point_estimates(proxy, truth))
    out["ci"] = bootstrap_intervals(proxy, truth, resamples, confidence, seed, groups)
    if groups is not None:
        out["bootstrap_groups"] = int(len(np.unique(groups)))
    if given is not None and name != given_name:
        given = np.asarray(given, dtype=float)
        out["given"] = given_name
        out["partial_kendall_tau"] = partial_kendall(proxy, truth, given)
        if resamples > 0 and np.isfinite(out["partial_kendall_tau"]):
            out["ci"]["partial_kendall_tau"] = partial_interval(proxy, truth, given, resamples, confidence, seed,
                                                                groups)
    out["confidence"] = float(confidence)
    out.update(top_k(proxy, truth, k))
    return out


def seed_ceiling(per_seed: np.ndarray) -> dict | None:
    """The noise ceiling of a truth that is the mean of several seeds' accuracies (columns; NaN where a seed is
    missing).

    Measured: Kendall τ between single seeds, averaged over seed pairs. But the truth correlated against is the
    mean of k seeds, which is less noisy than one seed. Each τ is turned into the Pearson r of a bivariate
    normal with that τ (Greiner's relation, r = sin(πτ/2)), stepped up to the reliability of a k-seed mean
    (Spearman-Brown, R_k = k·r / (1 + (k−1)·r)) and back to τ (τ = 2/π·arcsin). Two figures follow:
    `mean_of_seeds_kendall_tau`, the τ expected between two independent k-seed truths, and `ceiling_kendall_tau`,
    the τ a perfect score (the expected accuracy itself) would reach against this truth: its correlation with
    the truth is sqrt(R_k)."""
    per_seed = np.asarray(per_seed, dtype=float)
    if per_seed.ndim != 2 or per_seed.shape[1] < 2:
        return None
    taus = []
    for i in range(per_seed.shape[1]):
        for j in range(i + 1, per_seed.shape[1]):
            ok = np.isfinite(per_seed[:, i]) & np.isfinite(per_seed[:, j])
            if ok.sum() >= MIN_POINTS:
                taus.append(stats.kendalltau(per_seed[ok, i], per_seed[ok, j], variant="b").statistic)
    taus = [t for t in taus if np.isfinite(t)]
    if not taus:
        return None
    tau = float(np.mean(taus))
    counts = np.isfinite(per_seed).sum(axis=1)
    k = float(counts[counts > 0].mean())
    r = math.sin(math.pi * tau / 2)
    reliability = k * r / (1 + (k - 1) * r) if r > 0 else 0.0
    return {"seed_to_seed_kendall_tau": tau, "pairs": len(taus), "seeds": int(per_seed.shape[1]),
            "seeds_per_arch": round(k, 3), "mean_of_seeds_kendall_tau": 2 / math.pi * math.asin(reliability),
            "ceiling_kendall_tau": 2 / math.pi * math.asin(math.sqrt(reliability)),
            "method": "Greiner r = sin(pi tau / 2), Spearman-Brown step-up to the mean of the seeds"}


def _num(v) -> float:
    v = float(v)
    return v if math.isfinite(v) else float("nan")
