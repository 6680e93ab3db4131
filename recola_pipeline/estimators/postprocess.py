"""Post-processing of predictions (AVEC 2016): median filter, centring, scaling.

:class:`PostProcessor` applies a fixed set of steps; fitting estimates the centring bias and the
scaling factor on labelled frames. Which steps to use is chosen on held-out devel recordings by
:func:`~recola_pipeline.estimators.selection.choose_postprocessing`, never on the data scored.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..labels import LABEL_HOP_S
from .delay import segments


def median_frames(seconds: float) -> int:
    """A median-filter length in seconds as an odd number of 40 ms frames (1: no filter)."""
    n = int(round(seconds / LABEL_HOP_S))
    return max(1, n + (n % 2 == 0))


def median_smooth(pred: np.ndarray, groups: np.ndarray, window_frames: int) -> np.ndarray:
    """Median filter of ``window_frames`` (odd) within each recording; edges use the nearest value."""
    if window_frames <= 1:
        return np.asarray(pred, dtype=float).copy()
    out = np.empty(len(pred))
    for seg in segments(groups):
        out[seg] = median_filter(np.asarray(pred[seg], dtype=float), size=window_frames, mode="nearest")
    return out


class PostProcessor(BaseEstimator):
    """Median filter, then centring, then scaling, each as configured.

    Parameters
    ----------
    median_s : float
        Median-filter length in seconds (rounded to an odd number of 40 ms frames); 0: none.
    centring : bool
        Add ``mean gold - mean prediction`` of the fit data.
    scaling : bool
        Multiply the deviation from the prediction mean by ``std gold / std prediction`` of the fit data.

    Attributes
    ----------
    bias_ : float or None
    scale_ : float or None
    pred_mean_ : float
        Mean of the (filtered, centred) fit predictions, the centre of the scaling.
    steps_ : list of str
        The steps applied, e.g. ``['median 1.20 s', 'centring']``.

    Examples
    --------
    >>> post = PostProcessor(centring=True).fit(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.zeros(2))
    >>> post.transform(np.array([0.5]), np.zeros(1)).tolist(), post.steps_
    ([1.5], ['centring'])
    """

    def __init__(self, median_s: float = 0.0, centring: bool = False, scaling: bool = False):
        self.median_s = median_s
        self.centring = centring
        self.scaling = scaling

    def fit(self, pred, gold, groups):
        """Estimate bias and scale from ``pred`` against ``gold`` on labelled frames (finite gold); returns self."""
        gold = np.asarray(gold, dtype=float)
        labelled = np.isfinite(gold)
        frames = median_frames(self.median_s)
        current = median_smooth(np.asarray(pred, dtype=float), groups, frames)[labelled]
        gold = gold[labelled]
        self.steps_ = [f"median {frames * LABEL_HOP_S:.2f} s"] if frames > 1 else []
        self.bias_ = float(gold.mean() - current.mean()) if self.centring else None
        if self.bias_ is not None:
            current = current + self.bias_
            self.steps_.append("centring")
        self.pred_mean_ = float(current.mean())
        self.scale_ = float(gold.std() / current.std()) if self.scaling and current.std() > 0 else None
        if self.scale_ is not None:
            self.steps_.append("scaling")
        return self

    def transform(self, pred, groups):
        """Apply the steps to predictions ``pred`` of the recordings ``groups``."""
        check_is_fitted(self)
        out = median_smooth(np.asarray(pred, dtype=float), groups, median_frames(self.median_s))
        if self.bias_ is not None:
            out = out + self.bias_
        if self.scale_ is not None:
            out = (out - self.pred_mean_) * self.scale_ + self.pred_mean_
        return out
