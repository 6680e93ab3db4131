"""One recording's audio features at the label frames: the computation the audio stage stores and
``predict`` applies to new recordings (one code path for both)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import soundfile as sf

from ..corpora import CorpusError
from ..labels import LABEL_HOP_S
from ..matrices import label_times
from . import AUDIO_FEATURE_SETS
from .audio_io import mono_blocks
from .pieces import pieces
from ..window import Window
from .windows import on_label_frames

#: seconds of audio a long recording is processed in (see :mod:`~recola_pipeline.extractors.pieces`)
PIECE_S = 600
#: seconds of audio before and after each piece's kept span that its LLDs see (pitch tracking,
#: smoothing); 5 s is far above what eGeMAPS' Viterbi smoother (0.4 s) and sma filters look at
PIECE_CONTEXT_S = 5


@dataclass
class AudioFeatures:
    """Per window length W, a table with ``time`` (the label frames) and the feature set's columns
    (float32, NaN where a descriptor was not finite); the audio length used and whether it was
    shorter than the label frames (its last full window repeated)."""

    tables: dict[Window, pd.DataFrame]
    duration_s: float
    padded: bool
    nonfinite: dict[Window, int]


def audio_features(signal: np.ndarray, sample_rate: int, feature_set: str, windows: list[Window], n_frames: int,
                   *, source: str = "audio") -> AudioFeatures:
    """Windowed functionals of ``signal`` (mono, at ``sample_rate``) for label frames 0 ... n_frames - 1.

    Audio past the last label frame plus half the longest window is not used.

    Raises
    ------
    CorpusError
        The audio (named by ``source``) is shorter than the shortest window, or has no full
        window of some length.
    ValueError
        The feature set steps its windows at another hop than the label frames'.
    """
    extractor = _feature_set(feature_set)
    span = (n_frames - 1) * LABEL_HOP_S + max(windows).seconds / 2
    signal = signal[:int(round(span * sample_rate))]
    duration = signal.size / sample_rate
    _check_long_enough(source, duration, windows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_window = extractor.windowed_functionals(signal, sample_rate, windows)
    return _aligned(per_window, extractor, n_frames, duration, source)


def audio_features_of_file(path, sample_rate: int, feature_set: str, windows: list[Window], n_frames: int, *,
                           piece_s: int = PIECE_S) -> AudioFeatures:
    """:func:`audio_features` of an audio file, holding at most about ``piece_s`` seconds of its
    audio at a time when the feature set computes from pieces (openSMILE's sets; the result is
    identical to that of the whole signal). Other feature sets read the whole file.

    Raises
    ------
    CorpusError
        As :func:`audio_features`, or the file cannot be read.
    """
    extractor = _feature_set(feature_set)
    limit = int(round(((n_frames - 1) * LABEL_HOP_S + max(windows).seconds / 2) * sample_rate))
    blocks = mono_blocks(path, sample_rate, limit=limit)
    if not hasattr(extractor, "windowed_functionals_of_pieces"):
        return audio_features(np.concatenate(list(blocks)), sample_rate, feature_set, windows, n_frames,
                              source=str(path))
    info = sf.info(str(path))
    duration = min(limit / sample_rate, info.frames / info.samplerate)  # to a sample: the pieces give the exact one
    _check_long_enough(str(path), duration, windows)
    parts = pieces(blocks, sample_rate, piece_s=piece_s, context_s=PIECE_CONTEXT_S,
                   lookahead_s=int(np.ceil(max(windows).seconds)) + PIECE_CONTEXT_S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_window = extractor.windowed_functionals_of_pieces(parts, sample_rate, windows)
    return _aligned(per_window, extractor, n_frames, duration, str(path))


def _feature_set(name: str):
    """The registered feature set, checked to step its windows at the label hop."""
    extractor = AUDIO_FEATURE_SETS[name]
    if abs(extractor.hop_dur - LABEL_HOP_S) > 1e-9:
        raise ValueError(f"audio feature set {name!r} steps its windows every {extractor.hop_dur:g} s; the label "
                         f"frames are {LABEL_HOP_S:g} s apart, so its hop_dur must be {LABEL_HOP_S:g}")
    return extractor


def _check_long_enough(source: str, duration: float, windows: list[Window]) -> None:
    if duration < min(windows).seconds:
        raise CorpusError(f"{source}: {duration:.2f} s of audio is shorter than the shortest window "
                          f"({min(windows).seconds} s); drop the recording or use shorter audio.windows_s")


def _aligned(per_window: dict, extractor, n_frames: int, duration: float, source: str) -> AudioFeatures:
    """Per W, the windows' time-indexed functionals placed on the label frames, as a table with ``time``."""
    time = label_times(n_frames)
    tables, nonfinite = {}, {}
    for w, frames in per_window.items():
        if len(frames) == 0:
            raise CorpusError(f"{source}: {duration:.2f} s of audio has no full {w.seconds} s window; "
                              "drop the recording or remove that window length")
        aligned = on_label_frames(frames, w, n_frames, source).astype(np.float32)
        bad = ~np.isfinite(aligned)
        nonfinite[w] = int(bad.sum())
        aligned[bad] = np.nan
        table = pd.DataFrame(aligned, columns=extractor.feature_names())
        table.insert(0, "time", time)
        tables[w] = table
    return AudioFeatures(tables, duration, duration < (n_frames - 1) * LABEL_HOP_S - 1e-6, nonfinite)
