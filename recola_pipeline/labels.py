"""Gold standard from individual ratings, and the annotation-delay shift.

Gold standards (docs/ARCHITECTURE.md), all computed per recording on its ``(frames, raters)`` matrix:

``avec2016``
    AVEC 2016 "CCC centring": each rater's weight is its mean CCC with every other rater
    (clipped to 1e-6 so a disagreeing rater gets almost no weight but never a negative one);
    every rater is centred on its own mean and shifted to the weighted mean of the rater
    means; the gold standard is the frame-wise average of the shifted ratings.
``mean``
    The frame-wise mean of the raters.
``ewe``
    Evaluator weighted estimator (Grimm & Kroschel 2005): each rater weighted by its Pearson
    correlation with the frame-wise mean of all raters (negative weights clipped to 0).

A single rater is its own gold standard under every method.

Delay (docs/ARCHITECTURE.md): features at ``t`` are paired with gold at ``t + D``, i.e. the gold is
shifted back by ``D`` and its last value repeated (:func:`shift_back`); predictions are shifted
forward by ``D`` with the first value repeated (:func:`shift_forward`) before scoring.
"""
from __future__ import annotations

import numpy as np

from .metrics import ccc, pearson

LABEL_HOP_S = 0.04
#: the gold-standard methods (``corpus.gold_standard``) of :func:`gold_standard`
GOLD_STANDARDS = ("avec2016", "mean", "ewe", "shipped")


def _pairwise_ccc(ratings: np.ndarray) -> np.ndarray:
    """CCC of every pair of raters on the frames both rated (NaN on the diagonal)."""
    k = ratings.shape[1]
    valid = ~np.isnan(ratings)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            both = valid[:, i] & valid[:, j]
            out[i, j] = out[j, i] = ccc(ratings[both, i], ratings[both, j])
    return out


def gold_standard(ratings: np.ndarray, method: str = "avec2016") -> np.ndarray:
    """Combine individual ratings into one gold-standard trace.

    A NaN is a frame that rater did not rate: every statistic of a rater (its mean, its
    agreement with another rater) uses the frames it rated, and each frame averages the raters
    that rated it. A frame no rater rated is NaN (unlabelled).

    Parameters
    ----------
    ratings : ndarray, shape (n_frames, n_raters)
        Individual ratings at the label rate, NaN where a rater gave no value.
    method : {'avec2016', 'mean', 'ewe', 'shipped'}
        ``shipped``: the one column is a gold standard read from the corpus, used as it is.

    Returns
    -------
    ndarray, shape (n_frames,)
    """
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 2 or ratings.shape[1] == 0:
        raise ValueError(f"ratings must be a (frames, raters) matrix with at least one rater, got {ratings.shape}")
    if method not in GOLD_STANDARDS:
        raise ValueError(f"unknown gold standard {method!r}; use one of {', '.join(GOLD_STANDARDS)}")
    if method == "shipped" and ratings.shape[1] != 1:
        raise ValueError(f"a shipped gold standard is one column, got {ratings.shape[1]}")
    rated = ~np.isnan(ratings)
    ratings = ratings[:, rated.any(axis=0)]  # a rater with no value at all takes no part
    rated = ~np.isnan(ratings)
    if ratings.shape[1] == 0:
        return np.full(len(rated), np.nan)
    if ratings.shape[1] == 1:
        return ratings[:, 0].copy()
    with np.errstate(invalid="ignore"):
        if method == "mean":
            return _frame_mean(ratings, np.ones(ratings.shape[1]))
        if method == "avec2016":
            weights = np.nan_to_num(np.nanmean(_pairwise_ccc(ratings), axis=1), nan=0.0).clip(1e-6, None)
            means = np.nanmean(ratings, axis=0)
            return _frame_mean(ratings - means + np.sum(weights * means) / weights.sum(), np.ones(len(means)))
        mean_trace = _frame_mean(ratings, np.ones(ratings.shape[1]))
        weights = np.array([pearson(ratings[rated[:, i], i], mean_trace[rated[:, i]])
                            for i in range(ratings.shape[1])])
        weights = np.nan_to_num(weights, nan=0.0).clip(0.0, None)
        if weights.sum() == 0:
            return mean_trace
        weighted = _frame_mean(ratings, weights)
        return np.where(np.isnan(weighted), mean_trace, weighted)


def _frame_mean(ratings: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the raters that rated each frame (NaN where none did, or their weights are all 0)."""
    rated = ~np.isnan(ratings)
    total = (np.where(rated, weights, 0.0)).sum(axis=1)
    summed = np.where(rated, ratings * weights, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / np.where(total > 0, total, 1.0), np.nan)


def rater_agreement(ratings: np.ndarray) -> float:
    """Mean pairwise CCC between raters, each pair on the frames both rated (NaN for a single rater)."""
    ratings = np.asarray(ratings, dtype=float)
    if ratings.shape[1] < 2:
        return float("nan")
    pairwise = _pairwise_ccc(ratings)
    values = pairwise[np.triu_indices_from(pairwise, k=1)]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def delay_frames(delay_s: float, hop_s: float = LABEL_HOP_S) -> int:
    """Number of label frames in a delay of ``delay_s`` seconds (rounded to the nearest frame)."""
    if delay_s < 0:
        raise ValueError(f"delay must be non-negative, got {delay_s}")
    return int(round(delay_s / hop_s))


def shift_back(gold: np.ndarray, n: int) -> np.ndarray:
    """Gold at ``t + n`` placed at ``t`` (along axis 0); the last value is repeated to keep the length."""
    gold = np.asarray(gold)
    n = min(n, len(gold) - 1)
    if n <= 0:
        return gold.copy()
    return np.concatenate([gold[n:], np.repeat(gold[-1:], n, axis=0)])


def shift_forward(pred: np.ndarray, n: int) -> np.ndarray:
    """Prediction at ``t`` placed at ``t + n`` (along axis 0); the first value is repeated to keep the length."""
    pred = np.asarray(pred)
    n = min(n, len(pred) - 1)
    if n <= 0:
        return pred.copy()
    return np.concatenate([np.repeat(pred[:1], n, axis=0), pred[:-n]])
