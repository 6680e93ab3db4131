"""A librosa feature set: frame descriptors at 10 ms, mean and std over sliding W-second windows.

Descriptors (25 ms frames, 10 ms hop, no centring: frame j starts at ``j * 0.01`` s): 13 MFCCs,
40 log-mel bands, spectral centroid, spectral flux (positive log-mel differences summed over
bands), spectral roll-off (85 %), RMS energy, zero-crossing rate and F0 from ``librosa.yin``
(60 - 500 Hz). Window k covers the descriptor frames starting in ``[k * 0.04, k * 0.04 + W)``,
the same windows as the eGeMAPS set; means and standard deviations (population) are computed
for all windows at once from cumulative sums.
"""
from __future__ import annotations

import functools

import librosa
import numpy as np
import pandas as pd

from ..labels import LABEL_HOP_S
from ..window import Window
from .windows import strided_moments, time_indexed

FRAME_HOP_S = 0.01
FRAME_LENGTH_S = 0.025
description = "librosa descriptors"
libraries = ("librosa", "soxr")
#: seconds between consecutive windows (those of every length W start at 0, 0.04, 0.08, ...)
hop_dur = LABEL_HOP_S
N_MFCC, N_MELS = 13, 40


@functools.lru_cache(maxsize=None)
def descriptor_names() -> list[str]:
    """Names of the frame descriptors, in column order."""
    return ([f"mfcc{i + 1}" for i in range(N_MFCC)] + [f"logmel{i + 1}" for i in range(N_MELS)]
            + ["spectral_centroid", "spectral_flux", "spectral_rolloff", "rms", "zcr", "f0_yin"])


def feature_names() -> list[str]:
    """Window functional names: ``<descriptor>_mean`` and ``<descriptor>_std``."""
    return [f"{name}_{stat}" for name in descriptor_names() for stat in ("mean", "std")]


def descriptors(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frame descriptors, shape (n_frames, n_descriptors)."""
    hop = int(round(FRAME_HOP_S * sample_rate))
    length = int(round(FRAME_LENGTH_S * sample_rate))
    n_fft = 1 << (length - 1).bit_length()
    yin_length = max(n_fft, 1024)
    n_frames = (len(signal) - length) // hop + 1  # 25 ms frames that fit in the signal
    # zeros after the end let the longer STFT and YIN frames start wherever a 25 ms frame starts
    y = np.concatenate([np.asarray(signal, dtype=np.float32), np.zeros(yin_length - length, dtype=np.float32)])
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, win_length=length, center=False)) ** 2
    mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=N_MELS))
    mfcc = librosa.feature.mfcc(S=mel, n_mfcc=N_MFCC)
    flux = np.concatenate([[0.0], np.maximum(np.diff(mel, axis=1), 0).sum(axis=0)])
    columns = [
        mfcc, mel,
        librosa.feature.spectral_centroid(S=np.sqrt(power), sr=sample_rate),
        flux[None, :],
        librosa.feature.spectral_rolloff(S=np.sqrt(power), sr=sample_rate, roll_percent=0.85),
        librosa.feature.rms(S=np.sqrt(power), frame_length=n_fft),
        librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop, center=False),
        librosa.yin(y, fmin=60, fmax=500, sr=sample_rate, frame_length=yin_length, hop_length=hop,
                    center=False)[None, :],
    ]
    return np.vstack([c[:, :n_frames] for c in columns]).T.astype(float)


def window_mean_std(frames: np.ndarray, window_frames: int, step_frames: int) -> np.ndarray:
    """Mean and population std of every window of ``window_frames`` rows, every ``step_frames`` rows.

    Returns an array of shape (n_windows, 2 * n_columns) with mean and std interleaved per column.
    """
    _, mean, std = strided_moments(frames, window_frames, step_frames)
    out = np.empty((len(mean), 2 * frames.shape[1]))
    out[:, 0::2] = mean
    out[:, 1::2] = std
    return out


def windowed_functionals(signal: np.ndarray, sample_rate: int, windows: list[Window]) -> dict[Window, pd.DataFrame]:
    """Mean/std functionals of every full window of each length at a 40 ms step (the windows start at
    0, 0.04, ... s), indexed by their centre time."""
    frames = descriptors(signal, sample_rate)
    step = int(round(hop_dur / FRAME_HOP_S))
    return {w: time_indexed(window_mean_std(frames, int(round(w.seconds / FRAME_HOP_S)), step), w, feature_names())
            for w in windows}
