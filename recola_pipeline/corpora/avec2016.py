"""AVEC 2016 release layout (RECOLA as distributed for the challenge).

::

    <root>/recordings_audio/train_1.wav        (partition from the prefix: train, dev, test)
    <root>/recordings_video/train_1.mp4        (optional folder)
    <root>/ratings_individual/{arousal,valence}/train_1.csv   (RECOLA header, 40 ms rows)
    <root>/ratings_gold_standard/{arousal,valence}/train_1.arff

The gold standard is rebuilt from ``ratings_individual`` with ``corpus.gold_standard``;
the shipped ARFF files are read by :func:`read_shipped_gold` for comparison.
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
    read_partitions_csv,
    require_dir,
)
from .ratings import read_arff_gold, read_recola_ratings
from .recola import AUDIO_SUFFIXES, VIDEO_SUFFIXES, _media

PREFIX_PARTITION = {"train": "train", "dev": "devel", "devel": "devel", "test": "test"}


def read(root: Path, *, dimensions, partitions_csv: str = "") -> Corpus:
    """List an AVEC 2016 copy; partitions come from the file-name prefix unless a CSV overrides them."""
    root = require_dir(Path(root), "an AVEC 2016 copy (recordings_audio/, ratings_individual/)")
    audio = _media(root / "recordings_audio", AUDIO_SUFFIXES)
    video = _media(root / "recordings_video", VIDEO_SUFFIXES)
    if not audio and not video:
        raise CorpusError(f"{root}: no recordings in recordings_audio/ or recordings_video/; "
                          "point --data-root at the AVEC 2016 folder")
    ids = sorted(set(audio) | set(video))
    for rec_id in ids:
        check_recording_id(rec_id, f"{root}: media file {(audio.get(rec_id) or video.get(rec_id)).name}")
    check_unique_ids(ids, str(root))
    listed = set(read_partitions_csv(Path(partitions_csv))) if partitions_csv else set()
    recordings = []
    for rec_id in ids:
        prefix = rec_id.rsplit("_", 1)[0]
        if prefix in PREFIX_PARTITION:
            partition = PREFIX_PARTITION[prefix]
        elif rec_id in listed:
            partition = "train"  # replaced by the CSV's below
        else:
            partition = check_partition(prefix, f"{root}: recording {rec_id}")
        labels = {dim: root / "ratings_individual" / dim / f"{rec_id}.csv" for dim in dimensions}
        recordings.append(Recording(rec_id, partition, audio.get(rec_id), video.get(rec_id), labels))
    return Corpus("avec2016", apply_partitions(recordings, partitions_csv, complete=False), read_recola_ratings)


def read_shipped_gold(root: Path, recording: str, dimension: str) -> pd.DataFrame:
    """The gold standard shipped with AVEC 2016 (``time``, ``gold`` columns)."""
    path = Path(root) / "ratings_gold_standard" / dimension / f"{recording}.arff"
    if not path.is_file():
        raise CorpusError(f"{path} does not exist")
    return read_arff_gold(path)
