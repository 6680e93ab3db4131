"""One recording's audio features at the label frames: the computation the audio stage stores and
``predict`` applies to new recordings (one code path for both)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..corpora import CorpusError
from ..labels import LABEL_HOP_S
from ..matrices import label_times
from . import AUDIO_FEATURE_SETS
from .windows import align_to_labels


@dataclass
class AudioFeatures:
    """Per window length W, a table with ``time`` (the label frames) and the feature set's columns
    (float32, NaN where a descriptor was not finite); the audio length used and whether it was
    shorter than the label frames (its last full window repeated)."""

    tables: dict[float, pd.DataFrame]
    duration_s: float
    padded: bool
    nonfinite: dict[float, int]


def audio_features(signal: np.ndarray, sample_rate: int, feature_set: str, windows_s, n_frames: int,
                   *, source: str = "audio") -> AudioFeatures:
    """Windowed functionals of ``signal`` (mono, at ``sample_rate``) for label frames 0 ... n_frames - 1.

    Audio past the last label frame plus half the longest window is not used.

    Raises
    ------
    CorpusError
        The audio (named by ``source``) is shorter than the shortest window, or has no full
        window of some length.
    """
    windows = [float(w) for w in windows_s]
    span = (n_frames - 1) * LABEL_HOP_S + max(windows) / 2
    signal = signal[:int(round(span * sample_rate))]
    duration = signal.size / sample_rate
    if duration < min(windows):
        raise CorpusError(f"{source}: {duration:.2f} s of audio is shorter than the shortest window "
                          f"({min(windows)} s); drop the recording or use shorter audio.windows_s")
    extractor = AUDIO_FEATURE_SETS[feature_set]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_window = extractor.windowed_functionals(signal, sample_rate, windows)
    time = label_times(n_frames)
    tables, nonfinite = {}, {}
    for w, values in per_window.items():
        if len(values) == 0:
            raise CorpusError(f"{source}: {duration:.2f} s of audio has no full {w} s window; "
                              "drop the recording or remove that window length")
        aligned = align_to_labels(values, w, n_frames).astype(np.float32)
        bad = ~np.isfinite(aligned)
        nonfinite[w] = int(bad.sum())
        aligned[bad] = np.nan
        table = pd.DataFrame(aligned, columns=extractor.feature_names())
        table.insert(0, "time", time)
        tables[w] = table
    return AudioFeatures(tables, duration, duration < (n_frames - 1) * LABEL_HOP_S - 1e-6, nonfinite)
