"""Choices made on held-out devel recordings: post-processing steps and late-fusion weights.

A step fitted on devel and scored on the same devel data always looks better than it is (on a
real corpus in-sample post-processing lowered the devel CCC it was meant to raise). Here every
candidate is scored on recordings it was *not* fitted on: each devel recording (or each of at
most ``max_folds`` folds of recordings) is transformed by a copy fitted on the others, and the
held-out predictions of all recordings are pooled and scored. A step is kept only if that
held-out CCC improves, and the held-out predictions of the chosen steps are the devel
predictions reported, so a kept step can never lower the reported devel CCC.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from ..metrics import labelled_ccc
from .postprocess import PostProcessor, median_frames, median_label, smooth

#: fewest devel recordings that leave anything to hold out
MIN_HELD_OUT_RECORDINGS = 3


def recording_folds(groups: np.ndarray, max_folds: int) -> list[np.ndarray]:
    """Boolean masks of the held-out rows of each fold: one recording per fold (leave one out),
    or ``max_folds`` folds of whole recordings when there are more recordings."""
    groups = np.asarray(groups)
    n_recordings = len(np.unique(groups))
    splitter = GroupKFold(n_splits=min(n_recordings, max_folds))
    folds = []
    for _, held in splitter.split(np.zeros(len(groups)), groups=groups):
        mask = np.zeros(len(groups), dtype=bool)
        mask[held] = True
        folds.append(mask)
    return folds


def held_out(estimator, X: np.ndarray, gold: np.ndarray, groups: np.ndarray, folds) -> np.ndarray:
    """Each fold predicted by a clone of ``estimator`` fitted on the other folds.

    ``estimator`` has ``fit(X, gold, groups)`` (unlabelled frames, NaN gold, are left out by it)
    and ``predict(X, groups)``.
    """
    out = np.empty(len(X), dtype=float)
    for held in folds:
        fitted = clone(estimator).fit(X[~held], gold[~held], groups[~held])
        out[held] = fitted.predict(X[held], groups[held])
    return out


def choose_postprocessing(raw: np.ndarray, gold: np.ndarray, groups: np.ndarray, folds, *,
                          median_windows_s, centring: bool, scaling: bool, causal: bool = False
                          ) -> tuple[PostProcessor, np.ndarray, list]:
    """Greedy choice of median length, centring and scaling by held-out devel CCC.

    Parameters
    ----------
    raw : ndarray
        Devel predictions before post-processing (for late fusion: already held out).
    gold, groups : ndarray
        Devel gold (NaN: unlabelled) and the recording of each row.
    folds : list of ndarray
        Held-out masks from :func:`recording_folds`.
    median_windows_s : sequence of float
        Median lengths tried (0: none).
    centring, scaling : bool
        Whether to try each step.
    causal : bool
        Trailing median filters (:class:`PostProcessor` ``causal``) instead of centred ones.

    Returns
    -------
    postprocessor : PostProcessor
        The chosen steps (unfitted).
    predictions : ndarray
        The held-out devel predictions of those steps; their CCC is the best one tried.
    trail : list of (str, float)
        Every candidate and its held-out devel CCC, in the order tried.
    """
    best_score, best_pred = labelled_ccc(gold, raw), np.asarray(raw, dtype=float)
    trail = [("none", best_score)]
    params = {"median_s": 0.0, "centring": False, "scaling": False, "causal": causal}
    for seconds in median_windows_s:
        if median_frames(seconds) <= 1:
            continue
        frames = median_frames(seconds)
        candidate = smooth(raw, groups, frames, causal)  # nothing to fit: held out as it is
        score = labelled_ccc(gold, candidate)
        trail.append((median_label(frames, causal), score))
        if score > best_score + 1e-12:
            best_score, best_pred, params["median_s"] = score, candidate, float(seconds)
    for step, wanted in (("centring", centring), ("scaling", scaling)):
        if not wanted:
            continue
        trial = PostProcessor(**{**params, step: True})
        candidate = held_out(trial, raw, gold, groups, folds)
        score = labelled_ccc(gold, candidate)
        trail.append((step, score))
        if score > best_score + 1e-12:
            best_score, best_pred, params[step] = score, candidate, True
    return PostProcessor(**params), best_pred, trail
