"""Mapping sliding-window features onto the 40 ms label frames (DESIGN §3 window convention).

A window of W seconds starting at ``k * hop`` is centred at ``k * hop + W / 2``, so it belongs
to label frame ``k + W / (2 hop)``. Label frames before the first full window's centre (t < W/2)
take the first full window (repeated backwards); frames after the last full window's centre take
the last one (repeated forwards).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..labels import LABEL_HOP_S


def centre_offset(window_s: float, hop_s: float = LABEL_HOP_S) -> int:
    """Label frames between a window's start and its centre; W/2 must be a whole number of hops."""
    offset = window_s / 2 / hop_s
    if abs(offset - round(offset)) > 1e-6:
        raise ValueError(f"window {window_s} s: W/2 must be a multiple of the {hop_s * 1000:.0f} ms label hop "
                         f"so that windows are centred on label frames (e.g. 4, 6, 8 s)")
    return int(round(offset))


def align_to_labels(values: np.ndarray, window_s: float, n_frames: int, hop_s: float = LABEL_HOP_S) -> np.ndarray:
    """Rows of per-window features (row k = window starting at k * hop) -> one row per label frame.

    Parameters
    ----------
    values : ndarray, shape (n_windows, n_features)
    window_s : float
    n_frames : int
        Number of label frames (frame i at t = i * hop).

    Returns
    -------
    ndarray, shape (n_frames, n_features)
    """
    if len(values) == 0:
        raise ValueError(f"no full {window_s} s window: the recording is shorter than the window")
    index = np.clip(np.arange(n_frames) - centre_offset(window_s, hop_s), 0, len(values) - 1)
    return values[index]


def windowed_mean_std(values: np.ndarray, window_s: float, hop_s: float = LABEL_HOP_S
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation over centred W-second windows of a per-label-frame sequence.

    Rows that contain NaN (frames without a face) are left out of their windows; a window without
    any finite row gives NaN. pandas' rolling moments do the sums (numerically stable online
    updates, so a constant window has a standard deviation of exactly 0). Windows follow the DESIGN §3 convention of
    :func:`align_to_labels` (the full window of ``W / hop`` frames whose centre is the label
    frame, first/last full window repeated).

    Parameters
    ----------
    values : ndarray, shape (n_frames, n_features)
    window_s : float

    Returns
    -------
    mean, std : ndarray, shape (n_frames, n_features)
        Population standard deviation.
    fraction : ndarray, shape (n_frames,)
        Share of each window's frames that are finite.

    Examples
    --------
    >>> x = np.array([[0.], [2.], [np.nan], [4.], [6.], [8.]])
    >>> mean, std, fraction = windowed_mean_std(x, 0.16, 0.04)
    >>> mean[:, 0].tolist(), fraction.tolist()
    ([2.0, 2.0, 2.0, 4.0, 6.0, 6.0], [0.75, 0.75, 0.75, 0.75, 0.75, 0.75])
    """
    values = np.asarray(values, dtype=float)
    n_frames = len(values)
    length = 2 * centre_offset(window_s, hop_s)
    if n_frames < length:
        raise ValueError(f"no full {window_s} s window: {n_frames} frames are fewer than {length}")
    finite = np.isfinite(values).all(axis=1)
    frame = pd.DataFrame(np.where(finite[:, None], values, np.nan))
    rolling = frame.rolling(length, min_periods=1)  # row i: the window of frames i - length + 1 ... i
    full = slice(length - 1, None)  # windows that lie inside the recording, by start frame
    mean = rolling.mean().to_numpy()[full]
    std = rolling.std(ddof=0).to_numpy()[full]
    fraction = pd.Series(finite.astype(float)).rolling(length).mean().to_numpy()[full]
    return (align_to_labels(mean, window_s, n_frames, hop_s), align_to_labels(std, window_s, n_frames, hop_s),
            align_to_labels(fraction, window_s, n_frames, hop_s))
