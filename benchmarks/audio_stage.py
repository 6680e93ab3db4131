"""Benchmark of the audio stage against bare openSMILE eGeMAPS LLD extraction.

Builds the real-speech sessions of ../shared/tools/make_sessions.py (24 recordings, ~100 min),
then, in one run and with the same number of joblib workers:

1. bare openSMILE eGeMAPS v02 LLD extraction of every session (the floor: no windowing),
2. the audio stage with one window length (W = 8 s),
3. the audio stage with two and with six window lengths (4 : 2 : 14 s),

and prints the wall times, the ratio stage / bare LLDs (target <= 1.3) and the cost of each
extra W relative to the first (target < 30 %). Ratios, not seconds, are what carry over to
another machine.

    python benchmarks/audio_stage.py [--jobs 2] [--sessions DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import joblib
import opensmile
import soundfile as sf
from sessions import real_speech_sessions

from recola_pipeline.config import load_config
from recola_pipeline.pipeline import Pipeline


def bare_llds(path: str) -> int:
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    return len(smile.process_file(path))


def timed_stage(sessions: Path, root: Path, windows, jobs: int) -> float:
    overrides = ["corpus.name=recola", f'corpus.data_root="{sessions}"', f'run.artifact_root="{root}"',
                 f"run.jobs={jobs}", "run.progress=false", f"audio.windows_s={list(windows)}"]
    pipeline = Pipeline(load_config(None, overrides=overrides))
    pipeline.ensure("data")  # not timed: the data stage is shared by every run
    start = time.perf_counter()
    pipeline.ensure("audio")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sessions", type=Path, help="existing sessions (RECOLA layout); built when absent")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_audio_"))
    sessions = real_speech_sessions(args.sessions)
    wavs = sorted(str(p) for p in (sessions / "RECOLA-Audio-recordings").glob("*.wav"))
    minutes = sum(sf.info(p).duration for p in wavs) / 60
    print(f"{len(wavs)} recordings, {minutes:.1f} min of audio, {args.jobs} workers")

    start = time.perf_counter()
    joblib.Parallel(n_jobs=args.jobs)(joblib.delayed(bare_llds)(p) for p in wavs)
    lld = time.perf_counter() - start
    one = timed_stage(sessions, work / "w1", [8.0], args.jobs)
    two = timed_stage(sessions, work / "w2", [8.0, 4.0], args.jobs)
    six = timed_stage(sessions, work / "w6", [4.0, 6.0, 8.0, 10.0, 12.0, 14.0], args.jobs)
    print(f"bare openSMILE eGeMAPS LLDs : {lld:7.1f} s")
    print(f"audio stage, W = 8 s         : {one:7.1f} s   ratio to bare LLDs {one / lld:.2f} (target <= 1.3)")
    print(f"audio stage, 2 windows       : {two:7.1f} s   extra W costs {(two - one) / one:.0%} of the first")
    print(f"audio stage, 6 windows       : {six:7.1f} s   each extra W costs {(six - one) / 5 / one:.0%} of the first "
          "(target < 30 %)")


if __name__ == "__main__":
    main()
