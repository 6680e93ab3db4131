"""A trained model on new recordings: :func:`load_model` and :class:`TrainedModel`.

Example
-------
>>> from recola_pipeline import load_model                          # doctest: +SKIP
>>> model = load_model("my_model")                                   # doctest: +SKIP
>>> model.predict(audio="session.wav").head()                        # doctest: +SKIP
   time   arousal   valence
0  0.00  0.031...

Predictions use the feature code of the pipeline's own stages
(:func:`~recola_pipeline.extractors.audio_features.audio_features`,
:func:`~recola_pipeline.extractors.face_embedding.face_frames`) and the saved fitted steps, so
a demo test recording gets the evaluate stage's numbers back.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from . import safe_io
from .bundle_io import check_description, confined, read_json, verified_files
from .cache import ArtifactError
from .config import VideoConfig
from .corpora import CorpusError
from .estimators.bundle import predict_system
from .estimators.sequence import attach_weights
from .extractors.audio_features import PIECE_S, audio_features, audio_features_of_file
from .extractors.audio_io import check_audio, load_audio
from .labels import LABEL_HOP_S
from .matrices import label_times
from .modalities import MODALITY_STAGES, SYSTEMS
from .registry import require
from .window import Window, from_seconds

log = logging.getLogger(__name__)

#: the output column that flags frames predicted far outside the training labels' range
OUTSIDE_COLUMN = "outside_training_range"
#: how far outside the range counts as far: this share of its width beyond either end
OUTSIDE_MARGIN = 0.5


def load_model(path: str | Path) -> TrainedModel:
    """Load a bundle written by ``recola-pipeline export``, after checking every file's SHA-256.

    Raises
    ------
    ArtifactError
        A file is missing, changed (checksum), not in skops format or holds a type not on the
        allow-list; the message names the file. Nothing of it is executed.
    """
    path = Path(path)
    files = verified_files(path)
    if "model.json" not in files:
        raise ArtifactError(f"{path}: checksums.json does not list model.json; export the model again")
    description = read_json(files["model.json"])
    check_description(path, description)
    for name in referenced_files(description):
        if name not in files:
            raise ArtifactError(f"{path}: model.json names {name!r}, which checksums.json does not list; it was not "
                                "read. Export the model again")
    return TrainedModel(path, description)


def referenced_files(description: dict) -> list:
    """Every file a bundle's ``model.json`` names (each must be listed, and so checked, in checksums.json)."""
    names = [entry[key] for entry in description["systems"].values() for key in ("model", "weights") if key in entry]
    video = description.get("video") or {}
    return names + [video[key] for key in ("pca", "finetuned") if video.get(key)] + list(description.get("arrays", {}))


class TrainedModel:
    """A loaded model bundle. Use :func:`load_model` to create one.

    Attributes
    ----------
    description : dict
        ``model.json``: features, systems, the system chosen per dimension, scores.
    piece_s : int
        Seconds of an audio file's sound held at a time while its features are computed
        (default :data:`~recola_pipeline.extractors.audio_features.PIECE_S`); the predictions do
        not depend on it.
    """

    def __init__(self, path: Path, description: dict):
        self.path = Path(path)
        self.description = description
        self.dimensions = description["dimensions"]
        self.piece_s = PIECE_S

    def __repr__(self) -> str:
        return f"TrainedModel({str(self.path)!r}, systems={self.description['chosen']})"

    @functools.cache
    def _load(self, name: str):
        arrays = self.description.get("arrays")
        return safe_io.load(confined(self.path, name), arrays=None if arrays is None else arrays.get(name, {}))

    @functools.cache
    def _system_model(self, name: str, weights: str | None):
        """A system's pipeline, its recurrent networks' weights put back from their safetensors file."""
        model = self._load(name)
        if weights is not None:
            safetensors = require("safetensors.numpy", what="a model with recurrent networks", extra="sequence")
            path = confined(self.path, weights)
            try:
                tensors = safetensors.load_file(str(path))
            except Exception as exc:  # safetensors raises its own SafetensorError for a file not in its format
                raise ArtifactError(f"{path} is not a safetensors file ({exc}); export the model again") from None
            try:
                attach_weights(model, tensors, path)
            except ValueError as exc:  # a safetensors file that does not fit the model
                raise ArtifactError(f"{exc}; export the model again") from None
        return model

    def _system(self, dimension: str, system: str) -> dict:
        chosen = {"best": "chosen", "best-causal": "chosen_causal"}
        if system in chosen:
            if dimension not in self.description.get(chosen[system], {}):
                raise CorpusError("the model has no causal system (its run had train.causal off); use --system best")
            key = self.description[chosen[system]][dimension]
        else:
            key = f"{system}_{dimension}"
        if key not in self.description["systems"]:
            raise CorpusError(f"the model has no {system} system for {dimension} "
                              f"(it has {', '.join(sorted(self.description['systems']))})")
        return self.description["systems"][key]

    def modalities(self, system: str = "best") -> list[str]:
        """The modalities the chosen systems need."""
        needed = set()
        for dim in self.dimensions:
            entry = self._system(dim, system)
            for part in [self.description["systems"][k] for k in entry.get("inputs", [])] or [entry]:
                needed |= set(part["windows"])
        return [m for m in MODALITY_STAGES if m in needed]

    def predict(self, audio=None, video=None, *, system: str = "best") -> pd.DataFrame:
        """Arousal and valence at 40 ms for one recording.

        Parameters
        ----------
        audio : str or Path, optional
            An audio file (any rate, mono or stereo), or a video file whose sound is used.
        video : str or Path, optional
            A video file with a face, for models that use video.
        system : str
            ``best`` (the system chosen on devel for each dimension), ``audio``, ``video``,
            ``early``, ``late``, a recurrent system (``gru-audio``, ``lstm-early``...), or a causal one
            (``causal-audio``, ``causal-late``...; ``best-causal``: the causal system chosen on devel).

        Returns
        -------
        DataFrame
            ``time`` (0.00, 0.04, ... on the input's time axis), one column per dimension,
            delay accounted for and post-processing applied, and ``outside_training_range``:
            True where a prediction lies beyond the train labels' range by more than half its
            width.

        Raises
        ------
        CorpusError
            A modality the system needs is missing, the media cannot be read, or the recording
            is shorter than the shortest window.
        """
        if system not in SYSTEMS:
            raise CorpusError(f"system must be one of {', '.join(SYSTEMS)}, got {system!r}")
        needed = self.modalities(system)
        if "video" in needed and video is None:
            raise CorpusError(f"the {system} system uses video; pass a video file (or --system audio)")
        if "audio" in needed and audio is None:
            audio = video  # a video's own sound track
        rate = self.description["audio"]["sample_rate"]
        timeline = Path(audio if audio is not None else video)  # the input's time axis: its audio's when given
        signal = None
        if "audio" in needed and _is_video(audio):
            signal, seconds = _video_sound(Path(audio), rate)
        elif not _is_video(timeline):
            seconds, messages = check_audio(timeline)  # read in blocks: a long recording is never held whole
            for message in messages:
                log.warning("%s", message)
        if _is_video(timeline):
            seconds = _video_module("video_decode").probe(timeline).duration_s
        n_frames = int(np.floor(seconds / LABEL_HOP_S + 1e-6)) + 1
        features = {}
        if "audio" in needed:
            features["audio"] = self._audio_features(audio, signal, n_frames)
        if "video" in needed:
            features["video"] = self._video_features(video, n_frames, seconds)
        out = pd.DataFrame({"time": label_times(n_frames)})
        groups = np.zeros(n_frames, dtype=int)
        for dim in self.dimensions:
            entry = self._system(dim, system)
            parts = [self.description["systems"][k] for k in entry["inputs"]] if "inputs" in entry else [entry]
            X = np.hstack([self._matrix(part, features) for part in parts])  # late: the systems' columns side by side
            out[dim] = predict_system(self._system_model(entry["model"], entry.get("weights")), X, groups)
        out[OUTSIDE_COLUMN] = self._outside_training_range(out, timeline)
        return out

    def stream(self, sample_rate: int | None = None, *, system: str = "best-causal"):
        """Open a live stream: push audio as it arrives, get each 40 ms frame's prediction as soon as it is known.

        Parameters
        ----------
        sample_rate : int, optional
            Rate of the samples pushed (default: the model's); other rates are resampled as
            :meth:`predict` resamples a file.
        system : str
            A causal audio system: ``best-causal`` (chosen on devel) or ``causal-audio``.

        Returns
        -------
        AffectStream
            See :mod:`recola_pipeline.stream` (a context manager; ``close()`` returns the last frames).

        Raises
        ------
        CorpusError
            The system is not a causal audio system (train with ``train.causal = true``).
        """
        from .stream import AffectStream
        return AffectStream(self, system, sample_rate or self.description["audio"]["sample_rate"])

    def _outside_training_range(self, out: pd.DataFrame, source) -> np.ndarray:
        """True where a prediction lies far outside the train labels' range (beyond it by more
        than :data:`OUTSIDE_MARGIN` of its width); one warning per dimension that has such frames."""
        flags = np.zeros(len(out), dtype=bool)
        for dim in self.dimensions:
            low, high = self.description["label_range"][dim]
            margin = OUTSIDE_MARGIN * (high - low)
            outside = ((out[dim] < low - margin) | (out[dim] > high + margin)).to_numpy()
            if outside.any():
                log.warning("%s: %d of %d %s predictions (%.1f%%, up to %.3g) lie far outside the training labels' "
                            "range [%.3g, %.3g]; they are flagged in the %s column. Check the input: level, "
                            "clipping, or a recording unlike the training corpus", source, outside.sum(), len(out),
                            dim, 100 * outside.mean(), out[dim][outside].abs().max(), low, high, OUTSIDE_COLUMN)
            flags |= outside
        return flags

    def predict_files(self, paths, *, system: str = "best") -> dict[str, pd.DataFrame]:
        """:meth:`predict` for several inputs: each an audio or video file, or an ``(audio, video)`` pair."""
        out = {}
        for item in paths:
            audio, video = item if isinstance(item, tuple) else (item, item if _is_video(item) else None)
            out[Path(audio if audio is not None else video).stem] = self.predict(audio, video, system=system)
        return out

    # ------------------------------------------------------------------ features

    def _windows(self, modality: str) -> list[Window]:
        return sorted({Window(e["windows"][modality]) for e in self.description["systems"].values()
                       if modality in e.get("windows", {})})

    def _audio_features(self, path, signal: np.ndarray | None, n_frames: int) -> dict[Window, pd.DataFrame]:
        """The audio features of ``signal``, or of the audio file ``path`` read in pieces of
        :attr:`piece_s` seconds when ``signal`` is None; a recording shorter than the longest
        window is repeated end to end until one window fits (a documented fallback, with a
        warning), and the result cut back."""
        cfg = self.description["audio"]
        rate, windows = cfg["sample_rate"], self._windows("audio")
        needed = max(windows).frames + 1  # frames whose span holds the longest window
        if signal is None and n_frames >= needed:
            tables = audio_features_of_file(path, rate, cfg["feature_set"], windows, n_frames,
                                            piece_s=self.piece_s).tables
            return {w: t.iloc[:n_frames].reset_index(drop=True) for w, t in tables.items()}
        signal = load_audio(path, rate) if signal is None else signal
        if n_frames < needed:
            log.warning("%s: %.2f s is shorter than the model's %g s window; its audio is repeated end to end to "
                        "fill one window, so its predictions are rough", path, signal.size / rate,
                        max(windows).seconds)
            signal = np.tile(signal, int(np.ceil(needed * LABEL_HOP_S * rate / max(signal.size, 1))) + 1)
        tables = audio_features(signal, rate, cfg["feature_set"], windows, max(n_frames, needed),
                                source=str(path)).tables
        return {w: t.iloc[:n_frames].reset_index(drop=True) for w, t in tables.items()}

    def _video_features(self, path, n_frames: int, seconds: float) -> dict[Window, pd.DataFrame]:
        video = self.description["video"]
        cfg = VideoConfig(**{**vars(VideoConfig()), **video["settings"]})
        face_embedding = _video_module("face_embedding")
        backbone = self._backbone()
        probed = _video_module("video_decode").probe(Path(path))
        row = {"recording": Path(path).stem, "video": str(path), "n_frames": n_frames, "decoder": probed.decoder,
               "fps": probed.fps if probed.fps > 0 else 25.0}
        table, info = face_embedding.face_frames(row, cfg, seconds, backbone)
        if info["face_frames"] == 0:
            raise CorpusError(f"{path}: no face was found in any frame; the video systems cannot predict from it "
                              "(use --system audio)")
        return face_embedding.face_window_features(table, self._load(video["pca"]), self._windows("video"))

    @functools.cache
    def _backbone(self):
        import torch
        from safetensors.torch import load_file

        backbones = _video_module("backbones")
        video = self.description["video"]
        settings = video["settings"]
        if backbones.weights_digest(settings["backbone"], settings["weights"]) != video["weights_sha256"]:
            raise ArtifactError(f"the video backbone weights {settings['weights']} differ from those the model was "
                                "trained with (SHA-256); install the same weights file")
        backbone = backbones.load_backbone(settings["backbone"], settings["weights"], input_size=settings["input_size"])
        if video.get("finetuned"):
            backbone.model.load_state_dict(load_file(str(confined(self.path, video["finetuned"]))))
        torch.set_num_threads(max(1, torch.get_num_threads()))
        return backbone

    def _matrix(self, entry: dict, features: dict) -> np.ndarray:
        """The feature matrix of a system: its modalities' tables at its windows, in its training column order."""
        windows = from_seconds(entry["windows"])
        parts = [(m, features[m][w]) for m, w in windows.items()]
        values = [t.drop(columns="time").to_numpy(dtype=float) for _, t in parts]
        if entry.get("causal"):  # each label frame's window ends at the frame
            values = [w.trailing(v) for v, w in zip(values, windows.values())]
        X = np.hstack(values)
        columns = [c for _, t in parts for c in t.columns if c != "time"]
        if len(parts) > 1:
            columns = [f"{m}:{c}" for m, t in parts for c in t.columns if c != "time"]
        if columns != list(entry["features"]):
            raise ArtifactError(f"{self.path / entry['model']}: the features computed now differ from those it was "
                                "trained on (another feature-set version?)")
        return X


def _is_video(path) -> bool:
    return Path(path).suffix.lower() in (".mp4", ".avi", ".mkv", ".mov", ".mpg", ".mpeg", ".webm", ".flv")


def _video_sound(path: Path, sample_rate: int) -> tuple[np.ndarray, float]:
    """Mono audio at ``sample_rate`` from a video container's sound track, and its duration in seconds."""
    try:
        import av
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise CorpusError(f"{path}: the video has no sound track; pass an audio file too")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = [resampled.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                      for resampled in resampler.resample(frame)]
            chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: cannot read its sound track ({exc})") from None
    signal = np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)
    return signal, signal.size / sample_rate


def _video_module(name: str):
    """A module of the face path (``recola_pipeline.extractors.<name>``), imported when a video input needs it."""
    return require(f"recola_pipeline.extractors.{name}", what="predicting from video", extra="video")
