"""Saving and loading fitted models without executing code: scikit-learn's skops format.

``skops.io`` stores an object's state, not a pickle: loading rebuilds only types on an allow-list
and refuses anything else, so a model file from someone else (or changed since) cannot run code.
The allow-list is scikit-learn's and NumPy's own types (skops trusts them by default) plus this
package's fitted steps (:data:`TRUSTED`). Every model the pipeline writes, in the artifact store
and in an exported bundle, goes through here.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import skops.io as sio

from .cache import ArtifactError, atomic_path

#: this package's estimator types that may be rebuilt from a model file
TRUSTED = ("recola_pipeline.estimators.delay.DelayedRegressor", "recola_pipeline.estimators.linear.L2LinearSVR",
           "recola_pipeline.estimators.normalise.Normaliser", "recola_pipeline.estimators.postprocess.PostProcessor",
           "recola_pipeline.estimators.fusion.LateFusion")


def dump(obj, path) -> None:
    """Write ``obj`` (estimators, arrays, dicts, lists, strings) to ``path`` in skops format, atomically.

    The file is canonical: the same object gives the same bytes in every process (see
    :func:`canonical`), so artifacts compare by checksum across runs, backends and machines.
    """
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(canonical(sio.dumps(obj)))


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


def untrusted_types(path) -> list[str]:
    """Types stored in ``path`` that are not on the allow-list (nothing is loaded).

    Raises
    ------
    ArtifactError
        The file is not in skops format (e.g. a pickle put in its place).
    """
    path = Path(path)
    try:
        return [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED]
    except Exception as exc:  # skops raises zipfile/JSON errors for anything that is not its format
        raise ArtifactError(f"{path} is not a model file in skops format ({type(exc).__name__}); "
                            "it was not loaded") from None


def load(path):
    """Rebuild the object stored at ``path``.

    Raises
    ------
    ArtifactError
        The file is not a skops file (e.g. a pickle put in its place) or holds a type that is
        not on the allow-list; nothing from it is executed.
    """
    untrusted = untrusted_types(path)
    if untrusted:
        raise ArtifactError(f"{path} holds types that are not on the allow-list ({', '.join(untrusted[:3])}); "
                            "it was not loaded")
    return sio.load(path, trusted=list(TRUSTED))
