"""Late fusion: a linear model on the per-modality predictions, then post-processing."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted

from .postprocess import PostProcessor


class LateFusion(BaseEstimator):
    """``y ~ b + sum_m w_m * prediction_m`` (least squares), followed by a :class:`PostProcessor`.

    Fitted on devel predictions (AVEC 2016); the evaluate stage scores devel by
    leave-one-recording-out so the weights and the post-processing never see the recording
    they are scored on.

    Parameters
    ----------
    postprocessor : PostProcessor or None
        Cloned and fitted on the fused fit predictions; None for no post-processing.

    Attributes
    ----------
    linear_ : LinearRegression
    postprocessor_ : PostProcessor or None

    Examples
    --------
    >>> P = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> fusion = LateFusion(postprocessor=None).fit(P, P @ [2.0, 1.0] + 0.5, np.zeros(4))
    >>> np.round(fusion.linear_.coef_, 6).tolist(), round(float(fusion.linear_.intercept_), 6)
    ([2.0, 1.0], 0.5)
    """

    def __init__(self, postprocessor: PostProcessor | None = None):
        self.postprocessor = postprocessor

    def fit(self, predictions, gold, groups):
        """Fit the weights on ``predictions`` (n, modalities) against ``gold``; returns self."""
        predictions = np.asarray(predictions, dtype=float)
        self.linear_ = LinearRegression().fit(predictions, gold)
        fused = self.linear_.predict(predictions)
        self.postprocessor_ = (clone(self.postprocessor).fit(fused, gold, groups)
                               if self.postprocessor is not None else None)
        return self

    def transform(self, predictions, groups):
        """Fused (and post-processed) prediction per frame."""
        check_is_fitted(self)
        fused = self.linear_.predict(np.asarray(predictions, dtype=float))
        return self.postprocessor_.transform(fused, groups) if self.postprocessor_ is not None else fused
