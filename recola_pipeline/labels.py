"""Gold standard from individual ratings, and the annotation-delay shift.

Gold standards (DESIGN §3), all computed per recording on its ``(frames, raters)`` matrix:

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

Delay (DESIGN §3): features at ``t`` are paired with gold at ``t + D``, i.e. the gold is
shifted back by ``D`` and its last value repeated (:func:`shift_back`); predictions are shifted
forward by ``D`` with the first value repeated (:func:`shift_forward`) before scoring.
"""
from __future__ import annotations

import numpy as np

from .metrics import ccc, pearson

LABEL_HOP_S = 0.04


def _mean_pairwise_ccc(ratings: np.ndarray) -> np.ndarray:
    k = ratings.shape[1]
    return np.array([np.mean([ccc(ratings[:, i], ratings[:, j]) for j in range(k) if j != i]) for i in range(k)])


def gold_standard(ratings: np.ndarray, method: str = "avec2016") -> np.ndarray:
    """Combine individual ratings into one gold-standard trace.

    Parameters
    ----------
    ratings : ndarray, shape (n_frames, n_raters)
        Individual ratings at the label rate, no NaN.
    method : {'avec2016', 'mean', 'ewe'}

    Returns
    -------
    ndarray, shape (n_frames,)
    """
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 2 or ratings.shape[1] == 0:
        raise ValueError(f"ratings must be a (frames, raters) matrix with at least one rater, got {ratings.shape}")
    if np.isnan(ratings).any():
        raise ValueError("ratings contain NaN; repair the ratings file before building a gold standard")
    if ratings.shape[1] == 1:
        return ratings[:, 0].copy()
    if method == "mean":
        return ratings.mean(axis=1)
    if method == "avec2016":
        weights = np.nan_to_num(_mean_pairwise_ccc(ratings), nan=0.0).clip(1e-6, None)
        means = ratings.mean(axis=0)
        return (ratings - means + np.sum(weights * means) / weights.sum()).mean(axis=1)
    if method == "ewe":
        mean_trace = ratings.mean(axis=1)
        weights = np.array([pearson(ratings[:, i], mean_trace) for i in range(ratings.shape[1])])
        weights = np.nan_to_num(weights, nan=0.0).clip(0.0, None)
        if weights.sum() == 0:
            return mean_trace
        return ratings @ weights / weights.sum()
    raise ValueError(f"unknown gold standard {method!r}; use one of avec2016, mean, ewe")


def rater_agreement(ratings: np.ndarray) -> float:
    """Mean pairwise CCC between raters (NaN for a single rater)."""
    ratings = np.asarray(ratings, dtype=float)
    if ratings.shape[1] < 2:
        return float("nan")
    return float(np.nanmean(_mean_pairwise_ccc(ratings)))


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
