"""Start-up cost: ``--help``, ``import recola_pipeline``, and what each loads.

Runs each command in a fresh interpreter ``--repeat`` times (default 5) and prints the median
wall time, plus which heavy libraries (torch, cv2, opensmile, librosa, timm, sklearn, pandas) the
import left loaded. The machine-independent figure is the ratio to a bare ``python -c pass``.

    python benchmarks/startup.py [--repeat 5]

The bound the project holds itself to: ``run_pipeline.py --help`` in at most 1.5 s, and
``import recola_pipeline`` loading none of torch, cv2, opensmile, librosa or timm.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cv2", "opensmile", "librosa", "timm", "sklearn", "pandas")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "run_pipeline.py --help": [sys.executable, str(ROOT / "run_pipeline.py"), "--help"],
    "recola-pipeline predict --help": [sys.executable, "-m", "recola_pipeline.console", "predict", "--help"],
    "import recola_pipeline.config": [sys.executable, "-c", "import recola_pipeline.config"],
}


def median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loaded_by(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                          cwd=ROOT).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = None
    for name, command in COMMANDS.items():
        seconds = median_seconds(command, args.repeat)
        base = base or seconds
        print(f"{name:34s} {seconds:6.3f} s  ({seconds / base:5.1f} x python -c pass)")
    for statement in ("import recola_pipeline", "import recola_pipeline.config", "import recola_pipeline.cli",
                      "import recola_pipeline.pipeline"):
        print(f"{statement:34s} loads: {', '.join(loaded_by(statement)) or 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
