"""The saved model of one system and dimension: what the train stage writes and evaluate reads.

A bundle is a dict: ``normaliser`` (a fitted :class:`~recola_pipeline.estimators.Normaliser`),
``kernel`` (None, or a fitted Nystroem map for the RBF kernel), ``regressor`` (a fitted
:class:`~recola_pipeline.estimators.DelayedRegressor`), ``windows`` (window length per modality),
``features`` (column names), ``system`` and ``dimension``.
"""
from __future__ import annotations

import numpy as np
from sklearn.kernel_approximation import Nystroem

from ..matrices import FrameMatrix, labelled_rows
from .normalise import Normaliser


def windows_label(windows: dict[str, float]) -> str:
    """``audio=8 video=6``: the window length of each modality of a system."""
    return " ".join(f"{m}={w:g}" for m, w in windows.items())


def parse_windows(label: str) -> dict[str, float]:
    """Inverse of :func:`windows_label`."""
    return {m: float(w) for m, w in (part.split("=") for part in label.split())}


def fit_representation(cfg, normalisation: str, train: FrameMatrix):
    """Fit the normaliser (and the Nystroem map for the RBF kernel) on the labelled train frames.

    Per-recording normalisation has nothing to fit: each recording is standardised with the
    statistics of all its own frames, unsupervised, in every partition.
    """
    rows = labelled_rows(train)
    normaliser = Normaliser(normalisation).fit(train.X[rows])
    kernel = None
    if cfg.kernel == "rbf":
        Z = normaliser.transform(train.X, train.groups)[rows]
        kernel = Nystroem(kernel="rbf", gamma=1.0 / Z.shape[1], n_components=min(cfg.rbf_components, len(Z)),
                          random_state=cfg.seed).fit(Z)
    return normaliser, kernel


def represent(normaliser, kernel, frames: FrameMatrix) -> np.ndarray:
    """Normalised (and kernel-mapped) features of ``frames``."""
    Z = normaliser.transform(frames.X, frames.groups)
    return kernel.transform(Z) if kernel is not None else Z


def predict_bundle(bundle: dict, frames: FrameMatrix) -> np.ndarray:
    """Predictions of a saved model bundle, aligned with the unshifted gold of ``frames``."""
    return bundle["regressor"].predict(represent(bundle["normaliser"], bundle["kernel"], frames), frames.groups)
