"""Combined proxies: one score from several proxies' scores over a whole set of architectures.

Both work on ranks (scipy.stats.rankdata, ties averaged) after each member's direction is applied, so
proxies on wildly different scales (synflow spans 1e17-1e60, naswot a few hundred) combine fairly.
They are relative to the set: an architecture's value depends on the others it was ranked with. An
architecture whose member score failed (NaN) gets NaN, counted as a failure, never a silent guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from nascli.proxies.base import register_combined

# Abdelfattah et al. 2021's vote: the three proxies that agreed best with accuracy across their benchmarks.
VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")
_BLOCK = 512  # rows of the pairwise comparison matrix held at once


def member_ranks(scores: pd.DataFrame, directions: dict[str, int]) -> np.ndarray:
    """architectures x members: rank 1 = worst, n = best, per member."""
    cols = []
    for name in scores.columns:
        values = scores[name].to_numpy(dtype=float) * directions.get(name, 1)
        cols.append(stats.rankdata(values, nan_policy="omit"))
    return np.stack(cols, axis=1)


@register_combined("rank_mean", about="mean of the members' ranks (set rank_mean=a,b,... ; default: the other "
                                      "proxies requested); higher is better")
def rank_mean(scores: pd.DataFrame, directions: dict[str, int]) -> np.ndarray:
    ranks = member_ranks(scores, directions)
    return ranks.mean(axis=1)


@register_combined("vote", members=VOTE_MEMBERS,
                   about="majority vote of synflow, jacob_cov and snip (Abdelfattah et al. 2021), or of the odd number "
                         "of proxies vote=a,b,c names, as a Copeland count: how many architectures of the set a "
                         "majority of the members ranks below this one")
def vote(scores: pd.DataFrame, directions: dict[str, int]) -> np.ndarray:
    ranks = member_ranks(scores, directions)
    valid = ~np.isnan(ranks).any(axis=1)
    r = ranks[valid]
    wins = np.zeros(len(r))
    majority = r.shape[1] // 2 + 1
    for start in range(0, len(r), _BLOCK):
        block = r[start:start + _BLOCK]
        # beats[i, j]: how many members rank architecture i strictly above architecture j
        beats = (block[:, None, :] > r[None, :, :]).sum(axis=2)
        wins[start:start + _BLOCK] = (beats >= majority).sum(axis=1)
    out = np.full(len(ranks), np.nan)
    out[valid] = wins
    return out


# AZ-NAS's complexity term is the network's FLOPs: the `flops` proxy.
AZ_NAS_MEMBERS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")


@register_combined("az_nas", members=AZ_NAS_MEMBERS,
                   about="AZ-NAS (Lee and Ham 2024): sum over its four terms (expressivity, progressivity, "
                         "trainability, complexity = flops) of log(rank / n), rank n the best of the set")
def az_nas(scores: pd.DataFrame, directions: dict[str, int]) -> np.ndarray:
    ranks = member_ranks(scores, directions)
    valid = ~np.isnan(ranks).any(axis=1)
    out = np.full(len(ranks), np.nan)
    out[valid] = np.log(ranks[valid] / valid.sum()).sum(axis=1)
    return out


@register_combined("swap_reg", members=("swap", "params"),
                   about="regularised SWAP (Peng et al. 2024): swap * exp(-(P - mu)^2 / sigma), P the parameters "
                         "in millions, mu the set's largest P and sigma its mean P (favours the larger networks)")
def swap_reg(scores: pd.DataFrame, directions: dict[str, int]) -> np.ndarray:
    p = scores["params"].to_numpy(dtype=float) / 1e6
    mu, sigma = np.nanmax(p), np.nanmean(p)
    return scores["swap"].to_numpy(dtype=float) * np.exp(-((p - mu) ** 2) / sigma)
