"""The ``data`` stage: corpus in, gold standard at 40 ms out.

``data`` artifact (``features/data/<hash>/``):

``recordings.csv``
    One row per recording: ``recording, partition, audio, video, n_frames, audio_s, labelled``
    (media paths absolute, or relative to the artifact root for media inside the store),
    ``labelled_frames`` (frames with a gold value in every dimension), ``unlabelled_frames``
    and, per dimension, ``labelled_frames_<dimension>`` and the mean pairwise rater CCC
    (``agreement_<dimension>``).
``gold/<recording>.parquet``
    ``time`` (0.00, 0.04, ...) and one gold-standard column per dimension (absent for an
    unlabelled test recording; NaN on unlabelled frames).

The label frames of a recording run from t = 0 to the end of its audio (or video, or ratings,
whichever is longer), cut to ``corpus.max_seconds`` (RECOLA: 7501 frames, t = 0 ... 300 s).
Frames the ratings do not cover are unlabelled: predicted, never fitted or scored; a recording
more than 5 % unlabelled gets a warning naming it. Audio shorter than the ratings is accepted
here and padded by the feature stages.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import write_table
from ..corpora import Corpus, CorpusError, Recording, load_corpus
from ..extractors.audio_io import check_audio
from ..labels import LABEL_HOP_S, gold_standard, rater_agreement
from ..registry import require
from ..stage import Stage

log = logging.getLogger(__name__)


def corpus_of(inputs) -> Corpus:
    """List the configured corpus (the demo corpus is generated first when needed)."""
    cfg = inputs.config.corpus
    demo_root = inputs.artifact("demo").path if cfg.name == "demo" else None
    return load_corpus(cfg, demo_root=demo_root)


def _fingerprint(config) -> dict:
    cfg = config.corpus
    if cfg.name == "demo":
        return {}  # the demo artifact's hash (upstream) already pins its content
    return {"inputs": load_corpus(cfg).fingerprint()}


@dataclass
class PreparedRecording:
    """Everything the data stage writes for one recording, its warnings and its media digests."""

    row: dict
    gold: pd.DataFrame
    warnings: list[str]
    media: dict[str, str]


#: a rater whose values reach beyond this gets a warning (the scale is [-1, 1])
RATING_WARN_ABS = 1.5


def media_digest(path: Path) -> str:
    """SHA-256 of a media file's size, first and last MiB: equal for copies of one file, cheap for videos."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def rating_warnings(rec: Recording, ratings: dict[str, pd.DataFrame]) -> list[str]:
    """What in a recording's ratings is probably a mistake, though usable: values far outside
    [-1, 1], constant raters, raters covering much less than the others, dimensions rated over
    different spans."""
    messages = []
    for dim, table in ratings.items():
        where = f"recording {rec.id}, {dim} ({rec.labels[dim]})"
        covered = table.notna().sum()
        for rater in table.columns:
            values = table[rater].dropna().to_numpy()
            if values.size and np.abs(values).max() > RATING_WARN_ABS:
                messages.append(f"{where}: rater {rater} reaches {values[np.abs(values).argmax()]:g}, far outside "
                                "the [-1, 1] scale; check the file's scale")
            if values.size > 1 and np.ptp(values) == 0:
                messages.append(f"{where}: rater {rater} gives the constant value {values[0]:g}; check the export "
                                "(a constant rater adds only an offset to the gold standard)")
            if covered[rater] < 0.9 * covered.max():
                messages.append(f"{where}: rater {rater} covers {covered[rater] * LABEL_HOP_S:.1f} s, the others up "
                                f"to {covered.max() * LABEL_HOP_S:.1f} s; frames it leaves out use the other raters")
    spans = {dim: table.notna().any(axis=1).sum() for dim, table in ratings.items()}
    if spans and max(spans.values()) - min(spans.values()) > 1 / LABEL_HOP_S:
        listed = ", ".join(f"{dim} {n * LABEL_HOP_S:.1f} s" for dim, n in spans.items())
        messages.append(f"recording {rec.id}: its dimensions are rated over different spans ({listed}); each "
                        "dimension is fitted and scored on its own rated frames only")
    return messages



def prepare_recording(rec: Recording, read_ratings, *, dimensions, method: str, max_seconds: float,
                      max_gap_s: float) -> PreparedRecording:
    """Read, check and combine one recording's ratings into its gold standard.

    The recording's label frames run from t = 0 to the end of its audio (else its video, else
    its ratings), cut to ``max_seconds``. Frames its ratings do not cover are unlabelled: their
    gold is NaN (label coverage, docs/ARCHITECTURE.md).

    Raises
    ------
    CorpusError
        Missing ratings (outside the test partition), unreadable ratings or audio, a video
        that cannot be opened or decoded.
    """
    present = {d: rec.labels[d] for d in dimensions if rec.labels.get(d) is not None and rec.labels[d].is_file()}
    absent = [d for d in dimensions if d not in present]
    if absent and (present or rec.partition != "test"):
        where = rec.labels.get(absent[0])
        where = f"expected at {where}" if where else "no label file given in the manifest"
        raise CorpusError(f"recording {rec.id} ({rec.partition}) has no {absent[0]} ratings: {where}. "
                          "Add the file, or move the recording to the test partition if its labels are withheld")
    audio_s, audio_warnings = check_audio(rec.audio) if rec.audio is not None else (float("nan"), [])
    video = _probe_video(rec.video) if rec.video is not None else None  # a corrupt file fails here
    max_frames = int(np.floor(max_seconds / LABEL_HOP_S + 1e-6)) + 1
    ratings = {d: read_ratings(path, max_gap_s=max_gap_s) for d, path in present.items()}
    media_s = audio_s if rec.audio is not None else (video.duration_s if video is not None else 0.0)
    if not ratings and not media_s > 0:
        raise CorpusError(f"recording {rec.id} has neither audio nor ratings, so its length is unknown; "
                          "add its audio file or its ratings")
    for dim, table in ratings.items():
        last = table.attrs["last_time_s"]
        if media_s > 0 and last > 2 * media_s + 10:
            raise CorpusError(f"{rec.labels[dim]}: ratings run to {last:g} s but the media of recording {rec.id} last "
                              f"{media_s:.1f} s; check the time unit (seconds) and that the file belongs to {rec.id}")
    media_frames = int(np.floor(media_s / LABEL_HOP_S + 1e-6)) + 1 if media_s > 0 else 0
    rated_frames = [int(np.floor(r.attrs["last_time_s"] / LABEL_HOP_S + 1e-6)) + 1 for r in ratings.values()]
    n_frames = min(max([media_frames, *rated_frames]), max_frames)  # half a row period past the media: not a frame
    gold = pd.DataFrame({"time": np.round(np.arange(n_frames) * LABEL_HOP_S, 2)})
    row = {"recording": rec.id, "partition": rec.partition, "audio": rec.audio, "video": rec.video,
           "n_frames": n_frames, "audio_s": round(audio_s, 3), "labelled": bool(ratings)}
    labelled = np.full(n_frames, bool(ratings))
    for d in dimensions:
        matrix = ratings[d].reindex(range(n_frames)).to_numpy() if d in ratings else None
        if matrix is not None:
            if method == "shipped" and matrix.shape[1] != 1:
                raise CorpusError(f"{rec.labels[d]}: corpus.gold_standard = 'shipped' takes each label file as the "
                                  f"gold standard, one value column; this file has {matrix.shape[1]} (individual "
                                  "ratings?). Set corpus.gold_standard to avec2016, mean or ewe to combine them")
            gold[d] = gold_standard(matrix, method)
            labelled &= gold[d].notna().to_numpy()
        row[f"labelled_frames_{d}"] = int(gold[d].notna().sum()) if d in gold else 0
        row[f"agreement_{d}"] = rater_agreement(matrix) if matrix is not None else float("nan")
    row["labelled_frames"] = int(labelled.sum())
    row["unlabelled_frames"] = n_frames - int(labelled.sum())
    media = {kind: media_digest(path) for kind, path in (("audio", rec.audio), ("video", rec.video))
             if path is not None}
    return PreparedRecording(row, gold, audio_warnings + rating_warnings(rec, ratings), media)


def check_distinct_media(prepared: list[PreparedRecording]) -> list[str]:
    """Warnings for one media file under two recording ids of one partition.

    Raises
    ------
    CorpusError
        The same file (equal bytes) under two ids in different partitions: train/test leakage.
    """
    seen: dict[tuple[str, str], dict] = {}
    messages = []
    for item in prepared:
        for kind, digest in item.media.items():
            first = seen.setdefault((kind, digest), item.row)
            if first is item.row:
                continue
            pair = (f"{kind} of recordings {first['recording']} ({first['partition']}, {first[kind]}) and "
                    f"{item.row['recording']} ({item.row['partition']}, {item.row[kind]}) is the same file")
            if first["partition"] != item.row["partition"]:
                raise CorpusError(f"the {pair}: one recording in two partitions leaks the test data into training; "
                                  "remove the duplicate from the corpus")
            messages.append(f"the {pair}: it counts twice in {first['partition']}; remove the duplicate")
    return messages


def check_distinct_labels(recordings, *, allow_shared: bool) -> list[str]:
    """Warnings for label files shared across partitions.

    Returns
    -------
    list of str
        One message per pair of recordings in different partitions whose label files hold the
        same bytes under different names, and per label file named twice in one partition.

    Raises
    ------
    CorpusError
        One label file named by recordings in different partitions (their labels leak from one
        partition into another), unless ``allow_shared``.
    """
    by_path: dict = {}
    by_content: dict[str, tuple] = {}
    messages = []
    for rec in recordings:
        for dim, path in rec.labels.items():
            if path is None or not path.is_file():  # a label file, or a rating source such as an audformat table
                continue
            key = path.resolve() if isinstance(path, Path) else str(path)
            first = by_path.setdefault(key, (rec, dim))
            if first[0] is not rec:
                pair = (f"the {first[1]} label file of recording {first[0].id} ({first[0].partition}) and the {dim} "
                        f"label file of {rec.id} ({rec.partition}) are one file, {path}")
                if first[0].partition == rec.partition:
                    messages.append(f"{pair}: both recordings are fitted or scored on the same labels")
                elif not allow_shared:
                    raise CorpusError(f"{pair}: the labels of one partition would be those of another. Give each "
                                      "recording its own label file, or set corpus.allow_shared_labels = true if "
                                      "they really share labels")
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            other = by_content.setdefault(digest, (rec, dim, path))
            if other[0] is not rec and other[0].partition != rec.partition:
                messages.append(f"the {other[1]} labels of recording {other[0].id} ({other[0].partition}, {other[2]}) "
                                f"and the {dim} labels of {rec.id} ({rec.partition}, {path}) are identical: check "
                                "that the labels of one partition were not copied into another")
    return messages


def check_dimensions_rated(table: pd.DataFrame, dimensions) -> None:
    """Raise unless train and devel have rated frames in every dimension (none may drop out silently)."""
    for partition in ("train", "devel"):
        rows = table[table.partition == partition]
        for dim in dimensions:
            if len(rows) and rows[f"labelled_frames_{dim}"].sum() == 0:
                raise CorpusError(f"no {partition} recording has a usable {dim} rating "
                                  f"({', '.join(rows.recording.astype(str)[:5])}); check their {dim} files")


def coverage_warnings(table: pd.DataFrame, limit: float = 0.05, *, listed: int = 3) -> list[str]:
    """Rated recordings with more than ``limit`` of their label frames unlabelled: one message per
    recording up to ``listed`` of them, else one message for all (a lead-in every file has)."""
    rated = table[table.labelled & (table.unlabelled_frames > limit * table.n_frames)]
    advice = ("they are predicted but never fitted or scored. Check the rating files if they should cover the "
              "whole recordings")
    if len(rated) > listed:
        first = ", ".join(f"{r.recording} {r.unlabelled_frames * 0.04:.1f} s ({r.unlabelled_frames / r.n_frames:.0%})"
                          for r in rated.head(listed).itertuples())
        return [f"{len(rated)} recordings have unlabelled label frames (from {rated.unlabelled_frames.min() * 0.04:.1f}"
                f" s to {rated.unlabelled_frames.max() * 0.04:.1f} s; first: {first}); {advice}"]
    return [f"recording {r.recording} ({r.partition}): {r.unlabelled_frames} of its {r.n_frames} label frames "
            f"({r.unlabelled_frames / r.n_frames:.0%}) have no rating; {advice}" for r in rated.itertuples()]


def _prepare(args) -> PreparedRecording:
    rec, read_ratings, kwargs = args
    return prepare_recording(rec, read_ratings, **kwargs)


def run_data(inputs, artifact) -> dict:
    """Check every recording first (so bad input writes nothing), then write gold standards."""
    cfg = inputs.config.corpus
    corpus = corpus_of(inputs)
    if not corpus.recordings:
        raise CorpusError(f"corpus '{cfg.name}' lists no recordings")
    method = "shipped" if corpus.gold_from_files else cfg.gold_standard
    kwargs = dict(dimensions=cfg.dimensions, method=method, max_seconds=cfg.max_seconds,
                  max_gap_s=cfg.max_label_gap_s)
    label_warnings = check_distinct_labels(corpus.recordings, allow_shared=cfg.allow_shared_labels)
    prepared = inputs.map(_prepare, [(r, corpus.read_ratings, kwargs) for r in corpus.recordings],
                            desc="data: ratings")
    for item in prepared:
        name = f"gold/{item.row['recording']}.parquet"
        if not artifact.has(name):
            write_table(artifact.file(name), item.gold)
    table = pd.DataFrame([p.row for p in prepared])
    check_dimensions_rated(table, cfg.dimensions)
    warnings = label_warnings + check_distinct_media(prepared) + [m for p in prepared for m in p.warnings]
    store = inputs.store_root.resolve()
    for column in ("audio", "video"):
        table[column] = [_portable(path, store) for path in table[column]]
    write_table(artifact.file("recordings.csv"), table)
    partitions = table.groupby("partition")["recording"].count().to_dict()
    log.info("data: %d recordings %s, %d label frames (%d labelled)", len(table), partitions,
             table["n_frames"].sum(), table["labelled_frames"].sum())
    warnings += coverage_warnings(table)
    for message in warnings:
        log.warning("%s", message)
    return {"warnings": warnings, "corpus": cfg.name, "recordings": len(table), "partitions": partitions,
            "frames": int(table["n_frames"].sum()), "labelled_frames": int(table["labelled_frames"].sum()),
            "coverage": {r.recording: {"labelled": int(r.labelled_frames), "unlabelled": int(r.unlabelled_frames)}
                         for r in table.itertuples()},
            "gold_standard": method,
            "mean_rater_agreement": {d: float(table[f"agreement_{d}"].mean()) for d in cfg.dimensions}}


def _probe_video(path):
    """Duration and decoder of a video file (the face path's decoder, imported for corpora with video)."""
    return require("recola_pipeline.extractors.video_decode", what="a corpus with video", extra="video").probe(path)


STAGE = Stage(
    name="data", kind="features", sections=("corpus",),
    upstream=lambda cfg: ["demo"] if cfg.corpus.name == "demo" else [],
    libraries=("numpy", "pandas", "soundfile"), run=run_data, extra_identity=_fingerprint,
)


def _portable(path: Path | None, store: Path) -> str:
    """A media path as stored in recordings.csv: relative to the artifact root when inside it."""
    if path is None:
        return ""
    path = Path(path).resolve()
    return path.relative_to(store).as_posix() if path.is_relative_to(store) else str(path)


