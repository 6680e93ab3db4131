"""The modalities of the continuous path: each is extracted by the feature stage of the same name.

A new modality is a feature stage (in :mod:`recola_pipeline.stages`) whose config section has
``windows_s``, plus one line here.
"""
from __future__ import annotations

#: modality -> the feature stage that extracts it (its config section of the same name has ``windows_s``)
MODALITY_STAGES = {"audio": "audio", "video": "video"}
#: the recurrent regressors (``train.estimators``) beside the SVR; their systems are prefixed with the name
RECURRENT = ("gru", "lstm")
#: the systems a trained model predicts with: ``best`` (chosen on devel per dimension), each
#: modality alone, and their early (concatenated features) and late (fused predictions) fusion,
#: with the SVR, or with a recurrent regressor (``gru-audio``, ``lstm-early``)
SYSTEMS = ("best", *MODALITY_STAGES, "early", "late",
           *(f"{cell}-{base}" for cell in RECURRENT for base in (*MODALITY_STAGES, "early")))


def modality_windows(config, modality: str) -> list[float]:
    """Window lengths the feature stage of ``modality`` extracted."""
    return [float(w) for w in getattr(config, MODALITY_STAGES[modality]).windows_s]


def estimator_of(row) -> str:
    """The ``estimator`` of a results row (``svr`` for runs from before that column)."""
    estimator = getattr(row, "estimator", "svr")
    return estimator if isinstance(estimator, str) and estimator else "svr"


def row_system(row) -> str:
    """The system of a results row (a ``results.csv`` row: estimator, modality, fusion), named by :func:`system_key`."""
    return system_key(estimator_of(row), row.modality, row.fusion)


def system_key(estimator: str, modality: str, fusion: str) -> str:
    """The name of a system: ``audio``, ``video``, ``early`` or ``late`` for the SVR (and late fusion of any
    estimators), ``<estimator>-<modality or early>`` for a recurrent regressor (``gru-audio``)."""
    base = modality if fusion == "none" else fusion
    return base if estimator == "svr" or fusion == "late" else f"{estimator}-{base}"
