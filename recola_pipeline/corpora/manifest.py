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

from .base import Corpus, CorpusError, Recording, check_partition
from .ratings import read_label_file


def _path(base: Path, value, where: str) -> Path | None:
    if pd.isna(value) or not str(value).strip():
        return None
    path = Path(str(value).strip())
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise CorpusError(f"{where}: file {path} does not exist; fix the path in the manifest")
    return path


def read(manifest: Path, *, dimensions) -> Corpus:
    """List the recordings of a manifest CSV."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise CorpusError(f"manifest {manifest} does not exist; pass an existing CSV to --manifest")
    table = pd.read_csv(manifest, dtype=str)
    missing = {"recording", "partition"} - set(table.columns)
    if missing:
        raise CorpusError(f"{manifest}: needs columns recording, partition, audio, video, "
                          f"{', '.join(dimensions)}; missing {sorted(missing)}")
    if table["recording"].duplicated().any():
        dup = table.loc[table["recording"].duplicated(), "recording"].iloc[0]
        raise CorpusError(f"{manifest}: recording {dup!r} is listed twice")
    base = manifest.parent
    recordings = []
    for i, row in table.iterrows():
        where = f"{manifest} row {i + 2} ({row['recording']})"
        labels = {dim: _path(base, row.get(dim), f"{where}, column {dim}") for dim in dimensions}
        recordings.append(Recording(
            str(row["recording"]),
            check_partition(str(row["partition"]).strip(), where),
            _path(base, row.get("audio"), f"{where}, column audio"),
            _path(base, row.get("video"), f"{where}, column video"),
            {dim: path for dim, path in labels.items() if path is not None},
        ))
        if recordings[-1].audio is None and recordings[-1].video is None:
            raise CorpusError(f"{where}: neither audio nor video given")
    return Corpus("manifest", recordings, read_label_file)

