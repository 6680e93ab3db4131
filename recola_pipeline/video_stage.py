"""The ``faces`` and ``video`` stages: face crops embedded by a CNN, one vector per 40 ms frame.

``faces`` (internal, ``features/faces/<hash>/``), per recording with video, in parallel:

1. decode (OpenCV, PyAV fallback; for a grey network such as ``fer2013`` only the luma plane,
   through PyAV) up to ``corpus.max_seconds``; each label frame takes the decoded frame on
   screen at its time (:func:`~recola_pipeline.features.video_decode.label_frame_sources`);
2. detect faces every ``video.detect_every`` frames (near the previous face first, else on the
   frame downscaled to about ``video.detect_width`` pixels), follow the main face and
   interpolate gaps up to ``video.max_gap_s`` (:mod:`~recola_pipeline.features.faces`);
3. crop a square around the face (``video.margin``), resize to the backbone's input and embed
   in batches of ``video.batch_size``. Decoding, detection and the network overlap: a decode
   thread fills a bounded buffer of frames, a second thread detects faces and crops the frames a
   tracking horizon behind (:func:`~recola_pipeline.features.faces.track_horizon`; their boxes
   are final), and the network runs on the crops as they come. Each frame is decoded once and
   at most ``horizon + 100`` frames are held in memory.

With ``video.finetune_epochs > 0`` the backbone's last block is first fine-tuned on the train
partition's crops (every ``video.finetune_stride``-th label frame) to regress the gold standard
(:mod:`~recola_pipeline.features.finetune`, the seed paper's Fig. 1b), kept in the artifact as
``finetune/model.pt`` with ``finetune/info.json`` (crops, epochs, training loss), and every
recording is embedded with the fine-tuned network.

It writes ``frames/<recording>.parquet``: ``time`` (label frames), ``face`` (1 when the frame has
a face box, detected or interpolated), ``detected``, the box ``cx, cy, side`` (pixels), and the
embedding columns (NaN on frames without a face or after the video ends), and
``info/<recording>.json`` (frame counts, detection rate, gaps, largest frame-to-frame box move),
written last as the recording's completion marker.

``video`` (``features/video/<hash>/``): a PCA fitted on the train partition's face frames keeps
``video.pca_variance`` of the variance (AVEC 2016 kept 98 %); then, for every W in
``video.windows_s``, the mean and standard deviation of each component over the centred window,
aligned to the label frames like the audio (:func:`~recola_pipeline.features.windows.align_to_labels`),
plus ``face_fraction`` (share of the window's frames with a face). A window without any face
frame is NaN, which the train stage maps to 0 after normalisation (the train mean).
Files: ``pca.joblib``, ``w<W>/<recording>.parquet``.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from .cache import atomic_path, read_table, write_json, write_table
from .config import VIDEO_EMBEDDING_KEYS
from .corpora import CorpusError
from .data_stage import load_data
from .features import faces, video_decode
from .features.backbones import load_backbone, weights_identity
from .features.finetune import finetune, load_finetuned
from .features.windows import windowed_mean_std
from .labels import LABEL_HOP_S
from .matrices import verify_frames, window_name
from .stages import Pipeline, Stage, register

log = logging.getLogger(__name__)

_DONE = None
_CHUNK = 50  # frames whose boxes are settled (and cropped) at a time


class _FrameBuffer:
    """Decoded frames not yet cropped, filled by the decode thread (bounded: it waits when full)."""

    def __init__(self, capacity: int):
        self.condition = threading.Condition()
        self.frames: collections.deque = collections.deque()
        self.first = 0  # index of frames[0]
        self.capacity = capacity
        self.finished = False
        self.error: BaseException | None = None

    def fill(self, row, max_seconds: float, grey: bool) -> None:
        """Decode thread body (grey: luma frames, see :func:`~recola_pipeline.features.video_decode.frames`)."""
        try:
            for time_s, frame in video_decode.frames(row["video"], row["decoder"], max_seconds=max_seconds,
                                                     grey=grey):
                with self.condition:
                    self.condition.wait_for(lambda: len(self.frames) < self.capacity)
                    self.frames.append((time_s, frame))
                    self.condition.notify_all()
        except BaseException as exc:  # re-raised by the reader
            self.error = exc
        finally:
            with self.condition:
                self.finished = True
                self.condition.notify_all()

    def get(self, index: int):
        """``(time, frame)`` of frame ``index`` (waiting for it), or None after the last frame."""
        with self.condition:
            self.condition.wait_for(lambda: self.finished or index < self.first + len(self.frames))
            if self.error is not None:
                raise self.error
            return self.frames[index - self.first] if index < self.first + len(self.frames) else None

    def drop_until(self, index: int) -> None:
        """Forget frames before ``index`` (cropped or skipped)."""
        with self.condition:
            while self.first < index and self.frames:
                self.frames.popleft()
                self.first += 1
            self.condition.notify_all()


def _shown(times: list, index: int, n_frames: int, stride: int = 1) -> bool:
    """Whether decoded frame ``index`` is the one on screen at some label frame k (with k a multiple
    of ``stride``; see :func:`~recola_pipeline.features.video_decode.label_frame_sources`); the
    last frame is kept."""
    if index + 1 >= len(times):
        return True
    k = np.arange(max(0, int((times[index] - 0.01) / LABEL_HOP_S)),
                  min(n_frames, int(times[index + 1] / LABEL_HOP_S) + 2))
    label_times = k[k % stride == 0] * LABEL_HOP_S
    return bool(np.any((times[index] <= label_times + 1e-3) & (label_times + 1e-3 < times[index + 1])))


def _detect_and_crop(cfg, settings: dict, size, levels, n_frames, frames: _FrameBuffer, out: queue.Queue,
                     stride: int) -> None:
    """Detect every ``detect_every``-th frame; once the frames a tracking horizon back have final
    boxes (:func:`~recola_pipeline.features.faces.track` with ``settings``), crop them and queue
    batches. The last item is the whole video's :class:`Track`. ``levels``: for grey frames, the
    lookup table to 0-255 (:func:`~recola_pipeline.features.video_decode.luma_levels`) applied
    to the crops; None for BGR frames."""
    grey = levels is not None

    def queue_batch(indices, batch):
        crops = np.stack(batch)
        out.put((indices, levels[crops] if grey else crops))

    try:
        horizon = faces.track_horizon(**settings)
        detector, previous = faces.haar_detector(), None
        times, detections, boxes = [], {}, np.empty((0, 3))
        settled, batch, indices, index = 0, [], [], 0
        while True:
            item = frames.get(index)
            if item is not None:
                times.append(item[0])
                if index % cfg.detect_every == 0:
                    box = faces.main_face(faces.detect(detector, item[1], cfg.detect_width, near=previous), previous)
                    detections[index] = box
                    previous = box if box is not None else previous
                index += 1
            end = index if item is None else index - horizon
            if end - settled >= _CHUNK or (item is None and end > settled):
                window = {i: b for i, b in detections.items() if i >= settled - horizon}
                chunk = faces.track(window, index, **settings)[settled:end]
                boxes = np.vstack([boxes, chunk])
                for offset, box in enumerate(chunk):
                    i = settled + offset
                    if np.isfinite(box[0]) and _shown(times, i, n_frames, stride):
                        batch.append(faces.crop(frames.get(i)[1], box, margin=cfg.margin, size=size, grey=grey))
                        indices.append(i)
                        if len(batch) == cfg.batch_size:
                            queue_batch(indices, batch)
                            batch, indices = [], []
                settled = end
                frames.drop_until(settled)
            if item is None:
                break
        if batch:
            queue_batch(indices, batch)
        out.put(Track(np.asarray(times), detections, boxes))
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


@dataclass
class Track:
    """A video's decoded frame times, detector results and tracked boxes (cx, cy, side)."""

    times: np.ndarray
    detections: dict
    boxes: np.ndarray


def crop_batches(row, cfg, size: int, grey: bool, max_seconds: float, *, stride: int = 1):
    """Yield ``(frame indices, crops)`` batches of one video's face crops, then its :class:`Track`.

    Three threads overlap: one decodes into a bounded buffer, one detects faces and crops the
    frames whose boxes are final, and the caller consumes the batches (e.g. runs the network).
    Only frames on screen at a label frame k with k a multiple of ``stride`` are cropped.
    """
    settings = dict(every=cfg.detect_every, max_gap=max(1, int(round(cfg.max_gap_s * row["fps"]))),
                    smoothing=cfg.smoothing)
    frames, batches = _FrameBuffer(capacity=faces.track_horizon(**settings) + 2 * _CHUNK), queue.Queue(maxsize=4)
    workers = [threading.Thread(target=frames.fill, args=(row, max_seconds, grey), daemon=True),
               threading.Thread(target=_detect_and_crop, daemon=True,
                                args=(cfg, settings, size, video_decode.luma_levels(row["video"]) if grey else None,
                                      int(row["n_frames"]), frames, batches, stride))]
    for worker in workers:
        worker.start()
    while (item := batches.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item
    for worker in workers:
        worker.join()


# A network needing less than this per crop (the FER-2013 one: 0.02 GFLOP; resnet18 at 224 px:
# 3.6) costs about what decoding a 720p frame and following the face cost; see network_threads.
LIGHT_NETWORK_FLOPS = 0.5e9


def network_threads(threads: int, backbone) -> int:
    """Intra-op torch threads for the network while a recording is embedded with ``threads`` cores.

    A light network (< ``LIGHT_NETWORK_FLOPS`` per crop) leaves one core to the decode and
    detection threads: they then need about a core between them, and torch's threads, which wait
    for each other after every layer, lose more than they gain on oversubscribed cores
    (``benchmarks/video_stage.py``, fer2013 on a 720p video with 2 cores: 309 frames/s with one
    torch thread, 223 with two). A heavier network takes every core, as the network is then
    nearly all the work. Embeddings do not depend on the thread count (bit-identical).
    """
    return max(1, threads - 1) if backbone.flops_per_crop() < LIGHT_NETWORK_FLOPS else threads


def _embedded(artifact, row) -> bool:
    """Whether an earlier run finished this recording: its info file and its frame table are there."""
    return artifact.has(f"info/{row['recording']}.json") and artifact.has(f"frames/{row['recording']}.parquet")


def embed_recording(args) -> dict:
    """Decode, detect, track, crop and embed one recording (see :func:`crop_batches`) with
    ``threads`` cores; returns its summary."""
    artifact, row, cfg, max_seconds, threads, finetuned = args
    info_name = f"info/{row['recording']}.json"
    if _embedded(artifact, row):
        return json.loads(artifact.file(info_name).read_text())
    backbone = load_backbone(cfg.backbone, cfg.weights, input_size=cfg.input_size)
    if finetuned is not None:
        backbone = load_finetuned(backbone, finetuned)
    torch.set_num_threads(network_threads(threads, backbone))
    n_frames = int(row["n_frames"])
    embedded: dict[int, np.ndarray] = {}
    for item in crop_batches(row, cfg, backbone.input_size, backbone.grey, max_seconds):
        if isinstance(item, Track):
            times, detections, boxes = item.times, item.detections, item.boxes
        else:
            embedded.update(zip(item[0], backbone.embed(item[1])))
    times = np.asarray(times)
    if times.size == 0:
        raise CorpusError(f"{row['video']}: no frame could be decoded; the file is corrupt or truncated: "
                          f"{video_decode.DECODE_HINT}")
    sources = video_decode.label_frame_sources(times, n_frames, LABEL_HOP_S)
    has_face = (sources >= 0) & np.isfinite(boxes[np.maximum(sources, 0), 0])
    missing = sorted(set(sources[has_face].tolist()) - set(embedded))
    if missing:
        raise RuntimeError(f"{row['video']}: frames {missing[:5]} were shown at a label time but not embedded")
    values = np.full((n_frames, len(backbone.feature_names)), np.nan, dtype=np.float32)
    for k in np.flatnonzero(has_face):
        values[k] = embedded[int(sources[k])]

    safe = np.maximum(sources, 0)
    table = pd.DataFrame({"time": np.round(np.arange(n_frames) * LABEL_HOP_S, 2),
                          "face": has_face.astype(np.int8),
                          "detected": [s >= 0 and detections.get(int(s)) is not None for s in sources]})
    for k, column in enumerate(("cx", "cy", "side")):
        table[column] = np.where(sources >= 0, boxes[safe, k], np.nan).astype(np.float32)
    table = pd.concat([table, pd.DataFrame(values, columns=backbone.feature_names)], axis=1)
    write_table(artifact.file(f"frames/{row['recording']}.parquet"), table)
    verify_frames(artifact.file(f"frames/{row['recording']}.parquet"), n_frames)

    found = sum(box is not None for box in detections.values())
    steps = np.abs(np.diff(boxes[:, :2], axis=0)).max(axis=1) / boxes[1:, 2]
    fps = row["fps"]
    info = {"recording": row["recording"], "decoder": row["decoder"], "fps": round(fps, 3),
            "decoded_frames": int(len(times)), "video_s": round(float(times[-1]) + 1 / fps, 3),
            "detector_runs": len(detections), "detection_rate": round(found / max(1, len(detections)), 4),
            "label_frames": n_frames, "face_frames": int(has_face.sum()),
            "no_face_frames": int(((sources >= 0) & ~has_face).sum()), "after_video_end": int((sources < 0).sum()),
            "max_box_step": round(float(np.nanmax(steps)) if np.isfinite(steps).any() else 0.0, 4),
            "backbone": backbone.name, "weights": backbone.weights}
    write_json(artifact.file(f"info/{row['recording']}.json"), info)
    return info


def strided_crops(row, cfg, size: int, grey: bool, max_seconds: float, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, list, int]:
    """Face crops of the frames on screen at label frames 0, ``stride``, 2 ``stride``, ...

    Returns
    -------
    label_frames, source_frames : ndarray of int
        The label frames k whose frame has a face box, and the decoded frame shown at each.
    crops : list of ndarray
        One crop per entry of ``label_frames``.
    shown : int
        Strided label frames with a frame on screen (with or without a face).
    """
    crops = {}
    for item in crop_batches(row, cfg, size, grey, max_seconds, stride=stride):
        if isinstance(item, Track):
            track = item
        else:
            crops.update(zip(item[0], item[1]))
    sources = video_decode.label_frame_sources(track.times, int(row["n_frames"]), LABEL_HOP_S)
    label_frames = np.arange(0, len(sources), stride)
    label_frames = label_frames[sources[label_frames] >= 0]
    shown = len(label_frames)
    label_frames = np.asarray([k for k in label_frames if int(sources[k]) in crops], dtype=int)
    source_frames = sources[label_frames].astype(int)
    return label_frames, source_frames, [crops[int(s)] for s in source_frames], shown


def collect_train_crops(args) -> tuple[np.ndarray, np.ndarray]:
    """Face crops of one train recording at every ``finetune_stride``-th label frame (each decoded
    frame once, with the first such label frame), with the gold standard of that frame (rows:
    crops; columns: dimensions)."""
    row, cfg, size, grey, max_seconds, gold = args
    label_frames, source_frames, crops, _ = strided_crops(row, cfg, size, grey, max_seconds, cfg.finetune_stride)
    if not crops:
        return np.empty((0,)), np.empty((0, gold.shape[1]))
    first = np.unique(source_frames, return_index=True)[1]
    return np.stack(crops)[first], gold[label_frames[first]]


def _finetune(pipeline: Pipeline, artifact, rows: list[dict], backbone) -> str:
    """Fine-tune the backbone on the train partition once (kept in the artifact); its path."""
    cfg = pipeline.config.video
    name = "finetune/model.pt"
    if artifact.has(name):
        return str(artifact.file(name))
    _, gold = load_data(pipeline.ensure("data"))
    dims = pipeline.config.corpus.dimensions
    train = [r for r in rows if r["partition"] == "train" and r["labelled"]]
    args = [(r, cfg, backbone.input_size, backbone.grey, pipeline.config.corpus.max_seconds,
             gold[r["recording"]][dims].to_numpy(dtype=np.float64)) for r in train]
    parts = [p for p in pipeline.map(collect_train_crops, args, desc="faces: fine-tuning crops") if len(p[0])]
    if not parts:
        raise CorpusError("video.finetune_epochs > 0 but no train recording has a face to fine-tune on")
    crops, targets = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    labelled = np.isfinite(targets).all(axis=1)  # crops of unlabelled frames take no part
    crops, targets = crops[labelled], targets[labelled]
    if not len(crops):
        raise CorpusError("video.finetune_epochs > 0 but no train face crop falls on a labelled frame")
    torch.set_num_threads(os.cpu_count() or 1)
    losses = finetune(backbone, crops, targets, epochs=cfg.finetune_epochs, seed=pipeline.config.train.seed,
                      batch_size=cfg.batch_size)
    write_json(artifact.file("finetune/info.json"), {"crops": int(len(crops)), "dimensions": dims,
                                                     "epochs": cfg.finetune_epochs, "train_loss": losses,
                                                     "trained": type(backbone.tail()).__name__})
    with atomic_path(artifact.file(name)) as tmp:
        torch.save(backbone.model.state_dict(), tmp)
    log.info("faces: fine-tuned on %d train crops, loss %.3f -> %.3f", len(crops), losses[0], losses[-1])
    return str(artifact.file(name))


def _video_rows(pipeline: Pipeline) -> list[dict]:
    table, _ = load_data(pipeline.ensure("data"))
    rows = [r for r in table.to_dict("records") if isinstance(r["video"], str) and r["video"]]
    if not rows:
        raise CorpusError("no recording of this corpus has video; drop 'video' from train.modalities "
                          "(or add the videos to the corpus)")
    return rows


def run_faces(pipeline: Pipeline, artifact) -> dict:
    """Embed every recording with video not already in the (possibly partial) artifact."""
    cfg = pipeline.config.video
    backbone = load_backbone(cfg.backbone, cfg.weights, input_size=cfg.input_size)  # fail before any work
    rows = _video_rows(pipeline)
    for row in rows:
        probed = video_decode.probe(row["video"])
        row["decoder"], row["fps"] = probed.decoder, probed.fps if probed.fps > 0 else 25.0
    todo = [row for row in rows if not _embedded(artifact, row)]
    jobs = os.cpu_count() if pipeline.config.run.jobs < 0 else pipeline.config.run.jobs
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(todo))))
    finetuned = _finetune(pipeline, artifact, rows, backbone) if cfg.finetune_epochs > 0 else None
    args = [(artifact, row, cfg, pipeline.config.corpus.max_seconds, threads, finetuned) for row in todo]
    for info in pipeline.map(embed_recording, args, desc=f"faces: {cfg.backbone}"):
        if info["video_s"] < info["label_frames"] * LABEL_HOP_S - 1.0:
            log.warning("video: %s lasts %.2f s, less than its ratings; %d label frames after its end have no face",
                        info["recording"], info["video_s"], info["after_video_end"])
    infos = [json.loads(artifact.file(f"info/{r['recording']}.json").read_text()) for r in rows]
    low = [i["recording"] for i in infos if i["face_frames"] < 0.5 * i["label_frames"]]
    if low:
        log.warning("video: a face was found in fewer than half the frames of %s; check the videos "
                    "(lighting, profile views) or raise video.detect_width (less downscaling)", ", ".join(low))
    return {"backbone": backbone.name, "weights": infos[0]["weights"], "input_size": backbone.input_size,
            "n_features": len(backbone.feature_names), "recordings": len(rows), "embedded_now": len(todo),
            "face_frames": sum(i["face_frames"] for i in infos),
            "no_face_frames": sum(i["no_face_frames"] for i in infos),
            "after_video_end": sum(i["after_video_end"] for i in infos),
            "per_recording": {i["recording"]: {k: i[k] for k in ("detection_rate", "face_frames", "no_face_frames",
                                                                 "after_video_end", "max_box_step")} for i in infos}}


def _faces_identity(pipeline: Pipeline) -> dict:
    """The embedding keys of ``[video]``, ``train.seed`` when fine-tuning and, for a local weights
    file, its SHA-256."""
    video = pipeline.config.section("video")
    identity = {"video_embedding": {key: video[key] for key in VIDEO_EMBEDDING_KEYS},
                **weights_identity(pipeline.config.video.weights)}
    if pipeline.config.video.finetune_epochs > 0:  # the fine-tuning's shuffling and initial head
        identity["finetune_seed"] = pipeline.config.train.seed
    return identity


register(Stage(
    name="faces", kind="features", sections=(), upstream=lambda cfg: ["data"],
    libraries=("torch", "timm", "opencv-python-headless", "av", "h5py", "fer", "numpy"), run=run_faces,
    extra_identity=_faces_identity, public=False,
    version=2,  # 2: luma decode for grey networks, the near-face search at ~32 px, whole-block crop shrinking
))


def load_face_frames(artifact, recording: str) -> pd.DataFrame:
    """One recording's per-label-frame face table (``time``, ``face``, box, embedding)."""
    return read_table(artifact.file(f"frames/{recording}.parquet"))


def _embedding(table: pd.DataFrame) -> np.ndarray:
    columns = [c for c in table.columns if c not in ("time", "face", "detected", "cx", "cy", "side")]
    return table[columns].to_numpy(dtype=np.float64)


def run_video(pipeline: Pipeline, artifact) -> dict:
    """PCA on the train partition's face frames, then windowed mean/std per W."""
    cfg = pipeline.config.video
    face_artifact = pipeline.ensure("faces")
    rows = _video_rows(pipeline)
    tables = {r["recording"]: load_face_frames(face_artifact, r["recording"]) for r in rows}
    train = [_embedding(tables[r["recording"]]) for r in rows if r["partition"] == "train"]
    train = np.vstack(train) if train else np.empty((0, 0))
    train = train[np.isfinite(train).all(axis=1)] if train.size else train
    if len(train) < 2:
        raise CorpusError("video: the train partition has fewer than two frames with a face, so no PCA can be "
                          "fitted; check the train videos (the faces stage's info/ says how many faces were found)")
    pca = PCA(n_components=cfg.pca_variance if cfg.pca_variance < 1 else None, svd_solver="full").fit(train)
    with atomic_path(artifact.file("pca.joblib")) as tmp:
        joblib.dump(pca, tmp)
    names = [f"pc{i + 1:03d}" for i in range(pca.n_components_)]
    columns = [f"{n}_mean" for n in names] + [f"{n}_std" for n in names] + ["face_fraction"]
    for rec, table in tables.items():
        embedding = _embedding(table)
        face = np.isfinite(embedding).all(axis=1)
        projected = np.full((len(table), pca.n_components_), np.nan)
        if face.any():
            projected[face] = pca.transform(embedding[face])
        for w in cfg.windows_s:
            mean, std, fraction = windowed_mean_std(projected, w, LABEL_HOP_S)
            values = np.column_stack([mean, std, fraction]).astype(np.float32)
            out = pd.DataFrame(values, columns=columns)
            out.insert(0, "time", table["time"].to_numpy())
            write_table(artifact.file(f"{window_name(w)}/{rec}.parquet"), out)
    return {"backbone": cfg.backbone, "weights": face_artifact.manifest()["info"]["weights"],
            "pca_components": int(pca.n_components_),
            "pca_variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4),
            "train_face_frames": int(len(train)), "windows_s": cfg.windows_s, "recordings": len(tables)}


register(Stage(
    name="video", kind="features", sections=("video",), upstream=lambda cfg: ["data", "faces"],
    libraries=("scikit-learn", "numpy"), run=run_video,
))
