"""The ``evaluate`` stage: predict every partition with the saved models, post-process, score.

Post-processing (:class:`~recola_pipeline.models.PostProcessor`) is fitted on the devel
predictions. Its devel score is honest: each devel recording is post-processed by a
PostProcessor fitted on the *other* devel recordings (leave one recording out). Train is
scored with the steps fitted on devel; test is scored with those same steps, and only when
its labels exist.

``evaluate`` artifact (``models/evaluate/<hash>/``):

``results.csv``
    One row per (dimension, modality, fusion, partition): ``ccc`` (pooled), ``ccc_mean_per_recording``,
    ``pearson``, ``rmse``, ``n_frames``, ``W``, ``D``, ``C``, ``postprocessing`` (steps kept),
    ``ccc_raw`` (pooled CCC before post-processing), ``features``, ``weights``.
``predictions/<recording>.parquet``
    ``time``, ``gold_<dimension>`` (when labelled) and ``<modality>_<dimension>`` (post-processed).
``postprocess_<modality>_<dimension>.joblib``
    The fitted PostProcessor.
"""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd

from .cache import atomic_path, read_table, write_table
from .data_stage import load_data
from .metrics import ccc, mean_per_recording, pearson, pooled, rmse
from .models import PostProcessor
from .models.delay import segments
from .stages import Pipeline, Stage, register
from .train_stage import partition_frames, predict_bundle

PARTITION_ORDER = ("train", "devel", "test")


def _pairs(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> list[tuple]:
    return [(gold[seg], pred[seg]) for seg in segments(groups)]


def score(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict:
    """Pooled CCC, mean per-recording CCC, pooled Pearson and RMSE, frame count."""
    pairs = _pairs(gold, pred, groups)
    return {"ccc": pooled(ccc, pairs), "ccc_mean_per_recording": mean_per_recording(ccc, pairs),
            "pearson": pooled(pearson, pairs), "rmse": pooled(rmse, pairs), "n_frames": int(len(gold))}


def leave_one_recording_out(make, pred: np.ndarray, gold: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Post-process each recording with a PostProcessor fitted on the other recordings."""
    out = np.empty_like(pred, dtype=float)
    recordings = segments(groups)
    if len(recordings) < 2:
        return make().fit(pred, gold, groups).transform(pred, groups)
    for held in recordings:
        keep = np.ones(len(pred), dtype=bool)
        keep[held] = False
        fitted = make().fit(pred[keep], gold[keep], groups[keep])
        out[held] = fitted.transform(pred[held], groups[held])
    return out


def provenance(pipeline: Pipeline, modality: str) -> dict:
    """Which features and which pretrained weights produced a modality's predictions."""
    if modality == "audio":
        feature_set = pipeline.config.audio.feature_set
        source = {"egemaps": "openSMILE eGeMAPS v02", "compare": "openSMILE ComParE 2016",
                  "librosa": "librosa descriptors"}[feature_set]
        return {"features": f"audio:{feature_set}", "weights": f"{source} (no learned weights)"}
    raise KeyError(f"no provenance known for modality {modality!r}")


def run_evaluate(pipeline: Pipeline, artifact) -> dict:
    """Predict, post-process and score every (modality, dimension) model."""
    cfg = pipeline.config.evaluate
    train_artifact = pipeline.ensure("train")
    selected = read_table(train_artifact.file("selected.csv"))
    table, gold_tables = load_data(pipeline.ensure("data"))
    predictions = {rec: gold_tables[rec].rename(columns={d: f"gold_{d}" for d in pipeline.config.corpus.dimensions})
                   for rec in table.recording}
    rows = []
    for sel in selected.itertuples():
        bundle = joblib.load(train_artifact.file(f"model_{sel.modality}_{sel.dimension}.joblib"))
        frames = {p: partition_frames(pipeline, sel.modality, sel.W, p, labelled_only=False)
                  for p in PARTITION_ORDER}
        raw = {p: predict_bundle(bundle, f) if len(f.X) else np.empty(0) for p, f in frames.items()}
        devel = frames["devel"]

        def make():
            return PostProcessor(median_windows_s=cfg.median_windows_s if cfg.postprocess else (0.0,),
                                 centring=cfg.postprocess and cfg.centring, scaling=cfg.postprocess and cfg.scaling)

        post = make().fit(raw["devel"], devel.gold[sel.dimension], devel.groups)
        with atomic_path(artifact.file(f"postprocess_{sel.modality}_{sel.dimension}.joblib")) as tmp:
            joblib.dump(post, tmp)
        final = {p: post.transform(raw[p], frames[p].groups) if len(raw[p]) else raw[p] for p in PARTITION_ORDER}
        honest_devel = leave_one_recording_out(make, raw["devel"], devel.gold[sel.dimension], devel.groups)
        for p in PARTITION_ORDER:
            f = frames[p]
            for seg in segments(f.groups):
                predictions[f.groups[seg.start]][f"{sel.modality}_{sel.dimension}"] = final[p][seg]
            if sel.dimension not in f.gold:
                continue
            scored = honest_devel if p == "devel" else final[p]
            rows.append({"dimension": sel.dimension, "modality": sel.modality, "fusion": "none", "partition": p,
                         **score(f.gold[sel.dimension], scored, f.groups), "W": sel.W, "D": sel.D, "C": sel.C,
                         "postprocessing": "+".join(post.steps_) or "none",
                         "ccc_raw": pooled(ccc, _pairs(f.gold[sel.dimension], raw[p], f.groups)),
                         **provenance(pipeline, sel.modality)})
    for rec, frame in predictions.items():
        write_table(artifact.file(f"predictions/{rec}.parquet"), frame)
    results = pd.DataFrame(rows)
    write_table(artifact.file("results.csv"), results)
    return {"rows": len(results), "best_devel": _best(results)}


def _best(results: pd.DataFrame) -> dict:
    devel = results[results.partition == "devel"]
    best = devel.loc[devel.groupby("dimension")["ccc"].idxmax()] if len(devel) else devel
    return {r.dimension: {"modality": r.modality, "fusion": r.fusion, "ccc": r.ccc} for r in best.itertuples()}


register(Stage(
    name="evaluate", kind="models", sections=("evaluate",), upstream=lambda cfg: ["train"],
    libraries=("numpy", "scipy", "scikit-learn"), run=run_evaluate,
))
