"""Fitted steps of the continuous path, each a scikit-learn estimator.

``ESTIMATORS`` registers them by class name; a model file may rebuild exactly these types of
this package (:mod:`recola_pipeline.safe_io` takes its allow-list from here). The classes are
importable from this package (``from recola_pipeline.estimators import Normaliser``); each is
imported, with scikit-learn, on first use.
"""
from __future__ import annotations

from ..modalities import RECURRENT
from ..registry import Registry

ESTIMATORS = Registry("estimator", {
    "DelayedRegressor": "recola_pipeline.estimators.delay:DelayedRegressor",
    "L2LinearSVR": "recola_pipeline.estimators.linear:L2LinearSVR",
    "RidgePath": "recola_pipeline.estimators.linear:RidgePath",
    "Normaliser": "recola_pipeline.estimators.normalise:Normaliser",
    "PostProcessor": "recola_pipeline.estimators.postprocess:PostProcessor",
    "LateFusion": "recola_pipeline.estimators.fusion:LateFusion",
    "SystemFusion": "recola_pipeline.estimators.fusion:SystemFusion",
    "SequenceRegressor": "recola_pipeline.estimators.sequence:SequenceRegressor",
})

#: the regressors ``train.estimators`` chooses from: the delay-shifted linear SVR and the recurrent networks
ESTIMATOR_NAMES = ("svr", *RECURRENT)
#: the ``[sequence]`` settings searched on devel (each a list), and the SequenceRegressor parameter each sets
SEQUENCE_GRID = {"hidden": "hidden", "layers": "layers", "bidirectional": "bidirectional", "dropout": "dropout",
                 "learning_rate": "learning_rate", "segment_frames": "segment_frames", "delays_s": "delay_s"}

#: the normalisation modes (``train.normalisation``) of :class:`~recola_pipeline.estimators.normalise.Normaliser`
NORMALISATIONS = ("train", "recording", "online")

__all__ = sorted(ESTIMATORS)


def trusted_types() -> tuple[str, ...]:
    """The dotted type names of the registered estimators (``module.Class``), nothing imported."""
    return tuple(sorted(f"{ESTIMATORS.entry(n).module}.{ESTIMATORS.entry(n).attribute}" for n in ESTIMATORS))


def __getattr__(name: str):
    if name not in ESTIMATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return ESTIMATORS[name]
