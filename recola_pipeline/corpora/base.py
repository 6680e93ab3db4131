"""What every corpus reader returns, and the checks they share."""
from __future__ import annotations

import csv
import difflib
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..inputs import InputError, checked_file, sniff_separator

log = logging.getLogger(__name__)

PARTITIONS = ("train", "devel", "test")

#: a recording id is used as a file name: letters, digits, '.', '_', '-' (first a letter or digit)
RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: ids that spreadsheets and pandas read as a missing value
MISSING_LIKE = {"na", "n/a", "nan", "none", "null", "nat", "-nan", "#n/a"}
#: largest corpus CSV (manifest, partitions) read
MAX_TABLE_BYTES = 50 * 2**20


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
    value (see :mod:`~recola_pipeline.corpora.ratings`). ``gold_from_files``: the label files are
    gold standards (one column each), used as they are (``corpus.gold_standard = "shipped"``).
    """

    name: str
    recordings: list[Recording]
    read_ratings: object
    gold_from_files: bool = False

    def fingerprint(self) -> dict:
        """What the data stage's output depends on in the corpus itself (part of its artifact identity).

        Every recording's id, partition and file paths (so a partition change from any source
        changes it), the SHA-256 of every rating file's bytes, and the size and modification
        time of every media file (hashing gigabytes of video on every run would cost more than
        it protects; ``--force`` rebuilds after replacing a media file in place).
        """
        listing, labels, media = [], {}, {}
        for rec in self.recordings:
            listing.append([rec.id, rec.partition, str(rec.audio or ""), str(rec.video or ""),
                            {d: str(p) for d, p in sorted(rec.labels.items())}])
            for path in rec.labels.values():
                if path.is_file():
                    labels[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            for path in (rec.audio, rec.video):
                if path is not None and path.is_file():
                    stat = path.stat()
                    media[str(path)] = [stat.st_size, stat.st_mtime_ns]
        return {"recordings": listing, "label_sha256": labels, "media": media}


def check_partition(name: str, where: str) -> str:
    """Return ``name`` if it is a known partition, else raise naming ``where`` and the closest one."""
    if name in PARTITIONS:
        return name
    close = difflib.get_close_matches(name, PARTITIONS, n=1, cutoff=0.3)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise CorpusError(f"{where}: unknown partition {name!r}{hint}; use one of {', '.join(PARTITIONS)}")


def check_recording_id(value, where: str) -> str:
    """Return a recording id that is safe as a file name, else raise naming ``where``.

    Ids are stripped; an empty id, one that reads as a missing value (``NA``, ``nan``...) or one
    with characters other than letters, digits, ``.``, ``_`` and ``-`` is an error.
    """
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
    if not text or text.lower() in MISSING_LIKE:
        raise CorpusError(f"{where}: recording id {text!r} is empty or reads as a missing value; "
                          "give every recording a name such as P16 or session_01")
    if not RECORDING_ID.fullmatch(text):
        raise CorpusError(f"{where}: recording id {text!r} cannot be used as a file name; use letters, digits, "
                          "'.', '_' and '-' only (starting with a letter or digit, at most 100 characters)")
    return text


def check_unique_ids(ids, where: str) -> None:
    """Raise when two ids are equal ignoring case (their files would collide on many file systems)."""
    seen: dict[str, str] = {}
    for rec_id in ids:
        key = rec_id.casefold()
        if key in seen:
            same = "twice" if seen[key] == rec_id else f"as {seen[key]!r} and {rec_id!r} (equal ignoring case)"
            raise CorpusError(f"{where}: recording {rec_id!r} is listed {same}; give each recording its own id")
        seen[key] = rec_id


def corpus_file(path: Path, what: str, setting: str, *, max_bytes: int) -> Path:
    """:func:`~recola_pipeline.inputs.checked_file` for a corpus file: a CorpusError naming the file and ``setting``."""
    try:
        return checked_file(path, what, setting, max_bytes=max_bytes)
    except InputError as exc:
        raise CorpusError(str(exc)) from None


def read_csv_table(path: Path, what: str, setting: str, *, sep: str | None = None, max_bytes: int = MAX_TABLE_BYTES,
                   skip_initial_space: bool = False) -> pd.DataFrame:
    """Read a user's CSV (manifest, partitions, rating file) as text cells, stripped column names.

    The file must be a regular file of at most ``max_bytes`` (checked before it is opened), UTF-8
    with or without a byte-order mark; ``sep`` None detects ``,`` ``;`` or tab.

    Raises
    ------
    CorpusError
        Naming the file and ``setting``: missing, not a regular file, too large, unreadable.
    """
    corpus_file(path, what, setting, max_bytes=max_bytes)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            sep=sep or sniff_separator(path), engine="python", skipinitialspace=skip_initial_space)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{path}: cannot read the {what} as CSV ({exc}); fix {setting}") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_partitions_csv(path: Path) -> dict[str, str]:
    """Read a ``recording,partition`` CSV (extra columns are ignored)."""
    table = read_csv_table(path, "partitions file", "corpus.partitions_csv (--partitions)")
    missing = {"recording", "partition"} - set(table.columns)
    if missing:
        raise CorpusError(f"{path}: needs columns recording,partition; missing {sorted(missing)}")
    ids = [check_recording_id(r, f"{path} row {i + 2}") for i, r in enumerate(table["recording"])]
    check_unique_ids(ids, str(path))
    return {rec_id: check_partition(part.strip(), f"{path} (recording {rec_id})")
            for rec_id, part in zip(ids, table["partition"])}


def apply_partitions(recordings: list[Recording], path: str, *, complete: bool) -> list[Recording]:
    """Recordings with the partitions of a ``recording,partition`` CSV.

    Parameters
    ----------
    recordings : list of Recording
    path : str
        The CSV (``corpus.partitions_csv``); empty: ``recordings`` unchanged.
    complete : bool
        Whether the CSV must list every recording (it is then the only source of partitions).

    Raises
    ------
    CorpusError
        Without ``complete``, the CSV names a recording the corpus does not have (a typo would
        leave the intended recording where it was); with ``complete``, it leaves one out. (A
        complete list may name recordings missing from a partial copy of the corpus: a warning.)
    """
    if not path:
        return recordings
    partitions = read_partitions_csv(Path(path))
    known = {r.id for r in recordings}
    unknown = sorted(set(partitions) - known)
    if unknown and not complete:
        raise CorpusError(f"{path} lists recording(s) {', '.join(unknown[:5])} that the corpus does not have; "
                          f"fix the ids (the corpus has {', '.join(sorted(known)[:5])}...)")
    if unknown:
        log.warning("%s lists %d recording(s) the corpus does not have (%s); they are ignored", path, len(unknown),
                    ", ".join(unknown[:5]))
    if complete:
        left = sorted(known - set(partitions))
        if left:
            raise CorpusError(f"recording {left[0]} is in no partition of {path}; list it there or remove it")
    return [Recording(r.id, partitions.get(r.id, r.partition), r.audio, r.video, r.labels) for r in recordings]


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise a CorpusError saying what was expected there."""
    if not path.is_dir():
        raise CorpusError(f"{path} does not exist; expected {what}. Check --data-root and --corpus")
    return path
