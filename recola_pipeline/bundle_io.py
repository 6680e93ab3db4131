"""Reading an exported bundle without reaching outside it.

A bundle comes from someone else. Its ``checksums.json`` and ``model.json`` name the files to
read, and a crafted bundle could name ``../../.ssh/id_rsa``, ``/etc/passwd`` or a symlink to
either. Nothing is executed from such a file, but a bundle must not read the user's files
either. So every path is checked here before it is opened: relative, no ``..``, inside the
bundle folder once resolved, a regular file (never a symlink, FIFO or device), listed in
``checksums.json`` with the SHA-256 of its bytes.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath

from .cache import ArtifactError, file_sha256
from .modalities import MODALITY_STAGES

#: the bundle format ``recola-pipeline export`` writes and :func:`check_description` accepts (3: one
#: scikit-learn pipeline per system, its feature columns in ``model.json``)
FORMAT = 3

#: largest checksums.json / model.json read (a real one is a few kB)
MAX_MANIFEST_BYTES = 4 * 2**20


def check_tree(root: Path) -> None:
    """Refuse a bundle folder holding a symlink or a special file anywhere below it.

    Raises
    ------
    ArtifactError
        Naming the entry.
    """
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            entry = Path(folder) / name
            mode = os.lstat(entry).st_mode
            if stat.S_ISLNK(mode):
                raise ArtifactError(f"{entry}: a symlink inside the bundle {root}; a bundle holds only its own files "
                                    "(it was not followed). Copy the bundle without links (cp -L) or export it again")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ArtifactError(f"{entry}: not a regular file (a pipe, socket or device) inside the bundle {root}; "
                                    "remove it or export the model again")


def confined(root: Path, name) -> Path:
    """``root / name`` after checking that ``name`` stays inside the bundle.

    Raises
    ------
    ArtifactError
        ``name`` is not a string, is absolute, has a ``..`` or empty part or a backslash,
        resolves outside ``root``, or is not a regular file.
    """
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise ArtifactError(f"{root}: the bundle names the file {name!r}, which is not a relative path; "
                            "export the model again")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or any(part in ("..", ".") for part in parts) or "//" in name:
        raise ArtifactError(f"{root}: the bundle names {name!r}, a path outside the bundle (absolute or with '..'); "
                            "it was not read. Export the model again")
    path = root.joinpath(*parts)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise ArtifactError(f"{path} is missing from the bundle; export the model again") from None
    if not stat.S_ISREG(mode) or not path.resolve().is_relative_to(root.resolve()):
        raise ArtifactError(f"{path}: not a regular file inside the bundle (a link, folder or device); it was not "
                            "read. Export the model again")
    return path


def read_json(path: Path) -> dict:
    """A bundle's JSON manifest, size-limited; a JSON object or an ArtifactError naming the file."""
    if os.lstat(path).st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{path} is larger than any bundle manifest ({MAX_MANIFEST_BYTES // 2**20} MiB); "
                            "export the model again")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({type(exc).__name__}); export the model again") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} is not a JSON object; export the model again")
    return data


def verified_files(root: Path) -> dict[str, Path]:
    """Every file ``checksums.json`` lists, confined and checked against its SHA-256.

    Raises
    ------
    ArtifactError
        Not a bundle, a link or special file in it, a path outside it, a missing or changed file.
    """
    if not (root / "checksums.json").is_file():
        raise ArtifactError(f"{root} is not a model bundle (no checksums.json); pass a folder written by "
                            "recola-pipeline export")
    check_tree(root)
    checksums = read_json(root / "checksums.json")
    files = {}
    for name, digest in checksums.items():
        path = confined(root, name)
        if not isinstance(digest, str) or file_sha256(path) != digest:
            raise ArtifactError(f"{path} is missing or changed since the bundle was exported (checksum); "
                                "export the model again")
        files[name] = path
    return files


def _require(ok: bool, root: Path, what: str) -> None:
    if not ok:
        raise ArtifactError(f"{root / 'model.json'}: {what}; export the model again")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_description(root: Path, description: dict) -> None:
    """Check the parts of a bundle's ``model.json`` that prediction reads: their types and links.

    Raises
    ------
    ArtifactError
        Naming the entry that is missing or malformed.
    """
    version = description.get("format", 1)
    _require(isinstance(version, int) and not isinstance(version, bool), root, "'format' must be a version number")
    _require(version >= FORMAT, root, f"format {version}: written by an earlier version of recola-pipeline, whose "
             f"model files this one does not read (it reads format {FORMAT}, one scikit-learn pipeline per system)")
    dims = description.get("dimensions")
    _require(isinstance(dims, list) and dims and all(isinstance(d, str) for d in dims), root,
             "'dimensions' must list dimension names")
    audio = description.get("audio")
    _require(isinstance(audio, dict) and isinstance(audio.get("feature_set"), str)
             and isinstance(audio.get("sample_rate"), int) and 8000 <= audio["sample_rate"] <= 96000, root,
             "'audio' must give a feature_set name and a sample_rate (Hz)")
    systems = description.get("systems")
    _require(isinstance(systems, dict) and systems, root, "'systems' must be a table of systems")
    for key, entry in systems.items():
        _require(isinstance(entry, dict) and isinstance(entry.get("model"), str) and entry.get("dimension") in dims,
                 root, f"system {key!r} must name its model file and one of the dimensions")
        _require(isinstance(entry.get("weights", ""), str), root, f"system {key!r}: 'weights' must name a file")
        if entry.get("system") in ("late", "causal-late"):
            _require(isinstance(entry.get("inputs"), list) and entry["inputs"]
                     and all(isinstance(k, str) and k in systems and "windows" in systems[k] for k in entry["inputs"]),
                     root, f"late-fusion system {key!r} must list the systems it fuses")
        else:
            windows = entry.get("windows")
            _require(isinstance(windows, dict) and windows and all(m in MODALITY_STAGES and _is_number(w) and w > 0
                                                                   for m, w in windows.items()), root,
                     f"system {key!r} must give its window length (s) per modality")
            features = entry.get("features")
            _require(isinstance(features, list) and features and all(isinstance(c, str) for c in features), root,
                     f"system {key!r} must list its feature columns")
    chosen = description.get("chosen")
    _require(isinstance(chosen, dict) and all(chosen.get(d) in systems for d in dims), root,
             "'chosen' must name a system for every dimension")
    _require(all(key in systems for key in description.get("chosen_causal", {}).values()), root,
             "'chosen_causal' must name systems of the bundle")
    video = description.get("video")
    _require(video is None or (isinstance(video, dict) and isinstance(video.get("settings"), dict)
                               and isinstance(video.get("pca"), str) and isinstance(video.get("weights_sha256"), str)
                               and (video.get("finetuned") is None or isinstance(video["finetuned"], str))), root,
             "'video' must be null or give its settings, PCA file and weights' SHA-256")
    ranges = description.get("label_range")
    _require(isinstance(ranges, dict) and all(isinstance(ranges.get(d), list) and len(ranges[d]) == 2
                                              and all(_is_number(v) for v in ranges[d]) for d in dims),
             root, "'label_range' must give [lowest, highest] per dimension")
    _require("arrays" in description, root, "no array inventory ('arrays'), which a bundle states")
    arrays = description.get("arrays", {})
    _require(isinstance(arrays, dict) and all(
        isinstance(entries, dict) and all(isinstance(a, dict) and isinstance(a.get("dtype"), str)
                                          and isinstance(a.get("shape"), list) for a in entries.values())
        for entries in arrays.values()), root, "'arrays' must give each file's arrays with dtype and shape")
