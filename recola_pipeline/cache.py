"""Content-addressed artifact store with atomic writes.

Layout: ``<root>/<kind>/<stage>/<hash>/`` where ``kind`` is ``features`` (extracted data) or
``models`` (fitted models, predictions, reports) and ``hash`` is the first 12 hex digits of the
SHA-256 of the artifact's identity (the settings and library versions it depends on).

Every file is written under a temporary name in the same folder and renamed into place, so a
crash never leaves a half-written file under its real name. An artifact is *complete* once its
``manifest.json`` exists; the manifest is written last and records the identity, what produced
the artifact and a SHA-256 checksum of every file. A folder without a manifest is a run that
stopped halfway: the files it holds are finished and are reused by the next run.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.parquet as pq
from filelock import FileLock

from . import interrupts

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-"


class ArtifactError(RuntimeError):
    """An artifact that is missing, incomplete or does not match its manifest."""


def identity_hash(identity: dict) -> str:
    """Stable 12-hex-digit hash of a JSON-serialisable identity."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    On an exception, or when the run has received SIGINT/SIGTERM (even one a library swallowed,
    see :mod:`.interrupts`), the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        interrupts.check()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    write_bytes(path, text.encode())


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame atomically: Parquet for ``.parquet``, CSV for ``.csv``."""
    path = Path(path)
    if path.suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_bytes(path, buffer.getvalue())
    elif path.suffix == ".csv":
        write_text(path, frame.to_csv(index=False))
    else:
        raise ValueError(f"write_table: unsupported suffix {path.suffix!r} in {path}")


def read_table(path: Path) -> pd.DataFrame:
    """Read a DataFrame written by :func:`write_table`."""
    path = Path(path)
    # recording ids are names, never numbers: '000' stays '000'
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"recording": str})


def _parquet_readable(path: Path) -> bool:
    try:
        pq.read_table(path)
        return True
    except (pyarrow.ArrowException, OSError):
        return False


class Artifact:
    """One artifact folder: its files, its manifest and its completeness.

    Parameters
    ----------
    path : Path
        The artifact folder ``<root>/<kind>/<stage>/<hash>``.
    stage : str
        Name of the stage that produces it.
    identity : dict
        What the artifact depends on; its hash is the folder name.
    """

    def __init__(self, path: Path, stage: str, identity: dict):
        self.path = Path(path)
        self.stage = stage
        self.identity = identity

    def __repr__(self) -> str:
        return f"Artifact({self.stage!r}, {str(self.path)!r})"

    @property
    def hash(self) -> str:
        return self.path.name

    @property
    def complete(self) -> bool:
        """True once the manifest has been written."""
        return (self.path / MANIFEST).is_file()

    def file(self, name: str) -> Path:
        """Path of a file inside the artifact (refuses names that leave the folder)."""
        target = (self.path / name).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ArtifactError(f"{name!r} points outside the artifact folder {self.path}")
        return target

    def has(self, name: str) -> bool:
        """True when the file ``name`` was finished by an earlier (possibly interrupted) run.

        A Parquet file that cannot be read (damaged on disk since it was written) is removed
        with a warning, so that the run computes it again.
        """
        path = self.file(name)
        if not path.is_file():
            return False
        if path.suffix == ".parquet" and not self.complete and not _parquet_readable(path):
            log.warning("%s cannot be read (damaged since it was written); removing it to compute it again", path)
            path.unlink()
            return False
        return True

    def files(self) -> list[str]:
        """Relative names of all finished files, manifest excluded, sorted."""
        if not self.path.is_dir():
            return []
        names = (p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        return sorted(n for n in names if n != MANIFEST and not Path(n).name.startswith(_TMP_PREFIX))

    def start(self) -> None:
        """Create the folder; partial files from an interrupted run are kept for reuse."""
        self.path.mkdir(parents=True, exist_ok=True)
        for tmp in self.path.rglob(f"{_TMP_PREFIX}*"):
            tmp.unlink()

    def finish(self, info: dict) -> dict:
        """Write the manifest (identity, ``info``, checksums): the artifact is complete.

        Raises
        ------
        ArtifactError
            A Parquet file cannot be read (it is removed, so the next run computes it again).
        """
        interrupts.check()
        names = self.files()
        for name in names:
            if name.endswith(".parquet") and not _parquet_readable(self.path / name):
                (self.path / name).unlink()
                raise ArtifactError(f"{self.path / name} cannot be read (damaged on disk); it was removed, "
                                    "run the same command again to compute it")
        manifest = {
            "stage": self.stage,
            "hash": self.hash,
            "identity": self.identity,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "info": info,
            "files": {name: file_sha256(self.path / name) for name in names},
        }
        write_json(self.path / MANIFEST, manifest)
        return manifest

    def manifest(self) -> dict:
        """The manifest of a complete artifact."""
        if not self.complete:
            raise ArtifactError(f"{self.path} is incomplete (no {MANIFEST}); run its stage again")
        return json.loads((self.path / MANIFEST).read_text())

    def verify(self, check_file=None) -> None:
        """Check every file against the manifest checksums; raise ArtifactError naming the first mismatch.

        ``check_file(path)``, when given, is then called on every listed file and raises
        ArtifactError for one that must not be read (the runner passes
        :func:`recola_pipeline.safe_io.check_model_file`).
        """
        for name, digest in self.manifest()["files"].items():
            path = self.file(name)  # a name leading outside the artifact folder is refused
            if not path.is_file():
                raise ArtifactError(f"{path} is listed in {MANIFEST} but missing")
            if file_sha256(path) != digest:
                raise ArtifactError(f"{path} changed since it was written (checksum mismatch)")
        if check_file is not None:
            for name in self.manifest()["files"]:
                check_file(self.file(name))

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on this artifact (a ``<hash>.lock`` file beside its folder).

        Two runs that need the same artifact build it one after the other; the second then finds
        it complete. The lock (``filelock``: an OS lock on POSIX and Windows) is released when the
        process ends, even by a crash. It is taken only to build: a complete artifact is read
        without it, so a read-only store can be reused.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.parent / f"{self.path.name}.lock"):
            yield

    def clear(self) -> None:
        """Remove the whole folder (used by --force and to rebuild a damaged artifact)."""
        shutil.rmtree(self.path, ignore_errors=True)


class ArtifactStore:
    """Artifacts under ``root``: ``features/`` for extracted data, ``models/`` for the rest.

    Parameters
    ----------
    root : str or Path
        Folder holding ``features/`` and ``models/``.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def artifact(self, kind: str, stage: str, identity: dict) -> Artifact:
        """The artifact of ``stage`` with this identity (it may not exist yet)."""
        if kind not in ("features", "models"):
            raise ValueError(f"kind must be 'features' or 'models', got {kind!r}")
        return Artifact(self.root / kind / stage / identity_hash(identity), stage, identity)
