"""Hostile input, round three: each case ends in exit 2 with one line naming the input and the
fix, or in a documented warning; never a traceback, a kill, a read outside a bundle or a silent
number (README, "Bad input")."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from recola_pipeline import load_model
from recola_pipeline.cache import ArtifactError, file_sha256
from recola_pipeline.cli import main
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.extractors.audio_io import check_audio

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000


def speech_like(seconds: float, gain: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return gain * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize("text", [
    "x = " + "{a = " * 2000 + "1" + "}" * 2000,
    "v = " + "[" * 3000 + "]" * 3000,
    "[audio]\nwindows_s = " + "{a = " * 60 + "1" + "}" * 60,
], ids=["tables 2000 deep", "arrays 3000 deep", "a key holding a deep table"])
def test_a_deeply_nested_config_exits_2_naming_the_file(tmp_path, caplog, text):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    assert main(["--quiet", "--config", str(path), "--dry-run", "--artifact-root", str(tmp_path)]) == 2
    assert len(errors(caplog)) == 1 and "deep.toml" in errors(caplog)[0] and len(errors(caplog)[0]) < 400


def test_a_deeply_nested_set_value_exits_2(tmp_path, caplog):
    assert main(["--quiet", "--set", "audio.windows_s=" + "[" * 3000 + "]" * 3000, "--dry-run"]) == 2
    assert "audio.windows_s" in errors(caplog)[0] and "nested too deeply" in errors(caplog)[0]


@pytest.mark.parametrize("override, key, largest", [
    ("audio.windows_s=[1e308]", "audio.windows_s", "60"),
    ("video.windows_s=[4.0, 1e300]", "video.windows_s", "60"),
    ("evaluate.median_windows_s=[1e9]", "evaluate.median_windows_s", "60"),
    ("video.max_gap_s=1e12", "video.max_gap_s", "60"),
    ("train.rbf_components=2000000000", "train.rbf_components", "20000"),
    ("evaluate.bootstrap_resamples=2000000000", "evaluate.bootstrap_resamples", "100000"),
    ("mrpn.face_size=100000", "mrpn.face_size", "512"),
    ("mrpn.hidden=1000000", "mrpn.hidden", "4096"),
])
def test_a_value_that_sizes_an_array_is_bounded_before_allocation(caplog, override, key, largest):
    """Refused by config validation (no stage runs), naming the key and the largest value that runs."""
    assert main(["--quiet", "--set", override, "--dry-run"]) == 2
    (message,) = errors(caplog)
    assert key in message and f"the largest value that runs is {largest}" in message


def test_window_bounds_follow_the_corpus_length(tmp_path):
    """The bound is the longest recording read (the demo's duration, else corpus.max_seconds),
    at least 60 s and at most an hour."""
    assert load_config(None, overrides=["demo.duration_s=120", "audio.windows_s=[100.0]"]).audio.windows_s == [100.0]
    assert load_config(None, overrides=["demo.duration_s=20", "evaluate.median_windows_s=[30.0]"])
    recola = ["corpus.name=recola", f'corpus.data_root="{tmp_path}"']
    with pytest.raises(ConfigError, match="evaluate.median_windows_s = 200.0 is too large; the largest value that "
                                          "runs is 100 \(the longest recording"):
        load_config(None, overrides=[*recola, "corpus.max_seconds=100", "evaluate.median_windows_s=[200.0]"])
    with pytest.raises(ConfigError, match="largest value that runs is 3600"):
        load_config(None, overrides=[*recola, "corpus.max_seconds=86400", "audio.windows_s=[7200.0]"])
    with pytest.raises(ConfigError, match="train.delay_step_s at least 0.04"):
        load_config(None, overrides=["train.delay_step_s=1e-9"])
    with pytest.raises(ConfigError, match="lists 65 values"):
        load_config(None, overrides=[f"train.c_grid=[{', '.join(['0.1'] * 65)}]"])


# ---------------------------------------------------------------- bundles
def copy_bundle(exported, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    return copy


def forge_checksums(bundle: Path, **changes) -> None:
    """Rewrite checksums.json as an attacker would: every listed file's digest matches."""
    checksums = json.loads((bundle / "checksums.json").read_text())
    checksums.update(changes)
    for name in list(checksums):
        path = bundle / name
        if path.is_file() and not path.is_symlink() and not name.startswith(("/", "..")):
            checksums[name] = file_sha256(path)
    (bundle / "checksums.json").write_text(json.dumps(checksums))


def test_a_symlinked_file_in_a_bundle_is_refused_even_with_identical_bytes(exported, tmp_path):
    bundle = copy_bundle(exported, tmp_path)
    outside = tmp_path / "outside.skops"
    target = bundle / "systems" / "audio_arousal.skops"
    shutil.copy(target, outside)
    target.unlink()
    target.symlink_to(outside)  # same bytes: the checksum still matches
    with pytest.raises(ArtifactError, match="audio_arousal.skops: a symlink inside the bundle"):
        load_model(bundle)


def test_a_symlinked_folder_in_a_bundle_is_refused(exported, tmp_path):
    bundle = copy_bundle(exported, tmp_path)
    shutil.move(bundle / "video", tmp_path / "video")
    (bundle / "video").symlink_to(tmp_path / "video")
    with pytest.raises(ArtifactError, match="video: a symlink inside the bundle"):
        load_model(bundle)


@pytest.mark.parametrize("name", ["../secret.txt", "systems/../../secret.txt", "/etc/hostname", "SECRET_ABS"],
                         ids=["dot-dot", "nested dot-dot", "absolute", "absolute to a real file"])
def test_paths_outside_the_bundle_are_refused_by_name_and_never_read(exported, tmp_path, name):
    bundle = copy_bundle(exported, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    name = str(secret) if name == "SECRET_ABS" else name
    checksums = json.loads((bundle / "checksums.json").read_text())
    checksums[name] = file_sha256(secret)
    (bundle / "checksums.json").write_text(json.dumps(checksums))
    with pytest.raises(ArtifactError, match="outside the bundle"):
        load_model(bundle)


def test_model_json_naming_a_file_outside_the_bundle_is_refused(exported, tmp_path):
    bundle = copy_bundle(exported, tmp_path)
    description = json.loads((bundle / "model.json").read_text())
    description["systems"]["audio_arousal"]["model"] = "../../outside.skops"
    (bundle / "model.json").write_text(json.dumps(description))
    forge_checksums(bundle)
    with pytest.raises(ArtifactError, match="which checksums.json does not list"):
        load_model(bundle)


def test_a_fifo_in_a_bundle_is_refused_without_opening_it(exported, tmp_path):
    bundle = copy_bundle(exported, tmp_path)
    os.mkfifo(bundle / "systems" / "pipe")
    with pytest.raises(ArtifactError, match="pipe: not a regular file"):
        load_model(bundle)


def object_array_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([1.0, "x", None], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def replace_entry(path: Path, entry: str, data: bytes) -> None:
    import zipfile
    with zipfile.ZipFile(path) as source:
        files = {n: source.read(n) for n in source.namelist()}
    files[entry] = data
    with zipfile.ZipFile(path, "w") as target:
        for name, content in files.items():
            target.writestr(name, content)


def test_an_object_array_inside_a_skops_file_is_refused_by_entry(exported, tmp_path):
    """Even with model.json's inventory and the checksums forged to match."""
    bundle = copy_bundle(exported, tmp_path)
    target = bundle / "systems" / "audio_arousal.skops"
    description = json.loads((bundle / "model.json").read_text())
    entry = next(iter(description["arrays"]["systems/audio_arousal.skops"]))
    replace_entry(target, entry, object_array_npy())
    description["arrays"]["systems/audio_arousal.skops"][entry] = {"dtype": "|O", "shape": [3]}
    (bundle / "model.json").write_text(json.dumps(description))
    forge_checksums(bundle)
    with pytest.raises(ArtifactError, match=f"entry {entry}\\) holds an array of dtype '\\|O', not numbers"):
        load_model(bundle).predict(audio=exported[1], system="audio")


def test_an_array_of_another_shape_than_the_manifest_states_is_refused(exported, tmp_path):
    bundle = copy_bundle(exported, tmp_path)
    target = bundle / "systems" / "audio_arousal.skops"
    description = json.loads((bundle / "model.json").read_text())
    entry = next(iter(description["arrays"]["systems/audio_arousal.skops"]))
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(5))
    replace_entry(target, entry, buffer.getvalue())
    forge_checksums(bundle)
    with pytest.raises(ArtifactError, match=f"arrays differ from those the bundle's model.json states \\(entry {entry}"):
        load_model(bundle).predict(audio=exported[1], system="audio")


# ---------------------------------------------------------------- output folders
def unshare_works(tmp_path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {probe}"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.parametrize("mount_options, fragment", [("ro", "Read-only file system"),
                                                     ("size=4k", "No space left on device")],
                         ids=["read-only", "full"])
def test_an_unwritable_out_folder_exits_2_naming_it_before_any_work(exported, tmp_path, mount_options, fragment):
    """A real read-only (or full) file system, mounted in a private mount namespace."""
    if not unshare_works(tmp_path):
        pytest.skip("unshare -rm (a private mount namespace) is not allowed here")
    out = tmp_path / "out"
    out.mkdir()
    fill = "head -c 8192 /dev/zero > \"$1/filler\" 2>/dev/null; " if mount_options.startswith("size") else ""
    script = (f"mount -t tmpfs -o {mount_options} tmpfs \"$1\" && {fill}shift && exec \"$@\"")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(out), sys.executable,
                           str(ROOT / "run_pipeline.py"), "predict", "--model", str(exported[0]), "--system", "audio",
                           "--out", str(out / "predictions"), "--quiet", str(exported[1])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(out) in lines[0] and fragment in lines[0] and "--out" in lines[0]


def test_export_to_an_unwritable_place_exits_2_and_builds_nothing(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", "--out", str(blocker / "bundle"), "--artifact-root", str(tmp_path / "store"),
                 "--quiet"]) == 2
    assert "is not a folder" in errors(caplog)[0] and "--out" in errors(caplog)[0]
    assert not (tmp_path / "store").exists()


# ---------------------------------------------------------------- audio that cannot be trusted
def test_a_truncated_mp3_is_an_error_with_both_durations(tmp_path):
    full = tmp_path / "full.mp3"
    sf.write(full, speech_like(20.0), RATE, format="MP3")
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[:int(len(data) * 6.5 / 20)])
    assert check_audio(full)[0] == pytest.approx(20.0, abs=0.1)
    with pytest.raises(CorpusError, match=r"cut.mp3: truncated: its header states 20.00 s but only [56]\.\d\d s"):
        check_audio(cut)


def test_non_physical_amplitudes_are_an_error(exported, tmp_path, caplog):
    path = tmp_path / "huge.wav"
    sf.write(path, (speech_like(10.0) * 1e30).astype(np.float32), RATE, subtype="FLOAT")
    assert main(["predict", "--model", str(exported[0]), "--system", "audio", "--out", str(tmp_path / "out"),
                 "--quiet", str(path)]) == 2
    (message,) = errors(caplog)
    assert "huge.wav" in message and "far beyond full scale" in message and "Rescale" in message
    assert not list((tmp_path / "out").glob("*.csv"))


def test_samples_beyond_full_scale_and_clipping_warn_with_the_share(tmp_path):
    over = tmp_path / "over.wav"
    signal = speech_like(10.0)
    signal[:RATE] *= 5.0  # the first second 1.5 over full scale: 10 % of the samples, some beyond 1
    sf.write(over, signal.astype(np.float32), RATE, subtype="FLOAT")
    _, messages = check_audio(over)
    assert len(messages) == 1 and "beyond full scale" in messages[0] and "%" in messages[0]
    clipped = tmp_path / "clipped.wav"
    sf.write(clipped, np.clip(speech_like(10.0) * 4, -1, 1), RATE)  # PCM_16: clipped at full scale
    _, messages = check_audio(clipped)
    assert len(messages) == 1 and "at full scale (clipped)" in messages[0]
    share = float(messages[0].split(": ")[1].split("%")[0])
    expected = np.mean(np.abs(sf.read(clipped)[0]) >= 0.999) * 100
    assert share == pytest.approx(expected, abs=0.01)
    clean = tmp_path / "clean.wav"
    sf.write(clean, speech_like(10.0), RATE)
    assert check_audio(clean)[1] == []


def test_predictions_far_outside_the_training_range_are_flagged(exported, tmp_path, caplog):
    bundle = copy_bundle(exported, tmp_path)
    description = json.loads((bundle / "model.json").read_text())
    reference = load_model(exported[0]).predict(audio=exported[1], system="audio")
    high = float(reference["arousal"].quantile(0.5))
    description["label_range"]["arousal"] = [high - 0.01, high]  # a narrow range: half the frames above it
    (bundle / "model.json").write_text(json.dumps(description))
    forge_checksums(bundle)
    assert main(["predict", "--model", str(bundle), "--system", "audio", "--out", str(tmp_path / "out"), "--quiet",
                 str(exported[1])]) == 0
    frame = pd.read_csv(tmp_path / "out" / f"{exported[1].stem}.csv")
    expected = (frame["arousal"] > high + 0.005) | (frame["arousal"] < high - 0.015)
    assert frame["outside_training_range"].any()
    np.testing.assert_array_equal(frame["outside_training_range"], expected)
    (message,) = [m for m in warnings_of(caplog) if "outside the training labels' range" in m]
    assert exported[1].name in message and "arousal" in message
    assert not reference["outside_training_range"].any()


# ---------------------------------------------------------------- labels that leak
def manifest_corpus(root: Path, labels: dict[str, str]) -> Path:
    from conftest import write_wav
    rows = []
    for k, (rec, part) in enumerate((("a", "train"), ("b", "train"), ("c", "devel"), ("d", "test"))):
        write_wav(root / f"{rec}.wav", 8.0)
        for dim in ("arousal", "valence"):
            name = labels.get(f"{rec}/{dim}", f"{rec}_{dim}.csv")
            if not (root / name).exists():
                times = np.arange(0, 8.0, 0.04)
                pd.DataFrame({"time": times, dim: np.sin(times * (k + 1))}).to_csv(root / name, index=False)
        rows.append({"recording": rec, "partition": part, "audio": f"{rec}.wav", "video": "",
                     "arousal": labels.get(f"{rec}/arousal", f"{rec}_arousal.csv"),
                     "valence": labels.get(f"{rec}/valence", f"{rec}_valence.csv")})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def data_stage(tmp_path, manifest, *extra):
    from recola_pipeline.pipeline import Pipeline
    return Pipeline(load_config(None, overrides=[
        "corpus.name=manifest", f'corpus.manifest="{manifest}"', f'run.artifact_root="{tmp_path / "store"}"',
        "run.jobs=1", "run.progress=false", *extra])).ensure("data")


def test_one_label_file_named_in_two_partitions_is_an_error_unless_allowed(tmp_path, caplog):
    manifest = manifest_corpus(tmp_path, {"d/arousal": "c_arousal.csv"})  # test d uses devel c's labels
    with pytest.raises(CorpusError, match="recording c \\(devel\\) and the arousal label file of d \\(test\\) are "
                                          "one file.*corpus.allow_shared_labels"):
        data_stage(tmp_path, manifest)
    assert not list((tmp_path / "store").rglob("manifest.json"))
    artifact = data_stage(tmp_path, manifest, "corpus.allow_shared_labels=true")
    assert artifact.manifest()["info"]["recordings"] == 4


def test_identical_label_content_across_partitions_warns(tmp_path, caplog):
    manifest = manifest_corpus(tmp_path, {})
    shutil.copy(tmp_path / "a_valence.csv", tmp_path / "d_valence.csv")  # a copy, under another name
    artifact = data_stage(tmp_path, manifest)
    (message,) = [m for m in warnings_of(caplog) if "are identical" in m]
    assert "recording a (train" in message and "d (test" in message
    assert message in artifact.manifest()["info"]["warnings"]


# ---------------------------------------------------------------- interrupts at start-up
def test_ctrl_c_while_the_package_imports_exits_130_with_one_line():
    """SIGINT during the imports (seconds of them): exit 130 and one line, no traceback. A busy or
    fast machine that finishes first is retried with an earlier signal."""
    for delay in (0.8, 0.4, 0.2, 0.1):
        process = subprocess.Popen([sys.executable, str(ROOT / "run_pipeline.py"), "--help"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        if "usage:" not in out:
            break
    else:
        pytest.skip("--help finished before every signal")
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["ERROR interrupted while starting; nothing was run"]


@pytest.mark.parametrize("change, fragment", [({"format": "2"}, "'format' must be a version number"),
                                              ({"arrays": None}, "no array inventory")],
                         ids=["format not a number", "format 2 without arrays"])
def test_a_malformed_model_json_is_refused_by_entry(exported, tmp_path, change, fragment):
    bundle = copy_bundle(exported, tmp_path)
    description = json.loads((bundle / "model.json").read_text())
    description.update(change)
    if change.get("arrays", 0) is None:
        del description["arrays"]
    (bundle / "model.json").write_text(json.dumps(description))
    forge_checksums(bundle)
    with pytest.raises(ArtifactError, match=fragment):
        load_model(bundle)
