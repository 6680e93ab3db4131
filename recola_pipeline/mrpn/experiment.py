"""One fold of the categorical path's experiment: its clips, its networks, their training and test.

:func:`train_fold` trains and tests, for one actor fold and one time-augmentation setting, every
network of ``mrpn.variants`` (see :mod:`recola_pipeline.stages.mrpn` for the protocol and what it
writes); a finished task's JSON is reused by a resumed run.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..cache import Artifact, write_json
from ..readers import load_clip_inputs, load_clip_table
from . import CLIP_CORPORA
from .corpora.clips import Clip
from .extractors import build_extractor, output_width, split_for_finetuning
from .inputs import steps_per_second
from .networks import (
    MultiModalNet,
    SequenceBranch,
    joint_from_unimodal,
    late_fusion,
    seed_ensemble,
    start_from_unimodal,
)
from .training import ClipSet, TrainSettings, fit, predict_scores, scores, standardise

VARIANT_ORDER = ("N1", "N2", "N3", "unimodal", "ensemble", "late")
#: the k-th unimodal network of a seed ensemble (``mrpn.unimodal_seeds``) starts from seed + k * SEED_STEP
SEED_STEP = 100
RESULT_COLUMNS = ["fold", "test_actors", "valid_actors", "variant", "modalities", "time_augmentation", "accuracy",
                  "macro_f1", "epochs", "best_epoch", "max_epochs", "n_train", "n_valid", "n_test", "initialisation",
                  "device"]


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other names unchanged."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def corpus_folds(table: pd.DataFrame, corpus: str) -> list[tuple[int, ...]]:
    """The corpus's actor-disjoint folds for the clips in ``table`` (a ``clips.csv``)."""
    clips = [Clip(r.clip, int(r.actor), r.gender, r.emotion, None, None) for r in table.itertuples()]
    return CLIP_CORPORA[corpus].folds(clips)


@functools.lru_cache(maxsize=2)
def load_clip_set(clips_path: str, modalities: tuple[str, ...], face_stride: int) -> tuple[ClipSet, pd.DataFrame]:
    """Every clip's inputs (loaded once per process), labels indexed in sorted emotion order."""
    artifact = Artifact(Path(clips_path), "clips", {})
    table = load_clip_table(artifact)
    classes = sorted(table["emotion"].unique())
    inputs = {m: [] for m in modalities}
    for clip in table["clip"]:
        for m, array in load_clip_inputs(artifact, clip, modalities).items():
            inputs[m].append(array)
    labels = table["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return ClipSet(inputs, labels, steps_per_second(modalities, face_stride)), table


def extractor_choice(cfg, modality: str) -> tuple[str, str]:
    return {"face": (cfg.face_extractor, cfg.face_weights),
            "spectrogram": (cfg.spectrogram_extractor, cfg.spectrogram_weights)}.get(modality, ("lld", "random"))


def frozen(cfg, modality: str) -> bool:
    """Whether ``modality``'s extractor is split into a frozen, cached trunk and a trained tail:
    with ``mrpn.finetune_blocks`` >= 0, every extractor with pretrained weights (those trained
    from random initialisation, small_cnn and the LLD layer, are trained whole)."""
    return cfg.finetune_blocks >= 0 and modality != "lld" and extractor_choice(cfg, modality)[1] != "random"


@functools.lru_cache(maxsize=2)
def trunk_outputs(clips_path: str, modalities: tuple[str, ...], modality: str, name: str, weights: str, blocks: int,
                  face_stride: int, batch: int = 64) -> tuple[np.ndarray, ...]:
    """The frozen trunk's output for every step of every clip (float16), computed once per process
    (:func:`~recola_pipeline.mrpn.extractors.split_for_finetuning`)."""
    clips, _ = load_clip_set(clips_path, modalities, face_stride)
    extractor, _ = build_extractor(modality, name, weights, cnn_width=4)
    trunk, _ = split_for_finetuning(extractor, blocks)
    out = []
    with torch.inference_mode():
        for steps in clips.inputs[modality]:
            x = torch.from_numpy(np.asarray(steps))
            x = x if x.dtype == torch.uint8 else x.float()
            out.append(torch.cat([trunk(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy().astype(np.float16))
    return tuple(out)


def with_frozen_trunks(cfg, clips_path: str, clips: ClipSet) -> ClipSet:
    """``clips`` with each split modality's steps replaced by its frozen trunk's outputs."""
    inputs = dict(clips.inputs)
    for m in clips.inputs:
        if frozen(cfg, m):
            inputs[m] = list(trunk_outputs(clips_path, tuple(cfg.modalities), m, *extractor_choice(cfg, m),
                                           cfg.finetune_blocks, cfg.face_stride))
    return ClipSet(inputs, clips.labels, clips.steps_per_s)


def build_net(cfg, clips: ClipSet, modalities, n_classes: int, variant: str) -> tuple[MultiModalNet, str]:
    """A network over ``modalities`` and a text naming each extractor's initialisation.

    A modality whose trunk is frozen (``mrpn.finetune_blocks`` >= 0) gets only the extractor's
    tail; ``clips`` then holds the trunk's outputs (:func:`with_frozen_trunks`).
    """
    branches, initialisation = {}, []
    for m in modalities:
        name, weights = extractor_choice(cfg, m)
        extractor, source = build_extractor(m, name, weights, cnn_width=cfg.cnn_width,
                                            n_inputs=int(clips.inputs[m][0].shape[-1]))
        if frozen(cfg, m):
            extractor = split_for_finetuning(extractor, cfg.finetune_blocks)[1]
            source += f"; layers before the last {cfg.finetune_blocks} stage(s) frozen"
        extractor.pretrained = source != "random"
        step = torch.from_numpy(np.asarray(clips.inputs[m][0][0]))
        width = output_width(extractor, step if step.dtype == torch.uint8 else step.float())
        branches[m] = SequenceBranch(extractor, width, hidden=cfg.hidden, aggregator=cfg.aggregator)
        initialisation.append(f"{m}: {name} {source}" if m != "lld" else "lld: dense, random")
    return MultiModalNet(branches, n_classes, variant=variant), "; ".join(initialisation)


def train_fold(args) -> dict:
    """Train and test every variant on one fold with one time-augmentation setting; the rows and
    test predictions are written to ``runs/`` (a finished task is returned without training)."""
    artifact, clips_path, cfg, folds, number, augment, threads, device = args
    name = f"runs/fold{number:02d}_{'aug' if augment else 'noaug'}.json"
    if artifact.has(name):
        return json.loads(artifact.file(name).read_text())
    torch.set_num_threads(threads)
    clips, table = load_clip_set(clips_path, tuple(cfg.modalities), cfg.face_stride)
    clips = with_frozen_trunks(cfg, clips_path, clips)
    test_actors, valid_actors = folds[number - 1], folds[number % len(folds)]
    actors = table["actor"].to_numpy()
    split = {"test": np.flatnonzero(np.isin(actors, test_actors)),
             "valid": np.flatnonzero(np.isin(actors, valid_actors))}
    split["train"] = np.setdiff1d(np.arange(len(actors)), np.concatenate(list(split.values())))
    train, valid, test = standardise(*(clips.subset(split[k]) for k in ("train", "valid", "test")))
    n_classes = int(clips.labels.max()) + 1
    settings = TrainSettings(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainSettings)
                                if f.name != "time_augmentation"}, time_augmentation=augment)
    seed = cfg.seed * 1000 + number

    def record(variant, net, modalities, initialisation, history):
        predicted = predict_scores(net, test.only(modalities), batch_size=cfg.batch_size, device=device).argmax(axis=1)
        result = scores(test.labels, predicted, n_classes)
        rows.append({"fold": number, "test_actors": "+".join(map(str, test_actors)),
                     "valid_actors": "+".join(map(str, valid_actors)), "variant": variant,
                     "modalities": "+".join(modalities), "time_augmentation": augment,
                     "accuracy": round(result["accuracy"], 6), "macro_f1": round(result["macro_f1"], 6),
                     "epochs": history["epochs"], "best_epoch": history["best_epoch"],
                     "max_epochs": settings.max_epochs, "n_train": len(train),
                     "n_valid": len(valid), "n_test": len(test), "initialisation": initialisation, "device": device})
        predictions[f"{variant}:{'+'.join(modalities)}"] = predicted.tolist()

    def run(variant, net, modalities, initialisation, *, keep_start=False):
        history = fit(net, train.only(modalities), valid.only(modalities), settings, seed=seed, device=device,
                      keep_start=keep_start)
        record(variant, net, modalities, initialisation, history)

    rows, predictions, unimodal, unimodal_initialisation = [], {}, {}, {}
    if "late" in cfg.variants or cfg.start_from_unimodal:
        counts = cfg.unimodal_seeds or [1] * len(cfg.modalities)
        for m, count in zip(cfg.modalities, counts):
            members, histories = [], []
            for member_seed in range(seed, seed + SEED_STEP * count, SEED_STEP):
                torch.manual_seed(member_seed)
                net, initialisation = build_net(cfg, train, [m], n_classes, "N1")
                histories.append(fit(net, train.only([m]), valid.only([m]), settings, seed=member_seed, device=device))
                members.append(net)
            record("unimodal", members[0], [m], initialisation, histories[0])
            unimodal[m] = seed_ensemble(members, n_classes)
            unimodal_initialisation[m] = initialisation
            if count > 1:
                unimodal_initialisation[m] += f"; {count} seeds, product rule"
                record("ensemble", unimodal[m], [m], unimodal_initialisation[m],
                       {"epochs": max(h["epochs"] for h in histories),
                        "best_epoch": max(h["best_epoch"] for h in histories)})
    started = "; ".join(unimodal_initialisation.values()) + "; started from the fold's unimodal networks (product rule)"
    for variant in ("N1", "N2", "N3"):
        if variant in cfg.variants:
            torch.manual_seed(seed)
            if cfg.start_from_unimodal:
                run(variant, joint_from_unimodal(unimodal, n_classes, variant), cfg.modalities, started,
                    keep_start=True)
            else:
                net, initialisation = build_net(cfg, train, cfg.modalities, n_classes, variant)
                run(variant, net, cfg.modalities, initialisation)
    if "late" in cfg.variants:
        torch.manual_seed(seed)
        fused = late_fusion(unimodal, n_classes)
        if cfg.start_from_unimodal:
            run("late", start_from_unimodal(fused, unimodal), cfg.modalities, started, keep_start=True)
        else:
            run("late", fused, cfg.modalities, "; ".join(unimodal_initialisation.values()))
    result = {"rows": rows, "test_clips": table["clip"].to_numpy()[split["test"]].tolist(),
              "test_labels": test.labels.tolist(), "predictions": predictions}
    write_json(artifact.file(name), result)
    return result
