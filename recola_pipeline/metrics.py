"""Agreement metrics: concordance correlation coefficient (CCC), Pearson, RMSE.

Convention (docs/ARCHITECTURE.md): population moments (divide by N), the same as
``audmetric.concordance_cc``. A partition is scored *pooled*: all its recordings
concatenated, as AVEC 2016 does; :func:`mean_per_recording` gives the mean of the
per-recording scores for a second column. Fewer than two samples or a zero
denominator gives NaN; a NaN anywhere in the input gives NaN; inputs of different
lengths raise ``ValueError``.

Example
-------
>>> round(ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.5]), 4)
0.9524
"""
from __future__ import annotations

import typing

import numpy as np


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float).ravel()
    b = np.asarray(y_pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"y_true has {a.size} values but y_pred has {b.size}; score aligned sequences only")
    return a, b


def ccc(y_true, y_pred) -> float:
    """Concordance correlation coefficient with population moments.

    Parameters
    ----------
    y_true, y_pred : array-like
        Sequences of the same length.

    Returns
    -------
    float
        ``2 cov / (var_t + var_p + (mean_t - mean_p)^2)``; NaN for fewer than two
        samples, a zero denominator or NaN input.
    """
    a, b = _pair(y_true, y_pred)
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    ma, mb = a.mean(), b.mean()
    cov = np.mean((a - ma) * (b - mb))
    denom = a.var() + b.var() + (ma - mb) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def labelled_ccc(y_true, y_pred) -> float:
    """CCC on the labelled frames only: those where ``y_true`` is finite (NaN gold = unlabelled).

    >>> round(labelled_ccc([np.nan, 1.0, 2.0, 3.0], [9.0, 1.0, 2.0, 3.5]), 4)
    0.9524
    """
    a, b = _pair(y_true, y_pred)
    rows = np.isfinite(a)
    return ccc(a[rows], b[rows])


def pearson(y_true, y_pred) -> float:
    """Pearson correlation; NaN for fewer than two samples, constant input or NaN input."""
    a, b = _pair(y_true, y_pred)
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return float("nan")
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error; NaN for empty input or NaN input."""
    a, b = _pair(y_true, y_pred)
    if a.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((a - b) ** 2)))


METRICS: dict[str, typing.Callable] = {"ccc": ccc, "pearson": pearson, "rmse": rmse}


def pooled(metric: typing.Callable, pairs: typing.Iterable[tuple]) -> float:
    """Score all ``(y_true, y_pred)`` pairs concatenated (AVEC 2016 partition score)."""
    pairs = [_pair(t, p) for t, p in pairs]
    if not pairs:
        return float("nan")
    return metric(np.concatenate([t for t, _ in pairs]), np.concatenate([p for _, p in pairs]))


def mean_per_recording(metric: typing.Callable, pairs: typing.Iterable[tuple]) -> float:
    """Mean of the per-recording scores (NaN recordings included, so they stay visible)."""
    scores = [metric(t, p) for t, p in pairs]
    return float(np.mean(scores)) if scores else float("nan")
