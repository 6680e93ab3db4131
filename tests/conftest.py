"""Shared fixtures: small configs, tiny corpora written on the fly, the shared data folder."""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import settings

from recola_pipeline.config import load_config
from recola_pipeline.corpora.ratings import RECOLA_RATERS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# Parallel workers (-n auto) fill every core: an OpenMP thread (torch, scikit-learn) that waits for work must
# sleep, not spin on a core that another worker needs. Spinning doubled the CPU the MRPN tests took beside
# another worker (mrpn_training: 48 s of CPU instead of 24). Set before a test module imports torch (libgomp
# reads it when loaded), and inherited by the runs the tests start. Alone, spinning is faster: left as it is.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# the fuzz suite (tests/test_fuzz.py): a bounded run by default, more with --hypothesis-profile=thorough
settings.register_profile("ci", max_examples=25, derandomize=True)
settings.register_profile("thorough", max_examples=500)
settings.load_profile("ci")


def pytest_collection_modifyitems(items):
    """Modules holding a ``slow`` test first, the rest in file order: with ``--dist loadscope`` (and the
    size reordering off, ``setup.cfg``) the longest modules start at once on their own workers
    instead of arriving last and running alone."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the project; tests using it skip when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED


@pytest.fixture
def small_config(tmp_path):
    """A config for a 20 s, one-recording-per-partition demo under a temporary artifact root."""
    def make(*overrides):
        return load_config(None, overrides=[
            f'run.artifact_root="{tmp_path / "artifacts"}"', "run.jobs=1", "run.progress=false",
            "demo.recordings_per_partition=1", "demo.duration_s=20.0", *overrides])
    return make


def write_ratings(path: Path, n_frames: int, *, raters=RECOLA_RATERS, seed=0, header=None) -> np.ndarray:
    """Write a RECOLA-format ratings file (header with trailing spaces) and return its values."""
    rng = np.random.default_rng(seed)
    base = np.sin(np.arange(n_frames) / 50.0)
    values = np.round(np.clip(base[:, None] * rng.uniform(0.5, 1, len(raters))
                              + rng.normal(0, 0.1, (n_frames, len(raters))), -1, 1), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = header or "time;" + " ;".join(raters) + " "
    rows = [f"{i * 0.04:.2f};" + ";".join(f"{v:.2f}" for v in row) for i, row in enumerate(values)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return values


def write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> None:
    """Write a short noise WAV (different noise for different file names: no two recordings share audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = zlib.crc32(path.name.encode())
    data = np.random.default_rng(seed).normal(0, 0.1, (int(seconds * rate), channels)).astype(np.float32)
    sf.write(path, data, rate)


@pytest.fixture
def recola_root(tmp_path) -> Path:
    """A tiny RECOLA-layout corpus: P16 (train), P19 (devel), 8 s each, no video, AVEC partitions."""
    root = tmp_path / "RECOLA"
    for rec in ("P16", "P19"):
        write_wav(root / "RECOLA-Audio-recordings" / f"{rec}.wav", 8.0)
        for k, dim in enumerate(("arousal", "valence")):
            write_ratings(root / "RECOLA-Annotation" / "emotional_behaviour" / dim / f"{rec}.csv", 201, seed=k)
    return root

#: a small demo: one recording per partition, 30 s, two audio windows, a short grid
SMALL_DEMO = ["--set", "demo.recordings_per_partition=1", "--set", "demo.duration_s=30",
              "--set", "audio.windows_s=[4.0, 8.0]", "--set", "video.windows_s=[4.0]",
              "--set", "train.c_grid=[0.001, 0.01]", "--set", "train.delay_max_s=2.0"]


def shared_folder(tmp_path_factory, worker_id: str, name: str) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (one per worker without xdist)."""
    if worker_id == "master":
        return tmp_path_factory.mktemp(name)
    return tmp_path_factory.getbasetemp().parent / name  # the session's folder, above each worker's own


@pytest.fixture(scope="session")
def exported(tmp_path_factory, worker_id):
    """The small demo trained (audio and video) and exported: ``(bundle, test audio, test video,
    the evaluate stage's predictions of that test recording)``. Tests copy the bundle to change it.

    Built once per test session: the first worker builds it under a file lock, the others wait and read it."""
    import pandas as pd
    from filelock import FileLock

    from recola_pipeline.cli import main
    root = shared_folder(tmp_path_factory, worker_id, "exported-model")
    with FileLock(f"{root}.lock"):
        if not (root / "model" / "checksums.json").is_file():
            _train_and_export(main, root)
    demo = next((root / "store" / "features" / "demo").glob("*/"))
    test = pd.read_csv(demo / "partitions.csv").query("partition == 'test'").recording.iloc[0]
    evaluated = pd.read_parquet(next((root / "store" / "models" / "evaluate").glob(f"*/predictions/{test}.parquet")))
    return root / "model", demo / "RECOLA-Audio-recordings" / f"{test}.wav", \
        demo / "RECOLA-Video-recordings" / f"{test}.mp4", evaluated


#: the small demo with three recordings per partition: devel can choose post-processing and late fusion
DEMO_3 = [*SMALL_DEMO, "--set", "demo.recordings_per_partition=3"]


def as_overrides(args: list[str]) -> list[str]:
    """``--set`` arguments as :func:`~recola_pipeline.config.load_config` overrides, in the same order."""
    return [arg for arg in args if arg != "--set"]


@pytest.fixture(scope="session")
def demo_3_store(tmp_path_factory, worker_id) -> Path:
    """An artifact root with every continuous stage of :data:`DEMO_3` built (audio and video, up to the
    report; no named run). Built once per test session under a file lock, like :func:`exported`; a module
    copies it (``shutil.copytree(..., symlinks=True)``: the store is relocatable) before adding to it."""
    from filelock import FileLock

    from recola_pipeline.pipeline import Pipeline
    from recola_pipeline.stages import public_stages
    root = shared_folder(tmp_path_factory, worker_id, "demo-3-store")
    with FileLock(f"{root}.lock"):
        if not (root / "built").is_file():
            pipeline = Pipeline(load_config(None, overrides=[f'run.artifact_root="{root / "store"}"', "run.jobs=1",
                                                             "run.progress=false", *as_overrides(DEMO_3)]))
            for stage in public_stages():
                if stage != "mrpn":
                    pipeline.ensure(stage)
            (root / "built").touch()
    return root / "store"


def _train_and_export(main, root: Path) -> None:
    assert main(["--stage", "evaluate", "--artifact-root", str(root / "store"), "--jobs", "1", "--quiet",
                 *SMALL_DEMO]) == 0  # export never trains
    assert main(["export", "--out", str(root / "model"), "--artifact-root", str(root / "store"), "--jobs", "1",
                 "--quiet", *SMALL_DEMO]) == 0


#: the small demo, audio only, with causal systems that exercise every causal step: 3 devel recordings (so the
#: post-processing is chosen), online normalisation with a short warm-up, delays up to 2 s
CAUSAL_DEMO = ["--set", "demo.recordings_per_partition=3", "--set", "demo.duration_s=30", "--set", "demo.video=false",
               "--set", "audio.windows_s=[4.0]", "--set", "train.c_grid=[0.001, 0.01]", "--set", "train.delay_max_s=2.0",
               "--set", "train.causal=true", "--set", "train.causal_normalisation=[\"online\"]",
               "--set", "train.online_warmup_s=2.0"]


@pytest.fixture(scope="session")
def exported_causal(tmp_path_factory, worker_id):
    """The small audio-only demo with causal systems, trained and exported: ``(bundle, store, test audio)``.

    Built once per test session, like :func:`exported`."""
    import pandas as pd
    from filelock import FileLock

    from recola_pipeline.cli import main
    root = shared_folder(tmp_path_factory, worker_id, "exported-causal-model")
    with FileLock(f"{root}.lock"):
        if not (root / "model" / "checksums.json").is_file():
            for command in (["--stage", "evaluate"], ["export", "--out", str(root / "model")]):
                assert main([*command, "--artifact-root", str(root / "store"), "--jobs", "1", "--quiet",
                             *CAUSAL_DEMO]) == 0
    demo = next((root / "store" / "features" / "demo").glob("*/"))
    test = pd.read_csv(demo / "partitions.csv").query("partition == 'test'").recording.iloc[0]
    return root / "model", root / "store", demo / "RECOLA-Audio-recordings" / f"{test}.wav"


collect_ignore_glob = ["fixtures/*.py"]  # one-off generators that need tools the suite does not (Keras)
