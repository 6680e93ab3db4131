"""Reading what one stage wrote for the stages after it (so that no stage imports another).

Each function reads one artifact format, documented in the module of the stage that writes it:
the data stage's recordings table and gold standards (:mod:`~recola_pipeline.stages.data`), the
faces stage's per-frame tables (:mod:`~recola_pipeline.stages.faces`) and the clips stage's
inputs (:mod:`~recola_pipeline.stages.clips`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .cache import read_table
from .corpora import CorpusError
from .window import Window


def load_data(artifact) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The recordings table (media paths absolute) and the gold standard of every recording.

    Media inside the artifact store (the demo corpus) are stored relative to the store's root, so
    a store gives identical files wherever it lives; they are resolved here.
    """
    table = read_table(artifact.file("recordings.csv"))
    store = artifact.path.parents[2]  # <root>/features/data/<hash>
    for column in ("audio", "video"):
        table[column] = [str(store / p) if isinstance(p, str) and p and not Path(p).is_absolute() else
                         (p if isinstance(p, str) else "") for p in table[column]]
    gold = {rec: read_table(artifact.file(f"gold/{rec}.parquet")) for rec in table["recording"]}
    return table, gold


def video_rows(inputs) -> list[dict]:
    table, _ = load_data(inputs.artifact("data"))
    rows = [r for r in table.to_dict("records") if isinstance(r["video"], str) and r["video"]]
    if not rows:
        raise CorpusError("no recording of this corpus has video; drop 'video' from train.modalities "
                          "(or add the videos to the corpus)")
    return rows



def load_face_frames(artifact, recording: str) -> pd.DataFrame:
    """One recording's per-label-frame face table (``time``, ``face``, box, embedding)."""
    return read_table(artifact.file(f"frames/{recording}.parquet"))


def load_clip_table(artifact) -> pd.DataFrame:
    """``clips.csv`` of a clips artifact."""
    return read_table(artifact.file("clips.csv"))


def load_clip_inputs(artifact, clip: str, modalities) -> dict[str, np.ndarray]:
    """One clip's input arrays for the given modalities."""
    with np.load(artifact.file(f"inputs/{clip}.npz")) as stored:
        return {m: stored[m] for m in modalities}


def load_audio_features(artifact, window: Window, recording: str) -> pd.DataFrame:
    """One recording's audio features for one window length (``time`` and the feature set's columns)."""
    return read_table(artifact.file(f"{window.folder}/{recording}.parquet"))
