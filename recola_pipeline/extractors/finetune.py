"""Fine-tuning the last block of a face backbone to regress arousal and valence (seed Fig. 1b).

The seed paper pre-trained its CNN on FER-2013 and fine-tuned it on the target corpus before
taking its features. Here the last block of the backbone (:meth:`Backbone.tail`) and a new
linear head are trained with AdamW on the train partition's face crops against the gold
standard of their label frame (standardised per dimension, mean squared error, random
horizontal flips); everything else, batch-norm statistics included, stays as pre-trained. The
head is then dropped and the fine-tuned network embeds every recording as before.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import Backbone


def finetune(backbone: Backbone, crops: np.ndarray, targets: np.ndarray, *, epochs: int, seed: int = 0,
             batch_size: int = 64, lr: float = 3e-4) -> list[float]:
    """Train ``backbone``'s last block in place; returns the mean training loss of each epoch.

    Parameters
    ----------
    backbone : Backbone
    crops : ndarray of uint8
        Face crops as :meth:`Backbone.embed` takes them.
    targets : ndarray, shape (n, n_dimensions)
        Gold standard of each crop's label frame.
    epochs : int
    seed : int
        Seeds the batch order, the flips and the head's initial weights.
    """
    if len(crops) < 2:
        raise ValueError(f"fine-tuning needs at least 2 face crops from the train partition, got {len(crops)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, tail = backbone.model.eval(), backbone.tail()  # eval: batch norm keeps its statistics
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in tail.parameters():
        parameter.requires_grad_(True)
    scale = np.where(targets.std(axis=0) > 0, targets.std(axis=0), 1.0)
    y = torch.from_numpy(((targets - targets.mean(axis=0)) / scale).astype(np.float32))
    with torch.no_grad():
        width = backbone.pooled(backbone.tensor(crops[:1])).shape[1]
    head = nn.Linear(width, targets.shape[1])
    optimiser = torch.optim.AdamW([*tail.parameters(), *head.parameters()], lr=lr, weight_decay=1e-4)
    losses = []
    for _ in range(epochs):
        order, total = rng.permutation(len(crops)), 0.0
        for start in range(0, len(crops), batch_size):
            index = order[start:start + batch_size]
            batch = crops[index].copy()
            flip = rng.random(len(index)) < 0.5
            batch[flip] = batch[flip][:, :, ::-1]
            loss = nn.functional.mse_loss(head(backbone.pooled(backbone.tensor(batch))), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(index)
        losses.append(total / len(crops))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return losses


def load_finetuned(backbone: Backbone, path: str | Path) -> Backbone:
    """A copy of ``backbone`` with the fine-tuned weights saved at ``path``, recorded as such."""
    model = copy.deepcopy(backbone.model)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return dataclasses.replace(backbone, model=model.eval(),
                               weights=f"{backbone.weights}, last block fine-tuned on the train partition")
