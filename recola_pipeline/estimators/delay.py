"""Annotation delay: shift per recording, and a regressor that trains and predicts with it.

Convention (docs/ARCHITECTURE.md): training pairs features at t with gold at t + D (gold shifted back,
last value repeated); predictions are shifted forward by D (first value repeated) and compared
with the unshifted gold. Shifts never cross a recording boundary. Unlabelled frames (NaN gold)
take no part: a pair is fitted only when both t and t + D are labelled (:func:`delayed_targets`).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d, validate_data

from ..labels import delay_frames, shift_back, shift_forward
from .linear import L2LinearSVR


def target(estimator, y, n_rows: int) -> np.ndarray:
    """``y`` as a 1-D float array of ``n_rows`` values (NaN: an unlabelled frame, left out by the fit)."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=True).astype(float)
    check_consistent_length(y, np.empty(n_rows))
    return y


def recording_groups(groups, n_rows: int) -> np.ndarray:
    """``groups`` as an array, or one recording for all ``n_rows`` rows when it is None."""
    if groups is None:
        return np.zeros(n_rows, dtype=int)
    groups = np.asarray(groups)
    check_consistent_length(groups, np.empty(n_rows))
    return groups


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


def aligned_predictions(pred: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Predictions of a model trained on :func:`delayed_targets` with ``n`` frames, moved onto the unshifted
    gold: shifted forward by ``n`` within each recording, first value repeated (the other half of the rule)."""
    return shift_groups(pred, groups, n, "forward")


class DelayedRegressor(TransformerMixin, RegressorMixin, BaseEstimator):
    """Wrap a regressor so it learns features(t) -> gold(t + D) and predicts gold(t).

    In a :class:`sklearn.pipeline.Pipeline` it is the step before the post-processing: its
    ``transform`` gives its predictions as one column. ``groups`` (each row's recording) reaches
    it through scikit-learn's metadata routing; without it, all rows are one recording.

    Parameters
    ----------
    estimator : regressor or None
        Any scikit-learn regressor (cloned on fit); None: :class:`~recola_pipeline.estimators.L2LinearSVR`.
    delay_s : float
        Annotation delay D in seconds (rounded to 40 ms frames).

    Attributes
    ----------
    estimator_ : the fitted clone
    delay_frames_ : int
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def __init__(self, estimator=None, delay_s: float = 0.0):
        self.estimator = estimator
        self.delay_s = delay_s

    def fit(self, X, y, groups=None):
        """Fit on features ``X`` and the unshifted gold ``y`` (NaN: unlabelled frame, not fitted);
        ``groups`` names each row's recording."""
        X = validate_data(self, X, dtype=np.float64)
        y = target(self, y, len(X))
        self.delay_frames_ = delay_frames(self.delay_s)
        targets, rows = delayed_targets(y, recording_groups(groups, len(X)), self.delay_frames_)
        if not rows.any():
            raise ValueError("no row has a finite target at its delay: nothing to fit")
        estimator = self.estimator if self.estimator is not None else L2LinearSVR()
        self.estimator_ = clone(estimator).fit(X[rows], targets[rows])
        return self

    def predict(self, X, groups=None):
        """Predictions aligned with the unshifted gold (shifted forward by D within each recording)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return aligned_predictions(self.estimator_.predict(X), recording_groups(groups, len(X)), self.delay_frames_)

    def transform(self, X, groups=None):
        """The predictions as one column, for the post-processing step of a pipeline."""
        return self.predict(X, groups)[:, np.newaxis]
