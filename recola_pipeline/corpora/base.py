"""What every corpus reader returns, and the checks they share."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

PARTITIONS = ("train", "devel", "test")


class CorpusError(ValueError):
    """Input data that cannot be read as the corpus layout says; the message names file and fix."""


@dataclass(frozen=True)
class Recording:
    """One recording of a corpus.

    Attributes
    ----------
    id : str
        Recording name, unique in the corpus (``P16``, ``train_1``).
    partition : str
        ``train``, ``devel`` or ``test``.
    audio, video : Path or None
        Media files; either may be absent (audio-only and video-only corpora).
    labels : dict
        Dimension name -> where that dimension's ratings file is expected (it may be missing:
        the data stage accepts a test recording with no ratings, as AVEC 2016 withholds them,
        and rejects anything else).
    """

    id: str
    partition: str
    audio: Path | None
    video: Path | None
    labels: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Corpus:
    """The recordings of a corpus and how to read its ratings.

    ``read_ratings(path, max_gap_s=...)`` returns a DataFrame indexed by frame (0, 1, ...) with
    one column per rater, at the 40 ms label rate, starting at t = 0, NaN where a rater gave no
    value (see :mod:`~recola_pipeline.corpora.ratings`).
    """

    name: str
    recordings: list[Recording]
    read_ratings: object

    def input_files(self) -> list[Path]:
        """Every file the data stage reads (for the input fingerprint)."""
        files = []
        for rec in self.recordings:
            files += [p for p in (rec.audio, rec.video, *rec.labels.values()) if p is not None and p.is_file()]
        return files


def check_partition(name: str, where: str) -> str:
    """Return ``name`` if it is a known partition, else raise naming ``where`` and the closest one."""
    if name in PARTITIONS:
        return name
    close = difflib.get_close_matches(name, PARTITIONS, n=1, cutoff=0.3)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise CorpusError(f"{where}: unknown partition {name!r}{hint}; use one of {', '.join(PARTITIONS)}")


def read_partitions_csv(path: Path) -> dict[str, str]:
    """Read a ``recording,partition`` CSV (extra columns are ignored)."""
    try:
        table = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise CorpusError(f"partitions file {path} does not exist; fix corpus.partitions_csv") from None
    missing = {"recording", "partition"} - set(table.columns)
    if missing:
        raise CorpusError(f"{path}: needs columns recording,partition; missing {sorted(missing)}")
    return {row.recording: check_partition(row.partition, f"{path} (recording {row.recording})")
            for row in table.itertuples()}


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise a CorpusError saying what was expected there."""
    if not path.is_dir():
        raise CorpusError(f"{path} does not exist; expected {what}. Check --data-root and --corpus")
    return path
