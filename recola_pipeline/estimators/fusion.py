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


class SystemFusion(TransformerMixin, RegressorMixin, BaseEstimator):
    """Late fusion as one model: fitted system pipelines, each reading its own columns of ``X``, and a
    :class:`LateFusion` of their predictions before post-processing.

    The systems are fitted already (on train); ``fit`` fits only the fusion weights (on devel),
    so the late-fusion system of a bundle predicts from features alone, like every other system.

    Parameters
    ----------
    systems : list of (str, Pipeline, int)
        Name, fitted pipeline (``normalise -> kernel -> regress``) and its number of feature
        columns; ``X`` holds the systems' columns side by side, in this order.

    Attributes
    ----------
    fusion_ : LateFusion
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def __init__(self, systems=()):
        self.systems = systems

    def system_predictions(self, X, groups=None) -> np.ndarray:
        """Each system's prediction (before post-processing) from its columns of ``X``: shape (n, systems)."""
        from .bundle import raw_predictions  # bundle composes these estimators into pipelines
        X = np.asarray(X, dtype=float)
        widths = [width for _, _, width in self.systems]
        if X.ndim != 2 or X.shape[1] != sum(widths):
            raise ValueError(f"X must hold the systems' {sum(widths)} feature columns side by side, got shape "
                             f"{X.shape}")
        starts = np.concatenate([[0], np.cumsum(widths)])
        return np.column_stack([raw_predictions(model, np.ascontiguousarray(X[:, a:b]), groups)
                                for (_, model, _), a, b in zip(self.systems, starts[:-1], starts[1:])])

    def fit(self, X, y, groups=None):
        """Fit the fusion weights on the systems' predictions of ``X`` against ``y``; returns self."""
        return self.fit_predictions(self.system_predictions(X, groups), y, groups)

    def fit_predictions(self, predictions, y, groups=None):
        """Fit the fusion weights on the systems' predictions, when they are at hand already (the
        evaluate stage has them: the same numbers, bit for bit, as it scores); returns self."""
        self.fusion_ = LateFusion().fit(predictions, y, groups)
        return self

    def predict(self, X, groups=None):
        """The fused prediction per frame."""
        check_is_fitted(self)
        return self.fusion_.predict(self.system_predictions(X, groups))

    def transform(self, X, groups=None):
        """The fused prediction as one column, for the post-processing step of a pipeline."""
        return self.predict(X, groups)[:, np.newaxis]
