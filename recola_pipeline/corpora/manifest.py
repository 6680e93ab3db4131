"""Any corpus described by a manifest CSV.

Columns: ``recording``, ``partition`` (train, devel, test), ``audio``, ``video`` (paths, may be
empty) and one column per dimension (``arousal``, ``valence``) holding the path of a label file
with ``time,<dimension>`` columns (seconds, value) at any rate, or ``time,<rater>,...`` columns
for individual ratings. Relative paths are relative to the manifest's folder. Labels are
interpolated onto the 40 ms grid.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import (
    Corpus,
    CorpusError,
    Recording,
    apply_partitions,
    check_partition,
    check_recording_id,
    check_unique_ids,
    read_csv_table,
)
from .ratings import read_label_file


def _path(base: Path, value, where: str) -> Path | None:
    if pd.isna(value) or not str(value).strip():
        return None
    path = Path(str(value).strip())
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise CorpusError(f"{where}: file {path} {what}; fix the path in the manifest")
    return path


def read(manifest: Path, *, dimensions, partitions_csv: str = "") -> Corpus:
    """List the recordings of a manifest CSV.

    Parameters
    ----------
    manifest : Path
    dimensions : sequence of str
    partitions_csv : str
        Optional ``recording,partition`` CSV (``--partitions``); the recordings it lists take its
        partition instead of the manifest's.
    """
    manifest = Path(manifest)
    table = read_csv_table(manifest, "manifest", "--manifest (corpus.manifest)")
    missing = {"recording", "partition"} - set(table.columns)
    if missing:
        raise CorpusError(f"{manifest}: needs columns recording, partition, audio, video, "
                          f"{', '.join(dimensions)}; missing {sorted(missing)}")
    base = manifest.parent
    recordings = []
    for i, row in table.iterrows():
        rec_id = check_recording_id(row["recording"], f"{manifest} row {i + 2}")
        where = f"{manifest} row {i + 2} ({rec_id})"
        labels = {dim: _path(base, row.get(dim), f"{where}, column {dim}") for dim in dimensions}
        recordings.append(Recording(
            rec_id,
            check_partition(str(row["partition"]).strip(), where),
            _path(base, row.get("audio"), f"{where}, column audio"),
            _path(base, row.get("video"), f"{where}, column video"),
            {dim: path for dim, path in labels.items() if path is not None},
        ))
        if recordings[-1].audio is None and recordings[-1].video is None:
            raise CorpusError(f"{where}: neither audio nor video given")
    check_unique_ids([r.id for r in recordings], str(manifest))
    return Corpus("manifest", apply_partitions(recordings, partitions_csv, complete=False), read_label_file)
