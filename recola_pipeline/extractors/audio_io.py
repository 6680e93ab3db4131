"""Reading audio files: an end-to-end check (before any feature is extracted) and mono at a rate."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..corpora import CorpusError

log = logging.getLogger(__name__)


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


#: the largest sample a real recording can hold: 40 dB above full scale (1.0). A float file
#: written at integer scale peaks near 32768; 1e30 is no recording at all
MAX_PEAK = 100.0
#: a sample this close to full scale counts as clipped
CLIP_LEVEL = 0.999
#: the share of clipped samples above which a recording gets a warning
CLIP_SHARE = 0.001
#: decoded audio shorter than the container states by more than this (seconds and share) is cut
TRUNCATION_S, TRUNCATION_SHARE = 0.5, 0.02


@dataclass
class AudioScan:
    """What one pass over a recording's samples found: their count, peak, and the samples
    beyond full scale (``|x| > 1``) or clipped (at full scale: ``CLIP_LEVEL <= |x| <= 1``)."""

    samples: int = 0
    peak: float = 0.0
    beyond: int = 0
    clipped: int = 0

    def add(self, path, block: np.ndarray) -> None:
        """Count one block of samples (all channels); raise on a NaN or infinite sample."""
        if not np.isfinite(block).all():
            raise CorpusError(f"{path}: the audio contains NaN or infinite samples; re-export it")
        magnitude = np.abs(block)
        self.samples += len(block)
        self.peak = max(self.peak, float(magnitude.max(initial=0.0)))
        self.beyond += int((magnitude > 1.0).any(axis=-1).sum())
        self.clipped += int(((magnitude >= CLIP_LEVEL) & (magnitude <= 1.0)).any(axis=-1).sum())

    def warnings(self, path, stated_frames: int, rate: float) -> list[str]:
        """Check the whole recording; return its warnings.

        Raises
        ------
        CorpusError
            Empty, digitally silent, non-physical amplitudes, or decoded audio shorter than the
            container states (a cut copy).
        """
        if self.samples == 0:
            raise CorpusError(f"{path}: the audio file is empty (0 samples); replace it")
        if self.peak == 0.0:
            raise CorpusError(f"{path}: the audio is digital silence; check the recording or leave it out")
        if self.peak > MAX_PEAK:
            raise CorpusError(f"{path}: samples reach {self.peak:.3g}, far beyond full scale (1.0): not a recording's "
                              "amplitude (a float file written at integer scale?). Rescale it to [-1, 1] and re-export")
        missing_s = (stated_frames - self.samples) / rate
        if missing_s > TRUNCATION_S and missing_s > TRUNCATION_SHARE * stated_frames / rate:
            raise CorpusError(f"{path}: truncated: its header states {stated_frames / rate:.2f} s but only "
                              f"{self.samples / rate:.2f} s of audio decode; copy the file again (if it plays in full "
                              "elsewhere, its header misstates the length: convert it to WAV)")
        messages = []
        if self.beyond:
            messages.append(f"{path}: {self.beyond / self.samples:.2%} of its samples are beyond full scale (peak "
                            f"{self.peak:.3g}); features are computed from them as they are, but check the gain")
        if self.clipped > CLIP_SHARE * self.samples:
            messages.append(f"{path}: {self.clipped / self.samples:.2%} of its samples are at full scale (clipped); "
                            "loudness and spectral features of the clipped parts are distorted")
        return messages


def _unreadable(path, exc: Exception) -> CorpusError:
    return CorpusError(f"{path}: cannot read audio ({exc}); replace the file or convert it to WAV")


def check_audio(path: Path) -> tuple[float, list[str]]:
    """Check an audio file end to end; return its duration in seconds and its warnings.

    The file is read in blocks (a corpus's long recordings are not held in memory).

    Raises
    ------
    CorpusError
        Naming the file: unreadable, truncated (a WAV data chunk or decoded audio shorter than
        the header states), empty, non-finite, non-physical (beyond :data:`MAX_PEAK`) or
        digitally silent audio (checked here, before any feature is extracted, so bad input
        never leaves partial artifacts).
    """
    scan = AudioScan()
    try:
        info = sf.info(str(path))
        check_wav_complete(Path(path))
        with sf.SoundFile(str(path)) as handle:  # read to the end of what decodes (sf.blocks pads to the header's length)
            while len(block := handle.read(1 << 18, dtype="float32", always_2d=True)):
                scan.add(path, block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None
    return scan.samples / info.samplerate, scan.warnings(path, info.frames, info.samplerate)


def load_audio(path, sample_rate: int) -> np.ndarray:
    """Read ``path`` (checked by the data stage) as mono float at ``sample_rate``."""
    try:
        signal, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:  # e.g. replaced since the data stage read it
        raise _unreadable(path, exc) from None
    return _mono_at(signal, rate, sample_rate)


def mono_blocks(path, sample_rate: int, *, limit: int | None = None, block_frames: int = 1 << 20):
    """A file's audio as mono float at ``sample_rate``, in blocks: the same samples as
    :func:`load_audio`, without holding the file in memory (soxr's stream resampler gives the
    one-shot resampler's samples, whatever the block size).

    Parameters
    ----------
    path : str or Path
    sample_rate : int
    limit : int, optional
        Stop after this many output samples.
    block_frames : int
        Frames read from the file at a time.

    Yields
    ------
    ndarray
    """
    produced = 0
    try:
        with sf.SoundFile(str(path)) as handle:
            resampler = (soxr.ResampleStream(handle.samplerate, sample_rate, 1, dtype="float64")
                         if handle.samplerate != sample_rate else None)
            while limit is None or produced < limit:
                block = handle.read(block_frames, dtype="float64", always_2d=True)
                last = len(block) < block_frames
                mono = block.mean(axis=1)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                mono = mono if limit is None else mono[:limit - produced]
                produced += mono.size
                if mono.size:
                    yield mono
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None


def _mono_at(signal: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    signal = signal.mean(axis=1)
    return soxr.resample(signal, rate, sample_rate) if rate != sample_rate else signal
