"""Categorical clip corpora (RAVDESS, CREMA-D) for the MRPN path: clips, labels, actor folds.

A :class:`Clip` is one utterance of one actor with one emotion label, its audio and/or video
file matched across the corpus's modality-specific files by the clip's code. Folds hold out
whole actors, so no speaker is ever in both the training and the test side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: audio containers preferred when a clip has several audio-only files (CREMA-D ships WAV and MP3)
AUDIO_PREFERENCE = (".wav", ".flac", ".mp3")


@dataclass(frozen=True)
class Clip:
    """One labelled clip.

    Attributes
    ----------
    id : str
        The corpus's own code without the modality part (RAVDESS ``01-03-01-01-01-01``,
        CREMA-D ``1001_DFA_ANG_XX``).
    actor : int
    gender : str
        ``male``, ``female`` or ``unknown``.
    emotion : str
        Label name (``angry``, ``happy``, ...).
    audio, video : Path or None
        Audio-only file and video file (a video container may carry sound too).
    """

    id: str
    actor: int
    gender: str
    emotion: str
    audio: Path | None
    video: Path | None


def clip_table(clips: list[Clip]) -> pd.DataFrame:
    """The clips as a table (one row per clip, paths as strings, '' when absent)."""
    return pd.DataFrame([{"clip": c.id, "actor": c.actor, "gender": c.gender, "emotion": c.emotion,
                          "audio": str(c.audio or ""), "video": str(c.video or "")} for c in clips])


def pick_audio(paths: list[Path]) -> Path | None:
    """The preferred audio file among several of one clip (WAV, then FLAC, then MP3)."""
    ranked = sorted(paths, key=lambda p: (AUDIO_PREFERENCE.index(p.suffix.lower()), str(p)))
    return ranked[0] if ranked else None
