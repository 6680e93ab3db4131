"""CCC, Pearson and RMSE against audmetric, a textbook formula and the edge cases."""
import math

import numpy as np
import pytest

from recola_pipeline import metrics


def textbook_ccc(x, y):
    """Lin (1989) with population moments, written out term by term."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y)) / n
    sxx = sum((a - mx) ** 2 for a in x) / n
    syy = sum((b - my) ** 2 for b in y) / n
    return 2 * sxy / (sxx + syy + (mx - my) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_audmetric_and_textbook(seed):
    audmetric = pytest.importorskip("audmetric")
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=500)
    pred = 0.6 * truth + rng.normal(0.3, 0.5, size=500)
    ours = metrics.ccc(truth, pred)
    assert ours == pytest.approx(audmetric.concordance_cc(truth, pred), abs=1e-12)
    assert ours == pytest.approx(textbook_ccc(list(truth), list(pred)), abs=1e-12)


def test_pearson_and_rmse_match_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=200), rng.normal(size=200)
    assert metrics.pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert metrics.rmse(a, b) == pytest.approx(math.sqrt(((a - b) ** 2).mean()), abs=1e-12)


def test_ccc_perfect_and_biased():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.ccc(x, x) == pytest.approx(1.0)
    # a constant offset lowers CCC but not Pearson
    assert metrics.ccc(x, x + 1) < 1.0
    assert metrics.pearson(x, x + 1) == pytest.approx(1.0)


@pytest.mark.parametrize("truth, pred", [
    ([], []),                       # length 0
    ([1.0], [2.0]),                 # length 1
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),  # zero denominator
    ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]),  # NaN input
])
def test_ccc_is_nan_when_undefined(truth, pred):
    assert math.isnan(metrics.ccc(truth, pred))


def test_constant_prediction_gives_zero_ccc_and_nan_pearson():
    truth = np.array([1.0, 2.0, 3.0])
    assert metrics.ccc(truth, np.full(3, 2.0)) == pytest.approx(0.0)
    assert math.isnan(metrics.pearson(truth, np.full(3, 2.0)))


@pytest.mark.parametrize("fn", [metrics.ccc, metrics.pearson, metrics.rmse])
def test_mismatched_lengths_raise(fn):
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])


def test_pooled_concatenates_and_mean_per_recording_averages():
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(size=50), rng.normal(size=50)) for _ in range(3)]
    pooled = metrics.pooled(metrics.ccc, pairs)
    assert pooled == pytest.approx(textbook_ccc(np.concatenate([p[0] for p in pairs]),
                                                np.concatenate([p[1] for p in pairs])))
    mean = metrics.mean_per_recording(metrics.ccc, pairs)
    assert mean == pytest.approx(np.mean([textbook_ccc(t, p) for t, p in pairs]))
    assert math.isnan(metrics.pooled(metrics.ccc, []))
