"""Late fusion: a linear model on the per-modality predictions."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from .delay import target


class LateFusion(TransformerMixin, RegressorMixin, BaseEstimator):
    """``y ~ b + sum_m w_m * prediction_m`` (least squares) on labelled frames.

    Fitted on devel predictions (AVEC 2016); the evaluate stage scores devel with weights
    fitted on the other devel recordings (:func:`~recola_pipeline.estimators.selection.held_out`).

    Attributes
    ----------
    linear_ : LinearRegression

    Examples
    --------
    >>> P = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> fusion = LateFusion().fit(P, P @ [2.0, 1.0] + 0.5)
    >>> np.round(fusion.linear_.coef_, 6).tolist(), round(float(fusion.linear_.intercept_), 6)
    ([2.0, 1.0], 0.5)
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def fit(self, X, y, groups=None):
        """Fit the weights on the systems' predictions ``X`` (n, systems) against the gold ``y`` (NaN rows
        left out); returns self.

        ``groups`` is accepted so that held-out fitting treats every step alike; the weights do not use it.
        """
        predictions = validate_data(self, X, dtype=np.float64)
        gold = target(self, y, len(predictions))
        labelled = np.isfinite(gold)
        if not labelled.any():
            raise ValueError("no labelled frame (finite gold) to fit the fusion weights on")
        self.linear_ = LinearRegression().fit(predictions[labelled], gold[labelled])
        return self

    def predict(self, X, groups=None):
        """Fused prediction per frame, from the systems' predictions ``X``."""
        check_is_fitted(self)
        return self.linear_.predict(validate_data(self, X, dtype=np.float64, reset=False))

    def transform(self, X, groups=None):
        """The fused prediction as one column, for the post-processing step of a pipeline."""
        return self.predict(X)[:, np.newaxis]
