"""L2-regularised L2-loss linear SVR (liblinear ``-s 12``) solved in closed form, and its C path.

With ``epsilon = 0`` (scikit-learn's default for :class:`~sklearn.svm.LinearSVR`) the L2-loss
SVR objective

    1/2 (||w||^2 + w_b^2) + C * sum_i (y_i - w.x_i - w_b * s)^2,

where the bias ``w_b`` multiplies a constant feature ``s = intercept_scaling`` and is
regularised like liblinear does, is a ridge problem with the exact solution

    [w; w_b] = (A^T A + I / (2C))^-1 A^T y,    A = [X, s].

:class:`L2LinearSVR` fits it directly; :class:`RidgePath` factorises ``A^T A`` once so that the
training stage evaluates every C (and, because only ``A^T y`` depends on the labels, every
annotation delay) for the cost of a matrix product. ``tests/test_models.py`` checks both
against :class:`sklearn.svm.LinearSVR` (``loss='squared_epsilon_insensitive'``, ``dual=True``).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data


def _augment(X: np.ndarray, scaling: float) -> np.ndarray:
    return np.hstack([X, np.full((X.shape[0], 1), scaling)])


class RidgePath:
    """Exact L2-loss SVR solutions for many C and many targets sharing one design matrix.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    intercept_scaling : float
    """

    def __init__(self, X: np.ndarray, intercept_scaling: float = 1.0):
        A = _augment(np.asarray(X, dtype=float), intercept_scaling)
        self._A = A
        self.eigvals_, self.eigvecs_ = np.linalg.eigh(A.T @ A)
        self.intercept_scaling = intercept_scaling

    def coefs(self, y: np.ndarray, Cs) -> np.ndarray:
        """Weights (bias last) for each C: array of shape (n_features + 1, len(Cs))."""
        projected = self.eigvecs_.T @ (self._A.T @ np.asarray(y, dtype=float))
        shrink = 1.0 / (self.eigvals_[:, None] + 1.0 / (2.0 * np.asarray(Cs, dtype=float))[None, :])
        return self.eigvecs_ @ (shrink * projected[:, None])

    def predict(self, X: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """Predictions of each column of ``coefs`` on ``X``: shape (n_samples, n_coefs)."""
        return _augment(np.asarray(X, dtype=float), self.intercept_scaling) @ coefs


class L2LinearSVR(RegressorMixin, BaseEstimator):
    """Linear SVR with L2 regularisation and squared loss, epsilon = 0, solved exactly.

    Parameters
    ----------
    C : float
        Inverse regularisation strength (liblinear's C).
    intercept_scaling : float
        Value of the constant feature whose (regularised) weight gives the intercept.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
    intercept_ : float
    """

    def __init__(self, C: float = 1.0, intercept_scaling: float = 1.0):
        self.C = C
        self.intercept_scaling = intercept_scaling

    def fit(self, X, y):
        """Fit on features ``X`` and targets ``y``; returns self."""
        X, y = validate_data(self, X, y, y_numeric=True)
        weights = RidgePath(X, self.intercept_scaling).coefs(y, [self.C])[:, 0]
        self.coef_ = weights[:-1]
        self.intercept_ = float(weights[-1] * self.intercept_scaling)
        return self

    def predict(self, X):
        """Predict targets for ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_
