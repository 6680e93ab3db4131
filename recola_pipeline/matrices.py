"""Frame matrices for learning: features of one window length stacked over recordings, with gold."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cache import read_table
from .labels import LABEL_HOP_S


def label_times(n_frames: int) -> np.ndarray:
    """The label-frame times 0.00, 0.04, ... of a recording with ``n_frames`` frames (rounded to 10 ms)."""
    return np.round(np.arange(n_frames) * LABEL_HOP_S, 2)


def verify_frames(path, n_frames: int) -> None:
    """Check a per-frame table written to disk: ``n_frames`` rows whose ``time`` is the label grid.

    A feature stage calls this on every file of a recording before writing the recording's
    ``info`` file, which marks it finished.

    Raises
    ------
    RuntimeError
        The file holds other rows than the data stage's label frames (nothing then marks the
        recording finished, and a rerun computes it again).
    """
    table = read_table(path)
    if len(table) != n_frames or not np.array_equal(table["time"].to_numpy(), label_times(n_frames)):
        raise RuntimeError(f"{path}: {len(table)} rows written, expected the {n_frames} label frames of the data "
                           "stage; the recording is not marked finished, run again")


def window_name(window_s: float) -> str:
    """Folder of one window length inside a feature artifact (``w4``, ``w6.5``)."""
    return f"w{window_s:g}"


@dataclass
class FrameMatrix:
    """Rows = label frames of several recordings, one after another.

    Attributes
    ----------
    X : ndarray, shape (n_frames, n_features)
    gold : dict
        Dimension -> ndarray (n_frames,), absent for unlabelled recordings.
    groups : ndarray of str
        Recording of each row.
    time : ndarray
        Label time of each row.
    columns : list of str
        Feature names.
    """

    X: np.ndarray
    gold: dict
    groups: np.ndarray
    time: np.ndarray
    columns: list


def load_frames(artifact, window_s: float, recordings, gold_tables: dict[str, pd.DataFrame],
                dimensions) -> FrameMatrix:
    """Stack one window length's features of ``recordings`` and their gold standards."""
    blocks, gold, groups, times, columns = [], {d: [] for d in dimensions}, [], [], None
    for rec in recordings:
        table = read_table(artifact.file(f"{window_name(window_s)}/{rec}.parquet"))
        columns = [c for c in table.columns if c != "time"]
        blocks.append(table[columns].to_numpy(dtype=float))
        groups.append(np.full(len(table), rec, dtype=object))
        times.append(table["time"].to_numpy())
        for d in dimensions:
            if d in gold_tables[rec]:
                gold[d].append(gold_tables[rec][d].to_numpy(dtype=float))
    n = sum(len(b) for b in blocks)
    gold = {d: np.concatenate(v) for d, v in gold.items() if v and sum(map(len, v)) == n}
    return FrameMatrix(np.vstack(blocks) if blocks else np.empty((0, 0)), gold,
                       np.concatenate(groups) if groups else np.empty(0, dtype=object),
                       np.concatenate(times) if times else np.empty(0), columns or [])
