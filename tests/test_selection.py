"""Held-out choice of post-processing and late fusion; masked fits; bootstrap intervals."""
import numpy as np
import pytest

from recola_pipeline.bootstrap import (
    ccc_from_sums,
    ccc_interval,
    paired_difference,
    recording_sums,
)
from recola_pipeline.estimators import L2LinearSVR, LateFusion, RidgePath
from recola_pipeline.estimators.delay import delayed_targets
from recola_pipeline.estimators.selection import (
    choose_postprocessing,
    held_out,
    recording_folds,
)
from recola_pipeline.metrics import ccc, labelled_ccc


def devel_set(seed, n_recordings=4, n=300):
    """Smooth gold, predictions with a per-recording offset and gain, a few unlabelled frames."""
    rng = np.random.default_rng(seed)
    gold, pred, groups = [], [], []
    for r in range(n_recordings):
        g = np.convolve(rng.normal(size=n + 60), np.ones(60) / 60, mode="valid")[:n] * 3
        p = rng.uniform(0.2, 2) * g + rng.normal(rng.normal(0, 0.5), rng.uniform(0.05, 0.6), n)
        if rng.random() < 0.5:
            g[: rng.integers(1, n // 3)] = np.nan  # an unrated lead-in
        gold.append(g)
        pred.append(p)
        groups.append(np.full(n, f"r{r}"))
    return np.concatenate(gold), np.concatenate(pred), np.concatenate(groups)


@pytest.mark.parametrize("seed", range(12))
def test_held_out_choice_never_lowers_the_reported_devel_ccc(seed):
    gold, raw, groups = devel_set(seed, n_recordings=3 + seed % 4)
    folds = recording_folds(groups, 10)
    chosen, held, trail = choose_postprocessing(raw, gold, groups, folds, median_windows_s=[0, 0.4, 1.2, 3.2],
                                                centring=True, scaling=True)
    assert labelled_ccc(gold, held) >= labelled_ccc(gold, raw) - 1e-12
    assert labelled_ccc(gold, held) == pytest.approx(max(score for _, score in trail))
    # the reported predictions are exactly the chosen steps applied fold by fold
    np.testing.assert_allclose(held, held_out(chosen, raw, gold, groups, folds))


def test_each_fold_is_transformed_by_a_fit_on_the_others():
    gold, raw, groups = devel_set(0, n_recordings=3)
    folds = recording_folds(groups, 10)
    out = held_out(LateFusion(), raw[:, None], gold, groups, folds)
    for held in folds:
        other = ~held & np.isfinite(gold)
        slope, intercept = np.polyfit(raw[other], gold[other], 1)
        np.testing.assert_allclose(out[held], slope * raw[held] + intercept, atol=1e-9)


def test_folds_hold_out_whole_recordings():
    groups = np.repeat([f"r{i}" for i in range(5)], 10)
    folds = recording_folds(groups, 10)
    assert len(folds) == 5 and all(len(set(groups[f])) == 1 for f in folds)
    many = np.repeat([f"r{i}" for i in range(25)], 4)
    folds = recording_folds(many, 10)
    assert len(folds) == 10
    assert sum(f.sum() for f in folds) == len(many)
    assert all(not (set(many[f]) & set(many[~f])) for f in folds)  # no recording split across folds


def test_masked_ridge_path_equals_a_fit_on_the_kept_rows():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    rows = rng.random(200) > 0.3
    path = RidgePath(X)
    for C in (1e-3, 0.5):
        expected = L2LinearSVR(C=C).fit(X[rows], y[rows])
        coefs = path.coefs(np.where(rows, y, 0.0), [C], rows=rows)[:, 0]
        np.testing.assert_allclose(coefs[:-1], expected.coef_, atol=1e-10)
    np.testing.assert_allclose(path.coefs(y, [0.5])[:, 0], path.coefs(y, [0.5], rows=np.ones(200, bool))[:, 0])


def test_delayed_targets_never_pair_unlabelled_frames():
    gold = np.array([np.nan, np.nan, 1, 2, 3, 4, np.nan, 5.0])
    groups = np.zeros(8)
    targets, rows = delayed_targets(gold, groups, 2)
    # t is used only when t and t + 2 are labelled: t = 2 (gold 3), t = 3 (gold 4); t = 5 -> t + 2 = 7
    assert rows.tolist() == [False, False, True, True, False, True, False, True]
    assert targets[rows].tolist() == [3, 4, 5, 5]  # the last value is repeated at the recording's end


def test_bootstrap_sums_give_the_pooled_ccc():
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(size=50), rng.normal(size=50)) for _ in range(4)]
    gold = np.concatenate([g for g, _ in pairs])
    pred = np.concatenate([p for _, p in pairs])
    assert float(ccc_from_sums(recording_sums(pairs).sum(axis=0))) == pytest.approx(ccc(gold, pred), abs=1e-12)
    assert np.isnan(ccc_interval(pairs[:1])).all()  # one recording: nothing to resample


def test_bootstrap_interval_covers_the_true_ccc_at_about_its_nominal_rate():
    """Recordings with their own offsets and noise levels; the population CCC is taken from
    20 000 recordings. Over 300 corpora of 20 recordings the 95 % interval must cover it in
    88-99 % of cases (a percentile cluster bootstrap under-covers slightly with 20 clusters)."""
    rng = np.random.default_rng(42)

    def corpus(n_recordings):
        offsets = rng.normal(0, 0.4, (n_recordings, 1))
        gold = rng.normal(0, 1, (n_recordings, 50)) + offsets
        pred = 0.7 * gold + rng.normal(0, 0.7, gold.shape) + rng.normal(0, 0.3, (n_recordings, 1))
        return list(zip(gold, pred))

    truth = float(ccc_from_sums(recording_sums(corpus(20000)).sum(axis=0)))
    covered = [low <= truth <= high for low, high in
               (ccc_interval(corpus(20), resamples=400, seed=k) for k in range(300))]
    assert 0.88 <= np.mean(covered) <= 0.99


def test_paired_bootstrap_sees_a_real_improvement_and_not_a_null_one():
    rng = np.random.default_rng(1)
    gold = [rng.normal(size=100) for _ in range(10)]
    good = [(g, g + rng.normal(0, 0.3, 100)) for g in gold]
    bad = [(g, g + rng.normal(0, 1.5, 100)) for g in gold]
    better = paired_difference(good, bad, resamples=500, seed=0)
    assert better["ci_low"] > 0 and better["p_not_better"] < 0.05
    same = paired_difference(good, good, resamples=500, seed=0)
    assert same["difference"] == 0 and same["p_not_better"] == 1.0
