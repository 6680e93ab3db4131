"""The ``clips`` stage (internal) of the MRPN path: each clip's input sequences.

``clips`` artifact (``features/clips/<hash>/``): ``clips.csv`` (clip, actor, gender, emotion,
files, steps per modality, face frames missed) and ``inputs/<clip>.npz`` per clip with one array
per modality in ``mrpn.modalities``:

* ``spectrogram`` (segments, 1, F, T) float16: the clip standardised by its own mean and std,
  1 s segments every 0.2 s (5 steps per second),
  :func:`~recola_pipeline.mrpn.inputs.spectrogram_segments`;
* ``lld`` (steps, 25) float32: eGeMAPS v02 LLDs averaged over 40 ms steps;
* ``face`` (frames, S, S[, 3]) uint8: face crops of the frames on screen every
  ``face_stride`` x 40 ms (stride 5: 5 per second, the spectrogram's step rate), found, tracked
  and cropped by the crop engine (:mod:`~recola_pipeline.extractors.face_crops`) with the
  ``[video]`` detection settings. Frames without a face are left out of the sequence and
  counted; a clip with no face at all is an error.

Audio is read as mono at 16 kHz (resampled when needed), from the clip's audio-only file or, when
it has none, from its video container. The stage resumes: a clip whose file exists is not
recomputed.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import atomic_path, write_table
from ..mrpn.config import MRPN_INPUT_KEYS
from ..corpora import CorpusError
from ..extractors import video_decode
from ..extractors.audio_io import load_audio
from ..extractors.face_crops import strided_crops
from ..labels import LABEL_HOP_S
from ..mrpn import CLIP_CORPORA
from ..mrpn.corpora.clips import Clip, clip_table
from ..mrpn.extractors import face_is_grey
from ..mrpn.inputs import (
    lld_sequence,
    spectrogram_segments,
    steps_per_second,
)
from ..stage import Stage

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_CLIP_S = 600.0  # label frames considered when a container does not declare its length
#: ``[video]`` keys that change how faces are found and cropped
FACE_KEYS = ("detect_every", "detect_width", "smoothing", "max_gap_s", "margin", "batch_size")


def read_clips(inputs) -> list[Clip]:
    """The clips of ``mrpn.corpus`` (the demo set is generated first when needed)."""
    cfg = inputs.config.mrpn
    root = inputs.artifact("demo_clips").path if cfg.corpus == "demo" else Path(cfg.data_root)
    return CLIP_CORPORA[cfg.corpus].read(root)


def _clips_identity(config) -> dict:
    """The ``[video]`` face settings when faces are an input, and the size and time of a user corpus's files."""
    cfg = config.mrpn
    identity = {}
    if "face" in cfg.modalities:
        identity["config_keys"] = {f"video.{k}": getattr(config.video, k) for k in FACE_KEYS}
    if cfg.corpus != "demo":  # the demo artifact's hash (upstream) already pins its content
        files = [p for c in CLIP_CORPORA[cfg.corpus].read(Path(cfg.data_root)) for p in (c.audio, c.video) if p]
        identity["files"] = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return identity


def face_sequence(path: str, video_cfg, *, size: int, grey: bool, stride: int) -> tuple[np.ndarray, int]:
    """Face crops of the frames on screen every ``stride`` label frames, and how many had no face.

    Raises
    ------
    CorpusError
        Undecodable video, or no face in any frame.
    """
    probed = video_decode.probe(path)
    longest = probed.duration_s + 1.0 if probed.duration_s > 0 else MAX_CLIP_S  # label frames past the end: unused
    row = {"video": path, "decoder": probed.decoder, "fps": probed.fps if probed.fps > 0 else 25.0,
           "n_frames": int(longest / LABEL_HOP_S) + 1}
    _, _, crops, shown = strided_crops(row, video_cfg, size, grey, float("inf"), stride)
    if not crops:
        raise CorpusError(f"{path}: no face was found in any frame; check the video, raise video.detect_width, "
                          "or move the clip out of the corpus folder")
    return np.stack(crops), shown - len(crops)


def prepare_clip(args) -> dict:
    """Compute and write one clip's input sequences; returns its row of ``clips.csv``."""
    artifact, clip, cfg, video_cfg = args
    name = f"inputs/{clip.id}.npz"
    arrays, missed = {}, 0
    if not artifact.has(name):
        if {"spectrogram", "lld"} & set(cfg.modalities):
            if clip.audio is None and clip.video is None:
                raise CorpusError(f"clip {clip.id} has no audio; add its audio file or drop spectrogram/lld from "
                                  "mrpn.modalities")
            source = clip.audio or clip.video
            signal = (load_audio(clip.audio, SAMPLE_RATE) if clip.audio
                      else video_decode.audio_track(clip.video, SAMPLE_RATE))
            if "spectrogram" in cfg.modalities:
                try:
                    segments = spectrogram_segments(signal, SAMPLE_RATE, n_mels=cfg.n_mels, hop=cfg.spectrogram_hop)
                except ValueError as exc:
                    raise CorpusError(f"{source}: {exc}; replace the file or move it out of the corpus") from None
                arrays["spectrogram"] = segments.astype(np.float16)
            if "lld" in cfg.modalities:
                arrays["lld"] = lld_sequence(signal, SAMPLE_RATE)
        if "face" in cfg.modalities:
            if clip.video is None:
                raise CorpusError(f"clip {clip.id} has no video file; add it or drop face from mrpn.modalities")
            arrays["face"], missed = face_sequence(str(clip.video), video_cfg, size=cfg.face_size,
                                                   grey=face_is_grey(cfg.face_extractor), stride=cfg.face_stride)
        buffer = io.BytesIO()
        np.savez(buffer, face_missed=np.int64(missed), **arrays)
        with atomic_path(artifact.file(name)) as tmp:
            tmp.write_bytes(buffer.getvalue())
    with np.load(artifact.file(name)) as stored:
        steps = {f"{m}_steps": int(stored[m].shape[0]) for m in cfg.modalities}
        missed = int(stored["face_missed"])
    return {"clip": clip.id, **steps, "face_missed": missed}


def run_clips(inputs, artifact) -> dict:
    """Prepare every clip of the corpus not already in the (possibly partial) artifact."""
    cfg = inputs.config.mrpn
    clips = read_clips(inputs)
    rows = inputs.map(prepare_clip, [(artifact, c, cfg, inputs.config.video) for c in clips],
                        desc=f"clips: {'+'.join(cfg.modalities)}")
    table = clip_table(clips).merge(pd.DataFrame(rows), on="clip")
    write_table(artifact.file("clips.csv"), table)
    missed = int(table["face_missed"].sum())
    if missed:
        log.warning("clips: %d face frames without a face were left out of their clips' sequences", missed)
    return {"corpus": cfg.corpus, "clips": len(clips), "actors": int(table["actor"].nunique()),
            "emotions": sorted(table["emotion"].unique()), "modalities": cfg.modalities,
            "steps_per_s": steps_per_second(cfg.modalities, cfg.face_stride), "face_frames_missed": missed}


STAGE = Stage(
    name="clips", kind="features", sections=(),
    upstream=lambda cfg: ["demo_clips"] if cfg.mrpn.corpus == "demo" else [],
    libraries=("opensmile", "librosa", "soxr", "numpy", "opencv-python-headless"), run=run_clips,
    keys=tuple(f"mrpn.{key}" for key in MRPN_INPUT_KEYS), extra_identity=_clips_identity,
)


