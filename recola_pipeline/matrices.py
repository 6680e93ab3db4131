"""Frame matrices for learning: features of one window length stacked over recordings, with gold."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cache import read_table
from .corpora import CorpusError
from .labels import LABEL_HOP_S
from .modalities import MODALITY_STAGES
from .readers import load_data
from .window import Window


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


def load_frames(artifact, window: Window, recordings, gold_tables: dict[str, pd.DataFrame],
                dimensions, *, causal: bool = False) -> FrameMatrix:
    """Stack one window length's features of ``recordings`` and their gold standards; with ``causal``, each
    label frame's window ends at the frame (:meth:`~recola_pipeline.window.Window.trailing`)."""
    blocks, gold, groups, times, columns = [], {d: [] for d in dimensions}, [], [], None
    for rec in recordings:
        table = read_table(artifact.file(f"{window.folder}/{rec}.parquet"))
        columns = [c for c in table.columns if c != "time"]
        values = table[columns].to_numpy(dtype=float)
        blocks.append(window.trailing(values) if causal else values)
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


def labelled_rows(frames: FrameMatrix) -> np.ndarray:
    """Frames with a gold value in every dimension (the frames any fit may use)."""
    rows = np.ones(len(frames.X), dtype=bool)
    for values in frames.gold.values():
        rows &= np.isfinite(values)
    return rows


def partition_frames(inputs, modality: str, window: Window, partition: str, *, labelled_only=True,
                     causal: bool = False) -> FrameMatrix:
    """One partition's frames of one modality and window length, with gold (``causal``: trailing windows)."""
    table, gold = load_data(inputs.artifact("data"))
    rows = table[table.partition == partition]
    if labelled_only:
        rows = rows[rows.labelled]
    lacking = [r.recording for r in rows.itertuples() if not (isinstance(getattr(r, modality), str)
                                                              and getattr(r, modality))]
    if lacking:
        raise CorpusError(f"{partition} recording(s) {', '.join(lacking)} have no {modality} file, so the {modality} "
                          f"models cannot use them: add the files, or drop '{modality}' from train.modalities")
    return load_frames(inputs.artifact(MODALITY_STAGES[modality]), window, list(rows.recording), gold,
                       inputs.config.corpus.dimensions, causal=causal)


def system_frames(inputs, windows: dict[str, Window], partition: str, *, labelled_only=True,
                  causal: bool = False) -> FrameMatrix:
    """Frames of a system: one modality's, or (early fusion) several modalities' side by side; ``causal``:
    every window ends at its label frame.

    ``windows`` maps each modality to its window length; fused columns are prefixed with the
    modality (``audio:F0semitoneFrom27.5Hz_sma3nz_amean``).
    """
    parts = {m: partition_frames(inputs, m, w, partition, labelled_only=labelled_only, causal=causal)
             for m, w in windows.items()}
    if len(parts) == 1:
        return next(iter(parts.values()))
    first = next(iter(parts.values()))  # same recordings and label frames: partition_frames checks every modality
    return FrameMatrix(np.hstack([f.X for f in parts.values()]), first.gold, first.groups, first.time,
                       [f"{m}:{c}" for m, f in parts.items() for c in f.columns])
