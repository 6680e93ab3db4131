"""Benchmark of live prediction (audio path): real-time factor, per-frame latency, memory over a long stream.

With a causal model (``--model``, or the small audio-only demo trained and exported afresh with
``train.causal = true``), the process pinned to one CPU core (openSMILE's thread included):

1. **real-time factor**: a long stream (``--hours``, default 1: the test recording repeated) pushed
   in 20 ms blocks as fast as it is processed; processing time / audio time;
2. **memory**: the resident set size after every second of audio; the peak of the first ten
   minutes against the peak of the last ten (flat: within 5 %);
3. **latency**: ``--latency-s`` seconds (default 60) replayed at real-time pace in 20 ms blocks;
   per frame, the time from the arrival of the block that reached the frame's time to its
   output, beyond the algorithmic latency (p50, p95, p99). The algorithmic latency is stated apart:
   the earliest a frame can be known after its time (the window ends at the frame, the delay D moves
   it earlier, and live openSMILE writes a window 70-110 ms after its end: 120 ms in the budget);
   0 when D covers it.

Targets (issue 29): real-time factor <= 0.1 on one core; p99 latency beyond the algorithmic
latency <= 50 ms; the last ten minutes' peak memory within 5 % of the first ten minutes'.

    python benchmarks/live.py [--model BUNDLE --audio WAV] [--hours 1] [--latency-s 60]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from recola_pipeline import load_model
from recola_pipeline.cli import main

#: the small demo the benchmark trains when no model is given (audio only, causal systems)
DEMO = ["--set", "demo.recordings_per_partition=3", "--set", "demo.duration_s=60", "--set", "demo.video=false",
        "--set", "audio.windows_s=[4.0, 6.0]", "--set", "train.causal=true", "--quiet", "--jobs", "1"]
BLOCK_S = 0.02


def demo_model(folder: Path) -> tuple[Path, Path]:
    """Train and export the small causal demo; returns the bundle and a test recording."""
    for command in (["--stage", "evaluate"], ["export", "--out", str(folder / "model")]):
        assert main([*command, "--artifact-root", str(folder / "store"), *DEMO]) == 0
    audio = sorted((folder / "store" / "features" / "demo").glob("*/RECOLA-Audio-recordings/*.wav"))[-1]
    return folder / "model", audio


def rss_mb() -> float:
    """Resident set size of this process now, in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def throughput(model, signal: np.ndarray, rate: int, seconds: float) -> tuple[float, list[float]]:
    """Stream ``seconds`` of ``signal`` (repeated) as fast as it goes; processing seconds and RSS per audio second."""
    block = int(BLOCK_S * rate)
    total = int(seconds * rate)
    memory, frames = [], 0
    start = time.perf_counter()
    with model.stream(sample_rate=rate) as stream:
        for position in range(0, total, block):
            offset = position % signal.size
            frames += len(stream.push(signal[offset:offset + block]))
            if position % rate < block:
                memory.append(rss_mb())
        frames += len(stream.close())
    elapsed = time.perf_counter() - start
    assert frames == int(np.floor(total / rate / 0.04 + 1e-6)) + 1, frames  # every frame came out once
    return elapsed, memory


def latencies(model, signal: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """Per-frame latency (s) of ``seconds`` of ``signal`` replayed at real-time pace."""
    block = int(BLOCK_S * rate)
    out = []
    with model.stream(sample_rate=rate) as stream:
        start = time.perf_counter()
        for k, position in enumerate(range(0, int(seconds * rate), block)):
            time.sleep(max(0.0, start + (k + 1) * BLOCK_S - time.perf_counter()))  # the block is "recorded"
            offset = position % signal.size
            out.append(stream.push(signal[offset:offset + block]).latency_s.to_numpy())
        algorithmic = stream.algorithmic_latency_s
    return np.concatenate(out), algorithmic


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a causal bundle (default: train the small demo)")
    parser.add_argument("--audio", type=Path, help="with --model: a recording to stream")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--latency-s", type=float, default=60.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, for this thread and those it starts
    with tempfile.TemporaryDirectory(prefix="recola_live_bench_") as folder:
        bundle, audio = (args.model, args.audio) if args.model else demo_model(Path(folder))
        model = load_model(bundle)
        signal, rate = sf.read(audio, dtype="int16")
        print(f"model {bundle}, {audio.name} ({signal.size / rate:.0f} s, repeated), {rate} Hz, one core")
        seconds = args.hours * 3600
        elapsed, memory = throughput(model, signal, rate, seconds)
        print(f"streamed {seconds / 60:.0f} min of audio in {elapsed:.1f} s (20 ms blocks, as fast as processed)")
        print(f"real-time factor {elapsed / seconds:.3f}")
        ten = min(600, len(memory) // 2)
        first, last = max(memory[:ten]), max(memory[-ten:])
        print(f"peak RSS first 10 min {first:.1f} MB, last 10 min {last:.1f} MB ({100 * (last / first - 1):+.1f} %)")
        lat, algorithmic = latencies(model, signal, rate, args.latency_s)
        print("algorithmic latency (the earliest a frame can be known after its time: openSMILE's 120 ms less the "
              "delay D): " + ", ".join(f"{d} {v * 1000:.0f} ms" for d, v in algorithmic.items()))
        measured = np.percentile(lat * 1000, [50, 95, 99])
        print(f"measured latency: p50 {measured[0]:.1f} ms, p95 {measured[1]:.1f} ms, p99 {measured[2]:.1f} ms")
        beyond = lat - max(algorithmic.values())
        p50, p95, p99 = np.percentile(beyond * 1000, [50, 95, 99])
        print(f"latency beyond it over {args.latency_s:.0f} s at real-time pace: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
              f"max {beyond.max() * 1000:.1f} ms")
        print(f"p99 latency {p99:.0f} ms")


if __name__ == "__main__":
    main_benchmark()
