"""Feature normalisation: z-score with train statistics (default) or per recording."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import NORMALISATIONS
from .delay import recording_groups, segments


def _zscore(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = (X - mean) / np.where(std > 0, std, 1.0)
    out[:, std == 0] = 0.0
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class Normaliser(TransformerMixin, BaseEstimator):
    """Z-score features; NaN and infinite values become 0 after scaling (docs/ARCHITECTURE.md).

    Parameters
    ----------
    mode : {'train', 'recording'}
        ``train``: mean and standard deviation of the data passed to ``fit`` (the train
        partition). ``recording``: every recording standardised with its own statistics
        (``groups`` in ``transform`` names each row's recording; without it, all rows are one).

    Attributes
    ----------
    mean_, scale_ : ndarray
        Train statistics (NaN ignored); constant features get scale 0 and map to 0.
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def __init__(self, mode: str = "train"):
        self.mode = mode

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN (a frame without a face) is part of the data
        return tags

    def fit(self, X, y=None, groups=None):
        """Learn per-feature mean and standard deviation; returns self."""
        if self.mode not in NORMALISATIONS:
            raise ValueError(f"mode must be one of {NORMALISATIONS}, got {self.mode!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=False)
        finite = np.where(np.isfinite(X), X, np.nan)
        self.mean_ = np.nan_to_num(np.nanmean(finite, axis=0))
        self.scale_ = np.nan_to_num(np.nanstd(finite, axis=0))
        return self

    def transform(self, X, groups=None):
        """Scale ``X`` (per-recording mode: each recording of ``groups`` with its own statistics)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=False, reset=False)
        if self.mode == "train":
            return _zscore(X, self.mean_, self.scale_)
        out = np.empty_like(X)
        for seg in segments(recording_groups(groups, len(X))):
            finite = np.where(np.isfinite(X[seg]), X[seg], np.nan)
            out[seg] = _zscore(X[seg], np.nan_to_num(np.nanmean(finite, axis=0)),
                               np.nan_to_num(np.nanstd(finite, axis=0)))
        return out
