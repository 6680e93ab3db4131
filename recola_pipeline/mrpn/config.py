"""The settings of the categorical path (``[mrpn]`` in a config file), owned by the path itself.

:class:`~recola_pipeline.config.Config` holds one as its ``mrpn`` section; validation stays there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ALL_VARIANTS


@dataclass
class MrpnConfig:
    """The categorical MRPN side path (Chang & Skarbek 2021) on clips of RAVDESS, CREMA-D or the demo.

    Extractors: ``small_cnn`` (4 conv layers), any timm model name (e.g. ``resnet18``; for the
    spectrogram built with ``in_chans=1``) or, for faces, ``fer2013``; weights ``random``,
    ``pretrained``, a local file or an installed weights package (``package:<name>``, see
    :mod:`~recola_pipeline.extractors.backbones`). ``finetune_blocks`` >= 0: of every
    extractor with pretrained weights (timm MobileNet/EfficientNet family), only the last that
    many stages and the head convolution are trained, the layers before are frozen and their
    outputs computed once per process; -1 trains whole extractors. ``extractor_lr_factor``
    scales the learning rate of pretrained extractor layers (the heads, aggregators and fusion
    keep ``learning_rate``). ``spec_augment`` masks random frequency bands and time spans of
    each training spectrogram step (:func:`~recola_pipeline.mrpn.training.spec_augment`).
    ``unimodal_seeds``: per modality (in ``modalities`` order; empty: 1 each), how many unimodal
    networks are trained from different seeds and combined by the product rule
    (:func:`~recola_pipeline.mrpn.networks.seed_ensemble`). ``start_from_unimodal``: late fusion
    and N1/N2/N3 start where the product rule of the fold's trained unimodal networks is
    (:func:`~recola_pipeline.mrpn.networks.start_from_unimodal`), not from random fusion layers
    and the extractors' weights (the seed's way). The
    defaults are a CPU setting (small CNNs from random initialisation, 32 mel bands with a 20 ms
    hop); ``configs/mrpn_seed.toml`` holds the seed's setting (ResNet-18 extractors, 257 linear
    bins with hop 64) for a GPU; ``configs/ravdess_mrpn_pretrained.toml`` an ImageNet-pretrained
    spectrogram network fine-tuned on a CPU.
    """

    corpus: str = "demo"
    data_root: str = ""
    modalities: list[str] = field(default_factory=lambda: ["face", "spectrogram"])
    face_extractor: str = "small_cnn"
    spectrogram_extractor: str = "small_cnn"
    face_weights: str = "random"
    spectrogram_weights: str = "random"
    cnn_width: int = 16
    aggregator: str = "lstm"
    hidden: int = 64
    variants: list[str] = field(default_factory=lambda: list(ALL_VARIANTS))
    time_augmentation: list[bool] = field(default_factory=lambda: [True, False])
    min_slice_s: float = 1.0
    face_size: int = 48
    face_stride: int = 5
    n_mels: int = 32
    spectrogram_hop: int = 320
    max_epochs: int = 40
    patience: int = 12
    lr_patience: int = 10
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 8
    finetune_blocks: int = -1
    extractor_lr_factor: float = 1.0
    spec_augment: bool = False
    unimodal_seeds: list[int] = field(default_factory=list)
    start_from_unimodal: bool = False
    folds: list[int] = field(default_factory=list)
    seed: int = 0
    device: str = "auto"


#: the ``mrpn`` keys the per-clip inputs (the ``clips`` stage) depend on
MRPN_INPUT_KEYS = ("corpus", "data_root", "modalities", "face_extractor", "face_size", "face_stride", "n_mels",
                   "spectrogram_hop")
