"""Clip-level inputs of the MRPN path: 1 s spectrogram segments, and the time augmentation.

Audio (Chang & Skarbek 2021, section 5): the clip is standardised by its own mean and standard
deviation and cut into 1 s segments every 0.2 s (oversampling); each segment becomes a
magnitude spectrogram (Hann window of 512 samples, hop 64: 257 x 251 at 16 kHz), log-compressed.

Time augmentation (the seed's Fig. 9): during training each clip is cut to a random slice of at
least ``min_s`` seconds, the same span of time in every modality, whatever each modality's
step rate.
"""
from __future__ import annotations

import librosa
import numpy as np

SEGMENT_S, SEGMENT_HOP_S, N_FFT, HOP = 1.0, 0.2, 512, 64


def spectrogram_segments(signal: np.ndarray, rate: int, *, segment_s: float = SEGMENT_S,
                         hop_s: float = SEGMENT_HOP_S) -> np.ndarray:
    """Log-magnitude spectrograms of the clip's 1 s segments every 0.2 s.

    Parameters
    ----------
    signal : ndarray
        Mono samples; a clip shorter than one segment is zero-padded to one.
    rate : int

    Returns
    -------
    ndarray, shape (n_segments, 1, 257, frames)
        float32; segment i starts at ``i * hop_s``.

    Raises
    ------
    ValueError
        Silent (constant) clips, which cannot be standardised.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.size == 0 or signal.std() == 0:
        raise ValueError("the clip is empty or silent: it cannot be standardised")
    signal = (signal - signal.mean()) / signal.std()
    length, step = int(round(segment_s * rate)), int(round(hop_s * rate))
    if signal.size < length:
        signal = np.pad(signal, (0, length - signal.size))
    starts = range(0, signal.size - length + 1, step)
    segments = np.stack([signal[s:s + length] for s in starts])
    magnitude = np.abs(librosa.stft(segments, n_fft=N_FFT, hop_length=HOP, window="hann", center=True))
    return np.log1p(magnitude).astype(np.float32)[:, None]


def time_slice(steps_per_s: dict[str, float], lengths: dict[str, int], min_s: float,
               rng: np.random.Generator) -> dict[str, slice]:
    """A random span of at least ``min_s`` seconds, as a slice of each modality's steps.

    Parameters
    ----------
    steps_per_s : dict
        Modality -> steps per second (spectrogram segments: 1 / 0.2 = 5; face frames: the
        sampled frame rate; LLD frames: 100).
    lengths : dict
        Modality -> number of steps of this clip.
    min_s : float
        Shortest span; a clip no longer than that is returned whole.

    Examples
    --------
    >>> spans = time_slice({"audio": 5.0, "video": 25.0}, {"audio": 16, "video": 100}, 1.0,
    ...                    np.random.default_rng(0))
    >>> a, v = spans["audio"], spans["video"]
    >>> abs(a.start / 5.0 - v.start / 25.0) < 0.2 and (a.stop - a.start) / 5.0 >= 1.0
    True
    """
    duration = min(lengths[m] / steps_per_s[m] for m in lengths)
    if duration <= min_s:
        return {m: slice(0, lengths[m]) for m in lengths}
    span = rng.uniform(min_s, duration)
    start = rng.uniform(0.0, duration - span)
    out = {}
    for m, rate in steps_per_s.items():
        first = int(np.floor(start * rate))
        count = max(int(np.ceil(min_s * rate)), int(round(span * rate)))
        first = min(first, max(0, lengths[m] - count))
        out[m] = slice(first, min(lengths[m], first + count))
    return out
