"""Faults: a worker killed mid-stage (kill -9) loses no finished recording; a rerun completes the rest."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recola_pipeline.config import load_config
from recola_pipeline.pipeline import Pipeline

DEMO = ["--set", "demo.duration_s=60.0", "--set", "demo.recordings_per_partition=2",
        "--set", "audio.windows_s=[4.0, 8.0, 12.0]"]


def children(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (from /proc)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            kids = (task / "children").read_text().split() if (task / "children").exists() else []
            found += [int(k) for k in kids]
            frontier += [int(k) for k in kids]
    return found


def config(root, *extra):
    return load_config(None, overrides=[f'run.artifact_root="{root}"', "demo.duration_s=60.0",
                                        "demo.recordings_per_partition=2", "audio.windows_s=[4.0, 8.0, 12.0]", *extra])


def start_audio_stage(root, *extra):
    command = [sys.executable, "-m", "recola_pipeline.cli", "--stage", "audio", "--quiet", "--jobs", "2",
               "--artifact-root", str(root), *DEMO, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_first_recording(pipeline, process, timeout=240):
    """Block until the audio artifact holds a finished recording (its info file, written last, is
    there) or the run ends; the feature files of the finished recordings."""
    deadline = time.time() + timeout
    folder = pipeline.artifact("audio").path / "info"
    while time.time() < deadline and process.poll() is None:
        if folder.is_dir() and any(p.suffix == ".json" and not p.name.startswith(".tmp-") for p in folder.iterdir()):
            return sorted(f"{p.stem}.parquet" for p in folder.iterdir() if not p.name.startswith(".tmp-"))
        time.sleep(0.2)
    raise AssertionError(f"no recording finished: {process.communicate()}")


def kill_one_worker(process):
    workers = [pid for pid in children(process.pid)
               if "python" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    assert workers, "no worker process found"
    os.kill(workers[-1], signal.SIGKILL)


@pytest.fixture(scope="module")
def reference_audio(tmp_path_factory):
    """The audio stage of the same demo, run without a fault."""
    return Pipeline(config(tmp_path_factory.mktemp("reference"))).ensure("audio")


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_killed_worker_keeps_finished_recordings(tmp_path, backend, reference_audio):
    if backend == "dask":
        pytest.importorskip("distributed")
    extra = ["--backend", "dask", "--scheduler", "local:2"] if backend == "dask" else []
    root = tmp_path / "store"
    pipeline = Pipeline(config(root))
    pipeline.ensure("data")  # the demo and data stages are not what this test kills
    process = start_audio_stage(root, *extra)
    finished = wait_for_first_recording(pipeline, process)
    stamps = {name: (pipeline.artifact("audio").path / "w12" / name).stat().st_mtime_ns for name in finished}
    kill_one_worker(process)
    code = process.wait(timeout=300)
    # loky reports the dead worker and stops; dask's nanny restarts it and the task is run again
    assert code == (0 if backend == "dask" else 1), process.stderr.read()[-2000:]
    rerun = Pipeline(config(root)).ensure("audio")
    info = rerun.manifest()["info"]
    assert info["recordings"] == 6
    for name, stamp in stamps.items():  # recordings finished before the kill were not redone
        assert (rerun.path / "w12" / name).stat().st_mtime_ns == stamp
    assert rerun.manifest()["files"] == reference_audio.manifest()["files"]


def test_disk_write_failing_halfway_leaves_no_half_file(tmp_path, monkeypatch):
    import recola_pipeline.cache as cache
    reference = Pipeline(config(tmp_path / "reference", "run.jobs=1", "demo.duration_s=20.0")).ensure("demo")
    real_replace, calls = os.replace, []

    def disk_full_on_third_file(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(cache.os, "replace", disk_full_on_third_file)
    pipeline = Pipeline(config(tmp_path / "store", "run.jobs=1", "demo.duration_s=20.0"))
    with pytest.raises(OSError, match="No space left"):
        pipeline.ensure("demo")
    artifact = pipeline.artifact("demo")
    assert not artifact.complete
    assert not list(artifact.path.rglob(".tmp-*"))  # the temporary file of the failed write is gone
    assert len(artifact.files()) == 2  # the two files renamed before the failure, whole
    monkeypatch.setattr(cache.os, "replace", real_replace)
    resumed = Pipeline(config(tmp_path / "store", "run.jobs=1", "demo.duration_s=20.0")).ensure("demo")
    assert resumed.manifest()["files"] == reference.manifest()["files"]
