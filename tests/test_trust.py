"""No silently wrong numbers: every case of the hostile-input review (issue 15) reproduced.

Each case ends in exit 0 with the input's real meaning, a documented and warned repair, or exit
2 with a message naming the input and the fix; none changes an existing artifact. The README's
bad-input table lists them.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from recola_pipeline import interrupts
from recola_pipeline.cache import ArtifactError, ArtifactStore, write_text
from recola_pipeline.cli import main
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data

RATE = 16000


def tone(seconds: float, pitch: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.1 * np.sin(2 * np.pi * pitch * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))


def label_file(path: Path, dim: str, seconds: float = 8.0, rate: float = 25.0, *, seed: int = 0) -> pd.DataFrame:
    times = np.round(np.arange(0, seconds + 1e-9, 1 / rate), 4)
    values = np.round(np.sin(times / 2 + seed) * 0.5, 3)
    table = pd.DataFrame({"time": times, dim: values})
    table.to_csv(path, index=False)
    return table


SPLIT = {"r1": "train", "r2": "train", "r3": "devel", "r4": "devel", "r5": "test", "r6": "test"}


def write_manifest(folder: Path, split: dict[str, str] = SPLIT) -> Path:
    rows = [f"{rec},{part},{rec}.wav,,{rec}_arousal.csv,{rec}_valence.csv" for rec, part in split.items()]
    path = folder / "manifest.csv"
    path.write_text("recording,partition,audio,video,arousal,valence\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Six 8 s recordings (two per partition) with their own audio and 25 Hz label files."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k, rec in enumerate(SPLIT):
        sf.write(folder / f"{rec}.wav", tone(8.0, 120.0 + 15 * k), RATE)
        for j, dim in enumerate(("arousal", "valence")):
            label_file(folder / f"{rec}_{dim}.csv", dim, seed=k + 3 * j)
    write_manifest(folder)
    return folder


def config(tmp_path, manifest: Path, *extra: str):
    return load_config(None, overrides=[
        "corpus.name=manifest", f"corpus.manifest={json_str(manifest)}",
        f"run.artifact_root={json_str(tmp_path / 'store')}",
        "run.jobs=1", "run.progress=false", "audio.windows_s=[4.0]", "train.delay_max_s=0.8",
        "train.c_grid=[0.001, 0.01]", "evaluate.bootstrap_resamples=100", *extra])


def json_str(value) -> str:
    import json
    return json.dumps(str(value))


def cli(tmp_path, *args: str) -> int:
    return main(["--quiet", "--artifact-root", str(tmp_path / "store"), "--jobs", "1", *args])


def store_snapshot(store: Path) -> dict:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.suffix != ".lock"} if store.is_dir() else {}


# --------------------------------------------------------------------------- artifact identity
def hashes(cfg) -> dict:
    pipeline = Pipeline(cfg)
    return {name: pipeline.artifact(name).hash for name in ("data", "train", "evaluate")}


def test_partition_swap_in_the_manifest_changes_every_hash_and_the_split(tmp_path, corpus):
    manifest = corpus / "manifest.csv"
    before = hashes(config(tmp_path, manifest))
    Pipeline(config(tmp_path, manifest)).ensure("data")
    write_manifest(corpus, {**SPLIT, "r4": "test", "r5": "devel"})
    after = hashes(config(tmp_path, manifest))
    assert all(before[k] != after[k] for k in before)
    table, _ = load_data(Pipeline(config(tmp_path, manifest)).ensure("data"))
    assert dict(zip(table.recording, table.partition))["r5"] == "devel"


def test_partitions_option_applies_to_a_manifest_and_changes_the_hashes(tmp_path, corpus):
    manifest = corpus / "manifest.csv"
    parts = tmp_path / "parts.csv"
    parts.write_text("recording,partition\nr4,test\nr5,devel\n")
    plain, swapped = hashes(config(tmp_path, manifest)), hashes(config(tmp_path, manifest,
                                                                      f"corpus.partitions_csv={json_str(parts)}"))
    assert all(plain[k] != swapped[k] for k in plain)
    table, _ = load_data(Pipeline(config(tmp_path, manifest, f"corpus.partitions_csv={json_str(parts)}")
                                  ).ensure("data"))
    assert dict(zip(table.recording, table.partition)) == {**SPLIT, "r4": "test", "r5": "devel"}
    parts.write_text("recording,partition\nr4,test\nr5,devel\n")  # same bytes, new mtime: same identity
    assert hashes(config(tmp_path, manifest, f"corpus.partitions_csv={json_str(parts)}")) == swapped


def test_partitions_option_naming_an_unknown_recording_or_missing_file_is_refused(tmp_path, corpus):
    parts = tmp_path / "parts.csv"
    parts.write_text("recording,partition\nr44,test\n")
    with pytest.raises(CorpusError, match="r44 that the corpus does not have"):
        Pipeline(config(tmp_path, corpus / "manifest.csv", f"corpus.partitions_csv={json_str(parts)}"))
    assert cli(tmp_path, "--corpus", "manifest", "--manifest", str(corpus / "manifest.csv"), "--partitions",
               str(tmp_path / "none.csv"), "--stage", "data") == 2
    assert cli(tmp_path, "--partitions", str(parts), "--stage", "data") == 2  # the demo's partitions are fixed


def test_partition_swap_in_recola_partitions_csv_changes_the_hashes(tmp_path, recola_root):
    def make():
        return load_config(None, overrides=["corpus.name=recola", f"corpus.data_root={json_str(recola_root)}",
                                            f"run.artifact_root={json_str(tmp_path / 'store')}"])
    (recola_root / "partitions.csv").write_text("recording,partition\nP16,train\nP19,devel\n")
    before = hashes(make())
    (recola_root / "partitions.csv").write_text("recording,partition\nP16,devel\nP19,train\n")
    after = hashes(make())
    assert all(before[k] != after[k] for k in before)


def test_label_contents_are_part_of_the_identity_not_only_size_and_time(tmp_path, corpus):
    manifest = corpus / "manifest.csv"
    before = hashes(config(tmp_path, manifest))
    path = corpus / "r1_arousal.csv"
    stat = path.stat()
    text = path.read_text()
    last = text.rstrip()[-1]
    path.write_text(text.rstrip()[:-1] + ("1" if last != "1" else "2") + "\n")  # one digit of the last rating
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and modification time
    assert path.stat().st_size == stat.st_size
    assert hashes(config(tmp_path, manifest))["data"] != before["data"]


def test_faces_identity_covers_the_settings_fine_tuning_reads(tmp_path):
    def faces_hash(*extra):
        cfg = load_config(None, overrides=[f"run.artifact_root={json_str(tmp_path)}", *extra])
        return Pipeline(cfg).artifact("faces").hash
    assert faces_hash("video.batch_size=32") != faces_hash()
    assert faces_hash("video.finetune_epochs=1", "train.seed=1") != faces_hash("video.finetune_epochs=1")
    assert faces_hash("train.seed=1") == faces_hash()  # without fine-tuning the seed is not read


# --------------------------------------------------------------------------- interrupts
def test_an_interrupt_swallowed_inside_a_c_callback_still_stops_every_write(tmp_path):
    """ctypes prints 'Exception ignored' for a KeyboardInterrupt raised in a callback (as openSMILE's
    sink callback does) and returns normally; the recorded signal still refuses the next file."""
    @ctypes.CFUNCTYPE(None)
    def callback():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs (and raises) between these bytecodes
            pass

    target = tmp_path / "features.parquet"
    with pytest.raises(interrupts.Interrupted) as caught:
        with interrupts.guard():
            callback()  # returns: the exception was swallowed by ctypes
            assert interrupts.received() == signal.SIGINT
            write_text(target, "would be a finished file")
    assert caught.value.exit_code == 130
    assert not target.exists() and not list(tmp_path.iterdir())
    assert interrupts.received() is None or True  # the next guard starts clean:
    with interrupts.guard():
        write_text(target, "ok")
    assert target.read_text() == "ok"


def test_sigterm_exits_143_and_the_same_command_resumes(tmp_path):
    args = [sys.executable, "-m", "recola_pipeline.cli", "--quiet", "--stage", "audio", "--artifact-root",
            str(tmp_path / "store"), "--jobs", "1", "--set", "demo.recordings_per_partition=2",
            "--set", "demo.duration_s=40", "--set", "audio.windows_s=[4.0, 8.0]"]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    audio = tmp_path / "store" / "features" / "audio"
    while process.poll() is None and not audio.is_dir():  # the audio stage has started
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=120)[1]
    if process.returncode == 0:
        pytest.skip("the run finished before the signal (a very fast machine)")
    assert process.returncode == 143, err
    assert "SIGTERM" in err and "run the same command again" in err
    assert not list(audio.glob("*/manifest.json"))
    assert subprocess.run(args, capture_output=True, timeout=300).returncode == 0
    assert len(list(audio.glob("*/manifest.json"))) == 1


# --------------------------------------------------------------------------- ratings, cell by cell
@pytest.mark.parametrize("cell, fragment", [
    ("1e400", "non-finite value '1e400' in column 'arousal' at data row 3"),
    ("inf", "non-finite value 'inf'"),
    ("1e300", "value '1e300' in column 'arousal' at data row 3 is beyond"),
    ("-12", "beyond \\+-10"),
])
def test_non_finite_or_absurd_rating_is_an_error_naming_cell(tmp_path, corpus, cell, fragment):
    path = corpus / "r3_arousal.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].split(",")[0] + "," + cell
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=fragment):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")
    assert not (tmp_path / "store" / "features" / "data").exists() or \
        not list((tmp_path / "store" / "features" / "data").glob("*/manifest.json"))


def test_millisecond_times_are_an_error(tmp_path, corpus):
    table = pd.read_csv(corpus / "r1_valence.csv")
    table["time"] = (table["time"] * 1000).round().astype(int)
    table.to_csv(corpus / "r1_valence.csv", index=False)
    with pytest.raises(CorpusError, match="r1_valence.csv: rows are 40 apart .* Milliseconds\\? Divide"):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")


def test_ratings_far_longer_than_the_media_are_an_error(tmp_path, corpus):
    label_file(corpus / "r2_arousal.csv", "arousal", seconds=60.0, rate=0.05 * 10)
    with pytest.raises(CorpusError, match="r2_arousal.csv: ratings run to 60 s but the media of recording r2 last 8.0"):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")


def test_dimensions_with_different_spans_warn_and_neither_drops_out(tmp_path, corpus, caplog):
    label_file(corpus / "r3_valence.csv", "valence", seconds=4.0)
    with caplog.at_level(logging.WARNING):
        table, gold = load_data(Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data"))
    row = table.set_index("recording").loc["r3"]
    assert row.labelled_frames_arousal == 201 and row.labelled_frames_valence == 101 + 0
    assert any("r3" in m and "different spans" in m for m in caplog.messages)
    assert np.isfinite(gold["r3"]["arousal"]).sum() == 201


def test_a_dimension_unrated_in_devel_is_an_error_not_a_missing_row(tmp_path, corpus):
    for rec in ("r3", "r4"):
        (corpus / f"{rec}_valence.csv").write_text("time,valence\n0,\n0.04,\n0.08,\n")
    with pytest.raises(CorpusError, match="no devel recording has a usable valence rating"):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")


def test_suspicious_ratings_warn(tmp_path, corpus, caplog):
    table = pd.read_csv(corpus / "r1_arousal.csv")
    table["arousal"] = 4.0 * table["arousal"]  # up to 2: beyond the warning level, within the error level
    table.to_csv(corpus / "r1_arousal.csv", index=False)
    pd.DataFrame({"time": table["time"], "a": 0.2, "b": table["arousal"] / 4}).to_csv(corpus / "r2_arousal.csv",
                                                                                    index=False)
    with caplog.at_level(logging.WARNING):
        artifact = Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")
    assert any("r1" in m and "far outside the [-1, 1] scale" in m for m in caplog.messages)
    assert any("r2" in m and "rater a gives the constant value 0.2" in m for m in caplog.messages)
    assert any("constant value" in m for m in artifact.manifest()["info"]["warnings"])


def test_negative_times_and_bom_label_files(tmp_path, corpus):
    text = (corpus / "r1_arousal.csv").read_text()
    (corpus / "r1_arousal.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").replace(",", ";").encode())
    Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")  # BOM, CRLF, semicolons: read as written
    (corpus / "r2_arousal.csv").write_text("time,arousal\n-0.04,0.1\n0,0.2\n0.04,0.3\n")
    with pytest.raises(CorpusError, match="r2_arousal.csv: negative time -0.04 at data row 1"):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")


# --------------------------------------------------------------------------- duplicate media
def test_one_audio_file_under_two_ids_across_partitions_is_an_error(tmp_path, corpus):
    (corpus / "r5.wav").write_bytes((corpus / "r1.wav").read_bytes())  # a test recording = a train one
    with pytest.raises(CorpusError, match="r1 \\(train.*r5 \\(test.*is the same file.*leaks"):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")


def test_one_audio_file_under_two_ids_in_one_partition_warns(tmp_path, corpus, caplog):
    (corpus / "r2.wav").write_bytes((corpus / "r1.wav").read_bytes())
    with caplog.at_level(logging.WARNING):
        Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data")
    assert any("r1 (train" in m and "r2 (train" in m and "counts twice" in m for m in caplog.messages)


# --------------------------------------------------------------------------- recording ids
@pytest.mark.parametrize("rec_id, fragment", [
    ("NA", "'NA' is empty or reads as a missing value"),
    ("", "'' is empty"),
    ("a/b", "'a/b' cannot be used as a file name"),
    ('x"y', "'x\"y' cannot be used as a file name"),
])
def test_bad_recording_ids_are_errors(tmp_path, corpus, rec_id, fragment):
    text = (corpus / "manifest.csv").read_text().replace("\nr1,", f"\n{rec_id},", 1)
    (corpus / "manifest.csv").write_text(text)
    with pytest.raises(CorpusError, match=f"manifest.csv row 2: recording id {fragment}"):
        Pipeline(config(tmp_path, corpus / "manifest.csv"))


def test_ids_equal_ignoring_case_are_an_error(tmp_path, corpus):
    (corpus / "manifest.csv").write_text((corpus / "manifest.csv").read_text().replace("\nr2,", "\nR1,", 1))
    with pytest.raises(CorpusError, match="as 'r1' and 'R1' \\(equal ignoring case\\)"):
        Pipeline(config(tmp_path, corpus / "manifest.csv"))


def test_numeric_looking_ids_stay_names(tmp_path, corpus):
    text = (corpus / "manifest.csv").read_text()
    for k, rec in enumerate(SPLIT):
        text = text.replace(f"\n{rec},", f"\n{k:03d},", 1)
    (corpus / "manifest.csv").write_text(text)
    table, gold = load_data(Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data"))
    assert list(table.recording) == ["000", "001", "002", "003", "004", "005"] and "000" in gold


# --------------------------------------------------------------------------- trust boundary of model files
class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["PAYLOAD_MARKER"]),))


def test_a_pickle_in_place_of_a_model_with_a_matching_checksum_is_never_executed(tmp_path, monkeypatch):
    from recola_pipeline import safe_io
    from recola_pipeline.cache import file_sha256
    from recola_pipeline.estimators import Normaliser
    marker = tmp_path / "executed"
    monkeypatch.setenv("PAYLOAD_MARKER", str(marker))
    artifact = ArtifactStore(tmp_path / "store").artifact("models", "train", {"x": 1})
    artifact.start()
    safe_io.dump({"normaliser": Normaliser().fit(np.eye(3))}, artifact.file("model_audio_arousal.skops"))
    artifact.finish({})
    artifact.verify()
    assert safe_io.load(artifact.file("model_audio_arousal.skops"))["normaliser"].mean_.shape == (3,)
    artifact.file("model_audio_arousal.skops").write_bytes(pickle.dumps(_Payload()))
    manifest = artifact.manifest()
    manifest["files"]["model_audio_arousal.skops"] = file_sha256(artifact.file("model_audio_arousal.skops"))
    (artifact.path / "manifest.json").write_text(__import__("json").dumps(manifest))
    with pytest.raises(ArtifactError, match="not a model file in skops format"):
        artifact.verify(check_file=safe_io.check_model_file)  # so the pipeline rebuilds the artifact instead of reading it
    with pytest.raises(ArtifactError, match="not a model file in skops format"):
        safe_io.load(artifact.file("model_audio_arousal.skops"))
    assert not marker.exists()


# --------------------------------------------------------------------------- config and paths
@pytest.mark.parametrize("override, fragment", [
    ("corpus.max_seconds=inf", "not a finite number"),
    ("audio.windows_s=[4.0, inf]", "not a finite number"),
    ("train.delay_max_s=inf", "not a finite number"),
    ("evaluate.median_windows_s=[nan]", "not a finite number"),
    ("train.c_grid=[1.0, nan]", "not a finite number"),
    ("evaluate.median_windows_s=[-1.0]", "median_windows_s must list lengths >= 0"),
    ("train.rbf_components=0", "rbf_components must be at least 1"),
    ("demo.sample_rate=0", "demo.sample_rate must be between"),
    ('corpus.dimensions=["arousal", "arousal"]', "distinct names"),
    ("audio.windows_s=[4.0, 4.0]", "distinct positive multiples"),
    ("run.jobs=99999999999", "out of range"),
    ("demo.duration_s=1e9", "demo.duration_s must be between"),
])
def test_config_values_out_of_range_are_errors(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, overrides=[override])


def test_config_paths_that_are_not_regular_files_exit_2_without_hanging(tmp_path, caplog):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = {"/dev/zero": "not a regular file", str(fifo): "not a regular file", str(tmp_path): "is a folder",
             str(tmp_path / "none.toml"): "does not exist"}
    for path, fragment in cases.items():
        caplog.clear()
        assert cli(tmp_path, "--config", path, "--dry-run") == 2
        assert any(fragment in m and "--config" in m for m in caplog.messages), (path, caplog.messages)
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 * 2**20))
    assert cli(tmp_path, "--config", str(big), "--dry-run") == 2


def test_partition_paths_that_are_not_regular_files_exit_2(tmp_path, corpus, caplog):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo), str(tmp_path)):
        caplog.clear()
        assert cli(tmp_path, "--corpus", "manifest", "--manifest", str(corpus / "manifest.csv"),
                   "--partitions", path, "--dry-run") == 2
        assert any("partitions file" in m and "--partitions" in m for m in caplog.messages), caplog.messages


def test_quotes_and_backslashes_in_path_options_are_taken_literally(tmp_path):
    root = tmp_path / 'odd "name" \\ folder'
    cfg = load_config(None, overrides=[])
    assert cli(tmp_path, "--artifact-root", str(root), "--dry-run") == 0
    from recola_pipeline.cli import _overrides, build_parser
    args = build_parser().parse_args(["--artifact-root", str(root), "--corpus", "manifest", "--manifest",
                                        'a"b\\c.csv'])
    cfg = load_config(None, overrides=_overrides(args))
    assert cfg.run.artifact_root == str(root) and cfg.corpus.manifest.endswith('a"b\\c.csv')


# --------------------------------------------------------------------------- the store
def test_a_damaged_parquet_in_an_unfinished_artifact_is_recomputed(tmp_path, corpus):
    cfg = config(tmp_path, corpus / "manifest.csv")
    clean = Pipeline(cfg).ensure("audio")
    reference = store_snapshot(clean.path)
    (clean.path / "manifest.json").unlink()  # as if the run had stopped before the end
    clean.file("w4/r3.parquet").write_bytes(b"PAR1 not really parquet")
    rebuilt = Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("audio")
    after = store_snapshot(rebuilt.path)
    assert {k: v for k, v in after.items() if k != "manifest.json"} == \
        {k: v for k, v in reference.items() if k != "manifest.json"}


def test_a_complete_read_only_store_is_reused(tmp_path, corpus, monkeypatch):
    cfg = config(tmp_path, corpus / "manifest.csv")
    Pipeline(cfg).ensure("data")
    from recola_pipeline.cache import Artifact

    def no_lock(self):
        raise PermissionError(13, "Read-only file system", str(self.path) + ".lock")
    monkeypatch.setattr(Artifact, "lock", no_lock)  # as on read-only media (the tests may run as root)
    assert Pipeline(config(tmp_path, corpus / "manifest.csv")).ensure("data").complete
