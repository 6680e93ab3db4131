"""recola-pipeline: time-continuous emotion recognition from speech and face video.

The public API: the configuration, the metrics, the gold standard and delay conventions,
the stage runner (the stages themselves are listed in :mod:`recola_pipeline.stages`) and
trained models. Names are imported on first use, so ``import recola_pipeline`` (and the
console entry point, :mod:`recola_pipeline.console`) starts without loading the libraries a
run may never need.
"""
import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "Config": "config", "ConfigError": "config", "load_config": "config",
    "gold_standard": "labels", "shift_back": "labels", "shift_forward": "labels",
    "ccc": "metrics", "mean_per_recording": "metrics", "pearson": "metrics", "pooled": "metrics", "rmse": "metrics",
    "TrainedModel": "model", "load_model": "model",
    "Pipeline": "pipeline",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted([*globals(), *_PUBLIC])
