"""openSMILE functionals (eGeMAPS v02, ComParE 2016) over sliding windows.

openSMILE is run once per recording: the feature set's low-level descriptors (LLDs) are
computed once, and for every window length W a renamed copy of the set's functionals
components reads them with ``frameMode = fixed``, ``frameSize = W``, ``frameStep = 0.04``, so
those functionals are exactly openSMILE's own (the same numbers as ``opensmile.Smile(<set>,
Functionals)`` with a fixed-window frame mode). Their rows go to binary HTK files, not through
a per-row Python callback (which cost about 5 % of the run, and where a Ctrl-C is swallowed by
ctypes).

openSMILE recomputes every window from its frames, so its cost grows with W. The components
that only average are therefore not run per window: eGeMAPS v02's arithmetic means and
coefficients of variation of the spectral, voice-quality and formant LLDs (61 of the 88
functionals), and its equivalent sound level (10 log10 of the mean frame power; openSMILE's
``dBp`` gives -120 for a window of digital silence). Their input LLDs are taken from openSMILE
once and their windowed means and standard deviations come from cumulative sums
(:func:`~recola_pipeline.extractors.windows.strided_moments`), whose cost does not depend on W.
They follow openSMILE's definitions (``nonZeroFuncts``: zeros left out, a window without a
value gives 0; ``stddevNorm`` = population std / mean, 0 for a constant window) and match its
float32 results to about 1e-6 relative (tested). The percentiles of F0 and loudness (openSMILE
sorts every window for them) come from numpy's vectorised sort of the same float32 LLDs with
openSMILE's interpolation (:func:`~recola_pipeline.extractors.windows.strided_percentiles`),
bit-identical to its own. Their moments, slopes and peaks and the voiced-segment statistics stay
openSMILE's own, computed window by window.

Row ``k`` of openSMILE's W table is the window starting at ``k * 0.04`` s, i.e. centred at
``k * 0.04 + W / 2``: the set returns them indexed by that time
(:func:`~recola_pipeline.extractors.windows.time_indexed`), which the audio stage places on the
label frames (:func:`~recola_pipeline.extractors.windows.on_label_frames`).
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np
import opensmile
import pandas as pd
from opensmile.core.lib import OpenSMILE

from .. import interrupts
from ..labels import LABEL_HOP_S
from ..window import Window
from .windows import strided_moments, strided_percentiles, time_indexed

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
    mean_db_levels: tuple[str, ...] = ()  # of func_levels: dBp of a windowed mean, from cumulative sums too
    percentile_levels: tuple[str, ...] = ()  # of func_levels: Percentiles from sorted windows, the rest per window


SETS = {
    "egemaps": SetSpec(
        opensmile.FeatureSet.eGeMAPSv02,
        ("gemaps/v01b/GeMAPSv01b_core.lld.conf.inc", "egemaps/v02/eGeMAPSv02_core.lld.conf.inc"),
        ("gemaps/v01b/GeMAPSv01b_core.func.conf.inc", "egemaps/v02/eGeMAPSv02_core.func.conf.inc"),
        ("gemapsv01b_functionalsF0", "gemapsv01b_functionalsLoudness", "egemapsv02_functionalsMeanStddevZ",
         "egemapsv02_functionalsMeanStddevVoiced", "egemapsv02_functionalsMeanUnvoiced", "gemapsv01b_temporalSet",
         "egemapsv02_leq"),
        ("egemapsv02_functionalsMeanStddevZ", "egemapsv02_functionalsMeanStddevVoiced",
         "egemapsv02_functionalsMeanUnvoiced"),
        ("egemapsv02_leq",),
        ("gemapsv01b_functionalsF0", "gemapsv01b_functionalsLoudness")),
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
        """The items of a ``;``-separated value (reader levels, enabled functionals), stripped."""
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
    enabled = section.levels("functionalsEnabled")
    statistics = tuple(name for name in MOMENT_STATISTICS if int(section.get(f"Moments.{name}", "0")))
    others = ("variance", "stddev", "skewness", "kurtosis", "doRatioLimit")
    if enabled != ["Moments"] or any(int(section.get(f"Moments.{name}", "0")) for name in others):
        raise ValueError(f"{section.name} computes more than means and coefficients of variation; "
                         "it cannot be one of the moment_levels")
    return MomentsComponent(level, tuple(section.levels("reader.dmLevel")), statistics,
                            bool(int(section.get("nonZeroFuncts", "0"))))


@dataclass(frozen=True)
class MeanDbComponent:
    """A level openSMILE computes as ``dBp`` (10 log10) of a functionals component's arithmetic mean."""

    level: str
    input: str  # the LLD level averaged
    name: str  # the output field


#: openSMILE's dBp of a zero mean (a window of digital silence): 10 log10 of this floor, -120 dB
DBP_FLOOR = 1e-12


@functools.lru_cache(maxsize=None)
def mean_db_component(set_name: str, level: str) -> MeanDbComponent:
    """Read the ``dBp``-of-a-mean pair of components that writes ``level`` from the shipped config."""
    sections = functionals_sections(set_name)
    (operation,) = [s for s in sections if s.get("writer.dmLevel") == level]
    (means,) = [s for s in sections if s.get("writer.dmLevel") == operation.get("reader.dmLevel")]
    enabled = means.levels("functionalsEnabled")
    others = ("posamean", "absmean", "qmean", "nzamean", "nzabsmean", "nzqmean", "nzgmean", "nnz")
    if (operation.type != "cVectorOperation" or operation.get("operation") != "dBp" or enabled != ["Means"]
            or not int(means.get("Means.amean", "0")) or any(int(means.get(f"Means.{k}", "0")) for k in others)
            or int(means.get("nonZeroFuncts", "0")) or not int(operation.get("appendOperationToName", "0"))):
        raise ValueError(f"{operation.name} is not dBp of an arithmetic mean; it cannot be one of the mean_db_levels")
    return MeanDbComponent(level, means.get("reader.dmLevel"), f"{operation.get('nameBase')}_dBp")


@dataclass(frozen=True)
class PercentilesComponent:
    """The Percentiles functional of a functionals component: what it reads and what it outputs."""

    level: str
    input: str  # the LLD level
    probabilities: tuple[float, ...]
    ranges: tuple[tuple[int, int], ...]  # pctlrange[i] = 'j-k': |percentile k - percentile j|
    nonzero: bool  # openSMILE's nonZeroFuncts: zeros (e.g. unvoiced frames) are left out


def _indexed(section: Section, key: str) -> list[str]:
    """The values of ``key[0]``, ``key[1]``, ... in a section, in index order."""
    found = re.findall(rf"(?m)^\s*{re.escape(key)}\[(\d+)\]\s*=\s*(.*?)\s*$", section.text)
    return [value for _, value in sorted(found, key=lambda item: int(item[0]))]


@functools.lru_cache(maxsize=None)
def percentiles_component(set_name: str, level: str) -> PercentilesComponent:
    """Read the Percentiles settings of the functionals component that writes ``level``."""
    (section,) = [s for s in functionals_sections(set_name) if s.get("writer.dmLevel") == level]
    enabled = section.levels("functionalsEnabled")
    inputs = section.levels("reader.dmLevel")
    if ("Percentiles" not in enabled or len(enabled) < 2 or len(inputs) != 1
            or section.get("Percentiles.quartiles") != "0" or section.get("Percentiles.iqr") != "0"
            or section.get("Percentiles.interp") != "1" or _indexed(section, "Percentiles.pctlquotient")):
        raise ValueError(f"{section.name}: only interpolated percentiles and their ranges, next to other "
                         "functionals of one LLD level, can be one of the percentile_levels")
    ranges = tuple(tuple(int(k) for k in r.split("-")) for r in _indexed(section, "Percentiles.pctlrange"))
    return PercentilesComponent(level, inputs[0], tuple(float(p) for p in _indexed(section, "Percentiles.percentile")),
                                ranges, bool(int(section.get("nonZeroFuncts", "0"))))


def _without_percentiles(section: Section) -> Section:
    """``section`` with Percentiles taken out of its enabled functionals."""
    enabled = [f for f in section.levels("functionalsEnabled") if f != "Percentiles"]
    text = re.sub(r"(?m)^(\s*functionalsEnabled\s*=).*$", lambda m: m.group(1) + " " + " ; ".join(enabled),
                  section.text)
    return Section(section.name, section.type, text)


@functools.lru_cache(maxsize=None)
def _needed_sections(set_name: str) -> tuple[tuple[Section, ...], tuple[Section, ...]]:
    """The functionals-include sections the per-window levels and the LLD sinks need, split into
    frame-level ones (e.g. contour smoothers: run once, shared by all windows) and window-level
    ones (functionals with the set's frame mode, and what reads their output: run per window).
    Percentiles are taken out of the :attr:`SetSpec.percentile_levels` components."""
    needed, kept = set(per_window_levels(set_name)) | set(lld_inputs(set_name)), []
    for section in reversed(functionals_sections(set_name)):
        if section.get("writer.dmLevel") in needed:
            needed.update(section.levels("reader.dmLevel"))
            kept.insert(0, _without_percentiles(section) if section.get("writer.dmLevel") in
                        SETS[set_name].percentile_levels else section)
    window_levels, frame_sections, window_sections = set(), [], []
    for section in kept:  # file order: a section comes after the ones it reads
        if "frameModeFunctionalsConf" in section.text or window_levels & set(section.levels("reader.dmLevel")):
            window_levels.add(section.get("writer.dmLevel"))
            window_sections.append(section)
        else:
            frame_sections.append(section)
    return tuple(frame_sections), tuple(window_sections)


def _components(sections) -> str:
    """Config text that instantiates and configures ``sections``."""
    instances = "\n".join(f"instance[{s.name}].type={s.type}" for s in sections)
    return "[componentInstances:cComponentManager]\n" + instances + "\n" + "".join(s.text for s in sections)


def _window_block(set_name: str, index: int, window_s: float, files: bool) -> str:
    """The set's per-window functionals components, renamed with suffix ``_w<index>``, on fixed
    W-second windows (only those :func:`per_window_levels` need); their rows go to an external sink
    ``funcnames_w<index>`` and, with ``files``, to an HTK file."""
    windowed = per_window_levels(set_name)
    kept = _needed_sections(set_name)[1]
    text = _components(kept)
    names = {s.name for s in kept} | {s.get("writer.dmLevel") for s in kept}
    fixed = f"frameMode = fixed\nframeSize = {window_s}\nframeStep = {HOP_S}\nframeCenterSpecial = left"
    text = re.sub(r"\\\{\\cm\[frameModeFunctionalsConf[^\]]*\]\}", fixed, text)
    text = re.sub(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b", rf"\1_w{index}", text)
    text += f"""
[componentInstances:cComponentManager]
instance[funcconcat_w{index}].type=cVectorConcat
instance[funcnames_w{index}].type=cExternalSink

[funcconcat_w{index}:cVectorConcat]
reader.dmLevel = {';'.join(f'{level}_w{index}' for level in windowed)}
writer.dmLevel = func_w{index}
includeSingleElementFields = 1

[funcnames_w{index}:cExternalSink]
reader.dmLevel = func_w{index}
"""
    return text + (f"""
[componentInstances:cComponentManager]
instance[funcfile_w{index}].type=cHtkSink

[funcfile_w{index}:cHtkSink]
reader.dmLevel = func_w{index}
filename = \\cm[funcfile_w{index}{{func_w{index}.htk}}:HTK file for the {window_s} s windows]
""" if files else "")


def per_window_levels(set_name: str) -> list[str]:
    """The set's functionals levels that openSMILE computes window by window."""
    spec = SETS[set_name]
    return [level for level in spec.func_levels if level not in spec.moment_levels + spec.mean_db_levels]


@functools.lru_cache(maxsize=None)
def lld_inputs(set_name: str) -> tuple[str, ...]:
    """The LLD levels the set's averaging and percentile components read (each taken once from openSMILE)."""
    spec = SETS[set_name]
    levels = [level for m in spec.moment_levels for level in moments_component(set_name, m).inputs]
    levels += [mean_db_component(set_name, m).input for m in spec.mean_db_levels]
    levels += [percentiles_component(set_name, m).input for m in spec.percentile_levels]
    return tuple(dict.fromkeys(levels))


def _lld_sinks(set_name: str, files: bool) -> str:
    """Each LLD level the averaging components read: an external sink ``lldnames_<j>`` (its field names; a
    live run's rows, by callback) and, with ``files``, a binary HTK file (float32, no per-frame Python
    callback)."""
    return "".join(f"""
[componentInstances:cComponentManager]
instance[lldnames_{j}].type=cExternalSink

[lldnames_{j}:cExternalSink]
reader.dmLevel = {level}
""" + (f"""
[componentInstances:cComponentManager]
instance[lldfile_{j}].type=cHtkSink

[lldfile_{j}:cHtkSink]
reader.dmLevel = {level}
filename = \\cm[lldfile_{j}{{lld_{j}.htk}}:HTK file for LLD level {j}]
""" if files else "") for j, level in enumerate(lld_inputs(set_name)))


def read_htk(path: str) -> tuple[np.ndarray, float]:
    """Frames (n_frames, n_fields) and frame period (s) of an HTK parameter file (big-endian float32)."""
    data = np.fromfile(path, dtype=np.uint8)
    period = int(np.frombuffer(data[4:8], dtype=">u4")[0]) * 1e-7  # header: nSamples, period (100 ns), sampSize, kind
    width = int(np.frombuffer(data[8:10], dtype=">u2")[0]) // 4
    return np.frombuffer(data[12:], dtype=">f4").reshape(-1, width).astype(float), period


#: a live run's audio source: openSMILE's external audio source with a ring buffer (2 s at 48 kHz) in place of
#: the batch config's growing one, which would hold the whole stream
LIVE_SOURCE = """
[componentInstances:cComponentManager]
instance[extsource].type=cExternalAudioSource

[extsource:cExternalAudioSource]
writer.dmLevel=wave
writer.levelconf.growDyn=0
writer.levelconf.isRb=1
writer.levelconf.nT=96000
sampleRate=\\cm[sampleRate{16000}:sample rate]
nBits=\\cm[nBits{16}:sample bits]
channels=\\cm[channels{1}:channel size]
"""


@functools.lru_cache(maxsize=None)
def config_file(set_name: str, windows_s: tuple[float, ...], files: bool = True) -> str:
    """Write (once per process) the openSMILE config computing all ``windows_s`` in one pass; ``files``:
    window rows and LLDs go to HTK files (a batch run), else only to external sinks (a live run)."""
    spec = SETS[set_name]
    includes = "\n".join(f"\\{{{os.path.join(CONFIG_ROOT, p)}}}" for p in
                         (("shared/standard_external_wave_input.conf.inc",) if files else ()) + spec.lld_includes)
    text = ("[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\nprintLevelStats=0\n"
            + ("" if files else LIVE_SOURCE) + includes + "\n" + _components(_needed_sections(set_name)[0]) + "\n"
            + "\n".join(_window_block(set_name, i, w, files) for i, w in enumerate(windows_s))
            + _lld_sinks(set_name, files))
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
    #: seconds between consecutive windows (those of every length W start at 0, 0.04, 0.08, ...)
    hop_dur = HOP_S

    def __init__(self, name: str):
        self.name = name
        self.description = {"egemaps": "openSMILE eGeMAPS v02", "compare": "openSMILE ComParE 2016"}[name]

    @functools.cache
    def feature_names(self) -> list[str]:
        """The set's functional names, in openSMILE's order."""
        return list(opensmile.Smile(SETS[self.name].feature_set, opensmile.FeatureLevel.Functionals).feature_names)

    def windowed_functionals(self, signal: np.ndarray, sample_rate: int, windows: list[Window]
                             ) -> dict[Window, pd.DataFrame]:
        """Functionals of every full window of each length at a 40 ms step, indexed by time.

        Parameters
        ----------
        signal : ndarray, shape (n_samples,)
            Mono audio in [-1, 1].
        sample_rate : int
        windows : list of Window
            Window lengths (win_dur).

        Returns
        -------
        dict
            Window -> frames (n_windows, n_features) indexed by ``time``, each window's centre:
            the windows start at 0, 0.04, ... s; windows that would run past the end of the
            signal are not included.
        """
        windowed, llds = self._run(signal, sample_rate, windows)
        return self._functionals(windowed, llds, signal.size / sample_rate, windows)

    def windowed_functionals_of_pieces(self, pieces, sample_rate: int, windows: list[Window]
                                       ) -> dict[Window, pd.DataFrame]:
        """:meth:`windowed_functionals` of a whole recording, computed from overlapping pieces of it.

        openSMILE runs once per piece; of its output, the LLD rows and the windows that start in
        the piece's kept span are joined, and the functionals computed from cumulative sums or
        sorted windows then run over the joined LLDs of the whole recording, as for one run. With
        enough context around each kept span (:func:`~recola_pipeline.extractors.pieces.pieces`)
        the result is identical to :meth:`windowed_functionals` of the whole signal (tested),
        while only one piece of audio is held at a time.

        Parameters
        ----------
        pieces : iterable of :class:`~recola_pipeline.extractors.pieces.Piece`
            In order; their kept spans tile the recording. Each starts on a whole second.
        sample_rate : int
        windows : list of Window
        """
        windowed_parts = [[] for _ in windows]
        window_names = [[] for _ in windows]
        lld_parts: dict[str, list] = {}
        names_periods: dict[str, tuple] = {}
        for piece in pieces:
            windowed, llds = self._run(piece.signal, sample_rate, windows)
            first, last = piece.kept_windows(HOP_S)
            for i, (names, rows) in enumerate(windowed):
                windowed_parts[i].append(rows[first:last])
                window_names[i] = names
            for level, (names, frames, period) in llds.items():
                first, last = piece.kept_windows(period)
                lld_parts.setdefault(level, []).append(frames[first:last])
                names_periods[level] = (names, period)
            duration_s = piece.start_s + piece.signal.size / sample_rate  # the last piece ends the recording
        windowed = [(names, _joined(parts)) for names, parts in zip(window_names, windowed_parts)]
        llds = {level: (names, _joined(lld_parts[level]), period) for level, (names, period) in names_periods.items()}
        return self._functionals(windowed, llds, duration_s, windows)

    def _run(self, signal: np.ndarray, sample_rate: int, windows: list[Window]) -> tuple[list, dict]:
        """One openSMILE run: per window length, its own functionals of every window (names, rows),
        and per LLD level the LLDs the numpy functionals need (names, frames, frame period)."""
        windows_s = tuple(w.seconds for w in windows)
        levels = lld_inputs(self.name)
        sinks = [f"funcnames_w{i}" for i in range(len(windows_s))] + [f"lldnames_{j}" for j in range(len(levels))]
        with tempfile.TemporaryDirectory(prefix="recola_llds_") as folder:
            files = {f"lldfile_{j}": os.path.join(folder, f"{j}.htk") for j in range(len(levels))}
            files |= {f"funcfile_w{i}": os.path.join(folder, f"w{i}.htk") for i in range(len(windows_s))}
            smile = OpenSMILE()
            smile.initialize(
                config_file=config_file(self.name, windows_s),
                options={"sampleRate": sample_rate, "nBits": 16,
                         "bufferModeRbConf": os.path.join(CONFIG_ROOT, "shared", "BufferModeRb.conf.inc"),
                         "bufferModeConf": os.path.join(CONFIG_ROOT, "shared", "BufferMode.conf.inc"), **files},
                loglevel=1, log_file="", debug=False,
            )
            pcm = (np.clip(signal, -1, 32767 / 32768) * 32768).astype(np.int16)
            smile.external_audio_source_write_data("extsource", pcm.tobytes())
            del pcm
            smile.external_audio_source_set_eoi("extsource")
            smile.run()
            names = {sink: [smile.external_sink_get_element_name(sink, k)
                            for k in range(smile.external_sink_get_num_elements(sink))] for sink in sinks}
            smile.free()
            interrupts.check()  # a Ctrl-C during run() is handled when it returns: stop before reading
            windowed = [(names[f"funcnames_w{i}"], read_htk(files[f"funcfile_w{i}"])[0])
                        for i in range(len(windows_s))]
            llds = {level: (names[f"lldnames_{j}"], *read_htk(files[f"lldfile_{j}"])) for j, level in enumerate(levels)}
        return windowed, llds

    def _functionals(self, windowed: list, llds: dict, duration: float, windows: list[Window]
                     ) -> dict[Window, pd.DataFrame]:
        """The feature set's functionals of every full window, in :meth:`feature_names` order, indexed by time."""
        result = {}
        for i, w in enumerate(windows):
            n_full = max(int(np.floor((duration - w.seconds) / HOP_S + 1e-6)) + 1, 0)
            names, rows = windowed[i]
            if len(rows) < n_full - 1:  # openSMILE may end one window early, never more
                raise RuntimeError(f"openSMILE wrote {len(rows)} of the {n_full} windows of {w} s; "
                                   "nothing was written, run again")
            n_full = min(n_full, len(rows))
            result[w] = time_indexed(self.window_rows(names, rows[:n_full], llds, w), w, self.feature_names())
        return result

    def window_rows(self, names: list[str], rows: np.ndarray, llds: dict, window: Window) -> np.ndarray:
        """The set's functionals of consecutive windows, in :meth:`feature_names` order.

        Parameters
        ----------
        names, rows : list of str, ndarray
            openSMILE's own per-window functionals (:func:`per_window_levels`) of the windows.
        llds : dict
            LLD level -> (names, frames, frame period); frame 0 is where the first window starts.
        window : Window
        """
        columns = dict(zip(names, rows.T))
        n = len(rows)
        for level in SETS[self.name].moment_levels:
            columns.update(_windowed_moments(moments_component(self.name, level), llds, window, n))
        for level in SETS[self.name].mean_db_levels:
            columns.update(_windowed_mean_db(mean_db_component(self.name, level), llds, window, n))
        for level in SETS[self.name].percentile_levels:
            columns.update(_windowed_percentiles(percentiles_component(self.name, level), llds, window, n))
        return np.column_stack([columns[name] for name in self.feature_names()]).reshape(n, -1)


def _joined(parts: list) -> np.ndarray:
    """The rows of ``parts`` in one array; the list is emptied as it is joined (one copy held, not two)."""
    out = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=parts[0].dtype)
    row = 0
    while parts:
        part = parts.pop(0)
        out[row:row + len(part)] = part
        row += len(part)
    return out


#: columns of LLDs whose windowed moments are computed together: a long recording's temporaries
#: stay small, and each group keeps two or more columns, so numpy sums its rows in the same order
#: as for all columns at once (a single column would be summed pairwise: other rounding)
MOMENT_GROUP_COLUMNS = 4


def column_groups(n_columns: int) -> list[slice]:
    """Slices of ``MOMENT_GROUP_COLUMNS`` columns; a last column left alone joins the group before it.

    >>> [(g.start, g.stop) for g in column_groups(9)]
    [(0, 4), (4, 9)]
    """
    bounds = [*range(MOMENT_GROUP_COLUMNS, n_columns, MOMENT_GROUP_COLUMNS), n_columns]
    if len(bounds) > 1 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return [slice(a, b) for a, b in zip([0, *bounds[:-1]], bounds)]


def _windowed_moments(component: MomentsComponent, llds: dict, window: Window, n_windows: int) -> dict:
    """openSMILE's Moments (amean, stddevNorm) of ``component`` over every window, by name."""
    names = [name for level in component.inputs for name in llds[level][0]]
    frames = np.hstack([llds[level][1] for level in component.inputs])
    period = llds[component.inputs[0]][2]
    used = frames != 0 if component.nonzero else None
    count, mean, std = (np.hstack(parts) for parts in zip(*(
        strided_moments(frames[:, group], int(round(window.seconds / period)), int(round(HOP_S / period)), n_windows,
                        None if used is None else used[:, group])
        for group in column_groups(frames.shape[1]))))
    empty = count == 0
    statistics = {"amean": np.where(empty, 0.0, mean),
                  "stddevNorm": np.where(empty | (std == 0), 0.0, std / np.where(mean == 0, 1.0, mean))}
    return {f"{name}_{stat}": statistics[stat][:, k] for k, name in enumerate(names) for stat in component.statistics}


def _windowed_mean_db(component: MeanDbComponent, llds: dict, window: Window, n_windows: int) -> dict:
    """openSMILE's ``dBp`` of the arithmetic mean of ``component``'s input over every window, by name."""
    names, frames, period = llds[component.input]
    if len(names) != 1:
        raise ValueError(f"{component.level} averages {len(names)} fields; one was expected")
    _, mean, _ = strided_moments(frames, int(round(window.seconds / period)), int(round(HOP_S / period)), n_windows)
    return {component.name: 10 * np.log10(np.maximum(np.nan_to_num(mean[:, 0]), DBP_FLOOR))}


def _windowed_percentiles(component: PercentilesComponent, llds: dict, window: Window, n_windows: int) -> dict:
    """openSMILE's interpolated percentiles and percentile ranges of ``component`` over every window, by name."""
    names, frames, period = llds[component.input]
    columns = {}
    for k, name in enumerate(names):
        values = frames[:, k].astype(np.float32)  # the float32 LLDs openSMILE sorts
        _, percentiles = strided_percentiles(values, int(round(window.seconds / period)), int(round(HOP_S / period)),
                                             n_windows, component.probabilities,
                                             values != 0 if component.nonzero else None)
        for j, p in enumerate(component.probabilities):
            columns[f"{name}_percentile{p * 100:.1f}"] = percentiles[:, j]
        for low, high in component.ranges:
            columns[f"{name}_pctlrange{low}-{high}"] = np.abs(percentiles[:, high] - percentiles[:, low])
    return columns


#: the registered instances (:data:`recola_pipeline.extractors.AUDIO_FEATURE_SETS`)
EGEMAPS = OpenSmileSet("egemaps")
COMPARE = OpenSmileSet("compare")
