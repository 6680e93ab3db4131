"""recola-pipeline: time-continuous emotion recognition from speech and face video.

The public API: the configuration, the metrics, the gold standard and delay conventions,
and the stage runner (the stages themselves are listed in :mod:`recola_pipeline.stages`).
"""
from .config import Config, ConfigError, load_config
from .labels import gold_standard, shift_back, shift_forward
from .metrics import ccc, mean_per_recording, pearson, pooled, rmse
from .model import TrainedModel, load_model
from .pipeline import Pipeline

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "Pipeline", "TrainedModel", "ccc", "gold_standard", "load_config", "load_model",
           "mean_per_recording", "pearson", "pooled", "rmse", "shift_back", "shift_forward"]
