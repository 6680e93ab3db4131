"""An audformat database (built here with audformat) reads like the same data as a manifest corpus,
and predictions written as audformat load back."""
from __future__ import annotations

import json
from pathlib import Path

import audformat
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from recola_pipeline.config import load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.corpora.audformat_db import write_predictions
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data

RATE = 8000
SPLIT = {"r1": "train", "r2": "train", "r3": "devel", "r4": "devel", "r5": "test"}


def ratings(k: int, dim: int) -> pd.DataFrame:
    times = np.round(np.arange(0, 12.0, 0.04), 2)
    base = np.sin(2 * np.pi * times / (5 + k) + dim)
    return pd.DataFrame({"time": times, "A": np.round(0.6 * base, 4), "B": np.round(0.5 * base + 0.05, 4)})


@pytest.fixture
def corpora(tmp_path) -> tuple[Path, Path]:
    """The same recordings and two raters per dimension: as an audformat database and as a manifest."""
    root = tmp_path / "db"
    root.mkdir()
    t = np.arange(int(12 * RATE)) / RATE
    rows = []
    db = audformat.Database("toy")
    db.schemes["rating"] = audformat.Scheme("float")
    for split in ("train", "dev", "test"):
        db.splits[split] = audformat.Split(split)
    for k, (rec, part) in enumerate(SPLIT.items()):
        trace = np.sin(2 * np.pi * t / (5 + k))
        sf.write(root / f"{rec}.wav", 0.05 * (1.5 + trace) * np.sin(2 * np.pi * (140 + 10 * k) * t), RATE)
        for j, dim in enumerate(("arousal", "valence")):
            ratings(k, j).to_csv(tmp_path / f"{rec}_{dim}.csv", index=False)
        rows.append(f"{rec},{part},{root / f'{rec}.wav'},,{rec}_arousal.csv,{rec}_valence.csv")
    for j, dim in enumerate(("arousal", "valence")):
        for split, parts in (("train", ("train",)), ("dev", ("devel",)), ("test", ("test",))):
            recs = [r for r, p in SPLIT.items() if p in parts]
            frames = [ratings(list(SPLIT).index(r), j) for r in recs]
            starts = pd.to_timedelta(np.concatenate([f["time"] for f in frames]), unit="s")
            files = np.concatenate([[f"{r}.wav"] * len(f) for r, f in zip(recs, frames)])
            index = audformat.segmented_index(files, starts, starts + pd.Timedelta(seconds=0.04))
            name = f"{dim}.{split}"
            db[name] = audformat.Table(index, split_id=split)
            for rater in ("A", "B"):
                db[name][rater] = audformat.Column(scheme_id="rating")
                db[name][rater].set(np.concatenate([f[rater] for f in frames]))
    db.save(str(root), storage_format="csv")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("recording,partition,audio,video,arousal,valence\n" + "\n".join(rows) + "\n")
    return root, manifest


def config(tmp_path, *corpus):
    return load_config(None, overrides=[*corpus, f'run.artifact_root="{tmp_path / "store"}"', "run.jobs=1",
                                        "run.progress=false", "audio.windows_s=[2.0, 4.0]", "train.delay_max_s=0.4",
                                        "evaluate.bootstrap_resamples=100"])


def test_audformat_gives_the_gold_standard_and_ccc_of_the_same_manifest(tmp_path, corpora):
    root, manifest = corpora
    as_db = config(tmp_path, "corpus.name=audformat", f"corpus.data_root={json.dumps(str(root))}")
    as_manifest = config(tmp_path, "corpus.name=manifest", f"corpus.manifest={json.dumps(str(manifest))}")
    table_db, gold_db = load_data(Pipeline(as_db).ensure("data"))
    table_m, gold_m = load_data(Pipeline(as_manifest).ensure("data"))
    assert dict(zip(table_db.recording, table_db.partition)) == SPLIT
    for rec in SPLIT:
        pd.testing.assert_frame_equal(gold_db[rec], gold_m[rec])
    results = [pd.read_csv(Pipeline(c).ensure("evaluate").file("results.csv")) for c in (as_db, as_manifest)]
    assert len(results[0]) == len(results[1]) >= 4 and np.isfinite(results[0]["ccc"]).all()
    np.testing.assert_allclose(results[0]["ccc"], results[1]["ccc"], rtol=0, atol=0)


def test_pickled_tables_are_refused(tmp_path, corpora):
    root = corpora[0]
    (root / "db.arousal.train.pkl").write_bytes(b"not loaded")
    with pytest.raises(CorpusError, match="stored as pickles"):
        Pipeline(config(tmp_path, "corpus.name=audformat", f"corpus.data_root={json.dumps(str(root))}"))


def test_predictions_written_as_audformat_load_back(tmp_path):
    frame = pd.DataFrame({"time": [0.0, 0.04, 0.08], "arousal": [0.1, 0.2, 0.3], "valence": [0.0, -0.1, 0.2]})
    path = write_predictions({"s1": frame}, {"s1": "s1.wav"}, tmp_path / "out")
    db = audformat.Database.load(str(path.parent))
    table = db["predictions"].get()
    np.testing.assert_allclose(table["arousal"].to_numpy(), [0.1, 0.2, 0.3])
    assert table.index.get_level_values("start").total_seconds().tolist() == [0.0, 0.04, 0.08]
