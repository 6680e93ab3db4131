"""Feature extraction: audio feature sets, face detection and tracking, the crop engine, CNN backbones.

``AUDIO_FEATURE_SETS`` is the registry of audio feature sets (``audio.feature_set``). A feature
set is an object (or module) with

* ``description``: what it is, for the reports (e.g. ``openSMILE eGeMAPS v02``);
* ``feature_names()``: its column names;
* ``hop_dur``: seconds between its consecutive windows, the 40 ms label hop;
* ``windowed_functionals(signal, sample_rate, windows)``: for each window length (a
  :class:`~recola_pipeline.window.Window`, the win_dur of audinterface's ``Feature``), the
  functionals of every full window, the first starting at 0, as frames indexed by ``time``, each
  window's centre (:func:`~recola_pipeline.extractors.windows.time_indexed`). The audio stage
  checks those times and places each frame on the label frame at its centre
  (:func:`~recola_pipeline.extractors.windows.on_label_frames`), storing each recording's
  frames with their ``time``, so a row can never be paired with another frame's label;
* ``libraries``: the distributions whose versions change its numbers (part of the artifact
  identity).

A new feature set is one module implementing these plus one line here (see the docs,
"Extending"). The registry names each set without importing it (:mod:`recola_pipeline.registry`);
the code of the module a set lives in is part of the audio artifact's identity.

``BackboneError`` is declared here, without torch, so that the command line can catch it.
"""
from __future__ import annotations

from ..registry import Registry

#: seconds of audio after a window's end that live openSMILE needs before it writes the window (its frames,
#: smoothers and buffers; measured 70-110 ms at 16 kHz, see docs/live.md): a stream's algorithmic latency
#: is this less the system's delay D (0 when D covers it)
LIVE_LOOKAHEAD_S = 0.12

AUDIO_FEATURE_SETS = Registry("audio feature set", {
    "egemaps": "recola_pipeline.extractors.opensmile_windows:EGEMAPS",
    "compare": "recola_pipeline.extractors.opensmile_windows:COMPARE",
    "librosa": "recola_pipeline.extractors.librosa_set",
})


class BackboneError(RuntimeError):
    """A backbone or its weights cannot be had; the message says how to fix it."""
