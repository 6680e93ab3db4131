"""Mapping sliding-window features onto the 40 ms label frames (DESIGN §3 window convention).

A window of W seconds starting at ``k * hop`` is centred at ``k * hop + W / 2``, so it belongs
to label frame ``k + W / (2 hop)``. Label frames before the first full window's centre (t < W/2)
take the first full window (repeated backwards); frames after the last full window's centre take
the last one (repeated forwards).
"""
from __future__ import annotations

import numpy as np

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
