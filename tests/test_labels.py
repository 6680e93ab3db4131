"""Gold-standard methods against independent formulas; delay-shift conventions."""
import numpy as np
import pytest

from recola_pipeline.labels import (
    delay_frames,
    gold_standard,
    rater_agreement,
    shift_back,
    shift_forward,
)
from recola_pipeline.metrics import ccc


def ratings_matrix(seed=0, n=300, k=6):
    rng = np.random.default_rng(seed)
    base = np.sin(np.linspace(0, 12, n))
    return base[:, None] * rng.uniform(0.3, 1.2, k) + rng.normal(0, 0.3, (n, k)) + rng.normal(0, 0.2, k)


def avec2016_reference(r):
    """AVEC 2016 gold standard written with explicit loops over raters."""
    n, k = r.shape
    weights = []
    for i in range(k):
        weights.append(max(sum(ccc(r[:, i], r[:, j]) for j in range(k) if j != i) / (k - 1), 1e-6))
    target = sum(w * r[:, i].mean() for i, w in enumerate(weights)) / sum(weights)
    return np.mean([r[:, i] - r[:, i].mean() + target for i in range(k)], axis=0)


def test_avec2016_matches_reference_loop():
    r = ratings_matrix()
    np.testing.assert_allclose(gold_standard(r, "avec2016"), avec2016_reference(r), atol=1e-12)


def test_avec2016_gives_disagreeing_rater_mean_little_weight():
    r = ratings_matrix(n=400, k=4)
    r[:, 3] = np.random.default_rng(9).normal(5.0, 0.3, 400)  # unrelated rater, far-off mean
    gold = gold_standard(r, "avec2016")
    # the level follows the agreeing raters' means, not the outlier's
    assert abs(gold.mean() - r[:, :3].mean()) < 0.2


def test_mean_and_ewe():
    r = ratings_matrix(1)
    np.testing.assert_allclose(gold_standard(r, "mean"), r.mean(axis=1))
    mean_trace = r.mean(axis=1)
    w = np.array([np.corrcoef(r[:, i], mean_trace)[0, 1] for i in range(r.shape[1])])
    np.testing.assert_allclose(gold_standard(r, "ewe"), r @ w / w.sum(), atol=1e-12)


@pytest.mark.parametrize("method", ["avec2016", "mean", "ewe"])
def test_single_rater_is_its_own_gold(method):
    r = ratings_matrix(k=1)
    np.testing.assert_array_equal(gold_standard(r, method), r[:, 0])


def test_gold_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown gold standard"):
        gold_standard(ratings_matrix(), "median")


def avec2016_reference_with_gaps(r):
    """AVEC 2016 gold standard with missing ratings, written out: each rater's statistics on the
    frames it rated, each pair's CCC on the frames both rated, each frame averaging its raters."""
    n, k = r.shape
    rated = ~np.isnan(r)
    weights = []
    for i in range(k):
        pairs = [ccc(r[rated[:, i] & rated[:, j], i], r[rated[:, i] & rated[:, j], j]) for j in range(k) if j != i]
        weights.append(max(np.mean(pairs), 1e-6))
    means = [r[rated[:, i], i].mean() for i in range(k)]
    target = sum(w * m for w, m in zip(weights, means)) / sum(weights)
    gold = np.full(n, np.nan)
    for t in range(n):
        raters = [i for i in range(k) if rated[t, i]]
        if raters:
            gold[t] = np.mean([r[t, i] - means[i] + target for i in raters])
    return gold


def test_missing_ratings_leave_the_rater_out_at_that_time():
    r = ratings_matrix(n=200, k=4)
    r[10:40, 1] = np.nan     # rater 1 pauses
    r[150:, 3] = np.nan      # rater 3 stops early
    r[190:, :] = np.nan      # nobody rated the end: unlabelled
    gold = gold_standard(r, "avec2016")
    np.testing.assert_allclose(gold, avec2016_reference_with_gaps(r), atol=1e-12)
    assert np.isnan(gold[190:]).all() and np.isfinite(gold[:190]).all()
    np.testing.assert_allclose(gold_standard(r, "mean")[:190], np.nanmean(r[:190], axis=1))
    ewe = gold_standard(r, "ewe")
    assert np.isnan(ewe[190:]).all() and np.isfinite(ewe[:190]).all()
    # a frame rated by one rater only takes that rater's (re-centred, for avec2016) value
    r2 = r.copy()
    r2[60, [0, 2, 3]] = np.nan
    assert gold_standard(r2, "mean")[60] == pytest.approx(r2[60, 1])


def test_rater_who_never_rated_takes_no_part():
    r = ratings_matrix(k=3)
    with_silent = np.column_stack([r, np.full(len(r), np.nan)])
    for method in ("avec2016", "mean", "ewe"):
        np.testing.assert_allclose(gold_standard(with_silent, method), gold_standard(r, method), atol=1e-12)


def test_rater_agreement_is_mean_pairwise_ccc():
    r = ratings_matrix(k=3)
    pairs = [ccc(r[:, 0], r[:, 1]), ccc(r[:, 0], r[:, 2]), ccc(r[:, 1], r[:, 2])]
    assert rater_agreement(r) == pytest.approx(np.mean(pairs))


def test_shift_conventions():
    x = np.arange(6.0)
    # gold shifted back: value at t + 2 placed at t, last value repeated
    np.testing.assert_array_equal(shift_back(x, 2), [2, 3, 4, 5, 5, 5])
    # prediction shifted forward: value at t placed at t + 2, first value repeated
    np.testing.assert_array_equal(shift_forward(x, 2), [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(shift_back(x, 0), x)
    assert delay_frames(2.4) == 60
    assert delay_frames(0.4) == 10
    with pytest.raises(ValueError):
        delay_frames(-0.04)


def test_shift_back_then_forward_restores_the_middle():
    x = np.random.default_rng(0).normal(size=100)
    restored = shift_forward(shift_back(x, 7), 7)
    np.testing.assert_array_equal(restored[7:], x[7:])
