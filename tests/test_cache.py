"""Artifact store: atomic writes, manifests, checksums."""
import pandas as pd
import pytest

from recola_pipeline.cache import (
    ArtifactError,
    ArtifactStore,
    atomic_path,
    write_table,
    write_text,
)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_manifest_checksums_detect_edits(tmp_path):
    store = ArtifactStore(tmp_path)
    artifact = store.artifact("features", "data", {"x": 1})
    artifact.start()
    write_table(artifact.file("a.parquet"), pd.DataFrame({"v": [1.0, 2.0]}))
    write_text(artifact.file("notes/b.txt"), "hello")
    assert not artifact.complete
    manifest = artifact.finish({"n": 2})
    assert artifact.complete and set(manifest["files"]) == {"a.parquet", "notes/b.txt"}
    artifact.verify()
    artifact.file("notes/b.txt").write_text("edited by hand")
    with pytest.raises(ArtifactError, match="changed since it was written"):
        artifact.verify()


def test_identity_decides_the_folder(tmp_path):
    store = ArtifactStore(tmp_path)
    a = store.artifact("features", "audio", {"w": 4})
    assert a.path == store.artifact("features", "audio", {"w": 4}).path
    assert a.path != store.artifact("features", "audio", {"w": 6}).path
    assert a.path.parent == tmp_path / "features" / "audio"
    with pytest.raises(ArtifactError, match="outside"):
        a.file("../../escape.txt")


def test_start_removes_temporary_leftovers(tmp_path):
    artifact = ArtifactStore(tmp_path).artifact("models", "train", {})
    artifact.start()
    (artifact.path / ".tmp-dead-x.parquet").write_text("crashed")
    (artifact.path / "done.csv").write_text("kept")
    artifact.start()
    assert artifact.files() == ["done.csv"]


def test_manifest_pointing_outside_the_artifact_is_refused(tmp_path):
    import json
    artifact = ArtifactStore(tmp_path / "store").artifact("features", "data", {})
    artifact.start()
    write_text(artifact.file("a.txt"), "x")
    artifact.finish({})
    (tmp_path / "secret.txt").write_text("not ours")
    manifest = json.loads(artifact.file("manifest.json").read_text())
    manifest["files"]["../../../../secret.txt"] = "0" * 64
    artifact.file("manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="outside the artifact folder"):
        artifact.verify()
