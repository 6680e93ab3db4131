"""Post-processing of predictions (AVEC 2016): median filter, centring, scaling.

:class:`PostProcessor` applies a fixed set of steps; fitting estimates the centring bias and the
scaling factor on labelled frames. Which steps to use is chosen on held-out devel recordings by
:func:`~recola_pipeline.estimators.selection.choose_postprocessing`, never on the data scored.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..labels import LABEL_HOP_S
from .delay import recording_groups, segments, target


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


def trailing_median(values: np.ndarray, window_frames: int) -> np.ndarray:
    """Median of each value and the ``window_frames - 1`` before it (one recording); before the first value,
    the first value is repeated. Uses no later value, so a stream computes the same from its past alone.

    >>> trailing_median(np.array([3.0, 1.0, 2.0, 5.0]), 3).tolist()
    [3.0, 3.0, 2.0, 2.0]
    """
    values = np.asarray(values, dtype=float)
    if window_frames <= 1 or values.size == 0:
        return values.copy()
    padded = np.concatenate([np.full(window_frames - 1, values[0]), values])
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window_frames), axis=1)


def smooth(pred: np.ndarray, groups: np.ndarray, window_frames: int, causal: bool) -> np.ndarray:
    """Centred (:func:`median_smooth`) or trailing (:func:`trailing_median`) median within each recording."""
    if not causal:
        return median_smooth(pred, groups, window_frames)
    out = np.empty(len(pred))
    for seg in segments(groups):
        out[seg] = trailing_median(pred[seg], window_frames)
    return out


def _one_column(estimator, X, reset: bool) -> np.ndarray:
    """The prediction column of ``X`` (shape (n,) or (n, 1)) as a 1-D float array."""
    X = np.asarray(X, dtype=float)
    X = validate_data(estimator, X.reshape(-1, 1) if X.ndim == 1 else X, dtype=np.float64, reset=reset)
    if X.shape[1] != 1:
        raise ValueError(f"post-processing takes one column of predictions, got {X.shape[1]} columns")
    return X[:, 0]


class PostProcessor(RegressorMixin, BaseEstimator):
    """Median filter, then centring, then scaling, each as configured.

    The last step of a system's :class:`sklearn.pipeline.Pipeline`: it takes the regressor's
    predictions (one column) and returns the post-processed ones. ``groups`` (each row's
    recording: the median filter never crosses recordings) reaches it through metadata routing;
    without it, all rows are one recording.

    Parameters
    ----------
    median_s : float
        Median-filter length in seconds (rounded to an odd number of 40 ms frames); 0: none.
    centring : bool
        Add ``mean gold - mean prediction`` of the fit data.
    scaling : bool
        Multiply the deviation from the prediction mean by ``std gold / std prediction`` of the fit data.
    causal : bool
        The median filter looks back only (:func:`trailing_median`: each frame and the ones before it), so
        no step uses a later prediction (centring and scaling are constants fitted beforehand).

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
    >>> post.predict(np.array([0.5]), np.zeros(1)).tolist(), post.steps_
    ([1.5], ['centring'])
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}

    def __init__(self, median_s: float = 0.0, centring: bool = False, scaling: bool = False, causal: bool = False):
        self.median_s = median_s
        self.centring = centring
        self.scaling = scaling
        self.causal = causal

    def fit(self, X, y, groups=None):
        """Estimate bias and scale from the predictions ``X`` (one column) against the gold ``y`` on
        labelled frames (finite gold); returns self."""
        pred = _one_column(self, X, reset=True)
        gold = target(self, y, len(pred))
        labelled = np.isfinite(gold)
        if not labelled.any():
            raise ValueError("no labelled frame (finite gold) to fit the post-processing on")
        frames = median_frames(self.median_s)
        current = smooth(pred, recording_groups(groups, len(pred)), frames, self.causal)[labelled]
        gold = gold[labelled]
        self.steps_ = [median_label(frames, self.causal)] if frames > 1 else []
        self.bias_ = float(gold.mean() - current.mean()) if self.centring else None
        if self.bias_ is not None:
            current = current + self.bias_
            self.steps_.append("centring")
        self.pred_mean_ = float(current.mean())
        self.scale_ = float(gold.std() / current.std()) if self.scaling and current.std() > 0 else None
        if self.scale_ is not None:
            self.steps_.append("scaling")
        return self

    def predict(self, X, groups=None):
        """Apply the steps to the predictions ``X`` (one column) of the recordings ``groups``."""
        check_is_fitted(self)
        pred = _one_column(self, X, reset=False)
        out = smooth(pred, recording_groups(groups, len(pred)), median_frames(self.median_s), self.causal)
        if self.bias_ is not None:
            out = out + self.bias_
        if self.scale_ is not None:
            out = (out - self.pred_mean_) * self.scale_ + self.pred_mean_
        return out

    def __setstate__(self, state):
        """A model saved before causal post-processing existed is centred."""
        super().__setstate__({"causal": False, **state})


def median_label(window_frames: int, causal: bool) -> str:
    """How a median step is reported: ``median 1.20 s`` (centred), ``trailing median 0.44 s`` (causal)."""
    return f"{'trailing median' if causal else 'median'} {window_frames * LABEL_HOP_S:.2f} s"
