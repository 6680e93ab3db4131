"""A recording's audio features are copied from an earlier artifact of the store when only the labels,
partitions or layout changed (recola_pipeline/reuse.py), and computed when its audio changed or the
earlier copy was damaged; the result is byte-identical to computing it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import soundfile as sf
from test_coverage import write_manifest

from recola_pipeline.config import load_config
from recola_pipeline.pipeline import Pipeline

SETTINGS = ("run.jobs=1", "run.progress=false", "demo.recordings_per_partition=1", "demo.duration_s=20.0",
            "demo.video=false", "audio.windows_s=[4.0, 8.0]")


def audio_stage(root, manifest, force=()):
    corpus = ["corpus.name=manifest", f'corpus.manifest="{manifest}"']
    config = load_config(None, overrides=[f'run.artifact_root="{root}"', *SETTINGS, *corpus])
    return Pipeline(config, force=force).ensure("audio")


def infos(artifact) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(artifact.path.glob("info/*.json"))}


def parquet_checksums(artifact) -> dict[str, str]:
    return {k: v for k, v in artifact.manifest()["files"].items() if k.endswith(".parquet")}


def test_relabelled_recordings_are_copied_and_changed_audio_is_computed(tmp_path, caplog):
    config = load_config(None, overrides=[f'run.artifact_root="{tmp_path / "demo"}"', *SETTINGS])
    demo = Pipeline(config).ensure("demo").path
    partitions = pd.read_csv(demo / "partitions.csv")
    partitions = dict(zip(partitions.recording, partitions.partition))
    first = sorted(partitions)[0]
    store = tmp_path / "store"
    original = audio_stage(store, write_manifest(tmp_path / "a", demo, partitions))
    assert all(i["key"] and "reused_from" not in i for i in infos(original).values())

    # the same audio with other ratings: a new data artifact, every recording copied, bytes as if computed
    caplog.set_level("INFO")
    relabelled_manifest = write_manifest(tmp_path / "b", demo, partitions, offsets={first: 0.1})
    relabelled = audio_stage(store, relabelled_manifest)
    assert relabelled.hash != original.hash
    assert {i["reused_from"] for i in infos(relabelled).values()} == {original.hash}
    assert relabelled.manifest()["info"]["copied_now"] == 3 and relabelled.manifest()["info"]["extracted_now"] == 0
    assert "3 of 3 recordings copied from earlier audio artifacts" in caplog.text
    fresh = audio_stage(tmp_path / "fresh", relabelled_manifest)
    assert parquet_checksums(relabelled) == parquet_checksums(fresh)
    forced = audio_stage(store, relabelled_manifest, force=["audio"])  # --force: computed, nothing copied
    assert forced.manifest()["info"]["extracted_now"] == 3 and parquet_checksums(forced) == parquet_checksums(fresh)

    # one recording's audio changed: it alone is computed
    changed = tmp_path / "c"
    write_manifest(changed, demo, partitions, offsets={first: 0.2})
    audio, rate = sf.read(changed / f"{first}.wav")
    sf.write(changed / f"{first}.wav", 0.5 * audio, rate)
    mixed = audio_stage(store, changed / "manifest.csv")
    reused = {rec: "reused_from" in info for rec, info in infos(mixed).items()}
    assert reused == {rec: rec != first for rec in partitions}
    assert parquet_checksums(mixed) == parquet_checksums(audio_stage(tmp_path / "fresh2", changed / "manifest.csv"))

    # an earlier copy damaged on disk is not copied: that recording is computed again
    for artifact in (original, relabelled, mixed):
        damaged = artifact.file(f"w4/{sorted(partitions)[1]}.parquet")
        damaged.chmod(0o644)
        damaged.write_bytes(damaged.read_bytes()[:-8] + b"\0" * 8)
    again = audio_stage(store, write_manifest(tmp_path / "d", demo, partitions, offsets={first: 0.3}))
    reused = {rec: "reused_from" in info for rec, info in infos(again).items()}
    assert reused == {rec: rec != sorted(partitions)[1] for rec in partitions}
    reference = audio_stage(tmp_path / "fresh3", tmp_path / "d" / "manifest.csv")
    assert parquet_checksums(again) == parquet_checksums(reference)
    np.testing.assert_array_equal(pd.read_parquet(again.file(f"w8/{first}.parquet")).to_numpy(),
                                  pd.read_parquet(reference.file(f"w8/{first}.parquet")).to_numpy())
