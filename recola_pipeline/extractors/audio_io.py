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


def audio_duration(path: Path) -> float:
    """Check an audio file end to end and return its duration in seconds.

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
            raise CorpusError(f"{path}: the audio file is empty (0 samples); replace it")
        peak = 0.0
        for block in sf.blocks(str(path), blocksize=1 << 18, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise CorpusError(f"{path}: the audio contains NaN or infinite samples; re-export it")
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorpusError(f"{path}: cannot read audio ({exc}); replace the file or convert it to WAV") from None
    if peak == 0.0:
        raise CorpusError(f"{path}: the audio is digital silence; check the recording or leave it out")
    return info.frames / info.samplerate



def load_audio(path, sample_rate: int) -> np.ndarray:
    """Read ``path`` (checked by the data stage) as mono float at ``sample_rate``."""
    try:
        signal, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:  # e.g. replaced since the data stage read it
        raise CorpusError(f"{path}: cannot read audio ({exc}); replace the file or convert it to WAV") from None
    signal = signal.mean(axis=1)
    if rate != sample_rate:
        signal = soxr.resample(signal, rate, sample_rate)
    return signal
