"""AVEC 2016 release layout (RECOLA as distributed for the challenge).

::

    <root>/recordings_audio/train_1.wav        (partition from the prefix: train, dev, test)
    <root>/recordings_video/train_1.mp4        (optional folder)
    <root>/ratings_individual/{arousal,valence}/train_1.csv   (RECOLA header, 40 ms rows)
    <root>/ratings_gold_standard/{arousal,valence}/train_1.arff

The gold standard is rebuilt from ``ratings_individual`` with ``corpus.gold_standard``. With
``corpus.gold_standard = "shipped"``, and by default when ``ratings_individual/`` is absent
(many users hold only the gold standards), the ARFF files of ``ratings_gold_standard/`` are the
labels, used as they are (AVEC 2016's three-column form or the RECOLA release's two-column form,
:func:`~recola_pipeline.corpora.ratings.read_arff_gold`).
"""
from __future__ import annotations

import logging
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
from .ratings import read_arff_gold, read_arff_ratings, read_recola_ratings
from .recola import AUDIO_SUFFIXES, VIDEO_SUFFIXES, _media

log = logging.getLogger(__name__)

PREFIX_PARTITION = {"train": "train", "dev": "devel", "devel": "devel", "test": "test"}
#: the settings this layout's ``read`` takes beyond the common ones
OPTIONS = ("gold_standard",)


def read(root: Path, *, dimensions, partitions_csv: str = "", gold_standard: str = "avec2016") -> Corpus:
    """List an AVEC 2016 copy; partitions come from the file-name prefix unless a CSV overrides them.

    ``gold_standard = "shipped"`` (or no ``ratings_individual/`` folder) takes the shipped
    gold-standard ARFF files as the labels.
    """
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
    shipped = gold_standard == "shipped" or not (root / "ratings_individual").is_dir()
    if shipped and gold_standard != "shipped":
        log.info("%s has no ratings_individual/: the gold standards of ratings_gold_standard/ are the labels "
                 "(corpus.gold_standard = 'shipped')", root)
    recordings = []
    for rec_id in ids:
        prefix = rec_id.rsplit("_", 1)[0]
        if prefix in PREFIX_PARTITION:
            partition = PREFIX_PARTITION[prefix]
        elif rec_id in listed:
            partition = "train"  # replaced by the CSV's below
        else:
            partition = check_partition(prefix, f"{root}: recording {rec_id}")
        labels = {dim: (root / "ratings_gold_standard" / dim / f"{rec_id}.arff" if shipped else
                        root / "ratings_individual" / dim / f"{rec_id}.csv") for dim in dimensions}
        recordings.append(Recording(rec_id, partition, audio.get(rec_id), video.get(rec_id), labels))
    return Corpus("avec2016", apply_partitions(recordings, partitions_csv, complete=False),
                  read_arff_ratings if shipped else read_recola_ratings, gold_from_files=shipped)


def read_shipped_gold(root: Path, recording: str, dimension: str) -> pd.DataFrame:
    """The gold standard shipped with AVEC 2016 (``time``, ``gold`` columns)."""
    path = Path(root) / "ratings_gold_standard" / dimension / f"{recording}.arff"
    if not path.is_file():
        raise CorpusError(f"{path} does not exist")
    return read_arff_gold(path)
