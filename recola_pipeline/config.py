"""One typed configuration for the whole pipeline, loaded from TOML.

Every value has a default, so an empty file (or none) is a valid configuration: it runs the
built-in demo corpus. A key that does not exist or a value of the wrong type is a
:class:`ConfigError` naming the key, the file and the closest valid key.

Example
-------
>>> cfg = load_config(None, overrides=["corpus.gold_standard=mean"])
>>> cfg.corpus.gold_standard
'mean'
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .corpora import CORPORA
from .estimators import ESTIMATOR_NAMES, NORMALISATIONS, SEQUENCE_GRID
from .extractors import AUDIO_FEATURE_SETS
from .inputs import InputError, checked_file
from .labels import GOLD_STANDARDS
from .modalities import MODALITY_STAGES
from .mrpn import AGGREGATORS as MRPN_AGGREGATORS
from .mrpn import ALL_VARIANTS as MRPN_VARIANTS
from .mrpn import CLIP_CORPORA, CLIP_MODALITIES
from .mrpn.config import MrpnConfig
from .parallel import BACKENDS
from .window import Window, is_window

DIMENSIONS = ("arousal", "valence")
#: largest config file read (a real one is a few kB)
MAX_CONFIG_BYTES = 2**20
#: longest list a grid setting may hold (every entry is a model fit or a feature pass)
MAX_GRID = 64
#: a window, median filter or gap may always be this long (s), and never longer than an hour
MIN_LENGTH_LIMIT_S, MAX_LENGTH_S = 60.0, 3600.0
#: the settings bounded by the recording length
RECORDING_LENGTHS = ("audio.windows_s", "video.windows_s", "evaluate.median_windows_s", "video.max_gap_s",
                     "sequence.window_s")


def _short(value) -> str:
    """A value as shown in a message: deep or long structures cut (a 2,000-deep table would overflow repr)."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict, shown.maxstring, shown.maxother = 3, 8, 4, 60, 60
    return shown.repr(value)


class ConfigError(ValueError):
    """A configuration file or override that cannot be used as written."""


@dataclass
class RunConfig:
    """Where artifacts go and how much parallelism to use."""

    artifact_root: str = "."
    jobs: int = -1
    backend: str = "loky"
    scheduler: str = ""
    progress: bool = True


@dataclass
class CorpusConfig:
    """Which corpus to read and how to build its gold standard.

    ``gold_standard``: ``avec2016``, ``mean`` or ``ewe`` combine the individual ratings;
    ``shipped`` takes gold-standard files as the labels (AVEC 2016 layout: its
    ``ratings_gold_standard/`` ARFFs, the default when ``ratings_individual/`` is absent).
    ``allow_shared_labels``: accept one label file named by recordings of different partitions
    (refused by default: the test labels would be the train or devel labels).
    """

    name: str = "demo"
    data_root: str = ""
    manifest: str = ""
    partitions_csv: str = ""
    dimensions: list[str] = field(default_factory=lambda: list(DIMENSIONS))
    gold_standard: str = "avec2016"
    max_seconds: float = 300.0
    max_label_gap_s: float = 1.0
    allow_shared_labels: bool = False


@dataclass
class DemoConfig:
    """Size and seed of the built-in demo corpus (generated, never shipped)."""

    recordings_per_partition: int = 3
    duration_s: float = 60.0
    seed: int = 2016
    sample_rate: int = 16000
    video: bool = True


@dataclass
class AudioConfig:
    """Acoustic features: eGeMAPS functionals over centred W-second windows at the label rate."""

    feature_set: str = "egemaps"
    windows_s: list[float] = field(default_factory=lambda: [4.0, 6.0, 8.0, 10.0, 12.0, 14.0])
    sample_rate: int = 16000

    @property
    def windows(self) -> list[Window]:
        """``windows_s`` as window lengths."""
        return [Window(w) for w in self.windows_s]


@dataclass
class VideoConfig:
    """Face video: detection, crops, CNN embeddings, PCA, functionals over W-second windows.

    ``backbone`` is ``fer2013`` (the FER-2013 mini-Xception of the ``fer`` package, as the seed
    paper pre-trained on FER-2013) or any timm model name (e.g. ``resnet18``); ``weights`` is
    ``pretrained``, ``random``, a local weights file or an installed weights package
    (``package:<name>``).
    """

    backbone: str = "fer2013"
    weights: str = "pretrained"
    input_size: int = 0
    batch_size: int = 64
    detect_every: int = 5
    detect_width: int = 320
    smoothing: int = 5
    max_gap_s: float = 1.0
    margin: float = 0.2
    finetune_epochs: int = 0
    finetune_stride: int = 5
    pca_variance: float = 0.98
    windows_s: list[float] = field(default_factory=lambda: [4.0, 6.0, 8.0, 10.0, 12.0, 14.0])

    @property
    def windows(self) -> list[Window]:
        """``windows_s`` as window lengths."""
        return [Window(w) for w in self.windows_s]


#: the ``video`` keys the (expensive) embedding depends on; the rest only change PCA and windows
VIDEO_EMBEDDING_KEYS = ("backbone", "weights", "input_size", "batch_size", "detect_every", "detect_width", "smoothing",
                        "max_gap_s", "margin", "finetune_epochs", "finetune_stride")


def _c_grid() -> list[float]:
    return [round(m * 10.0 ** e, 10) for e in range(-5, 0) for m in (1, 2, 5)] + [1.0]


@dataclass
class TrainConfig:
    """Delay-shifted linear SVRs searched over window, delay, C and normalisation on devel.

    ``modalities`` empty (the default) means every modality the corpus has. ``causal``: beside every
    SVR system, a causal one (``causal-audio``) that uses no future input: windows that end at the
    label frame, normalisation by train statistics or online (``causal_normalisation``, searched on
    devel; ``online``: running statistics of the recording's past, started from the train ones
    weighted as ``online_warmup_s`` seconds), trailing median filters (docs/live.md).
    """

    modalities: list[str] = field(default_factory=list)
    normalisation: list[str] = field(default_factory=lambda: ["train", "recording"])
    kernel: str = "linear"
    rbf_components: int = 500
    c_grid: list[float] = field(default_factory=_c_grid)
    delay_max_s: float = 8.0
    delay_step_s: float = 0.4
    delay_early_stop: bool = False
    seed: int = 0
    estimators: list[str] = field(default_factory=lambda: ["svr"])
    causal: bool = False
    causal_normalisation: list[str] = field(default_factory=lambda: ["train", "online"])
    online_warmup_s: float = 30.0


@dataclass
class SequenceConfig:
    """The recurrent regressors (``train.estimators`` gru, lstm): the MuSe-style baseline.

    Each list is a grid searched on devel (every combination), like the SVR's W, D and C. The
    network reads the features of the shortest window each modality extracted (``window_s``: 0)
    or of ``window_s``, at the 40 ms label rate, normalised as ``train.normalisation`` says.
    ``delays_s``: D applied (0: the network learns the delay from its context). Early stopping
    holds out ``validation_fraction`` of the train recordings; ``seeds`` networks are averaged.
    """

    window_s: float = 0.0
    hidden: list[int] = field(default_factory=lambda: [32])
    layers: list[int] = field(default_factory=lambda: [1])
    bidirectional: list[bool] = field(default_factory=lambda: [True])
    dropout: list[float] = field(default_factory=lambda: [0.2])
    learning_rate: list[float] = field(default_factory=lambda: [0.001])
    segment_frames: list[int] = field(default_factory=lambda: [200])
    segment_hop_frames: int = 100
    delays_s: list[float] = field(default_factory=lambda: [0.0, 2.0, 4.0])
    batch_size: int = 16
    max_epochs: int = 40
    patience: int = 6
    validation_fraction: float = 0.25
    seeds: int = 3


@dataclass
class EvaluateConfig:
    """Post-processing and late fusion chosen on held-out devel recordings; bootstrap intervals.

    Each post-processing step is kept only if the CCC of devel recordings it was not fitted on
    improves (leave one recording out, or ``max_folds`` folds of recordings).
    """

    postprocess: bool = True
    median_windows_s: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.8, 1.2, 1.6, 2.4, 3.2])
    centring: bool = True
    scaling: bool = True
    max_folds: int = 10
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0


@dataclass
class Config:
    """The whole pipeline configuration: one attribute per TOML section."""

    run: RunConfig = field(default_factory=RunConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    mrpn: MrpnConfig = field(default_factory=MrpnConfig)

    def section(self, name: str) -> dict:
        """Return one section as a plain dict (used for artifact hashing)."""
        return dataclasses.asdict(getattr(self, name))


def _closest(name: str, valid: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def _check_type(value, annotation, where: str):
    """Return ``value`` converted to ``annotation`` or raise ConfigError naming ``where``."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_short(value)}")
        return [_check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 1e300 else float("inf")
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {_short(value)} ({type(value).__name__})")
    if annotation is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number; give a number such as 1.0")
    if annotation is int and abs(value) > 2**31:
        raise ConfigError(f"{where}: {value} is out of range")
    if annotation is str and "\x00" in value:
        raise ConfigError(f"{where}: the text contains a NUL character")
    return value


def _apply(cfg: Config, data: dict, source: str) -> None:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for sec_name, values in data.items():
        if sec_name not in sections:
            raise ConfigError(f"{source}: unknown section [{sec_name}]{_closest(sec_name, sections)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{sec_name}] must be a table of keys")
        section = getattr(cfg, sec_name)
        hints = typing.get_type_hints(type(section))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(
                    f"{source}: unknown key '{sec_name}.{key}'{_closest(key, hints)} "
                    f"(valid keys in [{sec_name}]: {', '.join(hints)})"
                )
            setattr(section, key, _check_type(value, hints[key], f"{source}: '{sec_name}.{key}'"))


def _parse_override(text: str) -> tuple[str, str, object]:
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. corpus.gold_standard=mean")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as `mean` is taken as a string
    except RecursionError:
        raise ConfigError(f"--set {dotted}: the value is nested too deeply to read; give a number, a string or a "
                          "flat list") from None
    return section, key, value


def longest_recording_s(cfg: Config) -> float:
    """The longest stretch of a recording the pipeline reads: the demo's duration, else ``corpus.max_seconds``."""
    return cfg.demo.duration_s if cfg.corpus.name == "demo" else cfg.corpus.max_seconds


def size_limits(cfg: Config) -> list[tuple[str, list, float]]:
    """Every setting that sizes an array, a loop or a grid: ``(key, values, largest)``.

    Lengths in seconds are bounded by the longest recording the run reads, or 60 s when that is
    shorter (a window or median filter longer than the recording only repeats edge values, and
    sizes buffers from the setting, not the data), and never beyond an hour; counts and pixel
    sizes by a ceiling far above any sensible use. So a typo (``1e9``) is refused before anything
    is allocated, never a process killed for memory.
    """
    longest = min(MAX_LENGTH_S, max(MIN_LENGTH_LIMIT_S, longest_recording_s(cfg)))
    return [
        ("corpus.max_seconds", [cfg.corpus.max_seconds], 86400.0),
        ("audio.windows_s", cfg.audio.windows_s, longest),
        ("video.windows_s", cfg.video.windows_s, longest),
        ("evaluate.median_windows_s", cfg.evaluate.median_windows_s, longest),
        ("train.delay_max_s", [cfg.train.delay_max_s], 60.0),
        ("train.delay_step_s", [cfg.train.delay_step_s], 60.0),
        ("video.max_gap_s", [cfg.video.max_gap_s], longest),
        ("video.input_size", [cfg.video.input_size], 1024),
        ("video.batch_size", [cfg.video.batch_size], 4096),
        ("video.detect_width", [cfg.video.detect_width], 4096),
        ("video.smoothing", [cfg.video.smoothing], 251),
        ("video.finetune_epochs", [cfg.video.finetune_epochs], 1000),
        ("train.rbf_components", [cfg.train.rbf_components], 20000),
        ("sequence.window_s", [cfg.sequence.window_s], longest),
        ("sequence.hidden", cfg.sequence.hidden, 4096),
        ("sequence.layers", cfg.sequence.layers, 16),
        ("sequence.segment_frames", cfg.sequence.segment_frames, 90000),
        ("sequence.segment_hop_frames", [cfg.sequence.segment_hop_frames], 90000),
        ("sequence.delays_s", cfg.sequence.delays_s, 60.0),
        ("sequence.batch_size", [cfg.sequence.batch_size], 4096),
        ("sequence.max_epochs", [cfg.sequence.max_epochs], 10000),
        ("sequence.seeds", [cfg.sequence.seeds], 100),
        ("evaluate.bootstrap_resamples", [cfg.evaluate.bootstrap_resamples], 100000),
        ("evaluate.max_folds", [cfg.evaluate.max_folds], 1000),
        ("mrpn.min_slice_s", [cfg.mrpn.min_slice_s], 60.0),
        ("mrpn.face_size", [cfg.mrpn.face_size], 512),
        ("mrpn.face_stride", [cfg.mrpn.face_stride], 1000),
        ("mrpn.n_mels", [cfg.mrpn.n_mels], 512),
        ("mrpn.spectrogram_hop", [cfg.mrpn.spectrogram_hop], 48000),
        ("mrpn.cnn_width", [cfg.mrpn.cnn_width], 1024),
        ("mrpn.hidden", [cfg.mrpn.hidden], 4096),
        ("mrpn.batch_size", [cfg.mrpn.batch_size], 4096),
        ("mrpn.max_epochs", [cfg.mrpn.max_epochs], 10000),
        ("mrpn.unimodal_seeds", cfg.mrpn.unimodal_seeds, 100),
    ]


def _check_sizes(cfg: Config, source: str) -> None:
    """Refuse, before any other check computes with it, a value that would size an array, a loop
    or a grid beyond what can run; the message names the key and the largest value that runs."""
    grids = {"audio.windows_s": cfg.audio.windows_s, "video.windows_s": cfg.video.windows_s,
             "train.c_grid": cfg.train.c_grid, "evaluate.median_windows_s": cfg.evaluate.median_windows_s,
             **{f"sequence.{key}": getattr(cfg.sequence, key) for key in SEQUENCE_GRID}}
    for key, values in grids.items():
        if len(values) > MAX_GRID:
            raise ConfigError(f"{source}: {key} lists {len(values)} values; at most {MAX_GRID} can be searched")
    for key, values, largest in size_limits(cfg):
        for value in values:
            if value > largest:
                why = (" (the longest recording this run reads, demo.duration_s or corpus.max_seconds, at least "
                       f"{MIN_LENGTH_LIMIT_S:g} s and at most {MAX_LENGTH_S:g} s)" if key in RECORDING_LENGTHS else "")
                raise ConfigError(f"{source}: {key} = {_short(value)} is too large; the largest value that runs is "
                                  f"{largest:g}{why}")


def _validate(cfg: Config, source: str) -> None:
    _check_sizes(cfg, source)
    checks = [
        (cfg.corpus.name in CORPORA, f"corpus.name must be one of {tuple(CORPORA)}, got {cfg.corpus.name!r}"),
        (cfg.corpus.name != "demo" or not (cfg.corpus.data_root or cfg.corpus.manifest or cfg.corpus.partitions_csv),
         "a data root, manifest or partitions file was given but the corpus is the built-in demo (its partitions "
         "are fixed); add --corpus recola, avec2016 or manifest to read your corpus"),
        (cfg.corpus.gold_standard in GOLD_STANDARDS,
         f"corpus.gold_standard must be one of {GOLD_STANDARDS}, got {cfg.corpus.gold_standard!r}"),
        (set(cfg.corpus.dimensions) <= set(DIMENSIONS) and cfg.corpus.dimensions
         and len(set(cfg.corpus.dimensions)) == len(cfg.corpus.dimensions),
         f"corpus.dimensions must list distinct names of {DIMENSIONS}, got {cfg.corpus.dimensions}"),
        (0 < cfg.corpus.max_seconds <= 86400, "corpus.max_seconds must be positive (at most a day)"),
        (0 <= cfg.corpus.max_label_gap_s < float("inf"),
         "corpus.max_label_gap_s must be a finite number of seconds >= 0"),
        (1 <= cfg.demo.recordings_per_partition <= 100, "demo.recordings_per_partition must be between 1 and 100"),
        (20 <= cfg.demo.duration_s <= 3600, "demo.duration_s must be between 20 s and 3600 s"),
        (8000 <= cfg.demo.sample_rate <= 96000, "demo.sample_rate must be between 8000 and 96000 Hz"),
        (cfg.audio.feature_set in AUDIO_FEATURE_SETS,
         f"audio.feature_set must be one of {tuple(AUDIO_FEATURE_SETS)}, got {cfg.audio.feature_set!r}"),
        (bool(cfg.audio.windows_s) and len(set(cfg.audio.windows_s)) == len(cfg.audio.windows_s)
         and all(map(is_window, cfg.audio.windows_s)),
         f"audio.windows_s must be distinct positive multiples of 0.08 s (W/2 on the 40 ms grid), "
         f"got {cfg.audio.windows_s}"),
        (8000 <= cfg.audio.sample_rate <= 96000, "audio.sample_rate must be between 8000 and 96000 Hz"),
        (bool(cfg.video.windows_s) and len(set(cfg.video.windows_s)) == len(cfg.video.windows_s)
         and all(map(is_window, cfg.video.windows_s)),
         f"video.windows_s must be distinct positive multiples of 0.08 s (W/2 on the 40 ms grid), "
         f"got {cfg.video.windows_s}"),
        (cfg.video.input_size >= 0 and cfg.video.batch_size >= 1 and cfg.video.detect_every >= 1
         and cfg.video.detect_width >= 64, "video.input_size must be >= 0 (0: the backbone's own), video.batch_size and "
                                           "video.detect_every >= 1, video.detect_width >= 64"),
        (cfg.video.smoothing >= 1 and cfg.video.smoothing % 2 == 1, "video.smoothing must be an odd count >= 1"),
        (cfg.video.max_gap_s >= 0 and 0 <= cfg.video.margin <= 1, "video.max_gap_s must be >= 0 and video.margin in [0, 1]"),
        (cfg.video.finetune_epochs >= 0 and cfg.video.finetune_stride >= 1,
         "video.finetune_epochs must be >= 0 (0: no fine-tuning) and video.finetune_stride >= 1"),
        (0 < cfg.video.pca_variance <= 1, "video.pca_variance must be in (0, 1] (1: keep every component)"),
        (set(cfg.train.modalities) <= set(MODALITY_STAGES) and len(set(cfg.train.modalities)) == len(cfg.train.modalities),
         f"train.modalities must list distinct names of {tuple(MODALITY_STAGES)} (empty: those the corpus has), "
         f"got {cfg.train.modalities}"),
        (bool(cfg.train.normalisation) and set(cfg.train.normalisation) <= set(NORMALISATIONS)
         and len(set(cfg.train.normalisation)) == len(cfg.train.normalisation),
         f"train.normalisation must list distinct names of {NORMALISATIONS}, got {cfg.train.normalisation}"),
        (cfg.train.kernel in ("linear", "rbf"), "train.kernel must be 'linear' or 'rbf'"),
        (cfg.train.rbf_components >= 1, "train.rbf_components must be at least 1"),
        (bool(cfg.train.c_grid) and min(cfg.train.c_grid) > 0, "train.c_grid must be positive values"),
        (0 <= cfg.train.delay_max_s <= 60 and cfg.train.delay_step_s >= 0.04,
         "train.delay_max_s must be between 0 and 60 s and train.delay_step_s at least 0.04 s (one label frame)"),
        (bool(cfg.train.estimators) and set(cfg.train.estimators) <= set(ESTIMATOR_NAMES)
         and len(set(cfg.train.estimators)) == len(cfg.train.estimators),
         f"train.estimators must list distinct names of {ESTIMATOR_NAMES}, got {cfg.train.estimators}"),
        (not cfg.train.causal or "svr" in cfg.train.estimators,
         "train.causal adds causal SVR systems: train.estimators must include 'svr'"),
        (bool(cfg.train.causal_normalisation) and set(cfg.train.causal_normalisation) <= {"train", "online"}
         and len(set(cfg.train.causal_normalisation)) == len(cfg.train.causal_normalisation),
         "train.causal_normalisation must list distinct names of ('train', 'online'): per-recording statistics "
         f"need the recording's future, got {cfg.train.causal_normalisation}"),
        (cfg.train.online_warmup_s >= 0, "train.online_warmup_s must be >= 0 s"),
        (all(bool(getattr(cfg.sequence, key)) for key in SEQUENCE_GRID),
         f"every sequence grid ({', '.join(SEQUENCE_GRID)}) must list at least one value"),
        (cfg.sequence.window_s >= 0 and min(cfg.sequence.hidden) >= 1 and min(cfg.sequence.layers) >= 1
         and 0 <= min(cfg.sequence.dropout) and max(cfg.sequence.dropout) < 1 and min(cfg.sequence.learning_rate) > 0
         and min(cfg.sequence.segment_frames) >= 2 and cfg.sequence.segment_hop_frames >= 1
         and min(cfg.sequence.delays_s) >= 0 and cfg.sequence.batch_size >= 1 and cfg.sequence.max_epochs >= 1
         and cfg.sequence.patience >= 1 and 0 < cfg.sequence.validation_fraction < 1 and cfg.sequence.seeds >= 1,
         "sequence: window_s must be >= 0 (0: the shortest extracted), hidden, layers, batch_size, max_epochs, "
         "patience, seeds and segment_hop_frames >= 1, segment_frames >= 2, dropout in [0, 1), learning_rate > 0, "
         "delays_s >= 0 and validation_fraction in (0, 1)"),
        (bool(cfg.evaluate.median_windows_s) and min(cfg.evaluate.median_windows_s) >= 0,
         "evaluate.median_windows_s must list lengths >= 0 s (0: no median filter)"),
        (cfg.evaluate.max_folds >= 3, "evaluate.max_folds must be at least 3"),
        (cfg.evaluate.bootstrap_resamples >= 100, "evaluate.bootstrap_resamples must be at least 100"),
        (cfg.run.backend in BACKENDS, f"run.backend must be one of {BACKENDS}, got {cfg.run.backend!r}"),
        (not cfg.run.scheduler or cfg.run.scheduler.startswith(("local:", "tcp://", "tls://")),
         f"run.scheduler must be 'local:N' or a scheduler address such as tcp://host:8786, got {cfg.run.scheduler!r}"),
        (cfg.run.jobs != 0, "run.jobs must be a positive count or -1 for all cores"),
        (cfg.mrpn.corpus in CLIP_CORPORA, f"mrpn.corpus must be one of {tuple(CLIP_CORPORA)}, got {cfg.mrpn.corpus!r}"),
        (cfg.mrpn.corpus == "demo" or bool(cfg.mrpn.data_root),
         f"mrpn.data_root must name the {cfg.mrpn.corpus} folder (mrpn.corpus = {cfg.mrpn.corpus!r})"),
        (len(set(cfg.mrpn.modalities)) >= 2 and set(cfg.mrpn.modalities) <= set(CLIP_MODALITIES),
         f"mrpn.modalities must be two or more of {CLIP_MODALITIES}, got {cfg.mrpn.modalities}"),
        (bool(cfg.mrpn.variants) and set(cfg.mrpn.variants) <= set(MRPN_VARIANTS),
         f"mrpn.variants must be a non-empty subset of {MRPN_VARIANTS}, got {cfg.mrpn.variants}"),
        (bool(cfg.mrpn.time_augmentation), "mrpn.time_augmentation must list true and/or false"),
        (cfg.mrpn.aggregator in MRPN_AGGREGATORS, f"mrpn.aggregator must be one of {MRPN_AGGREGATORS}"),
        (not cfg.mrpn.unimodal_seeds or (len(cfg.mrpn.unimodal_seeds) == len(cfg.mrpn.modalities)
                                         and min(cfg.mrpn.unimodal_seeds) >= 1),
         f"mrpn.unimodal_seeds must be empty (one network each) or give a count >= 1 per modality of "
         f"{cfg.mrpn.modalities}, in that order; got {cfg.mrpn.unimodal_seeds}"),
        (cfg.mrpn.hidden >= 4 and cfg.mrpn.hidden % 4 == 0, "mrpn.hidden must be a multiple of 4 (>= 4)"),
        (cfg.mrpn.min_slice_s > 0 and cfg.mrpn.face_size >= 16 and cfg.mrpn.face_stride >= 1
         and cfg.mrpn.n_mels >= 0 and cfg.mrpn.spectrogram_hop >= 1 and cfg.mrpn.cnn_width >= 4,
         "mrpn.min_slice_s must be > 0, face_size >= 16, face_stride >= 1, n_mels >= 0 (0: linear bins), "
         "spectrogram_hop >= 1, cnn_width >= 4"),
        (cfg.mrpn.max_epochs >= 1 and cfg.mrpn.patience >= 1 and cfg.mrpn.lr_patience >= 1
         and cfg.mrpn.batch_size >= 2 and cfg.mrpn.learning_rate > 0 and cfg.mrpn.weight_decay >= 0,
         "mrpn.max_epochs, patience, lr_patience must be >= 1, batch_size >= 2, learning_rate > 0, "
         "weight_decay >= 0"),
        (cfg.mrpn.finetune_blocks >= -1 and 0 < cfg.mrpn.extractor_lr_factor <= 1,
         "mrpn.finetune_blocks must be >= -1 (-1: train the whole extractor) and mrpn.extractor_lr_factor in (0, 1]"),
        (cfg.mrpn.device in ("auto", "cpu", "cuda") or cfg.mrpn.device.startswith("cuda:"),
         f"mrpn.device must be auto, cpu, cuda or cuda:N, got {cfg.mrpn.device!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def load_config(path: str | Path | None = None, *, overrides: typing.Sequence[str] = (), data: dict | None = None,
                source: str = "") -> Config:
    """Load a configuration from TOML, apply ``section.key=value`` overrides and validate.

    Parameters
    ----------
    path : str or Path or None
        TOML file; ``None`` means all defaults.
    overrides : sequence of str
        ``section.key=value`` strings (values in TOML syntax; bare words are strings).
    data : dict, optional
        Settings as a TOML file would give them (e.g. a run's recorded configuration), applied
        after ``path`` and before ``overrides``; ``source`` names them in messages.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        Unknown section or key (with the closest valid one), wrong type, invalid value,
        unreadable or malformed file.
    """
    cfg = Config()
    source = source if data is not None else "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            table = tomllib.loads(checked_file(path, "config file", "--config", max_bytes=MAX_CONFIG_BYTES).read_text())
        except InputError as exc:
            raise ConfigError(f"{exc} (pass an existing TOML file)") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text; pass a TOML file to --config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except RecursionError:
            raise ConfigError(f"{path}: tables or arrays nested too deeply to read; a config has sections of "
                              "keys (e.g. [audio] windows_s = [4.0, 8.0])") from None
        _apply(cfg, table, source)
    if data is not None:
        _apply(cfg, data, source or "settings")
    for text in overrides:
        section, key, value = _parse_override(text)
        _apply(cfg, {section: {key: value}}, f"--set {text}")
    _validate(cfg, source if not overrides else f"{source} with --set overrides")
    for section, key in (("corpus", "data_root"), ("corpus", "manifest"), ("corpus", "partitions_csv"),
                         ("run", "artifact_root"), ("mrpn", "data_root")):
        value = getattr(getattr(cfg, section), key)
        if value:  # one spelling per folder, so the same data always hashes the same
            setattr(getattr(cfg, section), key, str(Path(value).expanduser().resolve()))
    for section, key in (("video", "weights"), ("mrpn", "face_weights"), ("mrpn", "spectrogram_weights")):
        value = getattr(getattr(cfg, section), key)
        if value not in ("pretrained", "random") and not value.startswith("package:"):  # a file: one spelling
            setattr(getattr(cfg, section), key, str(Path(value).expanduser().resolve()))
    return cfg
