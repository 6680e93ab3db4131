"""Post-processing of predictions (AVEC 2016): median filter, centring, scaling.

Each step is tried in that order on the devel predictions and kept only if it raises the
devel CCC (pooled over recordings), so fitting can never lower the CCC on the data it was
fitted on. The evaluate stage scores devel by leave-one-recording-out to keep that number honest.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..labels import LABEL_HOP_S
from ..metrics import ccc
from .delay import segments


def median_smooth(pred: np.ndarray, groups: np.ndarray, window_frames: int) -> np.ndarray:
    """Median filter of ``window_frames`` (odd) within each recording; edges use the nearest value."""
    if window_frames <= 1:
        return np.asarray(pred, dtype=float).copy()
    out = np.empty(len(pred))
    for seg in segments(groups):
        out[seg] = median_filter(np.asarray(pred[seg], dtype=float), size=window_frames, mode="nearest")
    return out


class PostProcessor(BaseEstimator):
    """Median filter, centring and scaling, each kept only if it improves the fit-data CCC.

    Parameters
    ----------
    median_windows_s : sequence of float
        Median-filter lengths to try, in seconds (rounded to an odd number of 40 ms frames);
        0 means no filter.
    centring, scaling : bool
        Whether to try each step.

    Attributes
    ----------
    median_frames_ : int
        Chosen filter length in frames (1: none).
    bias_ : float or None
        Added to the predictions (mean gold - mean prediction on the fit data) if centring is kept.
    scale_ : float or None
        Factor on the deviation from the prediction mean (std gold / std prediction) if kept.
    pred_mean_ : float
        Mean of the (filtered, centred) fit predictions, the centre of the scaling.
    steps_ : list of str
        The steps kept, e.g. ``['median 1.2 s', 'centring']``.
    """

    def __init__(self, median_windows_s=(0.0, 0.2, 0.4, 0.8, 1.2, 1.6, 2.4, 3.2), centring: bool = True,
                 scaling: bool = True):
        self.median_windows_s = median_windows_s
        self.centring = centring
        self.scaling = scaling

    @staticmethod
    def _frames(seconds: float) -> int:
        n = int(round(seconds / LABEL_HOP_S))
        return max(1, n + (n % 2 == 0))

    def fit(self, pred, gold, groups):
        """Choose the steps on predictions ``pred`` against ``gold``; returns self."""
        pred, gold = np.asarray(pred, dtype=float), np.asarray(gold, dtype=float)
        self.steps_ = []
        best, current = ccc(gold, pred), pred
        self.median_frames_ = 1
        for seconds in self.median_windows_s:
            frames = self._frames(seconds)
            candidate = median_smooth(pred, groups, frames)
            score = ccc(gold, candidate)
            if score > best + 1e-12:
                best, current, self.median_frames_ = score, candidate, frames
        if self.median_frames_ > 1:
            self.steps_.append(f"median {self.median_frames_ * LABEL_HOP_S:.2f} s")
        self.bias_ = None
        if self.centring:
            bias = gold.mean() - current.mean()
            score = ccc(gold, current + bias)
            if score > best + 1e-12:
                best, current, self.bias_ = score, current + bias, float(bias)
                self.steps_.append("centring")
        self.pred_mean_ = float(current.mean())
        self.scale_ = None
        if self.scaling and current.std() > 0:
            scale = gold.std() / current.std()
            candidate = (current - self.pred_mean_) * scale + self.pred_mean_
            score = ccc(gold, candidate)
            if score > best + 1e-12:
                best, current, self.scale_ = score, candidate, float(scale)
                self.steps_.append("scaling")
        self.fit_ccc_ = best
        return self

    def transform(self, pred, groups):
        """Apply the kept steps to new predictions."""
        check_is_fitted(self)
        out = median_smooth(np.asarray(pred, dtype=float), groups, self.median_frames_)
        if self.bias_ is not None:
            out = out + self.bias_
        if self.scale_ is not None:
            out = (out - self.pred_mean_) * self.scale_ + self.pred_mean_
        return out
