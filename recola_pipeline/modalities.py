"""The modalities of the continuous path: each is extracted by the feature stage of the same name.

A new modality is a feature stage (in :mod:`recola_pipeline.stages`) whose config section has
``windows_s``, plus one line here.
"""
from __future__ import annotations

from .window import Window

#: modality -> the feature stage that extracts it (its config section of the same name has ``windows_s``)
MODALITY_STAGES = {"audio": "audio", "video": "video"}
#: the recurrent regressors (``train.estimators``) beside the SVR; their systems are prefixed with the name
RECURRENT = ("gru", "lstm")
#: the systems a trained model predicts with: ``best`` (chosen on devel per dimension), each
#: modality alone, and their early (concatenated features) and late (fused predictions) fusion,
#: with the SVR, or with a recurrent regressor (``gru-audio``, ``lstm-early``)
#: and their causal versions (``train.causal``: ``causal-audio``, ``causal-late``)
SYSTEMS = ("best", "best-causal", *MODALITY_STAGES, "early", "late",
           *(f"{cell}-{base}" for cell in RECURRENT for base in (*MODALITY_STAGES, "early")),
           *(f"causal-{base}" for base in (*MODALITY_STAGES, "early", "late")))


def modality_windows(config, modality: str) -> list[Window]:
    """Window lengths the feature stage of ``modality`` extracted."""
    return [Window(w) for w in getattr(config, MODALITY_STAGES[modality]).windows_s]


def estimator_of(row) -> str:
    """The ``estimator`` of a results row (``svr`` for runs from before that column)."""
    estimator = getattr(row, "estimator", "svr")
    return estimator if isinstance(estimator, str) and estimator else "svr"


def is_causal(row) -> bool:
    """Whether a results, grid or selected row is a causal system (False for runs from before that column)."""
    causal = getattr(row, "causal", False)
    return causal == causal and bool(causal)  # NaN (a row of another estimator) is not causal


def row_system(row) -> str:
    """The system of a results row (a ``results.csv`` row: estimator, modality, fusion, causal), named by
    :func:`system_key`."""
    return system_key(estimator_of(row), row.modality, row.fusion, is_causal(row))


def system_key(estimator: str, modality: str, fusion: str, causal: bool = False) -> str:
    """The name of a system: ``audio``, ``video``, ``early`` or ``late`` for the SVR (and late fusion of any
    estimators), ``<estimator>-<modality or early>`` for a recurrent regressor (``gru-audio``), and
    ``causal-<modality, early or late>`` for a causal SVR system (``train.causal``)."""
    base = modality if fusion == "none" else fusion
    if causal:
        return f"causal-{base}"
    return base if estimator == "svr" or fusion == "late" else f"{estimator}-{base}"
