"""The modalities of the continuous path: each is extracted by the feature stage of the same name.

A new modality is a feature stage (in :mod:`recola_pipeline.stages`) whose config section has
``windows_s``, plus one line here.
"""
from __future__ import annotations

#: modality -> the feature stage that extracts it (its config section of the same name has ``windows_s``)
MODALITY_STAGES = {"audio": "audio", "video": "video"}
#: the systems a trained model predicts with: ``best`` (chosen on devel per dimension), each
#: modality alone, and their early (concatenated features) and late (fused predictions) fusion
SYSTEMS = ("best", *MODALITY_STAGES, "early", "late")


def modality_windows(config, modality: str) -> list[float]:
    """Window lengths the feature stage of ``modality`` extracted."""
    return [float(w) for w in getattr(config, MODALITY_STAGES[modality]).windows_s]


