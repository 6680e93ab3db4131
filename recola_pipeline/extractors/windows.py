"""Sliding windows: a feature set's frames indexed by time and placed on the label frames, moments and
percentiles of every window at once, and the mean and standard deviation of per-label-frame
sequences over centred windows (the convention of :class:`~recola_pipeline.window.Window`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..labels import LABEL_HOP_S
from ..window import Window


def time_indexed(values: np.ndarray, window: Window, columns) -> pd.DataFrame:
    """Per-window rows (row k: the window starting at ``k * hop``) as frames indexed by time: the
    index ``time`` is each window's centre in seconds, the form a feature set returns.

    Examples
    --------
    >>> time_indexed(np.zeros((3, 1)), Window(0.16), ["x"]).index.tolist()
    [0.08, 0.12, 0.16]
    """
    return pd.DataFrame(values, index=pd.Index(window.centres(len(values)), name="time"), columns=list(columns))


def on_label_frames(frames: pd.DataFrame, window: Window, n_frames: int, source: str) -> np.ndarray:
    """A feature set's time-indexed frames of one window length, one row per label frame.

    The frames must be the full windows at the label hop, in order, the first centred at W / 2
    (``frames.index`` = :meth:`Window.centres <recola_pipeline.window.Window.centres>`); each label
    frame takes the window centred on it (:meth:`Window.centred <recola_pipeline.window.Window.centred>`).

    Raises
    ------
    ValueError
        The frames' times are off that grid (a feature set that steps its windows otherwise), named
        with ``source``.
    """
    times = frames.index.to_numpy(dtype=float)
    expected = window.centres(len(frames))
    if not np.allclose(times, expected, rtol=0, atol=1e-6):
        wrong = int(np.argmax(~np.isclose(times, expected, rtol=0, atol=1e-6)))
        raise ValueError(f"{source}: the {window} s windows' frame {wrong} is at {times[wrong]:g} s, not "
                         f"{expected[wrong]:g} s: a feature set must return the full windows every "
                         f"{LABEL_HOP_S * 1000:.0f} ms from the start, indexed by their centre time")
    return window.centred(frames.to_numpy(), n_frames)


def windowed_mean_std(values: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation over centred W-second windows of a per-label-frame sequence.

    Rows that contain NaN (frames without a face) are left out of their windows; a window without
    any finite row gives NaN. pandas' rolling moments do the sums (numerically stable online
    updates, so a constant window has a standard deviation of exactly 0). Windows follow the
    convention of :meth:`Window.centred <recola_pipeline.window.Window.centred>` (the full window of
    ``W / hop`` frames whose centre is the label frame, first/last full window repeated).

    Parameters
    ----------
    values : ndarray, shape (n_frames, n_features)
    window : Window

    Returns
    -------
    mean, std : ndarray, shape (n_frames, n_features)
        Population standard deviation.
    fraction : ndarray, shape (n_frames,)
        Share of each window's frames that are finite.

    Examples
    --------
    >>> x = np.array([[0.], [2.], [np.nan], [4.], [6.], [8.]])
    >>> mean, std, fraction = windowed_mean_std(x, Window(0.16))
    >>> mean[:, 0].tolist(), fraction.tolist()
    ([2.0, 2.0, 2.0, 4.0, 6.0, 6.0], [0.75, 0.75, 0.75, 0.75, 0.75, 0.75])
    """
    values = np.asarray(values, dtype=float)
    n_frames = len(values)
    length = window.frames
    if n_frames < length:
        raise ValueError(f"no full {window} s window: {n_frames} frames are fewer than {length}")
    finite = np.isfinite(values).all(axis=1)
    frame = pd.DataFrame(np.where(finite[:, None], values, np.nan))
    rolling = frame.rolling(length, min_periods=1)  # row i: the window of frames i - length + 1 ... i
    full = slice(length - 1, None)  # windows that lie inside the recording, by start frame
    mean = rolling.mean().to_numpy()[full]
    std = rolling.std(ddof=0).to_numpy()[full]
    fraction = pd.Series(finite.astype(float)).rolling(length).mean().to_numpy()[full]
    return window.centred(mean, n_frames), window.centred(std, n_frames), window.centred(fraction, n_frames)


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
