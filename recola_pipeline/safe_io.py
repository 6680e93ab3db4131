"""Saving and loading fitted models without executing code: scikit-learn's skops format.

``skops.io`` stores an object's state, not a pickle: loading rebuilds only types on an allow-list
and refuses anything else, so a model file from someone else (or changed since) cannot run code.
The allow-list is scikit-learn's and NumPy's own types (skops trusts them by default) plus this
package's fitted steps (:data:`TRUSTED`). Every model the pipeline writes, in the artifact store
and in an exported bundle, goes through here.
"""
from __future__ import annotations

import importlib
import io
import json
import math
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np

from .cache import ArtifactError, atomic_path
from .estimators import trusted_types

#: this package's estimator types that may be rebuilt from a model file (the estimator registry's)
TRUSTED = trusted_types()


def _skops():
    """``skops.io``, imported when a model is read or written (it loads scikit-learn), without torch.

    Importing skops lists scikit-learn's estimators (``sklearn.utils.all_estimators``), which
    imports every scikit-learn package, array-api-compat's torch adapter among them: where torch
    is installed, that alone loaded it (2-3 s) for models that never use it (an audio-only
    ``predict``, the check of every reused artifact's models). The adapter holds no estimator, so
    that import is made to find no torch (``None`` in ``sys.modules``), and the walk skips the
    adapter as it does where torch is not installed: the same allow-list (tested). Done only while
    this is the process's one thread, so no other thread can be importing torch at that moment;
    otherwise skops is imported as is.
    """
    if "skops.io" not in sys.modules and "torch" not in sys.modules and threading.active_count() == 1:
        sys.modules["torch"] = None
        try:
            importlib.import_module("skops.io")
        finally:
            del sys.modules["torch"]
    import skops.io
    return skops.io


def dump(obj, path) -> None:
    """Write ``obj`` (estimators, arrays, dicts, lists, strings) to ``path`` in skops format, atomically.

    The file is canonical: the same object gives the same bytes in every process (see
    :func:`canonical`), so artifacts compare by checksum across runs, backends and machines.
    """
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(canonical(_skops().dumps(obj)))


def canonical(data: bytes) -> bytes:
    """skops bytes made reproducible: the object ids it uses as references and array file names
    renumbered in order of appearance, entries sorted, zip timestamps fixed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    ids: dict[int, int] = {}

    def renumber(node):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    value = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str) and value.endswith(".npy"):
                    value = f"{ids.setdefault(int(value[:-4]), len(ids))}.npy"
                out[key] = renumber(value)
            return out
        if isinstance(node, list):
            return [renumber(v) for v in node]
        return node

    files = {"schema.json": json.dumps(renumber(schema), sort_keys=False).encode()}
    for name in source.namelist():
        if name != "schema.json":
            stem = name[:-4] if name.endswith(".npy") else None
            new = f"{ids[int(stem)]}.npy" if stem is not None and stem.isdigit() and int(stem) in ids else name
            files[new] = source.read(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(files):
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name],
                            compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


#: dtype kinds an array in a model file may have: bool, signed and unsigned integers, floats, complex
NUMERIC_KINDS = "biufc"


def array_inventory(path) -> dict[str, dict]:
    """The arrays a skops file holds, read from their ``.npy`` headers (no array data is read).

    Returns
    -------
    dict
        Entry name -> ``{"dtype": numpy dtype string, "shape": list of int}``.

    Raises
    ------
    ArtifactError
        Not a zip file, an unreadable header, an array whose dtype is not numeric (an object
        array is a pickle), or one whose header declares more bytes than the entry holds.
    """
    path = Path(path)
    inventory = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as handle:
                    version = np.lib.format.read_magic(handle)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(handle, max_header_size=10000)
                where = f"{path} (entry {info.filename})"
                if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
                    raise ArtifactError(f"{where} holds an array of dtype {dtype.str!r}, not numbers; it was not "
                                        "loaded (only numeric arrays are read from a model file)")
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise ArtifactError(f"{where} declares a {shape} array larger than the entry; it was not loaded")
                inventory[info.filename] = {"dtype": dtype.str, "shape": [int(n) for n in shape]}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path} is not a model file in skops format ({type(exc).__name__}: {exc}); "
                            "it was not loaded") from None
    return inventory


def check_model_file(path) -> None:
    """Raise ArtifactError when ``path`` is a model file (``.skops``) holding types off the allow-list."""
    if Path(path).suffix == ".skops" and untrusted_types(path):
        raise ArtifactError(f"{path} holds types that are not on the allow-list")


def untrusted_types(path) -> list[str]:
    """Types stored in ``path`` that are not on the allow-list (nothing is loaded).

    Raises
    ------
    ArtifactError
        The file is not in skops format (e.g. a pickle put in its place).
    """
    path = Path(path)
    try:
        return [t for t in _skops().get_untrusted_types(file=path) if t not in TRUSTED]
    except Exception as exc:  # skops raises zipfile/JSON errors for anything that is not its format
        raise ArtifactError(f"{path} is not a model file in skops format ({type(exc).__name__}); "
                            "it was not loaded") from None


def load(path, *, arrays: dict | None = None):
    """Rebuild the object stored at ``path``.

    Parameters
    ----------
    path : str or Path
    arrays : dict, optional
        The :func:`array_inventory` the file must have (a bundle's manifest states it): every
        array's dtype and shape, checked before anything is rebuilt.

    Raises
    ------
    ArtifactError
        The file is not a skops file (e.g. a pickle put in its place), holds a type that is
        not on the allow-list, an array that is not numeric or not as ``arrays`` states, or
        cannot be rebuilt; nothing from it is executed.
    """
    untrusted = untrusted_types(path)
    if untrusted:
        raise ArtifactError(f"{path} holds types that are not on the allow-list ({', '.join(untrusted[:3])}); "
                            "it was not loaded")
    inventory = array_inventory(path)
    if arrays is not None and inventory != arrays:
        differs = sorted(set(inventory) ^ set(arrays)) or sorted(k for k in inventory if inventory[k] != arrays[k])
        raise ArtifactError(f"{path}: its arrays differ from those the bundle's model.json states (entry "
                            f"{differs[0]}); it was not loaded. Export the model again")
    try:
        return _skops().load(path, trusted=list(TRUSTED))
    except Exception as exc:  # skops raises what its parts raise for a malformed schema
        raise ArtifactError(f"{path} cannot be rebuilt ({type(exc).__name__}: {exc}); it was not loaded. "
                            "Export the model (or run the stage) again") from None
