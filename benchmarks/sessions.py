"""The real-speech sessions the benchmarks run on (../shared/tools/make_sessions.py, seed 2016)."""
from __future__ import annotations

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
