"""openSMILE functionals (eGeMAPS v02, ComParE 2016) over sliding windows.

openSMILE is run once per recording: the feature set's low-level descriptors (LLDs) are
computed once, and for every window length W a renamed copy of the set's functionals
components reads them with ``frameMode = fixed``, ``frameSize = W``, ``frameStep = 0.04``, so
those functionals are exactly openSMILE's own (the same numbers as ``opensmile.Smile(<set>,
Functionals)`` with a fixed-window frame mode).

openSMILE recomputes every window from its frames, so its cost grows with W. The components
that only average (eGeMAPS v02's arithmetic means and coefficients of variation of the
spectral, voice-quality and formant LLDs: 61 of the 88 functionals) are therefore not run per
window: their input LLDs are taken from openSMILE once and their windowed means and standard
deviations come from cumulative sums (:func:`~recola_pipeline.extractors.windows.strided_moments`),
whose cost does not depend on W. They follow openSMILE's definitions (``nonZeroFuncts``: zeros
left out, a window without a value gives 0; ``stddevNorm`` = population std / mean, 0 for a
constant window) and match its float32 results to about 1e-6 relative (tested). F0 and loudness
(percentiles, slopes, peaks), the voiced-segment statistics and the equivalent sound level
stay openSMILE's own.

Row ``k`` of a W table is the window starting at ``k * 0.04`` s, i.e. centred at
``k * 0.04 + W / 2``; :func:`recola_pipeline.extractors.windows.align_to_labels` maps rows to
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

from .. import interrupts
from ..labels import LABEL_HOP_S
from .windows import strided_moments

HOP_S = LABEL_HOP_S
CONFIG_ROOT = os.path.join(os.path.dirname(opensmile.__file__), "core", "config")


@dataclass(frozen=True)
class SetSpec:
    """Where a feature set's LLD and functionals components live in openSMILE's shipped configs."""

    feature_set: opensmile.FeatureSet
    lld_includes: tuple[str, ...]
    func_includes: tuple[str, ...]
    func_levels: tuple[str, ...]  # the levels the set's own config concatenates, in its order
    moment_levels: tuple[str, ...] = ()  # of func_levels: computed from cumulative sums, not per window


SETS = {
    "egemaps": SetSpec(
        opensmile.FeatureSet.eGeMAPSv02,
        ("gemaps/v01b/GeMAPSv01b_core.lld.conf.inc", "egemaps/v02/eGeMAPSv02_core.lld.conf.inc"),
        ("gemaps/v01b/GeMAPSv01b_core.func.conf.inc", "egemaps/v02/eGeMAPSv02_core.func.conf.inc"),
        ("gemapsv01b_functionalsF0", "gemapsv01b_functionalsLoudness", "egemapsv02_functionalsMeanStddevZ",
         "egemapsv02_functionalsMeanStddevVoiced", "egemapsv02_functionalsMeanUnvoiced", "gemapsv01b_temporalSet",
         "egemapsv02_leq"),
        ("egemapsv02_functionalsMeanStddevZ", "egemapsv02_functionalsMeanStddevVoiced",
         "egemapsv02_functionalsMeanUnvoiced")),
    "compare": SetSpec(
        opensmile.FeatureSet.ComParE_2016,
        ("compare/ComParE_2016_core.lld.conf.inc",),
        ("compare/ComParE_2016_core.func.conf.inc",),
        ("is13_functionalsA", "is13_functionalsB", "is13_functionalsNz", "is13_functionalsF0", "is13_functionalsLLD",
         "is13_functionalsDelta")),
}

#: the Moments statistics an averaging component may enable, in openSMILE's output order
MOMENT_STATISTICS = ("amean", "stddevNorm")


@dataclass(frozen=True)
class Section:
    """One ``[name:type]`` section of an openSMILE config."""

    name: str
    type: str
    text: str

    def get(self, key: str, default: str = "") -> str:
        match = re.search(rf"(?m)^\s*{re.escape(key)}\s*=\s*(.*?)\s*$", self.text)
        return match.group(1) if match else default

    def levels(self, key: str) -> list[str]:
        return [level.strip() for level in self.get(key).split(";") if level.strip()]


@dataclass(frozen=True)
class MomentsComponent:
    """A functionals component that only averages: what it reads and what it outputs."""

    level: str
    inputs: tuple[str, ...]
    statistics: tuple[str, ...]  # subset of MOMENT_STATISTICS, in that order
    nonzero: bool  # openSMILE's nonZeroFuncts: zeros (e.g. unvoiced frames) are left out


@functools.lru_cache(maxsize=None)
def functionals_sections(set_name: str) -> tuple[Section, ...]:
    """The sections of the set's functionals includes, in file order."""
    text = "\n".join(open(os.path.join(CONFIG_ROOT, path)).read() for path in SETS[set_name].func_includes)
    sections = []
    for chunk in re.split(r"(?m)^(?=\[)", text):
        header = re.match(r"\[(\w+):(\w+)\]", chunk)
        if header:
            sections.append(Section(header.group(1), header.group(2), chunk))
    return tuple(sections)


@functools.lru_cache(maxsize=None)
def moments_component(set_name: str, level: str) -> MomentsComponent:
    """Read the averaging component that writes ``level`` from the shipped config."""
    (section,) = [s for s in functionals_sections(set_name) if s.get("writer.dmLevel") == level]
    enabled = [f.strip() for f in section.get("functionalsEnabled").split(";") if f.strip()]
    statistics = tuple(name for name in MOMENT_STATISTICS if int(section.get(f"Moments.{name}", "0")))
    others = ("variance", "stddev", "skewness", "kurtosis", "doRatioLimit")
    if enabled != ["Moments"] or any(int(section.get(f"Moments.{name}", "0")) for name in others):
        raise ValueError(f"{section.name} computes more than means and coefficients of variation; "
                         "it cannot be one of the moment_levels")
    return MomentsComponent(level, tuple(section.levels("reader.dmLevel")), statistics,
                            bool(int(section.get("nonZeroFuncts", "0"))))


def _window_block(set_name: str, index: int, window_s: float) -> str:
    """The set's per-window functionals components, renamed with suffix ``_w<index>``, on fixed
    W-second windows (only those the levels outside ``moment_levels`` need)."""
    spec = SETS[set_name]
    windowed = [level for level in spec.func_levels if level not in spec.moment_levels]
    needed, kept = set(windowed), []
    for section in reversed(functionals_sections(set_name)):
        if section.get("writer.dmLevel") in needed:
            needed.update(section.levels("reader.dmLevel"))
            kept.insert(0, section)
    instances = "\n".join(f"instance[{s.name}].type={s.type}" for s in kept)
    text = "[componentInstances:cComponentManager]\n" + instances + "\n" + "".join(s.text for s in kept)
    names = {s.name for s in kept} | {s.get("writer.dmLevel") for s in kept}
    fixed = f"frameMode = fixed\nframeSize = {window_s}\nframeStep = {HOP_S}\nframeCenterSpecial = left"
    text = re.sub(r"\\\{\\cm\[frameModeFunctionalsConf[^\]]*\]\}", fixed, text)
    text = re.sub(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b", rf"\1_w{index}", text)
    return text + f"""
[componentInstances:cComponentManager]
instance[funcconcat_w{index}].type=cVectorConcat
instance[funcsink_w{index}].type=cExternalSink

[funcconcat_w{index}:cVectorConcat]
reader.dmLevel = {';'.join(f'{level}_w{index}' for level in windowed)}
writer.dmLevel = func_w{index}
includeSingleElementFields = 1

[funcsink_w{index}:cExternalSink]
reader.dmLevel = func_w{index}
blocksize = 1
"""


@functools.lru_cache(maxsize=None)
def lld_inputs(set_name: str) -> tuple[str, ...]:
    """The LLD levels the set's averaging components read (each taken once from openSMILE)."""
    levels = [level for m in SETS[set_name].moment_levels for level in moments_component(set_name, m).inputs]
    return tuple(dict.fromkeys(levels))


def _lld_sinks(set_name: str) -> str:
    """Each LLD level the averaging components read, written to a binary HTK file (float32, no
    per-frame Python callback); a callback-less external sink per level gives its field names."""
    return "".join(f"""
[componentInstances:cComponentManager]
instance[lldnames_{j}].type=cExternalSink
instance[lldfile_{j}].type=cHtkSink

[lldnames_{j}:cExternalSink]
reader.dmLevel = {level}

[lldfile_{j}:cHtkSink]
reader.dmLevel = {level}
filename = \\cm[lldfile_{j}{{lld_{j}.htk}}:HTK file for LLD level {j}]
""" for j, level in enumerate(lld_inputs(set_name)))


def read_htk(path: str) -> tuple[np.ndarray, float]:
    """Frames (n_frames, n_fields) and frame period (s) of an HTK parameter file (big-endian float32)."""
    data = np.fromfile(path, dtype=np.uint8)
    period = int(np.frombuffer(data[4:8], dtype=">u4")[0]) * 1e-7  # header: nSamples, period (100 ns), sampSize, kind
    width = int(np.frombuffer(data[8:10], dtype=">u2")[0]) // 4
    return np.frombuffer(data[12:], dtype=">f4").reshape(-1, width).astype(float), period


@functools.lru_cache(maxsize=None)
def config_file(set_name: str, windows_s: tuple[float, ...]) -> str:
    """Write (once per process) the openSMILE config computing all ``windows_s`` in one pass."""
    spec = SETS[set_name]
    includes = "\n".join(f"\\{{{os.path.join(CONFIG_ROOT, p)}}}" for p in
                         ("shared/standard_external_wave_input.conf.inc", *spec.lld_includes))
    text = ("[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\nprintLevelStats=0\n"
            + includes + "\n" + "\n".join(_window_block(set_name, i, w) for i, w in enumerate(windows_s))
            + _lld_sinks(set_name))
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

    libraries = ("opensmile",)

    def __init__(self, name: str):
        self.name = name
        self.description = {"egemaps": "openSMILE eGeMAPS v02", "compare": "openSMILE ComParE 2016"}[name]

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
        levels = lld_inputs(self.name)
        with tempfile.TemporaryDirectory(prefix="recola_llds_") as folder:
            files = {f"lldfile_{j}": os.path.join(folder, f"{j}.htk") for j in range(len(levels))}
            smile = OpenSMILE()
            smile.initialize(
                config_file=config_file(self.name, windows_s),
                options={"sampleRate": sample_rate, "nBits": 16,
                         "bufferModeRbConf": os.path.join(CONFIG_ROOT, "shared", "BufferModeRb.conf.inc"),
                         "bufferModeConf": os.path.join(CONFIG_ROOT, "shared", "BufferMode.conf.inc"), **files},
                loglevel=1, log_file="", debug=False,
            )
            rows: dict[int, list] = {i: [] for i in range(len(windows_s))}
            indices: dict[int, list] = {i: [] for i in range(len(windows_s))}

            def collect(i):
                def callback(data, meta):
                    indices[i].append(meta.vIdx)
                    rows[i].append(data.reshape(-1).copy())
                return callback

            for i in rows:
                smile.external_sink_set_callback_ex(f"funcsink_w{i}", collect(i))
            pcm = (np.clip(signal, -1, 32767 / 32768) * 32768).astype(np.int16)
            smile.external_audio_source_write_data("extsource", pcm.tobytes())
            smile.external_audio_source_set_eoi("extsource")
            smile.run()
            names = {sink: [smile.external_sink_get_element_name(sink, k)
                            for k in range(smile.external_sink_get_num_elements(sink))]
                     for sink in [f"funcsink_w{i}" for i in rows] + [f"lldnames_{j}" for j in range(len(levels))]}
            smile.free()
            interrupts.check()  # a Ctrl-C inside a callback is swallowed by ctypes: a row is then missing
            for i, w in enumerate(windows_s):
                if indices[i] != list(range(len(indices[i]))) or len(rows[i]) != len(indices[i]):
                    raise RuntimeError(f"openSMILE delivered the {w} s windows out of sequence "
                                       f"({len(rows[i])} rows); nothing was written, run again")
            llds = {level: (names[f"lldnames_{j}"], *read_htk(files[f"lldfile_{j}"])) for j, level in enumerate(levels)}
        duration = signal.size / sample_rate
        result = {}
        for i, w in enumerate(windows_s):
            windowed = np.array(rows[i], dtype=float).reshape(len(rows[i]), -1)
            n_full = max(int(np.floor((duration - w) / HOP_S + 1e-6)) + 1, 0)
            n_full = min(n_full, len(windowed))  # openSMILE may end one window early
            columns = dict(zip(names[f"funcsink_w{i}"], windowed[:n_full].T))
            for level in SETS[self.name].moment_levels:
                columns.update(_windowed_moments(moments_component(self.name, level), llds, w, n_full))
            result[w] = np.column_stack([columns[name] for name in self.feature_names()]).reshape(n_full, -1)
        return result


def _windowed_moments(component: MomentsComponent, llds: dict, window_s: float, n_windows: int) -> dict:
    """openSMILE's Moments (amean, stddevNorm) of ``component`` over every window, by name."""
    names = [name for level in component.inputs for name in llds[level][0]]
    frames = np.hstack([llds[level][1] for level in component.inputs])
    period = llds[component.inputs[0]][2]
    used = frames != 0 if component.nonzero else None
    count, mean, std = strided_moments(frames, int(round(window_s / period)), int(round(HOP_S / period)),
                                       n_windows, used)
    empty = count == 0
    statistics = {"amean": np.where(empty, 0.0, mean),
                  "stddevNorm": np.where(empty | (std == 0), 0.0, std / np.where(mean == 0, 1.0, mean))}
    return {f"{name}_{stat}": statistics[stat][:, k] for k, name in enumerate(names) for stat in component.statistics}
