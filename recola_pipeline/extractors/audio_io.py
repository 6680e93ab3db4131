"""Reading audio files: an end-to-end check (before any feature is extracted) and mono at a rate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..corpora import CorpusError


def check_wav_complete(path: Path) -> None:
    """Raise when a WAV file's ``data`` chunk declares more bytes than the file holds (a cut copy)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"data":
            held = path.stat().st_size - (pos + 8)
            if size != 0xFFFFFFFF and held < size:
                raise CorpusError(f"{path}: truncated: the WAV header declares {size} bytes of audio but the file "
                                  f"holds {held}; copy the file again from the corpus release")
            return
        pos += 8 + size + (size & 1)


def _checked_peak(path, samples: np.ndarray) -> float:
    """The largest absolute sample; raise when a sample is NaN or infinite."""
    if not np.isfinite(samples).all():
        raise CorpusError(f"{path}: the audio contains NaN or infinite samples; re-export it")
    return float(np.abs(samples).max(initial=0.0))


def _unreadable(path, exc: Exception) -> CorpusError:
    return CorpusError(f"{path}: cannot read audio ({exc}); replace the file or convert it to WAV")


def _empty(path) -> CorpusError:
    return CorpusError(f"{path}: the audio file is empty (0 samples); replace it")


def _silent(path) -> CorpusError:
    return CorpusError(f"{path}: the audio is digital silence; check the recording or leave it out")


def audio_duration(path: Path) -> float:
    """Check an audio file end to end and return its duration in seconds.

    The file is read in blocks (a corpus's long recordings are not held in memory).

    Raises
    ------
    CorpusError
        Naming the file: unreadable, truncated, empty, non-finite or digitally silent audio
        (checked here, before any feature is extracted, so bad input never leaves partial artifacts).
    """
    try:
        info = sf.info(str(path))
        check_wav_complete(Path(path))
        if info.frames == 0:
            raise _empty(path)
        peak = 0.0
        for block in sf.blocks(str(path), blocksize=1 << 18, dtype="float32", always_2d=True):
            peak = max(peak, _checked_peak(path, block))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None
    if peak == 0.0:
        raise _silent(path)
    return info.frames / info.samplerate


def load_checked_audio(path, sample_rate: int) -> tuple[np.ndarray, float]:
    """Check an audio file as :func:`audio_duration` does and read it, in one pass over the file.

    Returns
    -------
    signal : ndarray
        Mono float at ``sample_rate``.
    duration_s : float
        The file's duration.

    Raises
    ------
    CorpusError
        As :func:`audio_duration`.
    """
    try:
        check_wav_complete(Path(path))
        signal, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None
    if len(signal) == 0:
        raise _empty(path)
    if _checked_peak(path, signal) == 0.0:
        raise _silent(path)
    return _mono_at(signal, rate, sample_rate), len(signal) / rate


def load_audio(path, sample_rate: int) -> np.ndarray:
    """Read ``path`` (checked by the data stage) as mono float at ``sample_rate``."""
    try:
        signal, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:  # e.g. replaced since the data stage read it
        raise _unreadable(path, exc) from None
    return _mono_at(signal, rate, sample_rate)


def _mono_at(signal: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    signal = signal.mean(axis=1)
    return soxr.resample(signal, rate, sample_rate) if rate != sample_rate else signal
