"""SVR and GRU side by side through train, evaluate, report, export and predict (small audio-only demo)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from test_runs import check_report, chromium, load_in_chromium  # noqa: E402

from recola_pipeline import load_model  # noqa: E402
from recola_pipeline.cli import main  # noqa: E402

SEQUENCE_DEMO = ["--set", "demo.recordings_per_partition=3", "--set", "demo.duration_s=24", "--set", "demo.video=false",
                 "--set", "audio.windows_s=[4.0, 8.0]", "--set", "train.c_grid=[0.001, 0.01]",
                 "--set", "train.delay_max_s=1.2", "--set", 'train.estimators=["svr", "gru"]',
                 "--set", "sequence.hidden=[8]", "--set", "sequence.max_epochs=3", "--set", "sequence.seeds=2",
                 "--set", "sequence.delays_s=[0.0, 0.8]", "--set", "sequence.segment_frames=[100]"]


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """The run's folder, the artifact root and an exported bundle."""
    root = tmp_path_factory.mktemp("sequence")
    common = ["--artifact-root", str(root), "--jobs", "2", "--quiet", *SEQUENCE_DEMO]
    assert main(["--stage", "report", "--name", "both", *common]) == 0
    assert main(["export", "--out", str(root / "model"), *common]) == 0
    return root / "runs" / "both", root, root / "model"


def test_results_hold_both_estimators_their_fusion_and_the_paired_difference(side_by_side):
    run, root, _ = side_by_side
    results = pd.read_csv(run / "results.csv")
    assert set(results.estimator) == {"svr", "gru", "svr+gru"}
    gru = results[results.estimator == "gru"]
    assert set(gru.partition) == {"train", "devel", "test"} and (gru.fusion == "none").all()
    assert gru.settings.str.contains("cell=gru hidden=8").all() and np.isfinite(gru.ccc_raw_seed_sd).all()
    assert gru.chosen_on.str.contains("early stopping on train recordings held out").all()
    assert results[results.estimator == "svr"].ccc_raw_seed_sd.isna().all()
    late = results[results.fusion == "late"]
    assert len(late) and late.fusion_weights.str.contains("gru-audio=").all()
    comparisons = pd.read_csv(next((root / "models" / "evaluate").glob("*/comparisons.csv")))
    paired = comparisons[comparisons.compared_with == "best svr (audio)"]
    assert sorted(zip(paired.dimension, paired.partition)) == [("arousal", "devel"), ("arousal", "test"),
                                                               ("valence", "devel"), ("valence", "test")]
    assert set(paired.system) == {"gru-audio"} and paired[["difference", "ci_low", "ci_high"]].notna().all().all()
    grid = pd.read_csv(next((root / "models" / "train").glob("*/grid.csv")))
    recurrent = grid[grid.estimator == "gru"]
    assert len(recurrent) == 2 * 2 * 2 and set(recurrent.D) == {0.0, 0.8}  # delays x dimensions x normalisations


def test_the_report_shows_the_estimators_side_by_side_in_a_browser(side_by_side, tmp_path):
    run, root, _ = side_by_side
    dom, requests, console = load_in_chromium(chromium(), run / "report.html", tmp_path / "browser")
    assert requests == [] and console == []
    results = pd.read_csv(run / "results.csv")
    shown = pd.read_csv(next((root / "features" / "data").glob("*/recordings.csv")), dtype={"recording": str})
    parser = check_report(dom, results, shown[shown.partition.isin(["devel", "test"])].recording.tolist())
    assert {"grid-gru-audio-arousal", "grid-gru-audio-valence"} <= set(parser.figures)
    assert "gru audio" in dom and "late fusion (svr+gru)" in dom


def test_the_bundle_keeps_network_weights_in_safetensors_and_predicts_as_evaluate(side_by_side):
    run, root, bundle = side_by_side
    description = json.loads((bundle / "model.json").read_text())
    entry = description["systems"]["gru-audio_arousal"]
    assert entry["weights"] == "systems/gru-audio_arousal.safetensors" and (bundle / entry["weights"]).is_file()
    assert entry["network"]["cell"] == "gru" and entry["network"]["n_seeds"] == 2
    assert description["systems"]["late_arousal"]["weights"] == "systems/late_arousal.safetensors"
    assert not any(name.endswith(".pkl") for name in json.loads((bundle / "checksums.json").read_text()))
    assert all(max(a["shape"] or [0]) < 100 for a in description["arrays"]["systems/gru-audio_arousal.skops"].values())
    data = next((root / "features" / "demo").glob("*/"))
    test = pd.read_csv(data / "partitions.csv").query("partition == 'test'").recording.iloc[0]
    evaluated = pd.read_parquet(next((root / "models" / "evaluate").glob(f"*/predictions/{test}.parquet")))
    model = load_model(bundle)
    for system in ("gru-audio", "late"):
        predicted = model.predict(audio=data / "RECOLA-Audio-recordings" / f"{test}.wav", system=system)
        for dim in ("arousal", "valence"):
            np.testing.assert_allclose(predicted[dim], evaluated[f"{system}_{dim}"], atol=1e-5, rtol=0)


def test_a_safetensors_file_that_does_not_fit_is_refused(side_by_side, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from recola_pipeline.cache import ArtifactError, file_sha256
    bundle = tmp_path / "bundle"
    shutil.copytree(side_by_side[2], bundle)
    weights = bundle / "systems" / "gru-audio_arousal.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v for k, v in tensors.items() if "/1/" not in k}, str(weights))  # one network dropped
    checksums = json.loads((bundle / "checksums.json").read_text())
    checksums["systems/gru-audio_arousal.safetensors"] = file_sha256(weights)
    (bundle / "checksums.json").write_text(json.dumps(checksums))
    data = next((side_by_side[1] / "features" / "demo").glob("*/"))
    audio = next((data / "RECOLA-Audio-recordings").glob("*.wav"))
    with pytest.raises(ArtifactError, match="holds 1 networks for regress, the model has 2"):
        load_model(bundle).predict(audio=audio, system="gru-audio")
    weights.write_bytes(b"not a safetensors file")  # corrupt, yet listed with its checksum
    checksums["systems/gru-audio_arousal.safetensors"] = file_sha256(weights)
    (bundle / "checksums.json").write_text(json.dumps(checksums))
    with pytest.raises(ArtifactError, match="gru-audio_arousal.safetensors is not a safetensors file"):
        load_model(bundle).predict(audio=audio, system="gru-audio")


def test_one_train_recording_is_a_clear_error_for_a_recurrent_estimator(tmp_path, capsys):
    code = main(["--stage", "train", "--artifact-root", str(tmp_path), "--jobs", "1", "--quiet",
                 "--set", "demo.recordings_per_partition=1", "--set", "demo.duration_s=20", "--set", "demo.video=false",
                 "--set", "audio.windows_s=[4.0]", "--set", 'train.estimators=["gru"]'])
    assert code != 0
    assert "needs at least 2 labelled train recordings" in capsys.readouterr().err
