"""Frame matrices for learning: features of one window length stacked over recordings, with gold."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cache import read_table


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
