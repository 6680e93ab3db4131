"""The base install (no extras) is the audio path: it runs the audio-only demo, export and predict without torch.

A fresh virtual environment gets ``pip install -e .`` with no extra (through uv, which the test install
brings: the same requirements resolved, from uv's cache in seconds instead of a minute of pip);
the run, export and predict then go through its console script. It needs the package index that
``.ci/run`` installs from.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--jobs", "2", "--quiet", "--set", "demo.recordings_per_partition=1", "--set", "demo.duration_s=30",
         "--set", "audio.windows_s=[4.0, 8.0]", "--set", "train.c_grid=[0.001, 0.01]",
         "--set", "train.delay_max_s=2.0"]


#: the test's own venv keeps the bytecode its first process compiles (uv installs none), whatever the caller's setting
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, env=ENV, **kwargs)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    uv = pytest.importorskip("uv", reason="the test install brings uv (pip install -e '.[test]')").find_uv_bin()
    venv = tmp_path_factory.mktemp("base") / "venv"
    created = run(uv, "venv", "-q", "--python", sys.executable, venv)
    assert created.returncode == 0, created.stderr
    installed = run(uv, "pip", "install", "-q", "-p", venv, "-e", ROOT)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_the_base_install_has_no_torch_or_opencv(base_venv):
    probe = run(base_venv / "bin" / "python", "-c",
                "import importlib.util as u; print([m for m in ('torch', 'torchvision', 'timm', 'cv2') if u.find_spec(m)])")
    assert probe.stdout.strip() == "[]", probe.stderr


def test_the_base_install_runs_the_audio_demo_export_and_predict(base_venv, tmp_path):
    cli, store = base_venv / "bin" / "recola-pipeline", tmp_path / "store"
    needs_video = run(cli, "--stage", "data", "--artifact-root", store, *SMALL)
    assert needs_video.returncode == 2
    assert "pip install 'recola-pipeline[video]' (or run the audio-only demo: --set demo.video=false)" in \
        needs_video.stderr
    audio_only = [*SMALL, "--set", "demo.video=false"]
    no_dask = run(cli, "--stage", "data", "--artifact-root", tmp_path / "dask", "--backend", "dask", *audio_only)
    assert no_dask.returncode == 2 and "run.backend = 'dask' needs the library 'distributed', which is not " \
        "installed: pip install 'recola-pipeline[dask]'" in no_dask.stderr, no_dask.stderr
    done = run(cli, "--artifact-root", store, "--name", "base", *audio_only)
    assert done.returncode == 0, done.stderr
    assert "mrpn: skipped, its libraries are not installed (pip install 'recola-pipeline[mrpn]')" in done.stderr
    assert (store / "runs" / "base" / "report.html").is_file()
    results = pd.read_csv(store / "runs" / "base" / "results.csv")
    assert set(results.modality) == {"audio"} and results.ccc.notna().all()
    exported = run(cli, "export", "--out", tmp_path / "model", "--artifact-root", store, *audio_only)
    assert exported.returncode == 0, exported.stderr
    wav = next(store.glob("features/demo/*/RECOLA-Audio-recordings/*.wav"))
    predicted = run(cli, "predict", "--model", tmp_path / "model", wav, "--out", tmp_path / "out", "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    table = pd.read_csv(tmp_path / "out" / f"{wav.stem}.csv")
    assert list(table.columns[:3]) == ["time", "arousal", "valence"] and len(table) == 751
