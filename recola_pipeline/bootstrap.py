"""Confidence intervals for pooled CCC by a bootstrap over recordings.

Frames of one recording are strongly autocorrelated, so resampling frames would give intervals
far too narrow; the unit resampled is the recording (as a cluster bootstrap). Each resample
draws as many recordings as the partition has, with replacement, and scores the pooled CCC of
their concatenation. The pooled CCC only needs six sums per recording, so a resample costs a
matrix product, not a concatenation. Intervals are percentile intervals; with fewer than two
recordings there is nothing to resample and the interval is NaN.

Example
-------
>>> rng = np.random.default_rng(0)
>>> pairs = [(g, g + rng.normal(0, 0.5, 100)) for g in rng.normal(0, 1, (8, 100))]
>>> low, high = ccc_interval(pairs, resamples=500, seed=0)
>>> bool(low < pooled_ccc(pairs) < high)
True
"""
from __future__ import annotations

import numpy as np


def recording_sums(pairs) -> np.ndarray:
    """Per recording ``(n, sum t, sum p, sum t^2, sum p^2, sum t p)``: shape (n_recordings, 6)."""
    rows = []
    for gold, pred in pairs:
        t, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
        rows.append([t.size, t.sum(), p.sum(), (t * t).sum(), (p * p).sum(), (t * p).sum()])
    return np.array(rows, dtype=float).reshape(-1, 6)


def ccc_from_sums(sums: np.ndarray) -> np.ndarray:
    """Pooled CCC (population moments) from summed ``recording_sums`` rows, shape (..., 6) -> (...)."""
    n, st, sp, stt, spp, stp = np.moveaxis(np.asarray(sums, dtype=float), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mt, mp = st / n, sp / n
        var_t, var_p, cov = stt / n - mt ** 2, spp / n - mp ** 2, stp / n - mt * mp
        denom = var_t + var_p + (mt - mp) ** 2
        return np.where((n >= 2) & (denom > 0), 2 * cov / np.where(denom > 0, denom, 1.0), np.nan)


def pooled_ccc(pairs) -> float:
    """Pooled CCC of ``(gold, prediction)`` pairs, one per recording."""
    return float(ccc_from_sums(recording_sums(pairs).sum(axis=0)))


def resample_counts(n_recordings: int, resamples: int, seed: int) -> np.ndarray:
    """How often each recording is drawn in each resample: shape (resamples, n_recordings)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_recordings, np.full(n_recordings, 1.0 / n_recordings), size=resamples)


def ccc_interval(pairs, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the pooled CCC, resampling recordings.

    Parameters
    ----------
    pairs : sequence of (gold, prediction)
        One pair of aligned arrays per recording (labelled frames only).
    resamples : int
    seed : int
    level : float

    Returns
    -------
    (float, float)
        Lower and upper bound; NaN for fewer than two recordings.
    """
    sums = recording_sums(pairs)
    if len(sums) < 2:
        return float("nan"), float("nan")
    scores = ccc_from_sums(resample_counts(len(sums), resamples, seed) @ sums)
    tail = (1 - level) / 2 * 100
    return tuple(float(v) for v in np.nanpercentile(scores, [tail, 100 - tail]))


def paired_difference(pairs_a, pairs_b, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired bootstrap of ``CCC(a) - CCC(b)`` over the same resampled recordings.

    ``pairs_a`` and ``pairs_b`` hold the same recordings in the same order (gold identical).

    Returns
    -------
    dict
        ``difference`` (on all recordings), ``ci_low``, ``ci_high`` and ``p_not_better``: the share
        of resamples in which ``a`` is not better than ``b`` (a one-sided bootstrap p-value).
    """
    sums_a, sums_b = recording_sums(pairs_a), recording_sums(pairs_b)
    if len(sums_a) != len(sums_b):
        raise ValueError("paired bootstrap needs the same recordings for both systems")
    difference = float(ccc_from_sums(sums_a.sum(axis=0)) - ccc_from_sums(sums_b.sum(axis=0)))
    if len(sums_a) < 2:
        return {"difference": difference, "ci_low": np.nan, "ci_high": np.nan, "p_not_better": np.nan}
    counts = resample_counts(len(sums_a), resamples, seed)
    diffs = ccc_from_sums(counts @ sums_a) - ccc_from_sums(counts @ sums_b)
    diffs = diffs[np.isfinite(diffs)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return {"difference": difference, "ci_low": float(low), "ci_high": float(high),
            "p_not_better": float(np.mean(diffs <= 0))}
