"""The recurrent regressor: CCC loss, segments, held-out early stopping, determinism, pipelines, weights."""
from __future__ import annotations

import audmetric
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from recola_pipeline.estimators.bundle import predict_system, system_pipeline  # noqa: E402
from recola_pipeline.estimators.normalise import Normaliser  # noqa: E402
from recola_pipeline.estimators.sequence import (  # noqa: E402
    SequenceRegressor,
    attach_weights,
    ccc_loss,
    combine,
    detach_weights,
    training_segments,
    validation_split,
)
from recola_pipeline.metrics import labelled_ccc  # noqa: E402

TINY = dict(hidden=8, layers=1, segment_frames=50, segment_hop=25, batch_size=8, max_epochs=4, patience=2,
            learning_rate=0.01, n_seeds=1)


def recordings(n: int = 6, frames: int = 300, seed: int = 0):
    """Features whose first column drives a smoothed, 10-frame-delayed target: a task that needs context."""
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for r in range(n):
        x = rng.normal(size=(frames, 3))
        drive = np.convolve(x[:, 0], np.ones(15) / 15, mode="same")
        X.append(x)
        y.append(np.concatenate([np.zeros(10), drive[:-10]]))
        groups += [f"rec{r}"] * frames
    return np.vstack(X), np.concatenate(y), np.array(groups)


def test_the_ccc_loss_is_one_minus_the_ccc_of_audmetric():
    rng = np.random.default_rng(1)
    gold, pred = rng.normal(size=(2, 40)), rng.normal(size=(2, 40)) + 0.3
    mask = rng.random((2, 40)) > 0.2
    loss = ccc_loss(torch, torch.tensor(pred), torch.tensor(gold), torch.tensor(mask))
    assert float(loss) == pytest.approx(1 - audmetric.concordance_cc(gold[mask], pred[mask]), abs=1e-6)


@given(st.integers(1, 500), st.integers(2, 100), st.integers(1, 100))
@settings(max_examples=60, deadline=None)
def test_training_segments_cover_the_recording_and_end_at_its_end(n, length, hop):
    pieces = training_segments(n, length, hop)
    covered = np.zeros(n, dtype=bool)
    for p in pieces:
        assert p.stop - p.start == min(n, length)
        covered[p] = True
    assert pieces[-1].stop == n and pieces[0].start == 0
    assert covered.all() or hop > length  # gaps only when the hop is longer than a segment


def test_validation_holds_out_whole_recordings_and_leaves_some_to_fit():
    fitted, held = validation_split(list("abcdefgh"), 0.25, seed=3)
    assert len(held) == 2 and set(fitted).isdisjoint(held) and sorted(fitted + held) == list("abcdefgh")
    assert validation_split(list("ab"), 0.9, seed=0)[0]  # one is always fitted
    with pytest.raises(ValueError, match="at least 2 training recordings"):
        validation_split(["a"], 0.25, seed=0)


def test_it_learns_a_delayed_smoothed_target_from_context():
    X, y, groups = recordings()
    model = SequenceRegressor(**{**TINY, "max_epochs": 25, "patience": 25}).fit(X, y, groups)
    X_new, y_new, groups_new = recordings(n=2, seed=7)
    assert labelled_ccc(y_new, model.predict(X_new, groups_new)) > 0.7
    assert 1 <= model.epochs_[0] <= 25 and np.isfinite(model.validation_ccc_[0])


def test_unlabelled_frames_are_never_in_the_loss():
    X, y, groups = recordings()
    hidden = y.copy()
    hidden[::3] = np.nan  # unlabelled frames
    poisoned = hidden.copy()
    poisoned[::3] = 1e6  # what an unlabelled frame would teach, were it used
    first = SequenceRegressor(**TINY).fit(X, hidden, groups)
    second = SequenceRegressor(**TINY).fit(X, np.where(np.isnan(hidden), np.nan, poisoned), groups)
    np.testing.assert_array_equal(first.predict(X, groups), second.predict(X, groups))


def test_same_seed_gives_byte_identical_weights_and_predictions_on_one_thread():
    X, y, groups = recordings(n=4)
    a = SequenceRegressor(**TINY, random_state=5).fit(X, y, groups)
    b = SequenceRegressor(**TINY, random_state=5).fit(X, y, groups)
    c = SequenceRegressor(**TINY, random_state=6).fit(X, y, groups)
    assert all(np.array_equal(a.weights_[0][k], b.weights_[0][k]) for k in a.weights_[0])
    assert a.predict(X, groups).tobytes() == b.predict(X, groups).tobytes()
    assert not np.array_equal(a.predict(X, groups), c.predict(X, groups))


def test_networks_trained_apart_combine_into_the_seed_ensemble():
    X, y, groups = recordings(n=4)
    together = SequenceRegressor(**{**TINY, "n_seeds": 2}, random_state=3).fit(X, y, groups)
    apart = combine([SequenceRegressor(**TINY, random_state=s).fit(X, y, groups) for s in (3, 4)])
    np.testing.assert_array_equal(together.predict(X, groups), apart.predict(X, groups))
    members = together.predict_members(X, groups)
    assert members.shape == (len(X), 2)
    np.testing.assert_allclose(members.mean(axis=1), together.predict(X, groups))


def test_each_recording_is_its_own_sequence_and_the_delay_shifts_predictions_later():
    X, y, groups = recordings(n=4)
    model = SequenceRegressor(**TINY, delay_s=0.4).fit(X, y, groups)
    whole = model.predict(X, groups)
    alone = model.predict(X[groups == "rec2"], groups[groups == "rec2"])
    np.testing.assert_allclose(whole[groups == "rec2"], alone, atol=1e-6)
    assert model.delay_frames_ == 10
    assert np.all(alone[:10] == alone[0])  # the first frame's prediction repeated over the delay


def test_in_a_pipeline_groups_reach_it_by_metadata_routing():
    X, y, groups = recordings(n=4)
    normaliser = Normaliser("recording").fit(X)
    regressor = SequenceRegressor(**TINY).fit(normaliser.transform(X, groups), y, groups)
    pipeline = system_pipeline(normaliser, None, regressor)
    np.testing.assert_allclose(predict_system(pipeline, X, groups),
                               regressor.predict(normaliser.transform(X, groups), groups))


def test_weights_leave_the_model_for_safetensors_and_come_back():
    X, y, groups = recordings(n=4)
    normaliser = Normaliser("train").fit(X)
    pipeline = system_pipeline(normaliser, None, SequenceRegressor(**{**TINY, "n_seeds": 2}).fit(
        normaliser.transform(X), y, groups))
    expected = predict_system(pipeline, X, groups)
    tensors = detach_weights(pipeline)
    assert sorted({k.split("/")[1] for k in tensors}) == ["0", "1"] and pipeline["regress"].weights_ == []
    with pytest.raises(ValueError, match="holds weights no network"):
        attach_weights(pipeline, {**tensors, "fuse/audio/regress/0/w": np.zeros(1)}, "w.safetensors")
    with pytest.raises(ValueError, match="holds 1 networks"):
        attach_weights(pipeline, {k: v for k, v in tensors.items() if k.startswith("regress/0/")}, "w.safetensors")
    attach_weights(pipeline, {**tensors, "regress/0/extra": np.zeros(1)}, "w.safetensors")
    with pytest.raises(ValueError, match="do not fit its architecture"):
        predict_system(pipeline, X, groups)
    attach_weights(pipeline, tensors, "w.safetensors")
    np.testing.assert_array_equal(predict_system(pipeline, X, groups), expected)


def test_bad_settings_and_data_are_clear_errors():
    X, y, groups = recordings(n=2)
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceRegressor(cell="rnn").fit(X, y, groups)
    with pytest.raises(ValueError, match="at least 2 training recordings"):
        SequenceRegressor(**TINY).fit(X[groups == "rec0"], y[groups == "rec0"])
    with pytest.raises(ValueError, match="nothing to fit"):
        SequenceRegressor(**TINY).fit(X, np.full(len(y), np.nan), groups)
