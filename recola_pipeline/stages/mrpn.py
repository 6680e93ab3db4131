"""The ``mrpn`` stage: categorical emotion from clips with MRPN and its baselines, per actor fold.

A thin adapter: one fold's training is :mod:`recola_pipeline.mrpn.experiment`, the summary over
folds :mod:`recola_pipeline.mrpn.summary`; the stage checks the settings, runs the fold tasks in
parallel and writes the tables.

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
  Wilcoxon tests over the folds (:func:`~recola_pipeline.mrpn.summary.paired_test`);
* ``confusion_<variant>_<aug|noaug>.png`` (and ``.csv``): confusion matrices summed over folds;
* ``runs/fold<k>_<aug|noaug>.json``: each task's rows and test predictions (a resumed run skips
  finished tasks).
"""
from __future__ import annotations

import os

import pandas as pd

from ..cache import write_table
from ..config import ConfigError
from ..corpora import CorpusError
from ..extractors.weights import weights_identity
from ..mrpn.experiment import (
    RESULT_COLUMNS,
    VARIANT_ORDER,
    corpus_folds,
    extractor_choice,
    frozen,
    resolve_device,
    train_fold,
)
from ..mrpn.extractors import build_extractor, split_for_finetuning
from ..mrpn.summary import confusions, summarise
from ..readers import load_clip_table
from ..stage import Stage


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
        if frozen(cfg, m):  # refused before any training: an extractor that cannot be split
            name, weights = extractor_choice(cfg, m)
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
    plots = confusions(artifact, list(zip(runs, [a for _, a in tasks])), classes)
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
