"""Named runs: what a user finds, reads, compares and re-runs.

A run (``--name``, default ``<date>_<time>_<corpus>``) is a folder ``runs/<name>/`` under the
artifact root. The stage artifacts stay content-addressed and shared; the run folder points at
the ones it used and holds

``run.json``
    The command line (and a shell line that reproduces it), the resolved configuration, the
    versions of Python and the key packages, the git commit and whether the tree was dirty, the
    CPU count, start and end times, the status (``running``, ``complete``, ``failed``,
    ``interrupted``) and, per stage, whether its artifact was reused or built, its wall time and
    its folder.
``run.log``
    The run's log lines with timestamps (the console shows the same lines).
``results.csv``, ``report.html``
    When the run evaluated: the evaluate stage's table and the self-contained report.

``runs/latest`` is a link to the last complete run; a failed or interrupted run never becomes it.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from .cache import write_json
from .logs import OnceFilter, formatter

RUNS = "runs"
LATEST = "latest"
#: a run name is a folder name: letters, digits, '.', '_', '-'
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: the packages whose versions run.json records (those not installed are left out)
PACKAGES = ("recola-pipeline", "numpy", "scipy", "pandas", "scikit-learn", "skops", "opensmile", "librosa", "soxr",
            "torch", "torchvision", "timm", "opencv-python-headless", "matplotlib")

log = logging.getLogger("recola_pipeline")


class RunError(ValueError):
    """A run name that cannot be used, or a run that does not exist."""


def default_name(corpus: str, now: datetime.datetime | None = None) -> str:
    """``<YYYY-MM-DD>_<HHMMSS>_<corpus>``."""
    return f"{(now or datetime.datetime.now()):%Y-%m-%d_%H%M%S}_{corpus}"


def unused_name(root: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a run of that name exists (two runs in one second)."""
    candidate, k = name, 1
    while (Path(root) / RUNS / candidate).exists():
        k += 1
        candidate = f"{name}-{k}"
    return candidate


def check_name(name: str) -> str:
    """Return ``name`` if it can name a run folder; raise :class:`RunError` naming the rule."""
    if not NAME.fullmatch(name) or name == LATEST:
        raise RunError(f"run name {name!r}: use letters, digits, '.', '_' and '-' (at most 100, not 'latest')")
    return name


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def provenance() -> dict:
    """Python, package versions, git commit and dirty flag, CPU count, host."""
    import importlib.metadata
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    commit = _git("rev-parse", "HEAD")
    return {"python": platform.python_version(), "packages": versions, "git_commit": commit or None,
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None,
            "cpu_count": os.cpu_count(), "platform": platform.platform()}


class Run:
    """One named run being recorded. Use as a context manager around the stages it runs.

    Parameters
    ----------
    root : Path
        The artifact root; the run folder is ``root / "runs" / name``.
    name : str
    argv : list of str
        The command line's arguments (without the program).
    config : Config
        The resolved configuration.
    once : OnceFilter, optional
        The console's warning filter: run.log shows the same lines, run.json its counts.
    """

    def __init__(self, root: Path, name: str, argv: list[str], config, *, once: OnceFilter | None = None):
        self.name = check_name(name)
        self.folder = Path(root) / RUNS / name
        self.argv = list(argv)
        self.record = {
            "name": name, "status": "running", "command": ["recola-pipeline", *self.argv],
            "reproduce": shlex.join(["recola-pipeline", *self.argv]),
            "corpus": config.corpus.name, "started": _now(), "ended": None, "wall_s": None,
            "config": dataclasses.asdict(config), **provenance(), "stages": [], "warnings": {},
        }
        self._handler: logging.Handler | None = None
        self._once = once or OnceFilter()
        #: False when the run folder cannot be written (read-only store): nothing is recorded
        self.enabled = True

    def __enter__(self) -> Run:
        try:
            if self.folder.exists():
                log.info("run %s exists; it is replaced", self.name)
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
        except OSError as exc:  # a complete store on read-only media is still reused: the run goes unrecorded
            log.warning("cannot write the run folder %s (%s); this run is not recorded", self.folder,
                        exc.strerror or exc)
            self.enabled = False
            return self
        self._handler = logging.FileHandler(self.folder / "run.log", encoding="utf-8")
        self._handler.setFormatter(formatter())
        self._handler.addFilter(self._once)
        logging.getLogger("recola_pipeline").addHandler(self._handler)
        self._write()
        log.info("run %s: %s", self.name, self.folder)
        return self

    def stage(self, event: dict) -> None:
        """Record one stage: ``{"stage", "action" ('reused' or 'built'), "wall_s", "artifact"}``."""
        self.record["stages"].append(event)
        if self.enabled:
            self._write()

    def attach(self, name: str, source: Path) -> None:
        """Copy a file (``results.csv``) into the run folder."""
        if self.enabled:
            shutil.copyfile(source, self.folder / name)

    @property
    def warnings(self) -> dict:
        """Each warning logged so far, with its count."""
        return dict(self._once.counts)

    def write(self, name: str, text: str) -> None:
        """Write a text file (``report.html``) into the run folder."""
        if self.enabled:
            (self.folder / name).write_text(text, encoding="utf-8")

    def __exit__(self, kind, exc, traceback) -> None:
        status = "complete" if kind is None else "interrupted" if issubclass(kind, KeyboardInterrupt) else "failed"
        self.record.update(status=status, ended=_now(), error=None if exc is None else str(exc),
                           warnings=dict(self._once.counts))
        started = datetime.datetime.fromisoformat(self.record["started"])
        self.record["wall_s"] = round((datetime.datetime.fromisoformat(self.record["ended"]) - started)
                                      .total_seconds(), 3)
        if not self.enabled:
            return
        self._write()
        logging.getLogger("recola_pipeline").removeHandler(self._handler)
        self._handler.close()
        if status == "complete":
            set_latest(self.folder.parent, self.name)

    def _write(self) -> None:
        write_json(self.folder / "run.json", self.record)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def set_latest(runs: Path, name: str) -> None:
    """Point ``runs/latest`` at ``name`` (a symlink, replaced atomically)."""
    tmp = runs / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(name, target_is_directory=True)
    os.replace(tmp, runs / LATEST)


def list_runs(root: Path) -> list[dict]:
    """Every run under ``root/runs`` (its run.json), oldest first; unreadable ones are skipped."""
    runs = []
    folder = Path(root) / RUNS
    for path in sorted(folder.glob("*/run.json")) if folder.is_dir() else []:
        if path.parent.is_symlink():
            continue
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(runs, key=lambda r: r.get("started") or "")


def load_run(root: Path, name: str) -> dict:
    """The run.json of run ``name`` (``latest`` allowed); :class:`RunError` naming the runs there."""
    path = Path(root) / RUNS / name / "run.json"
    if not path.is_file():
        known = ", ".join(r["name"] for r in list_runs(root)) or "none"
        raise RunError(f"no run {name!r} under {Path(root) / RUNS} (runs there: {known}); "
                       "pass --artifact-root where the run was made")
    record = json.loads(path.read_text())
    record["folder"] = str(path.parent.resolve())
    return record


def stage_artifact(record: dict, stage: str) -> Path | None:
    """The folder of ``stage``'s artifact that the run used, if it used one."""
    for event in record.get("stages", []):
        if event["stage"] == stage:
            return Path(event["artifact"])
    return None

