"""Mapping sliding-window features onto the 40 ms label frames (the window convention of docs/ARCHITECTURE.md).

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


def trailing_from_centred(values: np.ndarray, window_s: float, hop_s: float = LABEL_HOP_S) -> np.ndarray:
    """Causal features of one recording from its centred ones: label frame t takes the window that ends at t.

    The centred table (:func:`align_to_labels`) gives frame c the window ``[c hop - W/2, c hop + W/2]``,
    so the window ending at frame t is the centred row ``t - W / (2 hop)``. The first ``W / hop``
    frames have no full window in the past: their rows are NaN (as a frame without a face), which the
    normalisation maps to 0, so a causal system predicts a constant there (docs/live.md).

    Parameters
    ----------
    values : ndarray, shape (n_frames, n_features)
        One recording's centred features.
    window_s : float

    Returns
    -------
    ndarray, shape (n_frames, n_features), float

    Examples
    --------
    >>> trailing_from_centred(np.arange(6.0)[:, None], 0.16, 0.04)[:, 0].tolist()
    [nan, nan, nan, nan, 2.0, 3.0]
    """
    values = np.asarray(values, dtype=float)
    offset = centre_offset(window_s, hop_s)
    out = np.full(values.shape, np.nan)
    out[2 * offset:] = values[offset:len(values) - offset]
    return out


def windowed_mean_std(values: np.ndarray, window_s: float, hop_s: float = LABEL_HOP_S
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation over centred W-second windows of a per-label-frame sequence.

    Rows that contain NaN (frames without a face) are left out of their windows; a window without
    any finite row gives NaN. pandas' rolling moments do the sums (numerically stable online
    updates, so a constant window has a standard deviation of exactly 0). Windows follow the
    convention (docs/ARCHITECTURE.md) of :func:`align_to_labels` (the full window of ``W / hop``
    frames whose centre is the label frame, first/last full window repeated).

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


def strided_moments(frames: np.ndarray, window_frames: int, step_frames: int, n_windows: int | None = None,
                    used: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and population std of the rows of every window of ``window_frames`` rows.

    Window k holds rows ``k * step_frames`` up to (not including) ``k * step_frames + window_frames``,
    clipped at the end of ``frames``. All windows come at once from cumulative sums of the values
    centred on their column means (better-conditioned sums of squares), so a window costs the
    same whatever its length. A window whose variance is below the rounding error of those sums
    (1e-9 of its column's variance) is constant: its std is exactly 0 and its mean is its value
    (so, e.g., a window of zeros has mean 0, not a rounding residue).

    Parameters
    ----------
    frames : ndarray, shape (n_rows, n_columns)
    window_frames, step_frames : int
    n_windows : int, optional
        Number of windows; default: the windows that lie inside ``frames``.
    used : ndarray of bool, shape (n_rows, n_columns), optional
        Values to include (e.g. the non-zero ones); default: all.

    Returns
    -------
    count, mean, std : ndarray, shape (n_windows, n_columns)
        A window without any used value has count 0 and NaN mean and std.

    Examples
    --------
    >>> x = np.array([[1.], [0.], [3.], [5.]])
    >>> count, mean, std = strided_moments(x, 2, 1, used=x != 0)
    >>> count[:, 0].tolist(), mean[:, 0].tolist(), std[:, 0].tolist()
    ([1.0, 1.0, 2.0], [1.0, 3.0, 4.0], [0.0, 0.0, 1.0])
    """
    frames = np.asarray(frames, dtype=float)
    n_rows, n_columns = frames.shape
    if n_windows is None:
        n_windows = max((n_rows - window_frames) // step_frames + 1, 0)
    used = np.ones(frames.shape, dtype=bool) if used is None else used
    counts = used.sum(axis=0)
    centre = np.where(used, frames, 0.0).sum(axis=0) / np.maximum(counts, 1)
    centred = np.where(used, frames - centre, 0.0)
    column_variance = (centred ** 2).sum(axis=0) / np.maximum(counts, 1)
    starts = np.minimum(np.arange(n_windows) * step_frames, n_rows)
    ends = np.minimum(starts + window_frames, n_rows)

    def window_sums(values):
        cumulative = np.zeros((n_rows + 1, n_columns))
        np.cumsum(values, axis=0, out=cumulative[1:])  # in place: no second copy of a long recording's sums
        return cumulative[ends] - cumulative[starts]

    count = window_sums(used.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = window_sums(centred) / count + centre
        variance = window_sums(centred ** 2) / count - (mean - centre) ** 2
    constant = (variance <= 1e-9 * column_variance) & (count > 0)
    rows, columns = np.nonzero(constant)
    if rows.size:  # the last used row before each window's end holds the value of a constant window
        last_used = np.maximum.accumulate(np.where(used, np.arange(n_rows)[:, None], 0), axis=0)
        mean[rows, columns] = frames[last_used[ends[rows] - 1, columns], columns]
    return count, mean, np.sqrt(np.where(constant, 0.0, variance))


#: windows sorted at once by :func:`strided_percentiles` (bounds its memory to about 25 MB for 8 s windows)
PERCENTILE_BLOCK_WINDOWS = 4096


def strided_percentiles(values: np.ndarray, window_frames: int, step_frames: int, n_windows: int,
                        probabilities, used: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolated percentiles of every window of a float32 sequence, in float32.

    Window k holds values ``k * step_frames`` up to (not including) ``k * step_frames +
    window_frames``, clipped at the end of ``values``, as in :func:`strided_moments`. Of the ``n``
    used values of a window, sorted, percentile ``p`` interpolates between the order statistics
    ``floor(p (n - 1))`` and ``ceil(p (n - 1))`` (numpy's 'linear' method), with openSMILE's
    float32 arithmetic ``s[i1] * w2 + s[i2] * w1`` (``w1 = p (n - 1) - i1``, ``w2 = i2 - p (n - 1)``),
    so that the result is bit-identical to its ``cFunctionalPercentiles`` with ``interp = 1``.
    Windows are sorted in blocks of :data:`PERCENTILE_BLOCK_WINDOWS` (numpy's vectorised sort).

    Parameters
    ----------
    values : ndarray, shape (n_rows,)
    window_frames, step_frames, n_windows : int
    probabilities : sequence of float
        Each in [0, 1].
    used : ndarray of bool, shape (n_rows,), optional
        Values to include (e.g. the non-zero ones); default: all.

    Returns
    -------
    count : ndarray of int, shape (n_windows,)
        Used values per window.
    percentiles : ndarray of float32, shape (n_windows, len(probabilities))
        0 for a window without a used value.

    Examples
    --------
    >>> x = np.array([4., 0., 1., 3., 2.])
    >>> count, p = strided_percentiles(x, 4, 1, 2, [0.25, 0.5, 1.0], used=x != 0)
    >>> count.tolist(), p.tolist()
    ([3, 3], [[2.0, 3.0, 4.0], [1.5, 2.0, 3.0]])
    """
    values = np.asarray(values, dtype=np.float32)
    used = np.ones(values.shape, dtype=bool) if used is None else np.asarray(used, dtype=bool)
    # unused values and the padding past the end sort last, behind every used value
    keys = np.concatenate([np.where(used, values, np.float32(np.inf)), np.full(window_frames, np.inf, np.float32)])
    starts = np.minimum(np.arange(n_windows) * step_frames, values.size)
    cumulative = np.concatenate([[0], np.cumsum(used)])
    count = cumulative[np.minimum(starts + window_frames, values.size)] - cumulative[starts]
    windows = np.lib.stride_tricks.sliding_window_view(keys, window_frames)
    percentiles = np.zeros((n_windows, len(probabilities)), dtype=np.float32)
    for first in range(0, n_windows, PERCENTILE_BLOCK_WINDOWS):
        block = slice(first, min(first + PERCENTILE_BLOCK_WINDOWS, n_windows))
        ordered = np.sort(windows[starts[block]], axis=1)
        n = count[block]
        rows = np.arange(len(n))
        for j, p in enumerate(probabilities):
            position = float(p) * (n - 1).astype(float)
            i1 = np.clip(np.floor(position).astype(int), 0, np.maximum(n - 1, 0))
            i2 = np.clip(np.ceil(position).astype(int), 0, np.maximum(n - 1, 0))
            low, high = ordered[rows, i1], ordered[rows, i2]
            with np.errstate(invalid="ignore"):  # windows without a used value: inf * 0, replaced below
                interpolated = low * (i2 - position).astype(np.float32) + high * (position - i1).astype(np.float32)
            percentiles[block, j] = np.where(n == 0, np.float32(0), np.where(i1 == i2, low, interpolated))
    return count, percentiles
