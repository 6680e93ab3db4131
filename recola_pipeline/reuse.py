"""One recording's features found in another artifact of the same stage, reused instead of computed again.

A feature artifact's identity includes its upstream data artifact, so relabelling a recording,
changing the partitions or reading the same audio through another corpus layout gives every
feature artifact a new identity. One recording's features depend on less: the stage's own
identity (settings, code, libraries) without its upstream artifacts, the bytes of the recording's
media file and its number of label frames. That is its *recording key*, written into the
recording's info file. Before computing a recording, a feature stage looks the key up among the
complete artifacts of the same stage in the store (:func:`earlier_recordings`) and copies that
recording's files (:func:`copy_recording`), each checked against the SHA-256 its manifest lists;
when one is missing or differs, the recording is computed as usual.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .cache import MANIFEST, atomic_path, file_sha256, identity_hash

#: the folder of per-recording info files (``info/<recording>.json``) in a feature artifact
INFO_DIR = "info"


def recording_key(artifact, media, n_frames: int) -> str:
    """What one recording's features depend on: the artifact's identity without its upstream
    artifacts, the media file's SHA-256 and the number of label frames."""
    own = {k: v for k, v in artifact.identity.items() if k != "upstream"}
    return identity_hash({"stage": own, "media_sha256": file_sha256(Path(media)), "n_frames": int(n_frames)})


def earlier_recordings(artifact) -> dict[str, tuple[Path, str]]:
    """``key -> (folder, recording)`` for the recordings of every complete artifact of the same
    stage (beside ``artifact`` in the store) whose info file holds a recording key."""
    found: dict[str, tuple[Path, str]] = {}
    if not artifact.path.parent.is_dir():
        return found
    for folder in sorted(p for p in artifact.path.parent.iterdir() if p.is_dir() and p != artifact.path):
        if not (folder / MANIFEST).is_file():
            continue
        for info in sorted((folder / INFO_DIR).glob("*.json")):
            try:
                key = json.loads(info.read_text()).get("key")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(key, str):
                found.setdefault(key, (folder, info.stem))
    return found


def copy_recording(source: tuple[Path, str], artifact, recording: str, names) -> dict | None:
    """Copy one recording's files from an earlier artifact into ``artifact``.

    Parameters
    ----------
    source : (Path, str)
        The earlier artifact's folder and the recording's id there (:func:`earlier_recordings`).
    artifact : Artifact
        The artifact being built.
    recording : str
        The recording's id in ``artifact`` (another layout may name the same audio otherwise).
    names : list of str
        The recording's files, with ``{}`` for its id (e.g. ``w4/{}.parquet``).

    Returns
    -------
    dict or None
        The recording's info from the earlier artifact (the caller writes its own, last), or None
        when a file is missing or differs from the checksum the earlier manifest lists (nothing
        usable was copied; the caller computes the recording).
    """
    folder, earlier_id = source
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        info = json.loads((folder / INFO_DIR / f"{earlier_id}.json").read_text())
    except (OSError, ValueError, KeyError):
        return None
    try:
        for name in names:
            origin = name.format(earlier_id)
            if origin not in listed or not (folder / origin).is_file():
                return None
            with atomic_path(artifact.file(name.format(recording))) as tmp:
                shutil.copyfile(folder / origin, tmp)
                if file_sha256(tmp) != listed[origin]:
                    raise _Differs  # the temporary copy is removed, nothing is renamed into place
    except _Differs:
        return None
    return info


class _Differs(Exception):
    """A copied file differs from the checksum its artifact's manifest lists."""
