"""Peak memory of ``recola-pipeline predict`` under load: many files, and long recordings.

Trains and exports an audio-only model on the built-in demo (or uses ``--bundle``), builds
inputs from the demo's own recordings by concatenation, then runs ``recola-pipeline predict
--jobs 2`` as a subprocess on

1. 200 and 2,000 short files (10 s each),
2. one 10-minute, one 60-minute and one 3-hour recording,

sampling the resident memory of the whole process tree (the command and its worker processes)
every 0.1 s. Prints each peak, and the machine-independent ratios the issue bounds: 2,000 vs 200
files (<= 1.2) and 60 vs 10 minutes (<= 1.5); the 3-hour case is printed beside them.

    python benchmarks/predict_memory.py [--work /tmp/predict_memory] [--bundle DIR]

About 15 minutes on 2 cores, and 1.5 GB of disk for the inputs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--set", "demo.video=false", "--set", "audio.windows_s=[4.0, 8.0]", "--set", "train.c_grid=[0.001, 0.01]"]


def peak_tree_rss(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return (peak summed RSS of it and its children in MiB, wall seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            members = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in members if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return peak / 2**20, time.perf_counter() - start


def demo_sound(store: Path) -> tuple[np.ndarray, int]:
    """The demo corpus's recordings, end to end."""
    files = sorted((store / "features" / "demo").glob("*/RECOLA-Audio-recordings/*.wav"))
    parts = [sf.read(f)[0] for f in files]
    return np.concatenate(parts), sf.info(str(files[0])).samplerate


def write_repeated(path: Path, sound: np.ndarray, rate: int, seconds: float) -> None:
    """``seconds`` of ``sound`` repeated end to end, written in blocks."""
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        left = int(seconds * rate)
        while left > 0:
            handle.write(sound[:left])
            left -= min(left, sound.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/predict_memory", help="folder for the model and the inputs")
    parser.add_argument("--bundle", help="an exported model to use instead of training the demo one")
    args = parser.parse_args()
    work = Path(args.work)
    cli = [sys.executable, str(ROOT / "run_pipeline.py")]
    bundle = Path(args.bundle) if args.bundle else work / "model"
    if not bundle.exists():  # export never trains: evaluate first
        subprocess.run([*cli, "--stage", "evaluate", "--artifact-root", str(work / "store"), "--quiet", *DEMO],
                       check=True)
        subprocess.run([*cli, "export", "--out", str(bundle), "--artifact-root", str(work / "store"), "--quiet",
                        *DEMO], check=True)
    sound, rate = demo_sound(work / "store")
    short = work / "short"
    if not (short / "s1999.wav").exists():
        short.mkdir(parents=True, exist_ok=True)
        for k in range(2000):
            offset = (k * 7919 * rate // 10) % (sound.size - 10 * rate)
            sf.write(short / f"s{k:04d}.wav", sound[offset:offset + 10 * rate], rate)
    (work / "few").mkdir(exist_ok=True)
    for k in range(200):
        target = work / "few" / f"s{k:04d}.wav"
        if not target.exists():
            target.symlink_to(short / f"s{k:04d}.wav")
    peaks = {}
    for label, inputs in (("200 files", work / "few"), ("2000 files", short)):
        peaks[label] = peak_tree_rss([*cli, "predict", "--model", str(bundle), "--system", "audio", "--jobs", "2",
                                      "--quiet", "--out", str(work / "out" / label.replace(" ", "_")), str(inputs)])
        print(f"{label}: peak RSS {peaks[label][0]:.0f} MiB, {peaks[label][1]:.0f} s", flush=True)
    for minutes in (10, 60, 180):
        path = work / f"long_{minutes}min.wav"
        if not path.exists():
            write_repeated(path, sound, rate, 60.0 * minutes)
        label = f"{minutes} min"
        peaks[label] = peak_tree_rss([*cli, "predict", "--model", str(bundle), "--system", "audio", "--jobs", "2",
                                      "--quiet", "--out", str(work / "out" / "long"), str(path)])
        print(f"{label}: peak RSS {peaks[label][0]:.0f} MiB, {peaks[label][1]:.0f} s", flush=True)
    print(f"ratio 2000 / 200 files: {peaks['2000 files'][0] / peaks['200 files'][0]:.2f} (bound 1.2)")
    print(f"ratio 60 / 10 min: {peaks['60 min'][0] / peaks['10 min'][0]:.2f} (bound 1.5)")
    print(f"ratio 180 / 10 min: {peaks['180 min'][0] / peaks['10 min'][0]:.2f}")


if __name__ == "__main__":
    main()
