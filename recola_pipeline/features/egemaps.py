"""eGeMAPS v02 functionals over sliding windows, computed by openSMILE itself.

openSMILE is run once per recording: its eGeMAPS v02 low-level descriptors (LLDs) are
computed once, and for every window length W a renamed copy of the eGeMAPS functionals
components reads them with ``frameMode = fixed``, ``frameSize = W``, ``frameStep = 0.04``.
The 88 functionals of each window are therefore exactly openSMILE's own (the same numbers as
``opensmile.Smile(eGeMAPSv02, Functionals)`` with a fixed-window frame mode), and an extra W
costs only its functionals, not a second LLD pass.

Row ``k`` of a W table is the window starting at ``k * 0.04`` s, i.e. centred at
``k * 0.04 + W / 2``; :func:`recola_pipeline.features.windows.align_to_labels` maps rows to
label frames.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile

import numpy as np
import opensmile
from opensmile.core.lib import OpenSMILE

HOP_S = 0.04
CONFIG_ROOT = os.path.join(os.path.dirname(opensmile.__file__), "core", "config")
_FUNC_INCLUDES = ("gemaps/v01b/GeMAPSv01b_core.func.conf.inc", "egemaps/v02/eGeMAPSv02_core.func.conf.inc")
_LLD_INCLUDES = ("gemaps/v01b/GeMAPSv01b_core.lld.conf.inc", "egemaps/v02/eGeMAPSv02_core.lld.conf.inc")
# The levels eGeMAPSv02.conf concatenates into its 88 functionals, in its order.
_FUNC_LEVELS = ("gemapsv01b_functionalsF0", "gemapsv01b_functionalsLoudness", "egemapsv02_functionalsMeanStddevZ",
                "egemapsv02_functionalsMeanStddevVoiced", "egemapsv02_functionalsMeanUnvoiced",
                "gemapsv01b_temporalSet", "egemapsv02_leq")


def _window_block(index: int, window_s: float) -> str:
    """The eGeMAPS functionals components, renamed with suffix ``_w<index>``, on fixed W-second windows."""
    text = "\n".join(open(os.path.join(CONFIG_ROOT, path)).read() for path in _FUNC_INCLUDES)
    names = set(re.findall(r"instance\[(\w+)\]", text)) | set(re.findall(r"writer\.dmLevel\s*=\s*(\w+)", text))
    fixed = f"frameMode = fixed\nframeSize = {window_s}\nframeStep = {HOP_S}\nframeCenterSpecial = left"
    text = re.sub(r"\\\{\\cm\[frameModeFunctionalsConf[^\]]*\]\}", fixed, text)
    text = re.sub(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b", rf"\1_w{index}", text)
    return text + f"""
[componentInstances:cComponentManager]
instance[funcconcat_w{index}].type=cVectorConcat
instance[funcsink_w{index}].type=cExternalSink

[funcconcat_w{index}:cVectorConcat]
reader.dmLevel = {';'.join(f'{level}_w{index}' for level in _FUNC_LEVELS)}
writer.dmLevel = func_w{index}
includeSingleElementFields = 1

[funcsink_w{index}:cExternalSink]
reader.dmLevel = func_w{index}
blocksize = 1
"""


@functools.lru_cache(maxsize=None)
def config_file(windows_s: tuple[float, ...]) -> str:
    """Write (once per process) the openSMILE config computing all ``windows_s`` in one pass."""
    includes = "\n".join(f"\\{{{os.path.join(CONFIG_ROOT, p)}}}" for p in
                         ("shared/standard_external_wave_input.conf.inc", *_LLD_INCLUDES))
    text = ("[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\nprintLevelStats=0\n"
            + includes + "\n" + "\n".join(_window_block(i, w) for i, w in enumerate(windows_s)))
    fd, path = tempfile.mkstemp(prefix="recola_egemaps_", suffix=".conf")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


@functools.lru_cache(maxsize=None)
def feature_names() -> list[str]:
    """The 88 eGeMAPS v02 functional names, in openSMILE's order."""
    return list(opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals).feature_names)


def windowed_functionals(signal: np.ndarray, sample_rate: int, windows_s) -> dict[float, np.ndarray]:
    """eGeMAPS v02 functionals of every full W-second window at a 40 ms step.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
        Mono audio in [-1, 1].
    sample_rate : int
    windows_s : sequence of float
        Window lengths in seconds.

    Returns
    -------
    dict
        W -> array of shape (n_windows, 88); row k is the window starting at ``k * 0.04`` s.
        Windows that would run past the end of the signal are not included.
    """
    windows_s = tuple(float(w) for w in windows_s)
    smile = OpenSMILE()
    smile.initialize(
        config_file=config_file(windows_s),
        options={"sampleRate": sample_rate, "nBits": 16,
                 "bufferModeRbConf": os.path.join(CONFIG_ROOT, "shared", "BufferModeRb.conf.inc"),
                 "bufferModeConf": os.path.join(CONFIG_ROOT, "shared", "BufferMode.conf.inc")},
        loglevel=1, log_file="", debug=False,
    )
    rows: dict[int, list] = {i: [] for i in range(len(windows_s))}

    def collect(i):
        def callback(data, meta):
            rows[i].append(data.reshape(-1).copy())
        return callback

    for i in rows:
        smile.external_sink_set_callback_ex(f"funcsink_w{i}", collect(i))
    pcm = (np.clip(signal, -1, 32767 / 32768) * 32768).astype(np.int16)
    smile.external_audio_source_write_data("extsource", pcm.tobytes())
    smile.external_audio_source_set_eoi("extsource")
    smile.run()
    smile.free()
    duration = signal.size / sample_rate
    result = {}
    for i, w in enumerate(windows_s):
        n_full = max(int(np.floor((duration - w) / HOP_S + 1e-6)) + 1, 0)
        values = np.array(rows[i][:n_full], dtype=float).reshape(-1, len(feature_names()))
        result[w] = values
    return result
