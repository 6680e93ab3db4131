"""Fitted steps of the continuous path, each a scikit-learn estimator."""
from .delay import DelayedRegressor
from .fusion import LateFusion
from .linear import L2LinearSVR, RidgePath
from .normalise import Normaliser
from .postprocess import PostProcessor

__all__ = ["DelayedRegressor", "L2LinearSVR", "LateFusion", "Normaliser", "PostProcessor", "RidgePath"]
