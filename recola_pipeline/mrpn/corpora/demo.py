"""The built-in categorical demo set for the MRPN path: generated clips in RAVDESS's naming.

Four emotions of RAVDESS's code (01 neutral, 03 happy, 04 sad, 05 angry), each a point in
arousal-valence space; every clip draws its own point around its class's (so classes overlap a
little) and renders it with the continuous demo's voice and face generators
(:func:`~recola_pipeline.corpora.demo.synthesise_audio`, :func:`~recola_pipeline.corpora.demo.draw_face`):
a 2 s audio-only WAV (``03-01-EE-01-SS-RR-AA.wav``, 16 kHz) and a video-only MP4
(``02-01-EE-01-SS-RR-AA.mp4``, 25 fps) per clip, under ``Actor_AA/``, so the RAVDESS reader and
its actor-pair folds read it unchanged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ...cache import atomic_path
from ...corpora.demo import FPS, FRAME_SIZE, draw_face, synthesise_audio
from ...labels import LABEL_HOP_S

#: RAVDESS emotion code -> (name, arousal, valence)
CLASSES = {1: ("neutral", 0.0, 0.0), 3: ("happy", 0.6, 0.7), 4: ("sad", -0.6, -0.6), 5: ("angry", 0.7, -0.6)}
ACTORS, STATEMENTS, REPETITIONS, DURATION_S = 6, 2, 2, 2.0
JITTER = 0.25  # spread of a clip's arousal/valence around its class's point


def clip_names() -> list[tuple[int, str]]:
    """``(actor, code without modality)`` of every clip, e.g. ``(1, '01-01-01-01-01-01')``."""
    return [(actor, f"01-{emotion:02d}-01-{statement:02d}-{repetition:02d}-{actor:02d}")
            for actor in range(1, ACTORS + 1) for emotion in CLASSES
            for statement in range(1, STATEMENTS + 1) for repetition in range(1, REPETITIONS + 1)]


def clip_files(actor: int, code: str) -> list[str]:
    """The two files (relative to the root) of one clip."""
    return [f"Actor_{actor:02d}/03-{code}.wav", f"Actor_{actor:02d}/02-{code}.mp4"]


def generate_clip(root: Path, actor: int, code: str, index: int, *, seed: int, sample_rate: int) -> None:
    """Write one clip's WAV and MP4 under ``root`` (atomically; the stream depends on seed and index)."""
    import cv2

    rng = np.random.default_rng([seed, 7, index])
    _, arousal, valence = CLASSES[int(code.split("-")[1])]
    a, v = np.clip([arousal, valence] + rng.normal(0, JITTER, 2), -1, 1)
    n_frames = int(round(DURATION_S / LABEL_HOP_S)) + 1
    audio, voiced = synthesise_audio(np.full(n_frames, a), np.full(n_frames, v), DURATION_S, sample_rate, rng)
    wav, mp4 = (Path(root) / name for name in clip_files(actor, code))
    with atomic_path(wav) as tmp:
        sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")
    sway = np.clip(np.cumsum(rng.normal(0, 0.3, (n_frames, 2)), axis=0), -6, 6)
    with atomic_path(mp4) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_SIZE, FRAME_SIZE))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write mp4v video here; install opencv-python-headless==4.14.0.94")
        for i in range(int(round(DURATION_S * FPS))):
            writer.write(draw_face(a, v, float(voiced[i]), sway[i]))
        writer.release()
