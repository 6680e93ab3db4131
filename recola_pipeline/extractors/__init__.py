"""Feature extraction: audio feature sets, face detection and tracking, the crop engine, CNN backbones.

``AUDIO_FEATURE_SETS`` is the registry of audio feature sets (``audio.feature_set``). A feature
set is an object with

* ``description``: what it is, for the reports (e.g. ``openSMILE eGeMAPS v02``);
* ``feature_names()``: its column names;
* ``windowed_functionals(signal, sample_rate, windows_s)``: for each window length W, an array
  whose row k holds the functionals of the W-second window starting at ``k * LABEL_HOP_S``
  (windows that would run past the end left out). The audio stage maps row k to label frame
  ``k + W / (2 * LABEL_HOP_S)`` (:func:`~recola_pipeline.extractors.windows.align_to_labels`)
  and stores each recording's frames with their ``time``, so a row can never be paired with
  another frame's label;
* ``libraries``: the distributions whose versions change its numbers (part of the artifact
  identity).

A new feature set is one module implementing these plus one line here (see the README,
"Extending").
"""
from __future__ import annotations

from . import librosa_set
from .opensmile_windows import OpenSmileSet

AUDIO_FEATURE_SETS = {"egemaps": OpenSmileSet("egemaps"), "compare": OpenSmileSet("compare"), "librosa": librosa_set}
