"""RECOLA, original release layout.

::

    <root>/RECOLA-Audio-recordings/P16.wav
    <root>/RECOLA-Video-recordings/P16.mp4                      (optional folder)
    <root>/RECOLA-Annotation/emotional_behaviour/arousal/P16.csv
    <root>/RECOLA-Annotation/emotional_behaviour/valence/P16.csv

Partitions: ``corpus.partitions_csv`` if set, else ``<root>/partitions.csv`` if present, else
the AVEC 2016 lists (:data:`AVEC2016_PARTITIONS`). A recording in none of them is an error.
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    Corpus,
    CorpusError,
    Recording,
    apply_partitions,
    check_recording_id,
    check_unique_ids,
    require_dir,
)
from .ratings import read_recola_ratings

AUDIO_DIR = "RECOLA-Audio-recordings"
VIDEO_DIR = "RECOLA-Video-recordings"
ANNOTATION_DIR = Path("RECOLA-Annotation") / "emotional_behaviour"
AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".flv")

AVEC2016_PARTITIONS = {
    **{f"P{n}": "train" for n in (16, 21, 23, 25, 37, 39, 41, 46, 56)},
    **{f"P{n}": "devel" for n in (19, 26, 28, 30, 34, 42, 45, 64, 65)},
}


def _media(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}


def read(root: Path, *, dimensions, partitions_csv: str = "") -> Corpus:
    """List a RECOLA copy.

    Parameters
    ----------
    root : Path
        The folder holding ``RECOLA-Audio-recordings`` and ``RECOLA-Annotation``.
    dimensions : sequence of str
    partitions_csv : str
        Optional ``recording,partition`` CSV overriding the default partitions.

    Returns
    -------
    Corpus
    """
    root = require_dir(Path(root), "a RECOLA copy (RECOLA-Audio-recordings/, RECOLA-Annotation/)")
    audio = _media(root / AUDIO_DIR, AUDIO_SUFFIXES)
    video = _media(root / VIDEO_DIR, VIDEO_SUFFIXES)
    if not audio and not video:
        raise CorpusError(f"{root}: no recordings in {AUDIO_DIR}/ or {VIDEO_DIR}/; "
                          "point --data-root at the RECOLA release folder")
    source = partitions_csv or (str(root / "partitions.csv") if (root / "partitions.csv").exists() else "")
    ids = sorted(set(audio) | set(video))
    for rec_id in ids:
        check_recording_id(rec_id, f"{root}: media file {(audio.get(rec_id) or video.get(rec_id)).name}")
    check_unique_ids(ids, str(root))
    recordings = []
    for rec_id in ids:
        if not source and rec_id not in AVEC2016_PARTITIONS:
            raise CorpusError(f"recording {rec_id} is in no partition of the AVEC 2016 partition lists; "
                              "list it in a partitions CSV (corpus.partitions_csv) or remove it")
        labels = {dim: root / ANNOTATION_DIR / dim / f"{rec_id}.csv" for dim in dimensions}
        recordings.append(Recording(rec_id, AVEC2016_PARTITIONS.get(rec_id, "train"), audio.get(rec_id),
                                    video.get(rec_id), labels))
    return Corpus("recola", apply_partitions(recordings, source, complete=True), read_recola_ratings)
