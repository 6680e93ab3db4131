"""Annotation delay: shift per recording, and a regressor that trains and predicts with it.

Convention (docs/ARCHITECTURE.md): training pairs features at t with gold at t + D (gold shifted back,
last value repeated); predictions are shifted forward by D (first value repeated) and compared
with the unshifted gold. Shifts never cross a recording boundary. Unlabelled frames (NaN gold)
take no part: a pair is fitted only when both t and t + D are labelled (:func:`delayed_targets`).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..labels import delay_frames, shift_back, shift_forward


def segments(groups: np.ndarray) -> list[slice]:
    """Contiguous runs of equal group labels (recordings are stored one after another)."""
    groups = np.asarray(groups)
    if groups.size == 0:
        return []
    cuts = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [groups.size]])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def shift_groups(values: np.ndarray, groups: np.ndarray, n: int, direction: str) -> np.ndarray:
    """Shift ``values`` (1-D or 2-D along axis 0) by ``n`` frames within each recording.

    ``direction='back'``: value at t + n placed at t, last value repeated (gold for training).
    ``direction='forward'``: value at t placed at t + n, first value repeated (predictions).
    """
    shift = {"back": shift_back, "forward": shift_forward}.get(direction)
    if shift is None:
        raise ValueError(f"direction must be 'back' or 'forward', got {direction!r}")
    values = np.asarray(values)
    out = values.copy()
    if n == 0:
        return out
    for seg in segments(groups):
        out[seg] = shift(values[seg], n)
    return out


def delayed_targets(gold: np.ndarray, groups: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Training targets for a delay of ``n`` frames and the rows that may be fitted.

    Returns
    -------
    targets : ndarray
        Gold shifted back by ``n`` within each recording (NaN where t + n is unlabelled).
    rows : ndarray of bool
        True where both frame t and frame t + n are labelled, so an unlabelled frame is never
        paired with a label, nor a label with an unlabelled frame.
    """
    gold = np.asarray(gold, dtype=float)
    targets = shift_groups(gold, groups, n, "back")
    return targets, np.isfinite(gold) & np.isfinite(targets)


class DelayedRegressor(RegressorMixin, BaseEstimator):
    """Wrap a regressor so it learns features(t) -> gold(t + D) and predicts gold(t).

    Parameters
    ----------
    estimator : regressor
        Any scikit-learn regressor (cloned on fit).
    delay_s : float
        Annotation delay D in seconds (rounded to 40 ms frames).

    Attributes
    ----------
    estimator_ : the fitted clone
    delay_frames_ : int
    """

    def __init__(self, estimator=None, delay_s: float = 0.0):
        self.estimator = estimator
        self.delay_s = delay_s

    def fit(self, X, y, groups):
        """Fit on features ``X`` and the unshifted gold ``y`` (NaN: unlabelled frame, not fitted);
        ``groups`` names each row's recording."""
        self.delay_frames_ = delay_frames(self.delay_s)
        targets, rows = delayed_targets(y, groups, self.delay_frames_)
        self.estimator_ = clone(self.estimator).fit(np.asarray(X)[rows], targets[rows])
        return self

    def predict(self, X, groups):
        """Predictions aligned with the unshifted gold (shifted forward by D within each recording)."""
        check_is_fitted(self)
        return shift_groups(self.estimator_.predict(X), groups, self.delay_frames_, "forward")
