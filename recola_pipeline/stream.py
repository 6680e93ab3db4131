"""Live prediction: a causal model's arousal and valence for audio that arrives in pieces.

:meth:`TrainedModel.stream <recola_pipeline.model.TrainedModel.stream>` opens an
:class:`AffectStream`; :meth:`AffectStream.push` takes the next samples and returns the label
frames (40 ms) whose predictions are now known. A frame is returned once the audio has reached
its time and the window its prediction reads has been computed; the frames of a stream are the
causal offline predictions of the same audio (:meth:`TrainedModel.predict` with the same causal
system), whatever the sizes of the pieces pushed (tested to 1e-6).

The steps are the causal system's own, applied frame by frame:

1. openSMILE's functionals of the window ending at each frame
   (:class:`~recola_pipeline.extractors.opensmile_live.LiveFunctionals`); frames before the
   first full window have none (NaN, as offline);
2. the fitted normalisation (train statistics, or online: running statistics carried from frame to
   frame) and regressor, one prediction per frame;
3. the delay D: frame t shows the prediction of frame t - D (the first one before that);
4. the post-processing: trailing median, then centring and scaling (constants fitted on devel).

Example
-------
>>> import sounddevice as sd                                      # doctest: +SKIP
>>> from recola_pipeline import load_model                        # doctest: +SKIP
>>> with load_model("my_model").stream(sample_rate=16000) as stream, \\
...         sd.InputStream(samplerate=16000, channels=1) as mic:   # doctest: +SKIP
...     while True:
...         block, _ = mic.read(1600)                             # 0.1 s
...         for row in stream.push(block[:, 0]).itertuples():
...             print(f"{row.time:.2f} s  arousal {row.arousal:+.2f}  valence {row.valence:+.2f}")
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
import pandas as pd

from .corpora import CorpusError
from .estimators.normalise import online_zscore
from .estimators.postprocess import median_frames
from .extractors import LIVE_LOOKAHEAD_S
from .labels import LABEL_HOP_S
from .window import Window


def frames_of(samples: int, sample_rate: int) -> int:
    """Label frames a recording of ``samples`` samples has (the offline rule: frame i at i * 40 ms <= its length)."""
    return int(np.floor(samples / sample_rate / LABEL_HOP_S + 1e-6)) + 1 if samples > 0 else 0


class _Dimension:
    """One dimension's causal system, frame by frame: raw predictions, delay, post-processing."""

    def __init__(self, name: str, model, window: Window):
        self.name = name
        self.window = window
        steps = model.named_steps
        self.normaliser, self.kernel = steps["normalise"], steps["kernel"]
        self.sums = None  # the online normalisation's running sums
        self.regressor = steps["regress"].estimator_
        self.delay = steps["regress"].delay_frames_
        self.post = steps["postprocess"]
        self.median = median_frames(self.post.median_s)
        self.lead = window.frames  # frames before the first full window (W / 40 ms)
        self.raw: list[float] = []  # raw prediction of frame t (before the delay), t = 0, 1, ...
        self.raw_offset = 0  # raw predictions dropped from the front
        self.history = np.empty(0)  # the last delayed raw values the trailing median still needs

    def add(self, X: np.ndarray) -> None:
        """Raw predictions of the next frames from their features (rows of NaN: no full window yet)."""
        if not len(X):
            return
        if self.normaliser.mode == "online":  # the running statistics carried from the frames before
            Z, self.sums = online_zscore(X, self.normaliser.mean_, self.normaliser.scale_,
                                         self.normaliser.prior_frames(), self.sums)
        else:
            Z = self.normaliser.transform(X)
        if self.kernel != "passthrough":
            Z = self.kernel.transform(Z)
        self.raw.extend(self.regressor.predict(Z).tolist())

    def known(self) -> int:
        """Frames whose raw prediction is known."""
        return self.raw_offset + len(self.raw)

    def ready(self, existing: int) -> int:
        """Frames whose output is known: frame t needs the raw prediction of t - D (of frame 0 before that)."""
        return min(existing, self.known() + self.delay) if self.known() else 0

    def outputs(self, first: int, stop: int) -> np.ndarray:
        """Post-processed predictions of frames ``first ... stop - 1``."""
        source = np.maximum(np.arange(first, stop) - self.delay, 0) - self.raw_offset
        delayed = np.asarray(self.raw, dtype=float)[source]
        if first == 0:  # before the first frame, the trailing median repeats it (as offline)
            self.history = np.full(self.median - 1, delayed[0])
        values = np.concatenate([self.history, delayed])
        out = self.post.predict(values)[len(self.history):]  # every kept output's window lies in ``values``
        self.history = values[len(values) - (self.median - 1):] if self.median > 1 else np.empty(0)
        keep = max(stop - self.delay, 0) - self.raw_offset  # raw predictions later frames still need
        if keep > 0:
            del self.raw[:keep]
            self.raw_offset += keep
        return out


def causal_audio_systems(model, system: str) -> dict[str, dict]:
    """Per dimension, the bundle entry of ``system``, checked to be a causal system of audio alone.

    Raises
    ------
    CorpusError
        It is not (a centred system, late fusion, or one that needs video), or the model has none.
    """
    entries = {}
    for dim in model.dimensions:
        entry = model._system(dim, system)
        if not entry.get("causal") or "inputs" in entry or set(entry.get("windows", {})) != {"audio"}:
            raise CorpusError(f"live prediction needs a causal audio system; {entry['system']} ({dim}) is not one. "
                              "Train with train.causal = true and export again, then use --system best-causal or "
                              "causal-audio")
        entries[dim] = entry
    return entries


class AffectStream:
    """Causal predictions of a stream of audio, frame by frame. Open one with
    :meth:`TrainedModel.stream <recola_pipeline.model.TrainedModel.stream>`.

    Attributes
    ----------
    frames : int
        Label frames returned so far.
    algorithmic_latency_s : dict
        Per dimension, how long after a frame's own time its prediction can be known at the
        earliest: the window ends at the frame, the delay D moves it earlier, and openSMILE writes
        a window :data:`~recola_pipeline.extractors.LIVE_LOOKAHEAD_S` after its end; 0 when D
        covers that (the frame is returned as soon as its time has come).
    """

    def __init__(self, model, system: str, sample_rate: int):
        from .extractors import AUDIO_FEATURE_SETS
        from .extractors.opensmile_live import LiveFunctionals

        description = model.description
        self.model = model
        self.input_rate = int(sample_rate)
        self.rate = description["audio"]["sample_rate"]
        self.dimensions = {dim: _Dimension(dim, model._system_model(entry["model"], entry.get("weights")),
                                           Window(entry["windows"]["audio"]))
                           for dim, entry in causal_audio_systems(model, system).items()}
        feature_set = AUDIO_FEATURE_SETS[description["audio"]["feature_set"]]
        if not hasattr(feature_set, "window_rows"):
            raise CorpusError(f"live prediction needs an openSMILE feature set; this model uses "
                              f"{description['audio']['feature_set']}")
        self.n_features = len(feature_set.feature_names())
        self.windows = sorted({d.window for d in self.dimensions.values()})
        self.features = LiveFunctionals(feature_set, self.rate, self.windows)
        self.resampler = None
        if self.input_rate != self.rate:
            import soxr
            self.resampler = soxr.ResampleStream(self.input_rate, self.rate, 1, dtype="float64")
        self.frames = 0
        self.windows_seen = {w: 0 for w in self.windows}
        self.last_window = {w: None for w in self.windows}
        self.arrivals: deque = deque()  # (frames the audio had after a push, when that push arrived)
        self.closed = False
        self.algorithmic_latency_s = {dim: round(max(0.0, LIVE_LOOKAHEAD_S - d.delay * LABEL_HOP_S), 2)
                                      for dim, d in self.dimensions.items()}

    def __enter__(self) -> AffectStream:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.features.close()
            self.closed = True

    def push(self, samples) -> pd.DataFrame:
        """Add audio; returns the frames now known.

        Parameters
        ----------
        samples : array_like
            Mono samples, or shape (n, channels) (averaged to mono), at the stream's sample rate:
            float in [-1, 1], or int16.

        Returns
        -------
        DataFrame
            ``time`` (s from the stream's start), one column per dimension, ``latency_s`` (from
            the arrival of the audio that reached the frame's time to now). May be empty.
        """
        arrived = time.perf_counter()
        if self.closed:
            raise RuntimeError("the stream is closed; open a new one")
        pcm = self._pcm(samples, last=False)
        if pcm.size:
            self.features.push(pcm)
        self.arrivals.append((frames_of(self.features.samples, self.rate), arrived))
        return self._collect(final=False)

    def close(self) -> pd.DataFrame:
        """End of the stream: the frames that were still waiting (e.g. for the window after them)."""
        if self.closed:
            return self._empty()
        arrived = time.perf_counter()
        pcm = self._pcm(np.zeros(0), last=True)
        if pcm.size:
            self.features.push(pcm)
        self.arrivals.append((frames_of(self.features.samples, self.rate), arrived))
        self.features.finish()
        try:
            return self._collect(final=True)
        finally:
            self.features.close()
            self.closed = True

    def _pcm(self, samples, *, last: bool) -> np.ndarray:
        """The samples as 16-bit mono at the model's rate, converted as the offline path converts a file."""
        samples = np.asarray(samples)
        if samples.ndim == 2 and samples.shape[1] == 1:
            samples = samples[:, 0]
        if samples.dtype == np.int16 and samples.ndim == 1 and self.resampler is None:
            return samples
        signal = samples / 32768.0 if samples.dtype == np.int16 else samples.astype(np.float64)
        if signal.ndim == 2:  # channels averaged, as a file's are
            signal = signal.mean(axis=1)
        if self.resampler is not None:
            signal = self.resampler.resample_chunk(signal, last=last)
        return (np.clip(signal, -1, 32767 / 32768) * 32768).astype(np.int16)

    def _collect(self, *, final: bool) -> pd.DataFrame:
        """Features of the windows completed, raw predictions, and the frames now known."""
        existing = frames_of(self.features.samples, self.rate)
        for w, (first, rows) in self.features.completed().items():
            self.windows_seen[w] = first + len(rows)
            if len(rows):
                self.last_window[w] = rows[-1]
            for dim in self.dimensions.values():
                if dim.window == w:
                    self._add_rows(dim, rows, existing, final)
        # frame t shows the raw prediction of frame max(t - D, 0)
        stop = min(dim.ready(existing) for dim in self.dimensions.values())
        if stop <= self.frames:
            return self._empty()
        first, self.frames = self.frames, stop
        out = pd.DataFrame({"time": np.round(np.arange(first, stop) * LABEL_HOP_S, 2)})
        for name, dim in self.dimensions.items():
            out[name] = dim.outputs(first, stop)
        out["latency_s"] = self._latencies(first, stop)
        return out

    def _add_rows(self, dim: _Dimension, rows: np.ndarray, existing: int, final: bool) -> None:
        """Raw predictions for the frames these window rows belong to, after the frames without a window."""
        dim.add(np.full((max(min(dim.lead, existing) - dim.known(), 0), self.n_features), np.nan))
        dim.add(_as_features(rows))
        if final and dim.known() < existing:  # frames past the last full window take it again, as offline
            last = self.last_window[dim.window]
            missing = existing - dim.known()
            dim.add(np.full((missing, self.n_features), np.nan) if last is None
                    else _as_features(np.tile(last, (missing, 1))))

    def _latencies(self, first: int, stop: int) -> np.ndarray:
        """Seconds from the arrival of the audio that reached each frame's time to now."""
        now = time.perf_counter()
        out = np.empty(stop - first)
        for i, frame in enumerate(range(first, stop)):
            while len(self.arrivals) > 1 and self.arrivals[0][0] <= frame:
                self.arrivals.popleft()
            out[i] = now - self.arrivals[0][1]
        return out

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame({"time": [], **{d: [] for d in self.dimensions}, "latency_s": []})


def _as_features(rows: np.ndarray) -> np.ndarray:
    """Window rows as the offline tables hold them: float32, non-finite values as NaN, read back as float."""
    rows = np.asarray(rows, dtype=np.float32)
    rows = np.where(np.isfinite(rows), rows, np.float32(np.nan))
    return rows.astype(float)
