"""recola-pipeline: time-continuous emotion recognition from speech and face video.

The public API: the configuration, the metrics, the gold standard and delay conventions,
and the stage runner. Importing the package registers every stage.
"""
from . import data_stage  # noqa: F401  (registers the demo and data stages)
from . import audio_stage  # noqa: F401,I001  (registers the audio stage, after data)
from . import video_stage  # noqa: F401,I001  (registers the faces and video stages)
from . import train_stage  # noqa: F401,I001  (registers the train stage)
from . import evaluate_stage  # noqa: F401,I001  (registers the evaluate stage)
from . import report  # noqa: F401,I001  (registers the report stage)
from . import clips_stage, mrpn_stage  # noqa: F401,I001  (registers the demo_clips, clips and mrpn stages)
from .config import Config, ConfigError, load_config
from .labels import gold_standard, shift_back, shift_forward
from .metrics import ccc, mean_per_recording, pearson, pooled, rmse
from .stages import Pipeline

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "Pipeline", "ccc", "gold_standard", "load_config",
           "mean_per_recording", "pearson", "pooled", "rmse", "shift_back", "shift_forward"]
