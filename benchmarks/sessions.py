"""The real-speech sessions the benchmarks run on (../shared/tools/make_sessions.py, seed 2016)."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def real_speech_sessions(existing: Path | None = None) -> Path:
    """``existing`` if given, else 24 RECOLA-layout sessions built into a new temporary folder."""
    if existing is not None:
        return existing
    out = Path(tempfile.mkdtemp(prefix="sessions_"))
    subprocess.run([sys.executable, str(SHARED / "tools" / "make_sessions.py"), "--clips",
                    str(SHARED / "data" / "ravdess_speech_16k"), "--out", str(out)], check=True, capture_output=True)
    return out


def session_overrides(description: str, prefix: str) -> list[str]:
    """Read ``--sessions``, ``--artifact-root`` and ``--jobs`` from the command line; the settings of a benchmark
    on the sessions: RECOLA layout, per-recording normalisation, no progress bars, artifacts under
    ``--artifact-root`` (a new temporary folder named ``prefix...`` when absent)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=Path)
    parser.add_argument("--artifact-root", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = args.artifact_root or Path(tempfile.mkdtemp(prefix=prefix)) / "art"
    return ["corpus.name=recola", f'corpus.data_root="{real_speech_sessions(args.sessions)}"',
            f'run.artifact_root="{root}"', f"run.jobs={args.jobs}", "run.progress=false",
            'train.normalisation=["recording"]']
