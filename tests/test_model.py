"""A trained model on new recordings: export, load_model, predict, and the bundle's safety."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import audformat
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from recola_pipeline import load_model
from recola_pipeline.cache import ArtifactError, file_sha256
from recola_pipeline.cli import main

def test_round_trip_equals_the_evaluate_stage(exported):
    model_dir, audio, video, evaluated = exported
    model = load_model(model_dir)
    for system in ("best", "audio", "video", "early"):
        predicted = model.predict(audio=audio, video=video, system=system)
        assert len(predicted) == len(evaluated)
        np.testing.assert_allclose(predicted["time"], evaluated["time"])
        for dim in ("arousal", "valence"):
            key = model.description["chosen"][dim] if system == "best" else f"{system}_{dim}"
            np.testing.assert_allclose(predicted[dim], evaluated[key], atol=1e-6, rtol=0)


def test_bundle_describes_itself(exported):
    model_dir = exported[0]
    description = json.loads((model_dir / "model.json").read_text())
    assert description["audio"] == {"feature_set": "egemaps", "sample_rate": 16000}
    video = description["video"]
    assert video["settings"]["backbone"] == "fer2013" and len(video["weights_sha256"]) == 64
    assert {s["chosen_on"] for s in description["scores"]} and "libraries" in description
    card = (model_dir / "MODEL.md").read_text()
    assert "Intended use and limits" in card and "chosen on" in card


def test_predict_command_writes_csv_and_png_for_each_input(exported, tmp_path):
    model_dir, audio, video, evaluated = exported
    signal, rate = sf.read(audio)
    stereo = soxr.resample(np.column_stack([signal, signal * 0.5]), rate, 44100)
    sf.write(tmp_path / "stereo.flac", stereo, 44100)
    assert main(["predict", "--model", str(model_dir), "--system", "audio", "--out", str(tmp_path / "out"), "--quiet",
                 str(audio), str(tmp_path / "stereo.flac")]) == 0
    for name in (audio.stem, "stereo"):
        frame = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        assert list(frame.columns) == ["time", "arousal", "valence", "outside_training_range"]
        assert len(frame) == len(evaluated) and not frame["outside_training_range"].any()
        assert np.isfinite(frame[["arousal", "valence"]].to_numpy()).all()
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000
    assert main(["predict", "--model", str(model_dir), "--out", str(tmp_path / "out2"), "--quiet",
                 "--format", "audformat", f"{audio},{video}"]) == 0
    table = audformat.Database.load(str(tmp_path / "out2"))["predictions"].get()
    assert len(table) == len(evaluated) and set(table.columns) == {"arousal", "valence", "outside_training_range"}
    both = pd.read_csv(tmp_path / "out2" / f"{audio.stem}.csv")
    np.testing.assert_allclose(both["valence"], evaluated[load_model(model_dir).description["chosen"]["valence"]],
                               atol=1e-6)


def test_a_model_needing_video_without_video_is_a_clear_error(exported, tmp_path, caplog):
    model_dir, audio = exported[0], exported[1]
    assert main(["predict", "--model", str(model_dir), "--system", "video", "--out", str(tmp_path), "--quiet",
                 str(audio)]) == 2
    assert any("uses video; pass a video file" in m for m in caplog.messages)


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["PAYLOAD_MARKER"]),))


def test_a_pickle_in_place_of_the_regressor_is_refused_and_never_executed(exported, tmp_path, monkeypatch):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    marker = tmp_path / "executed"
    monkeypatch.setenv("PAYLOAD_MARKER", str(marker))
    target = copy / "systems" / "audio_arousal.skops"
    target.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ArtifactError, match="audio_arousal.skops is missing or changed"):
        load_model(copy)
    checksums = json.loads((copy / "checksums.json").read_text())
    checksums["systems/audio_arousal.skops"] = file_sha256(target)  # the checksum forged too
    (copy / "checksums.json").write_text(json.dumps(checksums))
    model = load_model(copy)
    with pytest.raises(ArtifactError, match="not a model file in skops format"):
        model.predict(audio=exported[1], system="audio")
    assert not marker.exists()


def test_one_changed_byte_is_refused_and_a_moved_bundle_still_loads(exported, tmp_path):
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(exported[0], moved)
    original = load_model(exported[0]).predict(audio=exported[1], system="audio")
    pd.testing.assert_frame_equal(load_model(moved).predict(audio=exported[1], system="audio"), original)
    path = moved / "systems" / "audio_valence.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="audio_valence.skops is missing or changed"):
        load_model(moved)


def test_predict_on_real_speech_and_a_grid_video(exported, shared_dir, tmp_path):
    """A 16 kHz RAVDESS speech file and a GRID .mpg (video with sound): exit 0, right lengths."""
    speech = next((shared_dir / "data" / "ravdess_speech_16k").rglob("*.flac"))
    grid = next((shared_dir / "data" / "grid_talking_faces").rglob("*.mpg"))
    assert main(["predict", "--model", str(exported[0]), "--system", "audio", "--out", str(tmp_path), "--quiet",
                 str(speech), str(grid)]) == 0
    for path in (speech, grid):
        frame = pd.read_csv(tmp_path / f"{path.stem}.csv")
        seconds = sf.info(str(path)).duration if path.suffix == ".flac" else None
        if seconds is not None:
            assert len(frame) == int(np.floor(seconds / 0.04 + 1e-6)) + 1
        assert len(frame) > 25 and np.isfinite(frame[["arousal", "valence"]].to_numpy()).all()


def test_a_model_file_holding_a_type_off_the_allow_list_is_refused(exported, tmp_path):
    """A skops file that would call os.system (through FunctionTransformer) is refused by name."""
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    target = copy / "systems" / "audio_arousal.skops"
    sio.dump(FunctionTransformer(func=os.system), target)
    checksums = json.loads((copy / "checksums.json").read_text())
    checksums["systems/audio_arousal.skops"] = file_sha256(target)
    (copy / "checksums.json").write_text(json.dumps(checksums))
    with pytest.raises(ArtifactError, match="audio_arousal.skops holds types that are not on the "
                                            "allow-list \\(posix.system\\)"):
        load_model(copy).predict(audio=exported[1], system="audio")
