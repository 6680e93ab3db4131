"""The ``mrpn`` stage: categorical emotion from clips with MRPN and its baselines, per actor fold.

For every actor-disjoint fold (RAVDESS: the 12 actor pairs; CREMA-D: about 10 % of the actors,
genders balanced; ``mrpn.folds`` picks some by 1-based number) and every time-augmentation
setting in ``mrpn.time_augmentation``, the networks of ``mrpn.variants`` are trained:

* ``N1``, ``N2``, ``N3`` (MRPN): :class:`~recola_pipeline.mrpn.networks.MultiModalNet`;
* ``late``: one unimodal network per modality trained alone (reported as variant ``unimodal``),
  frozen, then only a fusion component trained (:func:`~recola_pipeline.mrpn.networks.late_fusion`).
  With ``mrpn.unimodal_seeds`` a modality's unimodal network is a product-rule ensemble of
  networks trained from different seeds (:func:`~recola_pipeline.mrpn.networks.seed_ensemble`;
  variant ``ensemble``; the ``unimodal`` row stays its first network, from the fold's seed).

With ``mrpn.start_from_unimodal`` the unimodal networks are trained first (and reported, with or
without ``late``), and late fusion and
N1/N2/N3 start where their product rule is (:func:`~recola_pipeline.mrpn.networks.start_from_unimodal`;
the starting weights compete as epoch 0 in early stopping). Otherwise the joint networks start
from the extractors' weights and random layers, as in the seed.

Split: the fold's actors are the test set; the next fold's actors (cyclically) are the
validation set for early stopping and the learning-rate schedule; the rest train. Every network
of a fold starts from the same seed (the k-th network of a seed ensemble from seed + 100 k).
Tasks (one per fold and time-augmentation setting) run in parallel through
:meth:`~recola_pipeline.pipeline.Pipeline.map` (joblib or dask), each with its share of the cores;
on a GPU (``mrpn.device = auto`` picks CUDA when present) run ``--jobs 1``.

``mrpn`` artifact (``models/mrpn/<hash>/``):

* ``mrpn_results.csv``: one row per fold x variant x time augmentation: ``fold``,
  ``test_actors``, ``valid_actors``, ``variant``, ``modalities``, ``time_augmentation``,
  ``accuracy``, ``macro_f1``, ``epochs``, ``best_epoch``, ``max_epochs``, ``n_train``, ``n_valid``, ``n_test``,
  ``initialisation``, ``device`` (for an ``ensemble`` row, ``epochs`` and ``best_epoch`` are the
  largest of its networks'; a ``best_epoch`` of 0 means the starting weights were kept);
* ``mrpn_summary.csv``: mean and standard deviation of accuracy and macro F1 over folds, the
  fraction of runs that hit ``max_epochs``, and the seed's claims checked fold by fold: on the N3
  rows, the folds where N3 >= N1 and N3 >= N2 (and how many of them are ties), the mean
  differences and paired sign and
  Wilcoxon tests over the folds (:func:`paired_test`);
* ``confusion_<variant>_<aug|noaug>.png`` (and ``.csv``): confusion matrices summed over folds;
* ``runs/fold<k>_<aug|noaug>.json``: each task's rows and test predictions (a resumed run skips
  finished tasks).
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ..cache import Artifact, write_bytes, write_json, write_table  # noqa: E402
from ..config import ConfigError  # noqa: E402
from ..corpora import CorpusError  # noqa: E402
from ..extractors.backbones import weights_identity  # noqa: E402
from ..mrpn import CLIP_CORPORA  # noqa: E402
from ..mrpn.corpora.clips import Clip  # noqa: E402
from ..mrpn.extractors import build_extractor, output_width, split_for_finetuning  # noqa: E402
from ..mrpn.inputs import steps_per_second  # noqa
from ..mrpn.networks import (  # noqa: E402
    MultiModalNet,
    SequenceBranch,
    joint_from_unimodal,
    late_fusion,
    seed_ensemble,
    start_from_unimodal,
)
from ..mrpn.training import (  # noqa: E402
    ClipSet,
    TrainSettings,
    fit,
    predict_scores,
    scores,
    standardise,
)
from ..stage import Stage  # noqa: E402
from ..readers import load_clip_inputs, load_clip_table  # noqa: E402

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


def _extractor_choice(cfg, modality: str) -> tuple[str, str]:
    return {"face": (cfg.face_extractor, cfg.face_weights),
            "spectrogram": (cfg.spectrogram_extractor, cfg.spectrogram_weights)}.get(modality, ("lld", "random"))


def _frozen(cfg, modality: str) -> bool:
    """Whether ``modality``'s extractor is split into a frozen, cached trunk and a trained tail:
    with ``mrpn.finetune_blocks`` >= 0, every extractor with pretrained weights (those trained
    from random initialisation, small_cnn and the LLD layer, are trained whole)."""
    return cfg.finetune_blocks >= 0 and modality != "lld" and _extractor_choice(cfg, modality)[1] != "random"


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
        if _frozen(cfg, m):
            inputs[m] = list(trunk_outputs(clips_path, tuple(cfg.modalities), m, *_extractor_choice(cfg, m),
                                           cfg.finetune_blocks, cfg.face_stride))
    return ClipSet(inputs, clips.labels, clips.steps_per_s)


def build_net(cfg, clips: ClipSet, modalities, n_classes: int, variant: str) -> tuple[MultiModalNet, str]:
    """A network over ``modalities`` and a text naming each extractor's initialisation.

    A modality whose trunk is frozen (``mrpn.finetune_blocks`` >= 0) gets only the extractor's
    tail; ``clips`` then holds the trunk's outputs (:func:`with_frozen_trunks`).
    """
    branches, initialisation = {}, []
    for m in modalities:
        name, weights = _extractor_choice(cfg, m)
        extractor, source = build_extractor(m, name, weights, cnn_width=cfg.cnn_width,
                                            n_inputs=int(clips.inputs[m][0].shape[-1]))
        if _frozen(cfg, m):
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


#: the seed's claims checked fold by fold: (network, baseline) pairs of variants
CLAIMS = (("N3", "N1"), ("N3", "N2"))


def paired_test(accuracy: np.ndarray, baseline: np.ndarray) -> dict:
    """How often and how surely ``accuracy`` beats ``baseline`` over the same folds.

    Returns
    -------
    dict
        ``ge``: folds with accuracy >= baseline, ``ties``: of those, the folds with equal
        accuracy; ``mean_difference`` (accuracy - baseline);
        ``sign_p``: two-sided exact sign test over the folds that differ (ties left out);
        ``wilcoxon_p``: two-sided Wilcoxon signed-rank test (zero differences left out; NaN
        when fewer than two folds differ).
    """
    from scipy.stats import binomtest, wilcoxon

    difference = np.asarray(accuracy, dtype=float) - np.asarray(baseline, dtype=float)
    nonzero = difference[difference != 0]
    wins = int((nonzero > 0).sum())
    return {"ge": int((difference >= 0).sum()), "ties": int((difference == 0).sum()),
            "mean_difference": float(difference.mean()),
            "sign_p": float(binomtest(wins, len(nonzero)).pvalue) if len(nonzero) else 1.0,
            "wilcoxon_p": float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else float("nan")}


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over folds per variant, modalities and time augmentation, how often training
    ran into ``max_epochs`` (``cap_hits``: the fraction of runs that never stopped on validation),
    and on the N3 rows the seed's claims fold by fold: for each of N1 and N2, the folds where N3
    is at least as accurate (same fold, same augmentation) and of those the ties, the mean
    difference and paired sign and Wilcoxon tests (:func:`paired_test`)."""
    keys = ["variant", "modalities", "time_augmentation"]
    results = results.assign(cap_hit=results["epochs"] >= results["max_epochs"])
    summary = (results.groupby(keys, sort=False)
               .agg(folds=("fold", "nunique"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                    macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
                    epochs_mean=("epochs", "mean"), cap_hits=("cap_hit", "mean"))
               .reset_index())
    pairs = results[results.variant.isin(VARIANT_ORDER[:3])].pivot_table(
        index=["time_augmentation", "fold"], columns="variant", values="accuracy")
    for network, baseline in CLAIMS:
        columns = [f"folds_{network}_ge_{baseline}", f"folds_{network}_tie_{baseline}", f"{network}_minus_{baseline}",
                   f"{network}_vs_{baseline}_sign_p", f"{network}_vs_{baseline}_wilcoxon_p"]
        for column in columns:
            summary[column.lower()] = np.nan
        if not {network, baseline} <= set(pairs.columns):
            continue
        for augment, folds in pairs.groupby(level="time_augmentation"):
            test = paired_test(folds[network].to_numpy(), folds[baseline].to_numpy())
            row = (summary.variant == network) & (summary.time_augmentation == augment)
            for column, key in zip(columns, ("ge", "ties", "mean_difference", "sign_p", "wilcoxon_p")):
                summary.loc[row, column.lower()] = test[key]
    return summary.round(6)


def plot_confusion(artifact, name: str, matrix: np.ndarray, classes: list[str], title: str) -> None:
    """A confusion matrix (rows: true class, counts and row percentages) as PNG."""
    figure, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.0 * len(classes) + 1.5))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{matrix[i, j]}\n{100 * rates[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    write_bytes(artifact.file(name), buffer.getvalue())


def _confusions(artifact, runs: list[tuple[dict, bool]], classes: list[str]) -> list[str]:
    """Confusion matrices summed over folds, per network and time-augmentation setting."""
    totals: dict[tuple[str, bool], list] = {}
    for run, augment in runs:
        labels = np.asarray(run["test_labels"])
        for key, predicted in run["predictions"].items():
            totals.setdefault((key, augment), []).append(scores(labels, np.asarray(predicted), len(classes))["confusion"])
    names = []
    for (key, augment), matrices in totals.items():
        variant, modalities = key.split(":")
        matrix = np.sum(matrices, axis=0)
        named = f"{variant}_{modalities}" if variant in ("unimodal", "ensemble") else variant
        stem = f"confusion_{named}_{'aug' if augment else 'noaug'}"
        plot_confusion(artifact, f"{stem}.png", matrix, classes,
                       f"{variant} ({modalities}), time augmentation {'on' if augment else 'off'}: "
                       f"accuracy {100 * np.trace(matrix) / matrix.sum():.1f}% over {len(matrices)} folds")
        write_table(artifact.file(f"{stem}.csv"),
                    pd.DataFrame(matrix, index=classes, columns=classes).rename_axis("true").reset_index())
        names.append(f"{stem}.png")
    return names


def run_mrpn(inputs, artifact) -> dict:
    """Train and test every fold x time-augmentation task not finished yet; write the tables and plots."""
    cfg = inputs.config.mrpn
    clips_artifact = inputs.artifact("clips")
    table = load_clip_table(clips_artifact)
    folds = corpus_folds(table, cfg.corpus)
    if len(folds) < 3:
        raise CorpusError(f"mrpn: {len(folds)} actor folds in {cfg.corpus}; the protocol needs at least 3 "
                          "(one to test, one to validate, one or more to train)")
    numbers = cfg.folds or list(range(1, len(folds) + 1))
    bad = [n for n in numbers if not 1 <= n <= len(folds)]
    if bad:
        raise CorpusError(f"mrpn.folds: {bad} out of range; this corpus has folds 1 to {len(folds)}")
    for m in cfg.modalities:
        if _frozen(cfg, m):  # refused before any training: an extractor that cannot be split
            name, weights = _extractor_choice(cfg, m)
            try:
                split_for_finetuning(build_extractor(m, name, weights, cnn_width=4)[0], cfg.finetune_blocks)
            except ValueError as exc:
                raise ConfigError(f"mrpn.{m}_extractor = {name!r}: {exc}") from None
    device = resolve_device(cfg.device)
    tasks = [(n, augment) for n in numbers for augment in cfg.time_augmentation]
    jobs = os.cpu_count() if inputs.config.run.jobs < 0 else inputs.config.run.jobs
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(tasks))))
    args = [(artifact, str(clips_artifact.path), cfg, folds, n, augment, threads, device) for n, augment in tasks]
    runs = inputs.map(train_fold, args, desc=f"mrpn: {len(tasks)} fold tasks on {device}")
    results = pd.DataFrame([row for run in runs for row in run["rows"]], columns=RESULT_COLUMNS)
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    results = results.sort_values(["time_augmentation", "fold", "variant", "modalities"],
                                  key=lambda c: c.map(order) if c.name == "variant" else c,
                                  ascending=[False, True, True, True]).reset_index(drop=True)
    write_table(artifact.file("mrpn_results.csv"), results)
    summary = summarise(results)
    write_table(artifact.file("mrpn_summary.csv"), summary)
    classes = sorted(table["emotion"].unique())
    plots = _confusions(artifact, list(zip(runs, [a for _, a in tasks])), classes)
    return {"corpus": cfg.corpus, "classes": classes, "folds": [list(f) for f in folds], "folds_run": numbers,
            "device": device, "initialisation": sorted(results["initialisation"].unique()),
            "accuracy_mean": {f"{r.variant} {r.modalities} {'aug' if r.time_augmentation else 'noaug'}":
                              r.accuracy_mean for r in summary.itertuples()},
            "plots": plots}


def _mrpn_identity(config) -> dict:
    cfg = config.mrpn
    return {"weights": {key: weights_identity(getattr(cfg, key), setting=f"mrpn.{key}")
                        for key in ("face_weights", "spectrogram_weights")}}


STAGE = Stage(
    name="mrpn", kind="models", sections=("mrpn",), upstream=lambda cfg: ["clips"],
    libraries=("torch", "timm", "scikit-learn", "numpy", "scipy"), run=run_mrpn, extra_identity=_mrpn_identity,
)
