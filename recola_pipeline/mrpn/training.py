"""Training and scoring of MRPN networks on clip sequences.

Conventions (pinned here, tested in ``tests/test_mrpn_training.py``):

* A batch pads each modality's sequences to the longest clip of the batch and passes the true
  lengths, so padding never reaches the aggregators (:class:`~recola_pipeline.mrpn.networks.SequenceBranch`).
* Time augmentation (training only, when on): each clip of a batch is cut to its own random
  span of at least ``min_slice_s`` seconds, the same span in every modality
  (:func:`~recola_pipeline.mrpn.inputs.time_slice`). Validation and test clips are whole.
* Spatial augmentation (training only, always): one random horizontal flip and shift per clip,
  the same for all its face frames.
* SpecAugment-style masking (training only, with ``spec_augment``): per spectrogram step,
  ``SPEC_AUGMENT_MASKS`` frequency bands and as many time spans, each up to
  ``SPEC_AUGMENT_WIDTH`` of its axis, set to 0 (:func:`spec_augment`). It acts on what the
  spectrogram branch is fed: the log spectrogram, or, when a pretrained extractor's trunk is
  frozen and cached (``mrpn.finetune_blocks``), the trunk's feature map, whose rows and columns
  still run along frequency and time (masking there drops whole receptive fields).
* AdamW on the trainable parameters; pretrained extractor layers (an extractor whose
  ``pretrained`` attribute is true) learn at ``extractor_lr_factor`` times the learning rate of
  the aggregators and heads. The learning rate halves when the validation loss has not
  dropped for ``lr_patience`` epochs. The best epoch is the one with the highest validation
  accuracy (ties: the lower validation loss); training stops ``patience`` epochs after it, and
  its weights are kept. Validation loss and accuracy are the fused branch's (what the network is
  used for) on whole clips. Selecting on accuracy rather than loss matters for the joint
  networks: their validation loss starts rising (over-confident scores) epochs before their
  accuracy stops improving (RAVDESS, fold 1: N1 stopped at epoch 1 on the loss criterion).
* Seeds: torch and numpy are seeded from ``seed`` before the network is built and trained, so a
  run is repeatable on the same device and library versions.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from .config import MrpnConfig
from .inputs import time_slice
from .networks import MultiModalNet

MAX_SHIFT = 0.1  # spatial augmentation: largest shift, as a fraction of the crop side
SPEC_AUGMENT_MASKS = 2  # per spectrogram step: this many frequency bands and this many time spans
SPEC_AUGMENT_WIDTH = 0.15  # the widest mask, as a fraction of its axis


@dataclass
class ClipSet:
    """Clips as per-modality step sequences with integer labels.

    Attributes
    ----------
    inputs : dict
        Modality -> list (one per clip) of arrays shaped (steps, ...).
    labels : ndarray of int
    steps_per_s : dict
        Modality -> steps per second (for time augmentation).
    """

    inputs: dict[str, list[np.ndarray]]
    labels: np.ndarray
    steps_per_s: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ClipSet":
        """The clips at ``index`` (positions)."""
        return ClipSet({m: [seqs[i] for i in index] for m, seqs in self.inputs.items()}, self.labels[index],
                       self.steps_per_s)

    def only(self, modalities) -> "ClipSet":
        """The same clips with only the given modalities."""
        return ClipSet({m: self.inputs[m] for m in modalities}, self.labels,
                       {m: r for m, r in self.steps_per_s.items() if m in modalities})


@dataclass
class TrainSettings:
    """Optimisation settings of :func:`fit` (see the module docstring); the ``mrpn`` stage fills
    every field but ``time_augmentation`` from the ``[mrpn]`` keys of the same names, whose
    defaults these are."""

    max_epochs: int = MrpnConfig.max_epochs
    patience: int = MrpnConfig.patience
    lr_patience: int = MrpnConfig.lr_patience
    learning_rate: float = MrpnConfig.learning_rate
    weight_decay: float = MrpnConfig.weight_decay
    batch_size: int = MrpnConfig.batch_size
    min_slice_s: float = MrpnConfig.min_slice_s
    extractor_lr_factor: float = MrpnConfig.extractor_lr_factor
    spec_augment: bool = MrpnConfig.spec_augment
    time_augmentation: bool = True


def standardise(train: ClipSet, *others: ClipSet, modality: str = "lld") -> list[ClipSet]:
    """Standardise ``modality`` per descriptor with the mean and std of the training clips' frames.

    Returns new sets (train first); the inputs are not changed in place.
    """
    if modality not in train.inputs:
        return [train, *others]
    frames = np.concatenate(train.inputs[modality])
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std[std == 0] = 1.0
    out = []
    for clips in (train, *others):
        inputs = dict(clips.inputs)
        inputs[modality] = [((x - mean) / std).astype(np.float32) for x in clips.inputs[modality]]
        out.append(ClipSet(inputs, clips.labels, clips.steps_per_s))
    return out


def _spatial(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random flip and shift for all face frames of a clip (edge pixels repeated)."""
    side = crops.shape[1]
    shift = int(round(MAX_SHIFT * side))
    dy, dx = rng.integers(-shift, shift + 1, size=2)
    pad = [(0, 0), (shift, shift), (shift, shift)] + [(0, 0)] * (crops.ndim - 3)
    padded = np.pad(crops, pad, mode="edge")
    out = padded[:, shift + dy:shift + dy + side, shift + dx:shift + dx + side]
    return out[:, :, ::-1] if rng.random() < 0.5 else out


def spec_augment(steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of spectrogram steps (n, ..., F, T) with, per step, ``SPEC_AUGMENT_MASKS`` random
    frequency bands and time spans (each 0 to ``SPEC_AUGMENT_WIDTH`` of its axis) set to 0."""
    out = np.array(steps, copy=True)
    for step in out:
        for axis in (-2, -1):
            size = step.shape[axis]
            for _ in range(SPEC_AUGMENT_MASKS):
                width = int(rng.integers(0, max(1, int(SPEC_AUGMENT_WIDTH * size)) + 1))
                start = int(rng.integers(0, size - width + 1))
                index = [slice(None)] * step.ndim
                index[axis] = slice(start, start + width)
                step[tuple(index)] = 0
    return out


def make_batch(clips: ClipSet, index, *, rng: np.random.Generator | None = None, min_slice_s: float = 1.0,
               slice_time: bool = False, mask_spectrograms: bool = False, device="cpu"
               ) -> tuple[dict, dict, torch.Tensor]:
    """Padded tensors, lengths and labels of the clips at ``index``.

    With ``rng`` the batch is augmented for training: spatial augmentation of faces, with
    ``slice_time`` a random span of at least ``min_slice_s`` per clip, and with
    ``mask_spectrograms`` :func:`spec_augment` on every spectrogram step.
    """
    inputs, lengths = {}, {}
    spans = []
    for i in index:
        if rng is not None and slice_time:
            spans.append(time_slice(clips.steps_per_s, {m: len(s[i]) for m, s in clips.inputs.items()},
                                    min_slice_s, rng))
        else:
            spans.append({m: slice(None) for m in clips.inputs})
    for modality, sequences in clips.inputs.items():
        parts = [sequences[i][span[modality]] for i, span in zip(index, spans)]
        if modality == "face" and rng is not None:
            parts = [_spatial(p, rng) for p in parts]
        if modality == "spectrogram" and rng is not None and mask_spectrograms:
            parts = [spec_augment(p, rng) for p in parts]
        longest = max(len(p) for p in parts)
        padded = np.zeros((len(parts), longest, *parts[0].shape[1:]), dtype=parts[0].dtype)
        for row, part in enumerate(parts):
            padded[row, :len(part)] = part
        tensor = torch.from_numpy(padded)
        inputs[modality] = (tensor if tensor.dtype == torch.uint8 else tensor.float()).to(device)
        lengths[modality] = torch.tensor([len(p) for p in parts])
    return inputs, lengths, torch.as_tensor(clips.labels[list(index)], dtype=torch.long, device=device)


def _batches(n: int, size: int, order=None):
    order = np.arange(n) if order is None else order
    return [order[i:i + size] for i in range(0, n, size)]


@torch.no_grad()
def predict_scores(net: MultiModalNet, clips: ClipSet, *, batch_size: int = 16, device="cpu") -> np.ndarray:
    """Fused class probabilities of whole clips in eval mode, (clips, classes)."""
    net.eval()
    scores = []
    for index in _batches(len(clips), batch_size):
        inputs, lengths, _ = make_batch(clips, index, device=device)
        scores.append(torch.softmax(net(inputs, lengths)["fused"], dim=1).cpu().numpy())
    return np.concatenate(scores)


def _validation(net, clips: ClipSet, settings: TrainSettings, device) -> tuple[float, float]:
    """Cross-entropy and accuracy of the fused branch on whole validation clips."""
    probabilities = predict_scores(net, clips, batch_size=settings.batch_size, device=device)
    picked = probabilities[np.arange(len(clips)), clips.labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean()), float(np.mean(probabilities.argmax(1) == clips.labels))


def fit(net: MultiModalNet, train: ClipSet, valid: ClipSet, settings: TrainSettings, *, seed: int = 0,
        device="cpu", keep_start: bool = False) -> dict:
    """Train ``net`` on ``train``, early-stopped on ``valid``; the best epoch's weights are kept.

    ``keep_start``: the starting weights compete as epoch 0 (for a network started from trained
    ones, :func:`~recola_pipeline.mrpn.networks.start_from_unimodal`): when no epoch beats them
    on validation, they are kept.

    Returns
    -------
    dict
        ``epochs`` run, ``best_epoch`` (1-based; 0: the starting weights), per-epoch
        ``train_loss``, ``valid_loss`` and ``valid_accuracy``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net.to(device)
    pretrained = {id(p) for module in net.modules() if getattr(module, "pretrained", False)
                  for p in module.parameters()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in pretrained]},
              {"params": [p for p in trainable if id(p) in pretrained],
               "lr": settings.learning_rate * settings.extractor_lr_factor}]
    optimiser = torch.optim.AdamW([g for g in groups if g["params"]], lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=settings.lr_patience)
    best, best_state, best_epoch, waited = (-np.inf, np.inf), None, 0, 0
    if keep_start:
        valid_loss, valid_accuracy = _validation(net, valid, settings, device)
        best, best_state = (valid_accuracy, valid_loss), copy.deepcopy(net.state_dict())
    history = {"train_loss": [], "valid_loss": [], "valid_accuracy": []}
    for epoch in range(1, settings.max_epochs + 1):
        net.train()
        losses = []
        for index in _batches(len(train), settings.batch_size, rng.permutation(len(train))):
            if len(index) < 2:  # batch norm needs two examples
                continue
            inputs, lengths, target = make_batch(train, index, rng=rng, min_slice_s=settings.min_slice_s,
                                                 slice_time=settings.time_augmentation,
                                                 mask_spectrograms=settings.spec_augment, device=device)
            loss = net.loss(net(inputs, lengths), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        valid_loss, valid_accuracy = _validation(net, valid, settings, device)
        history["train_loss"].append(float(np.mean(losses)))
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(valid_accuracy)
        scheduler.step(valid_loss)
        if valid_accuracy > best[0] or (valid_accuracy == best[0] and valid_loss < best[1]):
            best, best_epoch, waited = (valid_accuracy, valid_loss), epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited >= settings.patience:
                break
    net.load_state_dict(best_state)
    return {"epochs": epoch, "best_epoch": best_epoch, **history}


def scores(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict:
    """Accuracy, macro F1 (over all ``n_classes``) and the confusion matrix (rows: true class)."""
    classes = list(range(n_classes))
    return {"accuracy": float(np.mean(labels == predicted)),
            "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
            "confusion": confusion_matrix(labels, predicted, labels=classes)}
