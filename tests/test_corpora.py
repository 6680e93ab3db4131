"""Corpus readers and the data stage on RECOLA, AVEC 2016 and manifest layouts, good and bad input."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_ratings, write_wav

from recola_pipeline.cache import read_table
from recola_pipeline.corpora import CorpusError, avec2016, manifest, recola
from recola_pipeline.corpora.ratings import read_recola_ratings
from recola_pipeline.labels import gold_standard
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data


def run_data(small_config, *overrides):
    pipeline = Pipeline(small_config(*overrides))
    return pipeline, pipeline.ensure("data")


def assert_no_artifact(small_config, *overrides):
    with pytest.raises(CorpusError) as err:
        run_data(small_config, *overrides)
    store = Path(small_config(*overrides).run.artifact_root) / "features" / "data"
    assert not list(store.rglob("manifest.json")) and not list(store.rglob("*.parquet"))
    return str(err.value)


def test_recola_header_quirk_and_7501_rows(tmp_path):
    path = tmp_path / "P16.csv"
    values = write_ratings(path, 7501)
    assert path.read_text().splitlines()[0] == "time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3 "
    table = read_recola_ratings(path)
    assert list(table.columns) == ["FM1", "FM2", "FM3", "FF1", "FF2", "FF3"]
    assert table.shape == (7501, 6)
    np.testing.assert_allclose(table.to_numpy(), values)


def test_recola_data_stage(small_config, recola_root):
    _, artifact = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"')
    table, gold = load_data(artifact)
    assert dict(zip(table.recording, table.partition)) == {"P16": "train", "P19": "devel"}
    assert (table.n_frames == 201).all()
    ratings = read_recola_ratings(recola_root / recola.ANNOTATION_DIR / "arousal" / "P16.csv").to_numpy()
    np.testing.assert_allclose(gold["P16"]["arousal"], gold_standard(ratings, "avec2016"))
    np.testing.assert_allclose(gold["P16"]["time"], np.round(np.arange(201) * 0.04, 2))


def test_max_seconds_cuts_labels(small_config, recola_root):
    _, artifact = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"',
                           "corpus.max_seconds=4.0")
    table, gold = load_data(artifact)
    assert (table.n_frames == 101).all() and len(gold["P19"]) == 101


def test_partitions_csv_overrides_defaults(small_config, recola_root, tmp_path):
    parts = tmp_path / "parts.csv"
    parts.write_text("recording,partition\nP16,devel\nP19,test\n")
    _, artifact = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"',
                           f'corpus.partitions_csv="{parts}"')
    table, _ = load_data(artifact)
    assert dict(zip(table.recording, table.partition)) == {"P16": "devel", "P19": "test"}


def test_empty_rating_value_is_a_missing_rating(small_config, recola_root):
    path = recola_root / recola.ANNOTATION_DIR / "valence" / "P16.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(";", 1)[0] + ";"
    path.write_text("\n".join(lines) + "\n")
    ratings = read_recola_ratings(path)
    assert ratings["FF3"].isna().sum() == 0  # a 40 ms hole is interpolated
    lines[5:60] = [line.rsplit(";", 1)[0] + ";" for line in lines[5:60]]  # 2.2 s without FF3: left out
    path.write_text("\n".join(lines) + "\n")
    _, artifact = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"')
    _, gold = load_data(artifact)
    ratings = read_recola_ratings(path).to_numpy()
    assert np.isnan(ratings[10:50, 5]).all() and np.isfinite(gold["P16"]["valence"]).all()
    np.testing.assert_allclose(gold["P16"]["valence"], gold_standard(ratings, "avec2016"))


def test_recording_in_no_partition(small_config, recola_root):
    shutil.copy(recola_root / recola.AUDIO_DIR / "P16.wav", recola_root / recola.AUDIO_DIR / "P99.wav")
    message = assert_no_artifact(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"')
    assert "P99" in message and "partitions" in message


def write_avec(root, recs=("train_1", "dev_1", "test_1"), shipped_gold=True):
    for k, rec in enumerate(recs):
        write_wav(root / "recordings_audio" / f"{rec}.wav", 6.0)
        for d, dim in enumerate(("arousal", "valence")):
            values = write_ratings(root / "ratings_individual" / dim / f"{rec}.csv", 151, seed=10 * k + d)
            if shipped_gold:
                arff = root / "ratings_gold_standard" / dim / f"{rec}.arff"
                arff.parent.mkdir(parents=True, exist_ok=True)
                rows = [f"{rec},{i * 0.04:.2f},{v:.6f}" for i, v in enumerate(gold_standard(values))]
                arff.write_text("@relation GOLDSTANDARD\n\n@attribute Instance_name string\n"
                                "@attribute frameTime numeric\n@attribute GoldStandard numeric\n\n@data\n\n"
                                + "\n".join(rows) + "\n")


def test_avec2016_layout(small_config, tmp_path):
    root = tmp_path / "AVEC2016"
    write_avec(root)
    corpus = avec2016.read(root, dimensions=["arousal", "valence"])
    assert {r.id: r.partition for r in corpus.recordings} == {"dev_1": "devel", "test_1": "test", "train_1": "train"}
    _, artifact = run_data(small_config, "corpus.name=avec2016", f'corpus.data_root="{root}"')
    _, gold = load_data(artifact)
    shipped = avec2016.read_shipped_gold(root, "dev_1", "valence")
    np.testing.assert_allclose(gold["dev_1"]["valence"], shipped["gold"], atol=1e-6)


def recola_release_form(arff: Path, dimension: str) -> None:
    """Rewrite an AVEC 2016 gold ARFF in the RECOLA release's two-column form (attributes swapped, a comment)."""
    rows = [line.split(",") for line in arff.read_text().split("@data")[1].split() if line]
    arff.write_text("% RECOLA gold standard\n@relation 'gold standard'\n"
                    f"@attribute GoldStandard{dimension.title()} numeric\n@attribute frametime numeric\n@data\n"
                    + "".join(f"{value},{time}\n" for _, time, value in rows))


def test_avec2016_without_individual_ratings_runs_from_its_gold_arffs_in_either_form(small_config, tmp_path, caplog):
    root = tmp_path / "AVEC2016"
    write_avec(root)
    _, built = run_data(small_config, "corpus.name=avec2016", f'corpus.data_root="{root}"')
    shutil.rmtree(root / "ratings_individual")
    caplog.set_level("INFO")
    _, shipped = run_data(small_config, "corpus.name=avec2016", f'corpus.data_root="{root}"')
    assert "has no ratings_individual/" in caplog.text
    assert shipped.manifest()["info"]["gold_standard"] == "shipped"
    _, from_avec = load_data(shipped)
    for rec, table in load_data(built)[1].items():  # the shipped files hold the built gold to 6 decimals
        np.testing.assert_allclose(from_avec[rec][["arousal", "valence"]], table[["arousal", "valence"]], atol=1e-6)
    for arff in root.glob("ratings_gold_standard/*/*.arff"):
        recola_release_form(arff, arff.parent.name)
    assert "GoldStandardArousal" in (root / "ratings_gold_standard/arousal/dev_1.arff").read_text()
    _, release = run_data(small_config, "corpus.name=avec2016", f'corpus.data_root="{root}"', "corpus.gold_standard=shipped")
    assert release.path != shipped.path  # other files, another artifact
    for rec, table in load_data(release)[1].items():
        pd.testing.assert_frame_equal(table, from_avec[rec])  # identical gold tables


def test_a_gold_arff_that_names_no_gold_attribute_is_refused_by_name(tmp_path):
    from recola_pipeline.corpora.ratings import read_arff_gold
    path = tmp_path / "dev_1.arff"
    path.write_text("@relation x\n@attribute frametime numeric\n@attribute a numeric\n@attribute b numeric\n"
                    "@data\n0.00,0.1,0.2\n0.04,0.1,0.2\n")
    with pytest.raises(CorpusError, match="dev_1.arff: attributes .* one numeric GoldStandard attribute"):
        read_arff_gold(path)
    path.write_text("not arff at all")
    with pytest.raises(CorpusError, match="not a readable ARFF file"):
        read_arff_gold(path)


def test_shipped_gold_on_a_layout_without_gold_files_is_refused(small_config, recola_root):
    message = assert_no_artifact(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"',
                                 "corpus.gold_standard=shipped")
    assert "the recola layout ships none" in message


def test_a_manifest_takes_arff_gold_label_files(small_config, tmp_path):
    root = tmp_path / "AVEC2016"
    write_avec(root)
    rows = ["recording,partition,audio,arousal,valence"]
    for rec, part in (("train_1", "train"), ("dev_1", "devel"), ("test_1", "test")):
        rows.append(f"{rec},{part},{root}/recordings_audio/{rec}.wav,"
                    f"{root}/ratings_gold_standard/arousal/{rec}.arff,{root}/ratings_gold_standard/valence/{rec}.arff")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    _, artifact = run_data(small_config, "corpus.name=manifest", f'corpus.manifest="{tmp_path / "manifest.csv"}"')
    shipped = avec2016.read_shipped_gold(root, "dev_1", "arousal")
    np.testing.assert_allclose(load_data(artifact)[1]["dev_1"]["arousal"], shipped["gold"], atol=1e-12)


def test_avec2016_test_partition_without_labels(small_config, tmp_path):
    root = tmp_path / "AVEC2016"
    write_avec(root, shipped_gold=False)
    for dim in ("arousal", "valence"):
        (root / "ratings_individual" / dim / "test_1.csv").unlink()
    _, artifact = run_data(small_config, "corpus.name=avec2016", f'corpus.data_root="{root}"')
    table, gold = load_data(artifact)
    row = table.set_index("recording").loc["test_1"]
    assert not row.labelled and row.n_frames == 151
    assert list(gold["test_1"].columns) == ["time"]


def test_manifest_corpus_resamples_labels(small_config, tmp_path):
    write_wav(tmp_path / "a.wav", 4.0)
    write_wav(tmp_path / "b.wav", 4.0)
    for rec in ("a", "b"):
        for dim in ("arousal", "valence"):
            t = np.arange(0, 4.01, 0.1)  # 10 Hz labels
            pd.DataFrame({"time": t, dim: np.sin(t)}).to_csv(tmp_path / f"{rec}_{dim}.csv", index=False)
    (tmp_path / "m.csv").write_text(
        "recording,partition,audio,video,arousal,valence\n"
        "a,train,a.wav,,a_arousal.csv,a_valence.csv\n"
        "b,devel,b.wav,,b_arousal.csv,b_valence.csv\n")
    _, artifact = run_data(small_config, "corpus.name=manifest", f'corpus.manifest="{tmp_path / "m.csv"}"')
    table, gold = load_data(artifact)
    assert (table.n_frames == 101).all()
    np.testing.assert_allclose(gold["a"]["arousal"], np.sin(np.arange(101) * 0.04), atol=2e-3)


def test_manifest_errors(tmp_path):
    (tmp_path / "m.csv").write_text("recording,partition,audio,video,arousal\nx,train,missing.wav,,\n")
    with pytest.raises(CorpusError, match=r"m.csv row 2 \(x\), column audio: file .*missing.wav does not exist"):
        manifest.read(tmp_path / "m.csv", dimensions=["arousal"])
    with pytest.raises(CorpusError, match=r"none.csv does not exist; fix --manifest"):
        manifest.read(tmp_path / "none.csv", dimensions=["arousal"])


def test_data_stage_fingerprint_notices_changed_input(small_config, recola_root):
    pipeline, first = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"')
    write_ratings(recola_root / recola.ANNOTATION_DIR / "arousal" / "P16.csv", 201, seed=42)
    _, second = run_data(small_config, "corpus.name=recola", f'corpus.data_root="{recola_root}"')
    assert first.path != second.path
    assert not read_table(first.file("gold/P16.parquet")).equals(read_table(second.file("gold/P16.parquet")))
