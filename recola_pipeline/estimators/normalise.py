"""Feature normalisation: z-score with train statistics (default), per recording, or online (running
statistics of each recording's past, started from the train statistics)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..labels import LABEL_HOP_S
from . import NORMALISATIONS
from .delay import recording_groups, segments


def online_zscore(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, prior_frames: float,
                  sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Z-score each frame of one recording with the running statistics of the frames up to it (itself included).

    The statistics start from the train ones, weighted as ``prior_frames`` frames, so the first
    frames are not standardised by a handful of values: after N finite values of a feature,
    its mean is ``(n0 * 0 + sum x') / (n0 + N)`` and its variance ``(n0 * train variance + sum x'^2)
    / (n0 + N) - mean^2``, in units centred on the train mean (``x' = x - train mean``; better-
    conditioned sums). NaN values (no full window, no face) are left out of the sums and map to 0.
    The sums are carried in ``sums`` so that a stream, given its frames in pieces, gets exactly the
    numbers of one pass over the whole recording (each sum is a sequential cumulative sum).

    Parameters
    ----------
    X : ndarray, shape (n_frames, n_features)
    mean, scale : ndarray, shape (n_features,)
        Train statistics.
    prior_frames : float
        Weight of the train statistics, in frames (the warm-up).
    sums : ndarray, shape (3, n_features), optional
        Count, sum and sum of squares of the frames before ``X`` (default: none, a recording's start).

    Returns
    -------
    Z : ndarray, shape (n_frames, n_features)
    sums : ndarray, shape (3, n_features)
        To pass with the next frames of the same recording.

    Examples
    --------
    >>> Z, sums = online_zscore(np.array([[1.0], [3.0]]), np.zeros(1), np.ones(1), prior_frames=1)
    >>> Z[:, 0].round(3).tolist(), sums[:, 0].tolist()
    ([0.577, 1.213], [2.0, 4.0, 10.0])
    """
    X = np.asarray(X, dtype=float)
    finite = np.isfinite(X)
    centred = np.where(finite, X - mean, 0.0)
    carried = np.zeros((3, X.shape[1])) if sums is None else np.asarray(sums, dtype=float)
    running = [np.cumsum(np.vstack([carried[k], part]), axis=0)[1:]
               for k, part in enumerate((finite.astype(float), centred, centred ** 2))]
    weight = prior_frames + running[0]
    running_mean = running[1] / weight
    variance = (prior_frames * scale ** 2 + running[2]) / weight - running_mean ** 2
    std = np.sqrt(np.maximum(variance, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = (centred - running_mean) / std
    Z[~finite | (std <= 1e-12 * np.maximum(scale, 1e-300))] = 0.0
    end = np.vstack([r[-1] for r in running]) if len(X) else carried
    return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0), end


def _zscore(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = (X - mean) / np.where(std > 0, std, 1.0)
    out[:, std == 0] = 0.0
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class Normaliser(TransformerMixin, BaseEstimator):
    """Z-score features; NaN and infinite values become 0 after scaling (docs/ARCHITECTURE.md).

    Parameters
    ----------
    mode : {'train', 'recording', 'online'}
        ``train``: mean and standard deviation of the data passed to ``fit`` (the train
        partition). ``recording``: every recording standardised with its own statistics
        (``groups`` in ``transform`` names each row's recording; without it, all rows are one).
        ``online``: every frame standardised with the running statistics of its recording's
        frames up to it, started from the train statistics (:func:`online_zscore`); causal.
    warmup_s : float
        ``online``: the weight of the train statistics in seconds of frames (40 ms each).

    Attributes
    ----------
    mean_, scale_ : ndarray
        Train statistics (NaN ignored); constant features get scale 0 and map to 0.
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def __init__(self, mode: str = "train", warmup_s: float = 30.0):
        self.mode = mode
        self.warmup_s = warmup_s

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
        if self.mode == "online":
            for seg in segments(recording_groups(groups, len(X))):
                out[seg] = online_zscore(X[seg], self.mean_, self.scale_, self.prior_frames())[0]
            return out
        for seg in segments(recording_groups(groups, len(X))):
            finite = np.where(np.isfinite(X[seg]), X[seg], np.nan)
            out[seg] = _zscore(X[seg], np.nan_to_num(np.nanmean(finite, axis=0)),
                               np.nan_to_num(np.nanstd(finite, axis=0)))
        return out

    def prior_frames(self) -> float:
        """``warmup_s`` in 40 ms frames: the weight of the train statistics in the ``online`` mode."""
        return self.warmup_s / LABEL_HOP_S
