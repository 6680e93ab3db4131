"""Late fusion: a linear model on the per-modality predictions."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted


class LateFusion(BaseEstimator):
    """``y ~ b + sum_m w_m * prediction_m`` (least squares) on labelled frames.

    Fitted on devel predictions (AVEC 2016); the evaluate stage scores devel with weights
    fitted on the other devel recordings (:func:`~recola_pipeline.estimators.selection.held_out`).

    Attributes
    ----------
    linear_ : LinearRegression

    Examples
    --------
    >>> P = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> fusion = LateFusion().fit(P, P @ [2.0, 1.0] + 0.5, np.zeros(4))
    >>> np.round(fusion.linear_.coef_, 6).tolist(), round(float(fusion.linear_.intercept_), 6)
    ([2.0, 1.0], 0.5)
    """

    def fit(self, predictions, gold, groups=None):
        """Fit the weights on ``predictions`` (n, modalities) against ``gold`` (NaN rows left out); returns self."""
        predictions, gold = np.asarray(predictions, dtype=float), np.asarray(gold, dtype=float)
        labelled = np.isfinite(gold)
        self.linear_ = LinearRegression().fit(predictions[labelled], gold[labelled])
        return self

    def transform(self, predictions, groups=None):
        """Fused prediction per frame."""
        check_is_fitted(self)
        return self.linear_.predict(np.asarray(predictions, dtype=float))
