"""The window length W: one type for every form it takes (docs/ARCHITECTURE.md, "windows").

A :class:`Window` is built from seconds (a config value, a results row, a model description) and
gives every other form: the folder of a feature artifact (``w4``), its part of a system's windows
label (``audio=8``), its length and half length in label frames, and the two ways a window's
features land on the label frames (centred, the offline convention; trailing, the causal one).

Files hold W in seconds (the config, ``results.csv``'s ``W``, a model's ``windows``: seconds per
modality, :func:`in_seconds`); the code holds a :class:`Window`.

Convention: a window of W seconds starting at ``k * hop`` is centred at ``k * hop + W / 2``, so
it belongs to label frame ``k + W / (2 hop)``; W / 2 must be a whole number of 40 ms hops.
Label frames before the first full window's centre take the first full window (repeated
backwards); frames after the last full window's centre take the last one (repeated forwards).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import LABEL_HOP_S


@dataclass(frozen=True, order=True)
class Window:
    """A window length on the label grid.

    Parameters
    ----------
    seconds : float
        W; W / 2 must be a whole number of label hops (0.04 s), e.g. 4, 6, 8.

    Raises
    ------
    ValueError
        W is not positive and finite, or W / 2 is off the label grid.

    Examples
    --------
    >>> w = Window(4)
    >>> w.seconds, w.half_frames, w.folder, str(w)
    (4.0, 50, 'w4', '4')
    """

    seconds: float

    def __post_init__(self):
        seconds = float(self.seconds)
        if not (np.isfinite(seconds) and seconds > 0):
            raise ValueError(f"window {self.seconds!r}: a window length must be a positive number of seconds")
        half = seconds / 2 / LABEL_HOP_S
        if abs(half - round(half)) > 1e-6:
            raise ValueError(f"window {seconds:g} s: W/2 must be a multiple of the {LABEL_HOP_S * 1000:.0f} ms label "
                             "hop so that windows are centred on label frames (e.g. 4, 6, 8 s)")
        object.__setattr__(self, "seconds", seconds)

    def __str__(self) -> str:
        return f"{self.seconds:g}"

    @property
    def half_frames(self) -> int:
        """Label frames between a window's start and its centre (W / (2 hop))."""
        return int(round(self.seconds / 2 / LABEL_HOP_S))

    @property
    def frames(self) -> int:
        """The window's length in label frames (W / hop)."""
        return 2 * self.half_frames

    @property
    def folder(self) -> str:
        """Folder of this window length inside a feature artifact (``w4``, ``w6.08``)."""
        return f"w{self}"

    def centres(self, n_windows: int) -> np.ndarray:
        """Centre times (s) of the first ``n_windows`` windows, which start at 0, hop, 2 hop, ..."""
        return np.round((np.arange(n_windows) + self.half_frames) * LABEL_HOP_S, 6)

    def centred(self, values: np.ndarray, n_frames: int) -> np.ndarray:
        """Rows of per-window features (row k = window starting at k * hop) -> one row per label frame,
        each frame taking the window centred on it (first and last full window repeated).

        Parameters
        ----------
        values : ndarray, shape (n_windows, n_features)
        n_frames : int
            Number of label frames (frame i at t = i * hop).

        Returns
        -------
        ndarray, shape (n_frames, n_features)

        Examples
        --------
        >>> Window(0.16).centred(np.arange(3.0)[:, None], 6)[:, 0].tolist()
        [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]
        """
        if len(values) == 0:
            raise ValueError(f"no full {self} s window: the recording is shorter than the window")
        index = np.clip(np.arange(n_frames) - self.half_frames, 0, len(values) - 1)
        return values[index]

    def trailing(self, values: np.ndarray) -> np.ndarray:
        """Causal features of one recording from its centred ones: label frame t takes the window that ends at t.

        The centred table (:meth:`centred`) gives frame c the window ``[c hop - W/2, c hop + W/2]``,
        so the window ending at frame t is the centred row ``t - W / (2 hop)``. The first ``W / hop``
        frames have no full window in the past: their rows are NaN (as a frame without a face), which
        the normalisation maps to 0, so a causal system predicts a constant there (docs/live.md).

        Parameters
        ----------
        values : ndarray, shape (n_frames, n_features)
            One recording's centred features.

        Returns
        -------
        ndarray, shape (n_frames, n_features), float

        Examples
        --------
        >>> Window(0.16).trailing(np.arange(6.0)[:, None])[:, 0].tolist()
        [nan, nan, nan, nan, 2.0, 3.0]
        """
        values = np.asarray(values, dtype=float)
        offset = self.half_frames
        out = np.full(values.shape, np.nan)
        out[2 * offset:] = values[offset:len(values) - offset]
        return out


def is_window(seconds) -> bool:
    """Whether ``seconds`` is a valid window length (positive, W / 2 on the label grid)."""
    try:
        Window(seconds)
    except (TypeError, ValueError):
        return False
    return True


def windows_label(windows: dict[str, Window]) -> str:
    """``audio=8 video=6``: the window length of each modality of a system (a results row's ``windows``)."""
    return " ".join(f"{m}={w}" for m, w in windows.items())


def parse_windows(label: str) -> dict[str, Window]:
    """Inverse of :func:`windows_label`."""
    return {m: Window(float(w)) for m, w in (part.split("=") for part in label.split())}


def in_seconds(windows: dict[str, Window]) -> dict[str, float]:
    """The stored form of a system's windows (a train artifact's model, a bundle's ``model.json``):
    seconds per modality."""
    return {m: w.seconds for m, w in windows.items()}


def from_seconds(stored: dict[str, float]) -> dict[str, Window]:
    """Inverse of :func:`in_seconds`."""
    return {m: Window(w) for m, w in stored.items()}
