"""Scale-out benchmark: the audio stage on 1 and 2 dask workers, and against loky.

On the real-speech sessions of ../shared/tools/make_sessions.py (24 recordings, ~100 min),
with one window length (W = 8 s), times the audio stage

1. on a dask LocalCluster of 1 worker,
2. on a dask LocalCluster of 2 workers,
3. on loky with 2 processes,

each into a fresh artifact root (the data stage is built first and not timed), and prints the
dask speed-up from 1 to 2 workers (target >= 1.7x on 2 cores) and the dask overhead against
loky with the same number of processes.

    python benchmarks/scale.py [--sessions DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sessions import real_speech_sessions

from recola_pipeline.config import load_config
from recola_pipeline.pipeline import Pipeline


def timed_audio(sessions: Path, root: Path, *parallel: str) -> float:
    overrides = ["corpus.name=recola", f'corpus.data_root="{sessions}"', f'run.artifact_root="{root}"',
                 "run.progress=false", "audio.windows_s=[8.0]", *parallel]
    pipeline = Pipeline(load_config(None, overrides=overrides))
    pipeline.ensure("data")
    start = time.perf_counter()
    pipeline.ensure("audio")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    sessions = real_speech_sessions(args.sessions)
    one = timed_audio(sessions, work / "dask1", "run.backend=dask", 'run.scheduler="local:1"')
    two = timed_audio(sessions, work / "dask2", "run.backend=dask", 'run.scheduler="local:2"')
    loky = timed_audio(sessions, work / "loky2", "run.backend=loky", "run.jobs=2")
    print(f"audio stage, dask, 1 worker  : {one:7.1f} s")
    print(f"audio stage, dask, 2 workers : {two:7.1f} s   speed-up {one / two:.2f}x (target >= 1.7x)")
    print(f"audio stage, loky, 2 workers : {loky:7.1f} s   dask overhead {two / loky - 1:+.0%}")


if __name__ == "__main__":
    main()
