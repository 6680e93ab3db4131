"""Label coverage: frames outside the rated span (lead-ins, tails, gaps) are predicted, never
fitted or scored; rating files at other rates and from other tools; held-out devel numbers."""
import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import write_ratings, write_wav

from recola_pipeline.cache import read_table
from recola_pipeline.config import load_config
from recola_pipeline.corpora import CorpusError, recola
from recola_pipeline.corpora.ratings import read_label_file, read_recola_ratings
from recola_pipeline.metrics import ccc
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data


# --------------------------------------------------------------------------- readers
def test_two_hertz_file_with_a_lead_in_covers_first_to_last_row_plus_half_a_period(tmp_path):
    path = tmp_path / "a.csv"
    times = np.arange(15.0, 45.01, 0.5)
    pd.DataFrame({"time": times, "arousal": np.sin(times)}).to_csv(path, index=False)
    grid = read_label_file(path)["arousal"].to_numpy()
    t = np.arange(len(grid)) * 0.04
    labelled = np.isfinite(grid)
    # covered: 14.75 s ... 45.25 s, i.e. frames 14.76 ... 45.24
    assert t[labelled][0] == pytest.approx(14.76) and t[labelled][-1] == pytest.approx(45.24)
    assert labelled.sum() == len(t[(t >= 14.75 - 1e-9) & (t <= 45.25 + 1e-9)])
    inside = (t >= 15) & (t <= 45)
    np.testing.assert_allclose(grid[inside], np.interp(t[inside], times, np.sin(times)))


def test_missing_cells_leave_the_rater_out_and_long_gaps_are_unlabelled(tmp_path):
    path = tmp_path / "a.csv"
    times = np.arange(0, 20.01, 0.5)
    a = np.cos(times)
    b = np.sin(times)
    rows = ["time,r1,r2"] + [f"{t},{x:.6f},{y:.6f}" for t, x, y in zip(times, a, b)]
    rows[1 + 4] = f"{times[4]},,{b[4]:.6f}"            # one missing cell: 1.0 s gap, interpolated
    for k in range(20, 26):                              # r1 missing 10.0-12.5 s: 3.5 s between values
        rows[1 + k] = f"{times[k]},NaN,{b[k]:.6f}"
    path.write_text("\n".join(rows) + "\n")
    grid = read_label_file(path, max_gap_s=1.0)
    t = np.arange(len(grid)) * 0.04
    r1 = grid["r1"].to_numpy()
    assert np.isfinite(r1[(t > 1.5) & (t < 2.5)]).all()
    gap = (t > 9.5 + 0.25 + 1e-6) & (t < 13.0 - 0.25 - 1e-6)  # each value still covers half a row period
    assert gap.sum() == 75 and np.isnan(r1[gap]).all() and np.isfinite(r1[~gap]).all()
    assert np.isfinite(grid["r2"].to_numpy()).all()


@pytest.mark.parametrize("variant", ["bom", "semicolon", "crlf", "tab"])
def test_files_from_other_tools(tmp_path, variant):
    path = tmp_path / "a.csv"
    sep = {"semicolon": ";", "tab": "\t"}.get(variant, ",")
    end = "\r\n" if variant == "crlf" else "\n"
    text = end.join([f"time{sep}arousal", f"0.0{sep}0.1", f"0.5{sep}0.3", f"1.0{sep}0.2"]) + end
    path.write_bytes(("\ufeff" if variant == "bom" else "").encode() + text.encode())
    grid = read_label_file(path)
    assert list(grid.columns) == ["arousal"]
    assert grid["arousal"].iloc[0] == pytest.approx(0.1) and grid["arousal"].iloc[25] == pytest.approx(0.2)


@pytest.mark.parametrize("value, fragment", [("inf", "non-finite"), ("1e400", "non-finite"), ("high", "'high'")])
def test_non_finite_and_text_ratings_stay_errors(tmp_path, value, fragment):
    path = tmp_path / "a.csv"
    path.write_text(f"time,arousal\n0.0,0.1\n0.5,{value}\n1.0,0.2\n")
    with pytest.raises(CorpusError, match=fragment) as err:
        read_label_file(path)
    assert str(path) in str(err.value) and "row 2" in str(err.value)


def test_negative_time_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("time,arousal\n-0.5,0.1\n0.0,0.2\n")
    with pytest.raises(CorpusError, match="negative time"):
        read_label_file(path)


def test_recola_file_may_start_late_and_leave_cells_empty(tmp_path):
    path = tmp_path / "P16.csv"
    values = write_ratings(path, 300)
    lines = path.read_text().splitlines()
    lines[1 + 50] = lines[1 + 50].rsplit(";", 1)[0] + ";"  # FF3 empty at 2.00 s
    path.write_text("\n".join([lines[0]] + lines[1 + 25:]) + "\n")  # starts at 1.00 s
    table = read_recola_ratings(path)
    assert table.shape == (300, 6)
    assert table.iloc[:25].isna().all().all()
    np.testing.assert_allclose(table.iloc[25:].to_numpy()[:, :5], values[25:, :5])
    assert table["FF3"].iloc[50] == pytest.approx((values[49, 5] + values[51, 5]) / 2)  # 40 ms gap bridged


# --------------------------------------------------------------------------- data stage
def test_ratings_shorter_than_audio_leave_an_unlabelled_tail_with_a_warning(small_config, recola_root, caplog):
    path = recola_root / recola.ANNOTATION_DIR / "arousal" / "P19.csv"
    write_ratings(path, 120)  # 4.76 s of ratings for 8 s of audio
    with caplog.at_level(logging.WARNING):
        artifact = Pipeline(small_config("corpus.name=recola", f'corpus.data_root="{recola_root}"')).ensure("data")
    table, gold = load_data(artifact)
    row = table.set_index("recording").loc["P19"]
    assert row.n_frames == 201 and row.labelled_frames == 120 and row.unlabelled_frames == 81
    assert row.labelled_frames_arousal == 120 and row.labelled_frames_valence == 201
    assert np.isnan(gold["P19"]["arousal"].to_numpy()[120:]).all()
    assert [m for m in caplog.messages if "P19" in m and "no rating" in m]
    assert artifact.manifest()["info"]["coverage"]["P19"] == {"labelled": 120, "unlabelled": 81}


def test_a_short_tail_of_a_slow_rating_file_is_normal(small_config, tmp_path, caplog):
    """A 2 Hz file whose last row is at 7.5 s, for 7.7 s of audio: within half a period, no warning."""
    for rec in ("a", "b"):
        write_wav(tmp_path / f"{rec}.wav", 7.7)
    times = np.arange(0, 7.51, 0.5)
    for dim in ("arousal", "valence"):
        pd.DataFrame({"time": times, dim: np.sin(times)}).to_csv(tmp_path / f"{dim}.csv", index=False)
    rows = [f"{rec},{part},{rec}.wav,,arousal.csv,valence.csv" for rec, part in (("a", "train"), ("b", "devel"))]
    (tmp_path / "m.csv").write_text("recording,partition,audio,video,arousal,valence\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        artifact = Pipeline(small_config("corpus.name=manifest", f'corpus.manifest="{tmp_path / "m.csv"}"',
                                         "corpus.allow_shared_labels=true")).ensure("data")  # one file for both
    table, _ = load_data(artifact)
    assert (table.n_frames == 193).all() and (table.unlabelled_frames == 0).all()  # 7.68 s; rated to 7.75 s
    assert not [m for m in caplog.messages if "no rating" in m]


def test_explicit_modality_the_corpus_lacks_is_refused_before_any_feature(small_config, recola_root):
    with pytest.raises(CorpusError, match="no recording of corpus 'recola' has a video file"):
        Pipeline(small_config("corpus.name=recola", f'corpus.data_root="{recola_root}"',
                              'train.modalities=["audio", "video"]'))
    assert not (recola_root.parent / "artifacts" / "features").exists()
    pipeline = Pipeline(small_config("corpus.name=recola", f'corpus.data_root="{recola_root}"'))
    assert pipeline.config.train.modalities == ["audio"]


# --------------------------------------------------------------------------- whole pipeline
FAST = ("audio.windows_s=[4.0]", "train.delay_max_s=3.2", "train.delay_step_s=0.8",
        "train.c_grid=[0.0001, 0.001, 0.01]", "evaluate.bootstrap_resamples=200")


@pytest.fixture(scope="module")
def demo_audio(tmp_path_factory):
    """An audio-only demo corpus of 3 recordings per partition, 150 s each."""
    root = tmp_path_factory.mktemp("demo_audio")
    config = load_config(None, overrides=[f'run.artifact_root="{root}"', "run.jobs=2", "run.progress=false",
                                          "demo.recordings_per_partition=3", "demo.video=false",
                                          "demo.duration_s=150.0"])
    demo = Pipeline(config).ensure("demo").path
    partitions = pd.read_csv(demo / "partitions.csv")
    return demo, dict(zip(partitions.recording, partitions.partition))


def write_manifest(folder, demo, partitions, *, lead_in_s=0.0, trim=False, offsets=None, rate_hz=25.0, keep=None):
    """A manifest corpus over the demo audio: ratings from ``lead_in_s`` on (at ``rate_hz``), or
    audio and ratings both trimmed to start there; ``offsets`` adds a constant to a recording's ratings."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for rec, partition in partitions.items():
        if keep is not None and rec not in keep:
            continue
        audio, rate = sf.read(demo / recola.AUDIO_DIR / f"{rec}.wav")
        start = int(round(lead_in_s * rate)) if trim else 0
        sf.write(folder / f"{rec}.wav", audio[start:], rate)
        files = {}
        for dim in ("arousal", "valence"):
            ratings = read_recola_ratings(demo / recola.ANNOTATION_DIR / dim / f"{rec}.csv")
            t = np.arange(len(ratings)) * 0.04
            step = int(round(25 / rate_hz))
            keep_rows = (t >= lead_in_s - 1e-9) & (np.arange(len(t)) % step == 0)
            table = ratings[keep_rows] + (offsets or {}).get(rec, 0.0)
            table.insert(0, "time", np.round(t[keep_rows] - (lead_in_s if trim else 0.0), 2))
            table.to_csv(folder / f"{rec}_{dim}.csv", index=False)
            files[dim] = f"{rec}_{dim}.csv"
        rows.append({"recording": rec, "partition": partition, "audio": f"{rec}.wav", "video": "", **files})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def run_manifest(root, manifest, *overrides):
    config = load_config(None, overrides=[f'run.artifact_root="{root}"', "run.jobs=2", "run.progress=false",
                                          "corpus.name=manifest", f'corpus.manifest="{manifest}"', *FAST, *overrides])
    pipeline = Pipeline(config)
    results = read_table(pipeline.ensure("evaluate").file("results.csv"))
    return pipeline, results


def test_lead_in_is_never_scored_and_scores_match_the_trimmed_corpus(tmp_path, demo_audio):
    demo, partitions = demo_audio
    lead_in = write_manifest(tmp_path / "lead", demo, partitions, lead_in_s=15.0)
    trimmed = write_manifest(tmp_path / "trim", demo, partitions, lead_in_s=15.0, trim=True)
    # One normalisation, so that both runs select alike, and frame-local librosa descriptors: openSMILE's
    # F0 and voicing depend on the audio before them, which trimming removes (see "Audio features").
    # So the comparison measures label coverage, and the edges of the trimmed audio, alone.
    same = ('train.normalisation=["train"]', "audio.feature_set=librosa")
    pipeline, results = run_manifest(tmp_path / "a1", lead_in, *same)
    _, reference = run_manifest(tmp_path / "a2", trimmed, *same)
    table, gold = load_data(pipeline.ensure("data"))
    # 150 s of audio: 3751 frames; rated from 15.00 s: 3376 labelled, 375 not
    assert (table.n_frames == 3751).all() and (table.labelled_frames == 3376).all()
    assert (table.unlabelled_frames == 375).all()
    for rec in table.recording:
        assert np.isnan(gold[rec]["arousal"].to_numpy()[:375]).all()
    assert (results.n_frames == 3 * 3376).all() and (reference.n_frames == 3 * 3376).all()
    merged = results.merge(reference, on=["dimension", "modality", "fusion", "partition"], suffixes=("", "_trim"))
    assert len(merged) == len(results)
    for row in merged[merged.partition != "train"].itertuples():
        assert abs(row.ccc_raw - row.ccc_raw_trim) < 0.01, row
        assert abs(row.ccc - row.ccc_trim) < 0.01, row
    # the numbers in results.csv can be recomputed from the written predictions
    evaluate = pipeline.ensure("evaluate")
    for row in results[results.partition == "devel"].itertuples():
        system = "audio" if row.fusion == "none" else row.fusion
        devel = table[table.partition == "devel"].recording
        both = pd.concat([read_table(evaluate.file(f"predictions/{r}.parquet")) for r in devel])
        both = both[both[f"gold_{row.dimension}"].notna()]
        assert ccc(both[f"gold_{row.dimension}"], both[f"{system}_{row.dimension}"]) == pytest.approx(row.ccc, abs=1e-9)
        assert row.ccc >= row.ccc_raw - 1e-12  # a kept step never lowers the held-out devel number


def test_two_devel_recordings_get_no_post_processing(tmp_path, demo_audio, caplog):
    demo, partitions = demo_audio
    devel = [r for r, p in partitions.items() if p == "devel"]
    keep = [r for r, p in partitions.items() if p != "devel"] + devel[:2]
    manifest = write_manifest(tmp_path / "m", demo, partitions, keep=keep, offsets={devel[0]: 1.5})
    with caplog.at_level(logging.WARNING):
        pipeline, results = run_manifest(tmp_path / "a", manifest)
    devel_rows = results[results.partition == "devel"]
    assert set(devel_rows.postprocessing) == {"none"}
    np.testing.assert_allclose(devel_rows.ccc, devel_rows.ccc_raw)
    assert [m for m in caplog.messages if "2 labelled recording" in m and "skipped" in m]
    summary_info = pipeline.ensure("evaluate").manifest()["info"]
    assert "skipped" in summary_info["skipped"]
    assert (results.ccc_ci_low <= results.ccc).all() and (results.ccc <= results.ccc_ci_high).all()
