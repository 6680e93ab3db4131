"""openSMILE functionals (eGeMAPS v02, ComParE 2016) over sliding windows, computed by openSMILE.

openSMILE is run once per recording: the feature set's low-level descriptors (LLDs) are
computed once, and for every window length W a renamed copy of the set's functionals
components reads them with ``frameMode = fixed``, ``frameSize = W``, ``frameStep = 0.04``.
The functionals of each window are therefore exactly openSMILE's own (the same numbers as
``opensmile.Smile(<set>, Functionals)`` with a fixed-window frame mode), and an extra W costs
only its functionals, not a second LLD pass.

Row ``k`` of a W table is the window starting at ``k * 0.04`` s, i.e. centred at
``k * 0.04 + W / 2``; :func:`recola_pipeline.features.windows.align_to_labels` maps rows to
label frames.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np
import opensmile
from opensmile.core.lib import OpenSMILE

HOP_S = 0.04
CONFIG_ROOT = os.path.join(os.path.dirname(opensmile.__file__), "core", "config")


@dataclass(frozen=True)
class SetSpec:
    """Where a feature set's LLD and functionals components live in openSMILE's shipped configs."""

    feature_set: opensmile.FeatureSet
    lld_includes: tuple[str, ...]
    func_includes: tuple[str, ...]
    func_levels: tuple[str, ...]  # the levels the set's own config concatenates, in its order


SETS = {
    "egemaps": SetSpec(
        opensmile.FeatureSet.eGeMAPSv02,
        ("gemaps/v01b/GeMAPSv01b_core.lld.conf.inc", "egemaps/v02/eGeMAPSv02_core.lld.conf.inc"),
        ("gemaps/v01b/GeMAPSv01b_core.func.conf.inc", "egemaps/v02/eGeMAPSv02_core.func.conf.inc"),
        ("gemapsv01b_functionalsF0", "gemapsv01b_functionalsLoudness", "egemapsv02_functionalsMeanStddevZ",
         "egemapsv02_functionalsMeanStddevVoiced", "egemapsv02_functionalsMeanUnvoiced", "gemapsv01b_temporalSet",
         "egemapsv02_leq")),
    "compare": SetSpec(
        opensmile.FeatureSet.ComParE_2016,
        ("compare/ComParE_2016_core.lld.conf.inc",),
        ("compare/ComParE_2016_core.func.conf.inc",),
        ("is13_functionalsA", "is13_functionalsB", "is13_functionalsNz", "is13_functionalsF0", "is13_functionalsLLD",
         "is13_functionalsDelta")),
}


def _window_block(spec: SetSpec, index: int, window_s: float) -> str:
    """The set's functionals components, renamed with suffix ``_w<index>``, on fixed W-second windows."""
    text = "\n".join(open(os.path.join(CONFIG_ROOT, path)).read() for path in spec.func_includes)
    names = set(re.findall(r"instance\[(\w+)\]", text)) | set(re.findall(r"writer\.dmLevel\s*=\s*(\w+)", text))
    fixed = f"frameMode = fixed\nframeSize = {window_s}\nframeStep = {HOP_S}\nframeCenterSpecial = left"
    text = re.sub(r"\\\{\\cm\[frameModeFunctionalsConf[^\]]*\]\}", fixed, text)
    text = re.sub(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b", rf"\1_w{index}", text)
    return text + f"""
[componentInstances:cComponentManager]
instance[funcconcat_w{index}].type=cVectorConcat
instance[funcsink_w{index}].type=cExternalSink

[funcconcat_w{index}:cVectorConcat]
reader.dmLevel = {';'.join(f'{level}_w{index}' for level in spec.func_levels)}
writer.dmLevel = func_w{index}
includeSingleElementFields = 1

[funcsink_w{index}:cExternalSink]
reader.dmLevel = func_w{index}
blocksize = 1
"""


@functools.lru_cache(maxsize=None)
def config_file(set_name: str, windows_s: tuple[float, ...]) -> str:
    """Write (once per process) the openSMILE config computing all ``windows_s`` in one pass."""
    spec = SETS[set_name]
    includes = "\n".join(f"\\{{{os.path.join(CONFIG_ROOT, p)}}}" for p in
                         ("shared/standard_external_wave_input.conf.inc", *spec.lld_includes))
    text = ("[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\nprintLevelStats=0\n"
            + includes + "\n" + "\n".join(_window_block(spec, i, w) for i, w in enumerate(windows_s)))
    fd, path = tempfile.mkstemp(prefix=f"recola_{set_name}_", suffix=".conf")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


class OpenSmileSet:
    """One openSMILE feature set computed over sliding windows.

    Parameters
    ----------
    name : {'egemaps', 'compare'}
    """

    def __init__(self, name: str):
        self.name = name

    @functools.cache
    def feature_names(self) -> list[str]:
        """The set's functional names, in openSMILE's order."""
        return list(opensmile.Smile(SETS[self.name].feature_set, opensmile.FeatureLevel.Functionals).feature_names)

    def windowed_functionals(self, signal: np.ndarray, sample_rate: int, windows_s) -> dict[float, np.ndarray]:
        """Functionals of every full W-second window at a 40 ms step.

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
            W -> array of shape (n_windows, n_features); row k is the window starting at
            ``k * 0.04`` s. Windows that would run past the end of the signal are not included.
        """
        windows_s = tuple(float(w) for w in windows_s)
        smile = OpenSMILE()
        smile.initialize(
            config_file=config_file(self.name, windows_s),
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
        n_features = len(self.feature_names())
        result = {}
        for i, w in enumerate(windows_s):
            n_full = max(int(np.floor((duration - w) / HOP_S + 1e-6)) + 1, 0)
            result[w] = np.array(rows[i][:n_full], dtype=float).reshape(-1, n_features)
        return result
