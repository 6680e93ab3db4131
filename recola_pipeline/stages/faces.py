"""The ``faces`` stage: face crops embedded by a CNN, one vector per 40 ms frame.

``faces`` (internal, ``features/faces/<hash>/``), per recording with video, in parallel:

(the crop engine is :mod:`~recola_pipeline.extractors.face_crops`)

1. decode (OpenCV, PyAV fallback; for a grey network such as ``fer2013`` only the luma plane,
   through PyAV) up to ``corpus.max_seconds``; each label frame takes the decoded frame on
   screen at its time (:func:`~recola_pipeline.extractors.video_decode.label_frame_sources`);
2. detect faces every ``video.detect_every`` frames (near the previous face first, else on the
   frame downscaled to about ``video.detect_width`` pixels), follow the main face and
   interpolate gaps up to ``video.max_gap_s`` (:mod:`~recola_pipeline.extractors.faces`);
3. crop a square around the face (``video.margin``), resize to the backbone's input and embed
   in batches of ``video.batch_size``. Decoding, detection and the network overlap: a decode
   thread fills a bounded buffer of frames, a second thread detects faces and crops the frames a
   tracking horizon behind (:func:`~recola_pipeline.extractors.faces.track_horizon`; their boxes
   are final), and the network runs on the crops as they come. Each frame is decoded once and
   at most ``horizon + 100`` frames are held in memory.

With ``video.finetune_epochs > 0`` the backbone's last block is first fine-tuned on the train
partition's crops (every ``video.finetune_stride``-th label frame) to regress the gold standard
(:mod:`~recola_pipeline.extractors.finetune`, the seed paper's Fig. 1b), kept in the artifact as
``finetune/model.pt`` with ``finetune/info.json`` (crops, epochs, training loss), and every
recording is embedded with the fine-tuned network.

It writes ``frames/<recording>.parquet``: ``time`` (label frames), ``face`` (1 when the frame has
a face box, detected or interpolated), ``detected``, the box ``cx, cy, side`` (pixels), and the
embedding columns (NaN on frames without a face or after the video ends), and
``info/<recording>.json`` (frame counts, detection rate, gaps, largest frame-to-frame box move),
written last as the recording's completion marker.

torch and the networks are imported by the functions that run them, not by this module: a run
that reuses the artifact computes the stage's identity (which imports this module) without
loading torch. Where they are not installed, running the stage says which extra to install.
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np

from ..cache import atomic_path, write_json, write_table
from ..config import VIDEO_EMBEDDING_KEYS
from ..corpora import CorpusError
from ..extractors.weights import weights_identity
from ..labels import LABEL_HOP_S
from ..matrices import verify_frames
from ..stage import Stage
from ..readers import load_data, video_rows
from ..registry import require

log = logging.getLogger(__name__)


def _embedded(artifact, row) -> bool:
    """Whether an earlier run finished this recording: its info file and its frame table are there."""
    return artifact.has(f"info/{row['recording']}.json") and artifact.has(f"frames/{row['recording']}.parquet")


def embed_recording(args) -> dict:
    """Decode, detect, track, crop and embed one recording (see :func:`crop_batches`) with
    ``threads`` cores; returns its summary."""
    import torch

    from ..extractors.backbones import load_backbone
    from ..extractors.face_crops import network_threads
    from ..extractors.face_embedding import face_frames
    from ..extractors.finetune import load_finetuned

    artifact, row, cfg, max_seconds, threads, finetuned = args
    info_name = f"info/{row['recording']}.json"
    if _embedded(artifact, row):
        return json.loads(artifact.file(info_name).read_text())
    backbone = load_backbone(cfg.backbone, cfg.weights, input_size=cfg.input_size)
    if finetuned is not None:
        backbone = load_finetuned(backbone, finetuned)
    torch.set_num_threads(network_threads(threads, backbone))
    table, info = face_frames(row, cfg, max_seconds, backbone)
    write_table(artifact.file(f"frames/{row['recording']}.parquet"), table)
    verify_frames(artifact.file(f"frames/{row['recording']}.parquet"), int(row["n_frames"]))
    write_json(artifact.file(f"info/{row['recording']}.json"), info)
    return info



def collect_train_crops(args) -> tuple[np.ndarray, np.ndarray]:
    """Face crops of one train recording at every ``finetune_stride``-th label frame (each decoded
    frame once, with the first such label frame), with the gold standard of that frame (rows:
    crops; columns: dimensions)."""
    from ..extractors.face_crops import strided_crops

    row, cfg, size, grey, max_seconds, gold = args
    label_frames, source_frames, crops, _ = strided_crops(row, cfg, size, grey, max_seconds, cfg.finetune_stride)
    if not crops:
        return np.empty((0,)), np.empty((0, gold.shape[1]))
    first = np.unique(source_frames, return_index=True)[1]
    return np.stack(crops)[first], gold[label_frames[first]]


def _finetune(inputs, artifact, rows: list[dict], backbone) -> str:
    """Fine-tune the backbone on the train partition once (kept in the artifact); its path."""
    import torch

    from ..extractors.finetune import finetune

    cfg = inputs.config.video
    name = "finetune/model.pt"
    if artifact.has(name):
        return str(artifact.file(name))
    _, gold = load_data(inputs.artifact("data"))
    dims = inputs.config.corpus.dimensions
    train = [r for r in rows if r["partition"] == "train" and r["labelled"]]
    args = [(r, cfg, backbone.input_size, backbone.grey, inputs.config.corpus.max_seconds,
             gold[r["recording"]][dims].to_numpy(dtype=np.float64)) for r in train]
    parts = [p for p in inputs.map(collect_train_crops, args, desc="faces: fine-tuning crops") if len(p[0])]
    if not parts:
        raise CorpusError("video.finetune_epochs > 0 but no train recording has a face to fine-tune on")
    crops, targets = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    labelled = np.isfinite(targets).all(axis=1)  # crops of unlabelled frames take no part
    crops, targets = crops[labelled], targets[labelled]
    if not len(crops):
        raise CorpusError("video.finetune_epochs > 0 but no train face crop falls on a labelled frame")
    torch.set_num_threads(os.cpu_count() or 1)
    losses = finetune(backbone, crops, targets, epochs=cfg.finetune_epochs, seed=inputs.config.train.seed,
                      batch_size=cfg.batch_size)
    write_json(artifact.file("finetune/info.json"), {"crops": int(len(crops)), "dimensions": dims,
                                                     "epochs": cfg.finetune_epochs, "train_loss": losses,
                                                     "trained": type(backbone.tail()).__name__})
    with atomic_path(artifact.file(name)) as tmp:
        torch.save(backbone.model.state_dict(), tmp)
    log.info("faces: fine-tuned on %d train crops, loss %.3f -> %.3f", len(crops), losses[0], losses[-1])
    return str(artifact.file(name))



def run_faces(inputs, artifact) -> dict:
    """Embed every recording with video not already in the (possibly partial) artifact."""
    backbones = require("recola_pipeline.extractors.backbones", what="stage 'faces'", extra="video")
    video_decode = require("recola_pipeline.extractors.video_decode", what="stage 'faces'", extra="video")
    cfg = inputs.config.video
    backbone = backbones.load_backbone(cfg.backbone, cfg.weights, input_size=cfg.input_size)  # fail before any work
    rows = video_rows(inputs)
    for row in rows:
        probed = video_decode.probe(row["video"])
        row["decoder"], row["fps"] = probed.decoder, probed.fps if probed.fps > 0 else 25.0
    todo = [row for row in rows if not _embedded(artifact, row)]
    jobs = os.cpu_count() if inputs.config.run.jobs < 0 else inputs.config.run.jobs
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(todo))))
    finetuned = _finetune(inputs, artifact, rows, backbone) if cfg.finetune_epochs > 0 else None
    args = [(artifact, row, cfg, inputs.config.corpus.max_seconds, threads, finetuned) for row in todo]
    for info in inputs.map(embed_recording, args, desc=f"faces: {cfg.backbone}"):
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


def _faces_identity(config) -> dict:
    """For a local weights file its SHA-256; ``train.seed`` when fine-tuning (its shuffling and initial head)."""
    identity = dict(weights_identity(config.video.weights))
    if config.video.finetune_epochs > 0:
        identity["config_keys"] = {"train.seed": config.train.seed}
    return identity


STAGE = Stage(
    name="faces", kind="features", sections=(), upstream=lambda cfg: ["data"],
    libraries=("torch", "timm", "opencv-python-headless", "av", "h5py", "fer", "numpy"), run=run_faces,
    keys=tuple(f"video.{key}" for key in VIDEO_EMBEDDING_KEYS), extra_identity=_faces_identity,
)

