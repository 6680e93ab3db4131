"""A database in audEERING's audformat (``db.yaml`` plus tables), as used by audb and audinterface.

What is read (``--corpus audformat --data-root DB``):

* per dimension ``d`` (``arousal``, ``valence``), every table named ``d`` or ``d.<anything>``
  (e.g. ``arousal.train``):

  - with a **segmented** index (``file, start, end``): one row per rating, at the segment's
    start time; each column is a rater (several raters feed the configured gold standard, one
    column is a gold standard itself);
  - with a **filewise** index: a column ``d`` holding the path (relative to the database) of a
    label file in the manifest format (``time,<rater>,...``).

* partitions: a table's split (``split_id``, split type ``train``, ``dev``/``devel``, ``test``)
  gives its files' partition; else a filewise table ``partitions`` with a column ``partition``;
  ``--partitions`` overrides either.
* media: the index's files, relative to the database root (audio files; a video file is used
  for the video modality).

Tables stored as pickles (``db.<table>.pkl``) are refused: loading one would execute code.
Ratings go through the same checks and the same 40 ms placement as every other corpus
(:mod:`~recola_pipeline.corpora.ratings`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .base import (
    Corpus,
    CorpusError,
    Recording,
    apply_partitions,
    check_partition,
    check_recording_id,
    check_unique_ids,
)
from .ratings import MAX_GAP_S, checked_values, on_label_grid, read_label_file

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".mpg", ".webm", ".flv")
SPLIT_PARTITIONS = {"train": "train", "dev": "devel", "devel": "devel", "test": "test"}


@dataclass(frozen=True)
class TableRatings:
    """One recording's ratings of one dimension in an audformat table (a rating source: it has
    ``is_file``, ``read_bytes`` and a name, as a rating file has)."""

    where: str
    frame: pd.DataFrame  # ``time`` and one column per rater

    def __str__(self) -> str:
        return self.where

    def is_file(self) -> bool:
        return len(self.frame) > 0

    def read_bytes(self) -> bytes:
        return self.frame.to_csv(index=False).encode()


def read_ratings(source, *, max_gap_s: float = MAX_GAP_S) -> pd.DataFrame:
    """Ratings of a :class:`TableRatings` (or a label file) on the 40 ms grid, checked like a file's."""
    if not isinstance(source, TableRatings):
        return read_label_file(source, max_gap_s=max_gap_s)
    table = checked_values(source.where, source.frame.astype(str).replace({"nan": ""}))
    return on_label_grid(table["time"].to_numpy(), table.drop(columns="time"), max_gap_s=max_gap_s)


def _load(root: Path):
    import audformat
    if not (root / "db.yaml").is_file():
        raise CorpusError(f"{root}: no db.yaml; point --data-root at an audformat database folder")
    pickled = sorted(p.name for p in root.glob("db.*.pkl"))
    if pickled:
        raise CorpusError(f"{root}: table(s) {', '.join(pickled)} are stored as pickles, which would run code when "
                          "loaded; save the database with storage_format='csv' or 'parquet'")
    try:
        return audformat.Database.load(str(root), load_data=True)
    except Exception as exc:  # audformat raises many kinds for a broken header or table
        raise CorpusError(f"{root}: cannot load the audformat database ({type(exc).__name__}: {exc})") from None


def read(root: Path, *, dimensions, partitions_csv: str = "") -> Corpus:
    """List an audformat database.

    Raises
    ------
    CorpusError
        No ``db.yaml``, pickled tables, no table for a dimension, a file in no partition, or a
        recording id that is not a safe file name.
    """
    root = Path(root)
    db = _load(root)
    labels: dict[str, dict[str, object]] = {}
    partitions: dict[str, str] = {}
    media: dict[str, Path] = {}
    for name, table in db.tables.items():
        dim = name.split(".", 1)[0]
        split = db.splits[table.split_id].type if table.split_id in db.splits else None
        frame = table.get()
        files = frame.index.get_level_values("file").unique()
        for file in files:
            rec_id = check_recording_id(Path(file).stem, f"{root}: table {name}, file {file}")
            media[rec_id] = root / file
            if split is not None:
                partitions[rec_id] = check_partition(SPLIT_PARTITIONS.get(split, split),
                                                     f"{root}: split of table {name}")
        if name == "partitions" and "partition" in frame.columns:
            for file, value in frame["partition"].items():
                partitions.setdefault(Path(file).stem, check_partition(str(value), f"{root}: table partitions"))
        if dim not in dimensions:
            continue
        if isinstance(frame.index, pd.MultiIndex):  # segmented: one row per rating
            for file, rows in frame.groupby(level="file", sort=True):
                starts = rows.index.get_level_values("start").total_seconds().to_numpy()
                ratings = pd.DataFrame({"time": np.round(starts, 6), **{str(c): rows[c].to_numpy(dtype=float)
                                                                         for c in rows.columns}})
                labels.setdefault(Path(file).stem, {})[dim] = TableRatings(f"{root}/db.yaml table {name}, file {file}",
                                                                          ratings)
        elif dim in frame.columns:  # filewise: a label file per recording
            for file, value in frame[dim].items():
                if isinstance(value, str) and value.strip():
                    labels.setdefault(Path(file).stem, {})[dim] = root / value.strip()
    check_unique_ids(list(media), str(root))
    if not media:
        raise CorpusError(f"{root}: the database's tables list no files")
    recordings = []
    for rec_id, path in sorted(media.items()):
        if rec_id not in partitions and not partitions_csv:
            raise CorpusError(f"{root}: file {path.name} is in no split; give its table a split (train, dev, test), "
                              "add a filewise 'partitions' table, or pass --partitions")
        is_video = path.suffix.lower() in VIDEO_SUFFIXES
        recordings.append(Recording(rec_id, partitions.get(rec_id, "train"), None if is_video else path,
                                    path if is_video else None, labels.get(rec_id, {})))
    return Corpus("audformat", apply_partitions(recordings, partitions_csv, complete=False), read_ratings)


def write_predictions(predictions: dict[str, pd.DataFrame], files: dict[str, str], out: Path,
                      *, name: str = "predictions") -> Path:
    """Write predictions as an audformat database: a segmented table ``predictions`` (one 40 ms
    segment per row, one column per dimension) over ``files``; ``audformat.Database.load`` reads it back."""
    import audformat
    frames = []
    for rec, frame in predictions.items():
        starts = pd.to_timedelta(frame["time"].to_numpy(), unit="s")
        index = audformat.segmented_index([files[rec]] * len(frame), starts, starts + pd.Timedelta(seconds=0.04))
        frames.append(pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns if c != "time"}, index=index))
    data = pd.concat(frames)
    db = audformat.Database(name, source="recola-pipeline predict")
    db.schemes["continuous"] = audformat.Scheme("float")  # no range: predictions can go beyond the labels' scale
    db.schemes["flag"] = audformat.Scheme("bool")
    db[name] = audformat.Table(data.index)
    for column in data.columns:
        db[name][column] = audformat.Column(scheme_id="flag" if data[column].dtype == bool else "continuous")
        db[name][column].set(data[column].to_numpy())
    out.mkdir(parents=True, exist_ok=True)
    db.save(str(out), storage_format="csv")
    return out / "db.yaml"


