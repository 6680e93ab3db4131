"""Fitted steps: exact L2-loss SVR, delay machinery, normalisation, post-processing."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.svm import LinearSVR

from recola_pipeline.estimators import (
    DelayedRegressor,
    L2LinearSVR,
    Normaliser,
    PostProcessor,
    RidgePath,
)
from recola_pipeline.estimators.delay import shift_groups
from recola_pipeline.metrics import ccc
from recola_pipeline.stages.train import delay_c_scores


def regression_data(seed=0, n=600, f=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    return X, X @ rng.normal(size=f) + 0.7 + rng.normal(0, 0.5, n)


@pytest.mark.parametrize("C", [1e-4, 1e-2, 1.0])
def test_l2_linear_svr_equals_liblinear(C):
    X, y = regression_data()
    ours = L2LinearSVR(C=C).fit(X, y)
    ref = LinearSVR(C=C, loss="squared_epsilon_insensitive", dual=True, epsilon=0.0, tol=1e-10,
                    max_iter=200000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(ref.intercept_[0], abs=1e-6)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-5)


def test_ridge_path_equals_one_fit_per_c():
    X, y = regression_data(1)
    Cs = [1e-5, 1e-3, 0.1, 1.0]
    path = RidgePath(X)
    preds = path.predict(X, path.coefs(y, Cs))
    for j, C in enumerate(Cs):
        np.testing.assert_allclose(preds[:, j], L2LinearSVR(C=C).fit(X, y).predict(X), atol=1e-9)


def test_estimators_follow_sklearn_conventions():
    for estimator in (L2LinearSVR(C=0.5), Normaliser("recording"), PostProcessor(centring=False),
                      DelayedRegressor(L2LinearSVR(), delay_s=2.0)):
        assert repr(clone(estimator)) == repr(estimator)
    X, y = regression_data()
    groups = np.repeat(["a", "b", "c"], len(y) // 3)
    svr, norm, delayed = L2LinearSVR(), Normaliser(), DelayedRegressor(L2LinearSVR(), delay_s=0.4)
    assert svr.fit(X, y) is svr and norm.fit(X) is norm and delayed.fit(X, y, groups) is delayed
    assert hasattr(svr, "coef_") and hasattr(norm, "mean_") and delayed.delay_frames_ == 10


def test_shift_groups_never_crosses_recordings():
    values = np.array([1, 2, 3, 4, 10, 20, 30, 40])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    np.testing.assert_array_equal(shift_groups(values, groups, 1, "back"), [2, 3, 4, 4, 20, 30, 40, 40])
    np.testing.assert_array_equal(shift_groups(values, groups, 1, "forward"), [1, 1, 2, 3, 10, 10, 20, 30])
    two_d = shift_groups(np.c_[values, -values], groups, 2, "forward")
    np.testing.assert_array_equal(two_d[:, 1], -np.array([1, 1, 1, 2, 10, 10, 10, 20]))


def lagged_corpus(lag_frames, n_recordings=4, n=1500, seed=0):
    """Features see a latent trace at t; the gold standard shows it lag_frames later (raters react late)."""
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for r in range(n_recordings):
        latent = np.convolve(rng.normal(size=n + 200), np.ones(50) / 50, mode="same")[:n]
        features = np.c_[latent, latent ** 2, rng.normal(size=n)] + rng.normal(0, 0.05, (n, 3))
        gold = np.concatenate([np.full(lag_frames, latent[0]), latent[:-lag_frames]])
        X.append(features)
        y.append(gold)
        groups.append(np.full(n, f"r{r}"))
    return np.vstack(X), np.concatenate(y), np.concatenate(groups)


@pytest.mark.parametrize("lag_s", [1.2, 2.8, 4.4])
def test_delay_search_finds_a_known_lag(lag_s):
    lag = int(round(lag_s / 0.04))
    X_tr, y_tr, g_tr = lagged_corpus(lag, seed=1)
    X_dev, y_dev, g_dev = lagged_corpus(lag, seed=2)
    delays = [round(0.4 * i, 1) for i in range(21)]
    scores = delay_c_scores(RidgePath(X_tr), y_tr, g_tr, X_dev, y_dev, g_dev, delays, [1e-3, 1e-1, 1.0])
    best = max(scores, key=lambda d: np.nanmax(scores[d]))
    assert abs(best - lag_s) <= 0.4 + 1e-9


def test_delay_early_stop_stops_after_three_worse_delays():
    X, y, g = lagged_corpus(30, seed=3)  # lag 1.2 s
    delays = [round(0.4 * i, 1) for i in range(21)]
    scores = delay_c_scores(RidgePath(X), y, g, X, y, g, delays, [0.1], early_stop=True)
    assert max(scores) == pytest.approx(1.2 + 3 * 0.4)


def test_delayed_regressor_aligns_predictions_with_unshifted_gold():
    X, y, g = lagged_corpus(50, seed=4)
    plain = L2LinearSVR(C=1.0).fit(X, y)
    delayed = DelayedRegressor(L2LinearSVR(C=1.0), delay_s=2.0).fit(X, y, g)
    assert ccc(y, delayed.predict(X, g)) > ccc(y, plain.predict(X)) + 0.2


def test_normaliser_modes_and_nan():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, np.inf], [7.0, 5.0, 4.0]])
    Z = Normaliser().fit(X).transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z[:, 0], (X[:, 0] - 4) / np.std(X[:, 0]))
    np.testing.assert_array_equal(Z[:, 1], 0.0)  # constant feature
    assert Z[0, 2] == 0.0 and Z[2, 2] == 0.0  # NaN and inf -> 0 after scaling
    groups = np.array(["a", "a", "b", "b"])
    per = Normaliser("recording").fit(X).transform(X, groups)
    np.testing.assert_allclose(per[:, 0], [-1, 1, -1, 1])
    one = np.array([[1.0], [3.0], [5.0], [7.0]])  # without groups, all rows are one recording
    np.testing.assert_allclose(Normaliser("recording").fit(one).transform(one), Normaliser().fit(one).transform(one))


def test_postprocessor_applies_its_configured_steps_fitted_on_labelled_frames():
    gold = np.sin(np.linspace(0, 20, 1000))
    groups = np.repeat(["a", "b"], 500)
    pred = 0.5 * gold + 1.0
    gold_with_gap = gold.copy()
    gold_with_gap[:100] = np.nan  # unlabelled frames take no part in the fit
    post = PostProcessor(centring=True, scaling=True).fit(pred, gold_with_gap, groups)
    rows = slice(100, None)
    assert post.bias_ == pytest.approx(gold[rows].mean() - pred[rows].mean())
    assert post.scale_ == pytest.approx(gold[rows].std() / pred[rows].std())
    np.testing.assert_allclose(post.predict(pred, groups), gold, atol=1e-9)
    assert post.steps_ == ["centring", "scaling"]
    assert PostProcessor(median_s=0.4).fit(pred, gold, groups).steps_ == ["median 0.44 s"]
