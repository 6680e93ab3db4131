"""The model of one system and dimension: one scikit-learn :class:`~sklearn.pipeline.Pipeline`.

Its steps are ``normalise`` (a :class:`~recola_pipeline.estimators.Normaliser`), ``kernel``
(``"passthrough"``, or a Nystroem map for the RBF kernel), ``regress`` (a
:class:`~recola_pipeline.estimators.DelayedRegressor`: the delay shift and the SVR) and, once
the evaluate stage has chosen it, ``postprocess`` (a
:class:`~recola_pipeline.estimators.PostProcessor`). Late fusion is ``fuse`` (a
:class:`~recola_pipeline.estimators.fusion.SystemFusion`, holding the fitted systems it fuses)
-> ``postprocess``. ``groups`` (each row's recording) reaches
the steps that need it through scikit-learn's metadata routing (:func:`predict_system`).

The steps are fitted where the protocol says, not all on one set: the normaliser and the kernel
on the labelled train frames, the regressor on train, the post-processing on held-out devel
predictions; the pipeline is assembled from them, so ``Pipeline.fit`` is never called.

The train stage writes a dict per system: ``model`` (the pipeline without post-processing),
``windows`` (window length per modality) and ``features`` (column names). An exported bundle
holds the whole pipeline alone, one skops file per system.
"""
from __future__ import annotations

import numpy as np
from sklearn import config_context
from sklearn.kernel_approximation import Nystroem
from sklearn.pipeline import Pipeline

from ..matrices import FrameMatrix, labelled_rows
from .normalise import Normaliser


def fit_normaliser(normalisation: str, train: FrameMatrix, warmup_s: float = 30.0) -> Normaliser:
    """The normaliser fitted on the labelled train frames (``warmup_s``: of the ``online`` mode)."""
    return Normaliser(normalisation, warmup_s=warmup_s).fit(train.X[labelled_rows(train)])


def fit_representation(cfg, normalisation: str, train: FrameMatrix):
    """Fit the normaliser (and the Nystroem map for the RBF kernel) on the labelled train frames.

    Per-recording normalisation has nothing to fit: each recording is standardised with the
    statistics of all its own frames, unsupervised, in every partition.
    """
    normaliser = fit_normaliser(normalisation, train, cfg.online_warmup_s)
    kernel = None
    if cfg.kernel == "rbf":
        Z = normaliser.transform(train.X, train.groups)[labelled_rows(train)]
        kernel = Nystroem(kernel="rbf", gamma=1.0 / Z.shape[1], n_components=min(cfg.rbf_components, len(Z)),
                          random_state=cfg.seed).fit(Z)
    return normaliser, kernel


def represent(normaliser, kernel, frames: FrameMatrix) -> np.ndarray:
    """Normalised (and kernel-mapped) features of ``frames``."""
    Z = normaliser.transform(frames.X, frames.groups)
    return kernel.transform(Z) if kernel is not None else Z


def system_pipeline(normaliser, kernel, regressor) -> Pipeline:
    """The pipeline of fitted steps ``normalise -> kernel -> regress``."""
    return Pipeline([("normalise", normaliser), ("kernel", kernel if kernel is not None else "passthrough"),
                     ("regress", regressor)])


def with_postprocessing(model: Pipeline, postprocessor) -> Pipeline:
    """``model`` followed by its fitted post-processing step."""
    return Pipeline([*model.steps, ("postprocess", postprocessor)])


def late_fusion_pipeline(fusion, postprocessor) -> Pipeline:
    """Late fusion (a fitted :class:`~recola_pipeline.estimators.fusion.SystemFusion`: the systems'
    pipelines and their fusion; its input, the systems' feature columns side by side) and its
    post-processing."""
    return Pipeline([("fuse", fusion), ("postprocess", postprocessor)])


def predict_system(model: Pipeline, X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``model.predict`` with each row's recording routed to the steps that use it."""
    with config_context(enable_metadata_routing=True):
        return model.predict(X, groups=groups)


def raw_predictions(model: Pipeline, X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The regressor's predictions, before the post-processing step (the input of late fusion)."""
    return predict_system(model[:-1] if model.steps[-1][0] == "postprocess" else model, X, groups)


def member_predictions(model: Pipeline, frames: FrameMatrix) -> np.ndarray:
    """Each network's raw predictions of a recurrent system (``regress`` has ``predict_members``):
    shape (n_frames, n_seeds)."""
    with config_context(enable_metadata_routing=True):
        Z = model[:-1].transform(frames.X, groups=frames.groups)
    return model.named_steps["regress"].predict_members(Z, frames.groups)


def predict_frames(model: Pipeline, frames: FrameMatrix) -> np.ndarray:
    """:func:`predict_system` on a frame matrix (aligned with its unshifted gold)."""
    return predict_system(model, frames.X, frames.groups)
