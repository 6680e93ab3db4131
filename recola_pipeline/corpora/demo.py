"""The built-in demo corpus: generated deterministically, never shipped.

Each recording has two latent traces (arousal, valence) that wander between episodes. From
them:

* **audio** (16 kHz): speech-like phrases of syllables (voiced harmonic vowels, some with a
  noisy unvoiced onset) separated by pauses. Arousal raises the pitch (about +-half an octave),
  the loudness (+-10 dB) and the syllable rate, and shortens the pauses; valence tilts the
  spectrum (brighter when positive).
* **video** (25 fps, 160 x 160): a drawn face. The mouth curves up or down with valence and
  opens while the voice is on; the eyes open wider and the brows rise with arousal; the head
  sways a little.
* **ratings**: six raters follow the latent traces with their own reaction delay (1.2 - 2.8 s),
  slider inertia, gain, bias and slow noise, written in RECOLA's format at 40 ms.

The result is written in the RECOLA original-release layout with a ``partitions.csv`` (train,
devel, test in equal numbers) and ``truth/<recording>.csv`` holding the latent traces
(``time, arousal, valence``), so the pipeline can be run end to end against a known truth.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf

from ..cache import atomic_path, write_table, write_text
from ..labels import LABEL_HOP_S
from ..registry import require
from .base import PARTITIONS
from .ratings import RECOLA_RATERS
from .recola import ANNOTATION_DIR, AUDIO_DIR, VIDEO_DIR

FPS = 25
FRAME_SIZE = 160


def recording_ids(per_partition: int) -> dict[str, str]:
    """Recording id -> partition, e.g. ``D01`` train ... ``D06`` test for two per partition."""
    ids = {}
    for p, partition in enumerate(PARTITIONS):
        for k in range(per_partition):
            ids[f"D{p * per_partition + k + 1:02d}"] = partition
    return ids


def latent_trace(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth trace in [-1, 1]: episodes of 4-12 s with random levels, low-passed (tau 1.5 s)."""
    from scipy import signal  # 1.3 s to import: only a process that generates recordings pays it

    levels = np.empty(n_frames)
    i = 0
    while i < n_frames:
        length = int(rng.uniform(4, 12) / LABEL_HOP_S)
        levels[i:i + length] = rng.uniform(-0.8, 0.8)
        i += length
    a = np.exp(-LABEL_HOP_S / 1.5)
    smooth = signal.lfilter([1 - a], [1, -a], levels, zi=[a * levels[0]])[0]
    wobble = signal.lfilter([1 - a], [1, -a], rng.normal(0, 0.15, n_frames))
    return np.clip(smooth + wobble, -1, 1)


def _syllable_schedule(duration_s: float, arousal_at, rng: np.random.Generator):
    """List of (start, end, unvoiced_onset_s) syllables and the pauses between phrases."""
    syllables, t = [], rng.uniform(0.2, 0.6)
    while t < duration_s - 0.5:
        for _ in range(rng.integers(3, 9)):
            a = arousal_at(t)
            length = rng.uniform(0.12, 0.22) * (1 - 0.3 * a)
            onset = rng.uniform(0.03, 0.07) if rng.random() < 0.35 else 0.0
            syllables.append((t, min(t + length, duration_s), onset))
            t += length + rng.uniform(0.02, 0.06)
        t += rng.uniform(0.35, 1.1) * (1 - 0.5 * arousal_at(t))
    return syllables


def synthesise_audio(arousal: np.ndarray, valence: np.ndarray, duration_s: float, sample_rate: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio following the latent traces.

    Returns
    -------
    audio : ndarray, float32
    voiced : ndarray of bool, one per 40 ms frame (True while a vowel sounds)
    """
    from scipy import signal

    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    frame_t = np.arange(arousal.size) * LABEL_HOP_S
    a = np.interp(t, frame_t, arousal)
    v = np.interp(t, frame_t, valence)
    voiced = np.zeros(n)
    unvoiced = np.zeros(n)
    intonation = np.zeros(n)
    for start, end, onset in _syllable_schedule(duration_s, lambda s: np.interp(s, frame_t, arousal), rng):
        i0, i1 = int(start * sample_rate), int(end * sample_rate)
        i_v = i0 + int(onset * sample_rate)
        if i1 - i_v < 4:
            continue
        ramp = min(int(0.01 * sample_rate), max((i1 - i_v) // 2, 1))
        env = np.ones(i1 - i_v)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.minimum(env[-ramp:], np.linspace(1, 0, ramp))
        voiced[i_v:i1] = env
        unvoiced[i0:i_v] = np.hanning(i_v - i0) if i_v > i0 else 0
        intonation[i_v:i1] = np.linspace(0.06, -0.06, i1 - i_v) + rng.normal(0, 0.03)
    f0 = 130.0 * 2 ** (0.5 * a + intonation) * (1 + 0.005 * rng.standard_normal(n))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tilt = 1.3 - 0.4 * v
    harmonics = sum(k ** -tilt * np.sin(k * phase) for k in range(1, 25) if k * 260 < sample_rate / 2)
    formants = [signal.butter(2, [lo, hi], btype="band", fs=sample_rate, output="sos")
                for lo, hi in ((500, 900), (1100, 1700), (2300, 3000))]
    vowel = harmonics + sum(signal.sosfilt(sos, harmonics) for sos in formants)
    noise = signal.sosfilt(signal.butter(4, 2500, btype="high", fs=sample_rate, output="sos"),
                           rng.standard_normal(n))
    gain = 0.05 * 10 ** (0.5 * a)
    audio = gain * (voiced * vowel / np.abs(vowel).max() * 3 + 0.6 * unvoiced * noise / np.abs(noise).max())
    audio += 3e-4 * rng.standard_normal(n)  # room noise: pauses are quiet, never digital silence
    audio = (audio / max(1.0, np.abs(audio).max() / 0.95)).astype(np.float32)
    frame_voiced = voiced[np.minimum((frame_t * sample_rate).astype(int), n - 1)] > 0.5
    return audio, frame_voiced


def draw_face(arousal: float, valence: float, mouth_open: float, sway: tuple[float, float]) -> np.ndarray:
    """One 160 x 160 BGR frame of the drawn face."""
    import cv2

    img = np.full((FRAME_SIZE, FRAME_SIZE, 3), (120, 110, 100), np.uint8)
    cx, cy = int(80 + sway[0]), int(84 + sway[1])
    cv2.ellipse(img, (cx, cy), (46, 60), 0, 0, 360, (150, 180, 225), -1, cv2.LINE_AA)
    eye_h = int(round(3 + 4 * (arousal + 1) / 2))
    brow_y = cy - 30 - int(round(6 * arousal))
    for side in (-1, 1):
        ex = cx + side * 18
        cv2.ellipse(img, (ex, cy - 16), (9, eye_h), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(img, (ex, cy - 16), 3, (40, 30, 30), -1, cv2.LINE_AA)
        cv2.line(img, (ex - 10, brow_y + 2 * side * int(arousal < -0.3)), (ex + 10, brow_y), (50, 60, 80), 3,
                 cv2.LINE_AA)
    cv2.line(img, (cx, cy - 8), (cx - 4, cy + 10), (110, 140, 190), 2, cv2.LINE_AA)
    xs = np.linspace(-18, 18, 19)
    curve = cy + 28 - 10 * valence * (1 - (xs / 18) ** 2)
    upper = np.stack([cx + xs, curve], axis=1)
    lower = np.stack([cx + xs[::-1], curve[::-1] + 1 + 7 * mouth_open * (1 - (xs / 18) ** 2)], axis=1)
    cv2.fillPoly(img, [np.vstack([upper, lower]).round().astype(np.int32)], (60, 60, 150), cv2.LINE_AA)
    return img


def rater_trace(latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One simulated rater: reaction delay, inertia, gain, bias and slow noise; 2 decimals in [-1, 1]."""
    from scipy import signal

    delay = int(round(rng.uniform(1.2, 2.8) / LABEL_HOP_S))
    delayed = np.concatenate([np.full(delay, latent[0]), latent[:-delay]])
    a = np.exp(-LABEL_HOP_S / rng.uniform(0.3, 1.0))
    followed = signal.lfilter([1 - a], [1, -a], delayed, zi=[a * delayed[0]])[0]
    b = np.exp(-LABEL_HOP_S / 3.0)
    drift = signal.lfilter([1 - b], [1, -b], rng.normal(0, 1, latent.size))
    drift *= 0.1 / (drift.std() + 1e-12)
    out = rng.uniform(0.7, 1.1) * followed + rng.normal(0, 0.1) + drift
    return np.clip(np.round(out, 2), -1, 1) + 0.0


def _ratings_csv(ratings: np.ndarray) -> str:
    lines = ["time;" + " ;".join(RECOLA_RATERS) + " "]  # RECOLA's header, trailing spaces included
    lines += [f"{i * LABEL_HOP_S:.2f};" + ";".join(f"{v:.2f}" for v in row) for i, row in enumerate(ratings)]
    return "\n".join(lines) + "\n"


def recording_files(rec_id: str, with_video: bool) -> list[str]:
    """Files (relative to the corpus root) that make up one generated recording."""
    files = [f"{AUDIO_DIR}/{rec_id}.wav", f"truth/{rec_id}.csv"]
    files += [f"{ANNOTATION_DIR.as_posix()}/{dim}/{rec_id}.csv" for dim in ("arousal", "valence")]
    return files + ([f"{VIDEO_DIR}/{rec_id}.mp4"] if with_video else [])


def generate_recording(root, rec_id: str, index: int, *, seed: int, duration_s: float, sample_rate: int,
                       video: bool) -> None:
    """Generate one recording's audio, video, ratings and truth under ``root`` (atomic per file).

    The random stream depends only on ``seed`` and ``index``, so recordings can be generated
    in any order or in parallel with identical results.
    """

    rng = np.random.default_rng([seed, index])
    n_frames = int(round(duration_s / LABEL_HOP_S)) + 1
    latent = {"arousal": latent_trace(n_frames, rng), "valence": latent_trace(n_frames, rng)}
    audio, voiced = synthesise_audio(latent["arousal"], latent["valence"], duration_s, sample_rate, rng)
    for dim, trace in latent.items():
        ratings = np.stack([rater_trace(trace, rng) for _ in RECOLA_RATERS], axis=1)
        write_text(root / ANNOTATION_DIR / dim / f"{rec_id}.csv", _ratings_csv(ratings))
    times = np.arange(n_frames) * LABEL_HOP_S
    write_table(root / "truth" / f"{rec_id}.csv", pd.DataFrame({"time": times.round(2), **latent}))
    with atomic_path(root / AUDIO_DIR / f"{rec_id}.wav") as tmp:
        sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")
    if video:
        cv2 = require("cv2", what="the demo corpus's face video", extra="video",
                      instead="run the audio-only demo: --set demo.video=false")
        sway = np.cumsum(rng.normal(0, 0.3, (n_frames, 2)), axis=0)
        sway = np.clip(sway - sway.mean(axis=0), -6, 6)
        with atomic_path(root / VIDEO_DIR / f"{rec_id}.mp4") as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_SIZE, FRAME_SIZE))
            if not writer.isOpened():
                raise RuntimeError("OpenCV cannot write mp4v video here; install opencv-python-headless==4.14.0.94")
            for i in range(int(round(duration_s * FPS))):
                writer.write(draw_face(latent["arousal"][i], latent["valence"][i], float(voiced[i]), sway[i]))
            writer.release()


def partitions_table(per_partition: int) -> pd.DataFrame:
    """The demo's ``partitions.csv`` as a table."""
    ids = recording_ids(per_partition)
    return pd.DataFrame({"recording": list(ids), "partition": list(ids.values())})
