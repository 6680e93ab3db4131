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

    Targets may leave rows out (unlabelled frames): :meth:`coefs` then solves on the rows it is
    given, downdating ``A^T A`` by the rows left out; the factorisation of the last row set is kept,
    so the delays that leave out the same rows share it.
    """

    def __init__(self, X: np.ndarray, intercept_scaling: float = 1.0):
        A = _augment(np.asarray(X, dtype=float), intercept_scaling)
        self._A = A
        self._gram = A.T @ A
        self.eigvals_, self.eigvecs_ = np.linalg.eigh(self._gram)
        self.intercept_scaling = intercept_scaling
        self._subset = (None, None, None)  # (row-set key, eigenvalues, eigenvectors) of the last subset

    def _factors(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if rows is None or rows.all():
            return self.eigvals_, self.eigvecs_
        key = rows.tobytes()
        if self._subset[0] != key:
            left_out = self._A[~rows]
            self._subset = (key, *np.linalg.eigh(self._gram - left_out.T @ left_out))
        return self._subset[1], self._subset[2]

    def coefs(self, y: np.ndarray, Cs, rows: np.ndarray | None = None) -> np.ndarray:
        """Weights (bias last) for each C: array of shape (n_features + 1, len(Cs)).

        ``rows`` (boolean, optional) selects the samples to fit; the others' targets are ignored.
        """
        y = np.asarray(y, dtype=float)
        eigvals, eigvecs = self._factors(rows)
        A = self._A if rows is None else self._A[rows]
        projected = eigvecs.T @ (A.T @ (y if rows is None else y[rows]))
        shrink = 1.0 / (eigvals[:, None] + 1.0 / (2.0 * np.asarray(Cs, dtype=float))[None, :])
        return eigvecs @ (shrink * projected[:, None])

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
