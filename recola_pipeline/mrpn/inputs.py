"""Clip-level inputs of the MRPN path: 1 s spectrogram segments, and the time augmentation.

Audio (Chang & Skarbek 2021, section 5): the clip is standardised by its own mean and standard
deviation and cut into 1 s segments every 0.2 s (oversampling); each segment becomes a
magnitude spectrogram (Hann window of 512 samples, hop 64: 257 x 251 at 16 kHz), log-compressed.
A reduced setting for CPUs pools the 257 bins into ``n_mels`` mel bands and takes a longer hop
(e.g. 64 x 101 with hop 160), a 10th of the pixels.

eGeMAPS LLD sequences (the third MRPN modality here): openSMILE's 25 eGeMAPS v02 low-level
descriptors, computed every 10 ms and averaged over 40 ms steps (the label rate of the
continuous path; a quarter of the LSTM steps).

Time augmentation (the seed's Fig. 9): during training each clip is cut to a random slice of at
least ``min_s`` seconds, the same span of time in every modality, whatever each modality's
step rate.
"""
from __future__ import annotations

import functools

import librosa
import numpy as np
import opensmile

from ..labels import LABEL_HOP_S

SEGMENT_S, SEGMENT_HOP_S, N_FFT, HOP = 1.0, 0.2, 512, 64
LLD_STEP_S = LABEL_HOP_S


def spectrogram_segments(signal: np.ndarray, rate: int, *, segment_s: float = SEGMENT_S,
                         hop_s: float = SEGMENT_HOP_S, n_mels: int = 0, hop: int = HOP) -> np.ndarray:
    """Log-magnitude spectrograms of the clip's 1 s segments every 0.2 s.

    Parameters
    ----------
    signal : ndarray
        Mono samples; a clip shorter than one segment is zero-padded to one.
    rate : int
    n_mels : int
        0: the 257 linear-frequency bins (the seed's input); otherwise that many mel bands.
    hop : int
        STFT hop in samples (64 in the seed).

    Returns
    -------
    ndarray, shape (n_segments, 1, 257 or n_mels, frames)
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
    magnitude = np.abs(librosa.stft(segments, n_fft=N_FFT, hop_length=hop, window="hann", center=True))
    if n_mels:
        magnitude = np.einsum("mf,sft->smt", librosa.filters.mel(sr=rate, n_fft=N_FFT, n_mels=n_mels), magnitude)
    return np.log1p(magnitude).astype(np.float32)[:, None]


@functools.cache
def _lld_extractor():
    return opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)


def lld_sequence(signal: np.ndarray, rate: int, *, step_s: float = LLD_STEP_S) -> np.ndarray:
    """openSMILE's 25 eGeMAPS v02 LLDs, averaged over ``step_s`` (default 40 ms: 4 of its 10 ms
    frames), (steps, 25) float32; NaN/inf set to 0. The extractor is built once per process.
    """
    values = _lld_extractor().process_signal(np.asarray(signal, dtype=np.float32), rate).to_numpy()
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    group = max(1, int(round(step_s / 0.01)))
    steps = max(1, len(values) // group)
    return values[:steps * group].reshape(steps, group, -1).mean(axis=1).astype(np.float32)





def time_slice(steps_per_s: dict[str, float], lengths: dict[str, int], min_s: float,
               rng: np.random.Generator) -> dict[str, slice]:
    """A random span of at least ``min_s`` seconds, as a slice of each modality's steps.

    Parameters
    ----------
    steps_per_s : dict
        Modality -> steps per second (spectrogram segments: 1 / 0.2 = 5; face frames: the
        sampled frame rate; LLD steps: 1 / 0.04 = 25).
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
    for m in lengths:
        rate = steps_per_s[m]
        first = int(np.floor(start * rate))
        count = max(int(np.ceil(min_s * rate)), int(round(span * rate)))
        first = min(first, max(0, lengths[m] - count))
        out[m] = slice(first, min(lengths[m], first + count))
    return out
def steps_per_second(modalities, face_stride: int) -> dict[str, float]:
    """Steps per second of each clip modality (faces every ``face_stride`` label frames)."""
    rates = {"spectrogram": 1.0 / SEGMENT_HOP_S, "lld": 1.0 / LLD_STEP_S, "face": 1.0 / (LABEL_HOP_S * face_stride)}
    return {m: rates[m] for m in modalities}


