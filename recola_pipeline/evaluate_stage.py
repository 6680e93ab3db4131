"""The ``evaluate`` stage: predict every partition with the saved models, post-process, score.

Post-processing (:class:`~recola_pipeline.models.PostProcessor`) is fitted on the devel
predictions. Its devel score is honest: each devel recording is post-processed by a
PostProcessor fitted on the *other* devel recordings (leave one recording out). Train is
scored with the steps fitted on devel; test is scored with those same steps, and only when
its labels exist.

``evaluate`` artifact (``models/evaluate/<hash>/``):

``results.csv``
    One row per (dimension, modality, fusion, partition): ``modality`` (``audio``, ``video`` or
    ``audio+video``), ``fusion`` (``none``, ``early``, ``late``), ``ccc`` (pooled),
    ``ccc_mean_per_recording``, ``pearson``, ``rmse``, ``n_frames``, ``W``, ``windows`` (W per
    modality), ``D``, ``C`` (empty for late fusion, whose inputs keep their own), ``fusion_weights``
    (late fusion's linear weights, fitted on devel), ``postprocessing`` (steps kept), ``ccc_raw``
    (pooled CCC before post-processing and, for late fusion, of the fused predictions), ``features``,
    ``weights``.
``predictions/<recording>.parquet``
    ``time``, ``gold_<dimension>`` (when labelled) and ``<system>_<dimension>`` (post-processed),
    system = ``audio``, ``video``, ``early`` or ``late``.
``postprocess_<system>_<dimension>.joblib``, ``late_fusion_<dimension>.joblib``
    The fitted PostProcessors and LateFusion models.

Late fusion (two or more modalities) is a :class:`~recola_pipeline.models.LateFusion` fitted on
the devel predictions of the unimodal models (before their post-processing), followed by its own
post-processing; its devel score comes from leave-one-recording-out as well.
"""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd

from .cache import atomic_path, read_table, write_table
from .data_stage import load_data
from .metrics import ccc, mean_per_recording, pearson, pooled, rmse
from .models import LateFusion, PostProcessor
from .models.delay import segments
from .stages import Pipeline, Stage, register
from .train_stage import parse_windows, predict_bundle, system_frames

PARTITION_ORDER = ("train", "devel", "test")
FUSIONS = ("early", "late")


def _pairs(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> list[tuple]:
    return [(gold[seg], pred[seg]) for seg in segments(groups)]


def score(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict:
    """Pooled CCC, mean per-recording CCC, pooled Pearson and RMSE, frame count."""
    pairs = _pairs(gold, pred, groups)
    return {"ccc": pooled(ccc, pairs), "ccc_mean_per_recording": mean_per_recording(ccc, pairs),
            "pearson": pooled(pearson, pairs), "rmse": pooled(rmse, pairs), "n_frames": int(len(gold))}


def leave_one_recording_out(make, pred: np.ndarray, gold: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Apply to each recording an estimator (``make()``) fitted on the other recordings.

    ``make()`` returns an unfitted estimator with ``fit(pred, gold, groups)`` and
    ``transform(pred, groups)`` (a PostProcessor, or LateFusion with ``pred`` of shape
    (n, modalities)); with a single recording it is fitted and applied in-sample.
    """
    out = np.empty(len(pred), dtype=float)
    recordings = segments(groups)
    if len(recordings) < 2:
        return make().fit(pred, gold, groups).transform(pred, groups)
    for held in recordings:
        keep = np.ones(len(pred), dtype=bool)
        keep[held] = False
        fitted = make().fit(pred[keep], gold[keep], groups[keep])
        out[held] = fitted.transform(pred[held], groups[held])
    return out


def provenance(pipeline: Pipeline, modalities) -> dict:
    """Which features and which pretrained weights produced a system's predictions."""
    features, weights = [], []
    for modality in modalities:
        if modality == "audio":
            feature_set = pipeline.config.audio.feature_set
            source = {"egemaps": "openSMILE eGeMAPS v02", "compare": "openSMILE ComParE 2016",
                      "librosa": "librosa descriptors"}[feature_set]
            features.append(f"audio:{feature_set}")
            weights.append(f"{source} (no learned weights)")
        elif modality == "video":
            video = pipeline.ensure("video").manifest()["info"]
            features.append(f"video:{video['backbone']} embeddings, PCA {video['pca_components']} components "
                            f"({video['pca_variance_kept']:.0%} of train variance), mean+std over W")
            weights.append(f"video {video['backbone']}: {video['weights']}")
        else:
            raise KeyError(f"no provenance known for modality {modality!r}")
    return {"features": "; ".join(features), "weights": "; ".join(weights)}


def _postprocessor(cfg) -> PostProcessor:
    return PostProcessor(median_windows_s=cfg.median_windows_s if cfg.postprocess else (0.0,),
                         centring=cfg.postprocess and cfg.centring, scaling=cfg.postprocess and cfg.scaling)


def _score_system(make, raw: dict, frames: dict, dim: str) -> tuple[object, dict, dict]:
    """Fit ``make()`` on devel; final predictions per partition and the scored predictions
    (devel by leave-one-recording-out)."""
    devel = frames["devel"]
    fitted = make().fit(raw["devel"], devel.gold[dim], devel.groups)
    final = {p: fitted.transform(raw[p], frames[p].groups) if len(raw[p]) else np.empty(0) for p in PARTITION_ORDER}
    scored = dict(final, devel=leave_one_recording_out(make, raw["devel"], devel.gold[dim], devel.groups))
    return fitted, final, scored


def run_evaluate(pipeline: Pipeline, artifact) -> dict:
    """Predict, post-process and score every system; fit and score late fusion."""
    cfg = pipeline.config.evaluate
    train_artifact = pipeline.ensure("train")
    selected = read_table(train_artifact.file("selected.csv"))
    table, gold_tables = load_data(pipeline.ensure("data"))
    predictions = {rec: gold_tables[rec].rename(columns={d: f"gold_{d}" for d in pipeline.config.corpus.dimensions})
                   for rec in table.recording}
    rows, unimodal = [], {}

    def record(system, dim, modalities, frames, raw, fitted, final, scored, settings):
        for p in PARTITION_ORDER:
            f = frames[p]
            for seg in segments(f.groups):
                predictions[f.groups[seg.start]][f"{system}_{dim}"] = final[p][seg]
            if dim not in f.gold:
                continue
            post = fitted.postprocessor_ if isinstance(fitted, LateFusion) else fitted
            rows.append({"dimension": dim, "modality": "+".join(modalities),
                         "fusion": system if system in FUSIONS else "none", "partition": p,
                         **score(f.gold[dim], scored[p], f.groups), **settings,
                         "postprocessing": "+".join(post.steps_) if post is not None and post.steps_ else "none",
                         "ccc_raw": pooled(ccc, _pairs(f.gold[dim], raw[p], f.groups)),
                         **provenance(pipeline, modalities)})

    for sel in selected.itertuples():
        bundle = joblib.load(train_artifact.file(f"model_{sel.system}_{sel.dimension}.joblib"))
        windows = parse_windows(sel.windows)
        frames = {p: system_frames(pipeline, windows, p, labelled_only=False) for p in PARTITION_ORDER}
        raw = {p: predict_bundle(bundle, f) if len(f.X) else np.empty(0) for p, f in frames.items()}
        if sel.fusion == "none":
            unimodal.setdefault(sel.dimension, {})[sel.system] = (frames, raw, sel)

        def make():
            return _postprocessor(cfg)

        fitted, final, scored = _score_system(make, raw, frames, sel.dimension)
        with atomic_path(artifact.file(f"postprocess_{sel.system}_{sel.dimension}.joblib")) as tmp:
            joblib.dump(fitted, tmp)
        record(sel.system, sel.dimension, list(windows), frames, raw, fitted, final, scored,
               {"W": sel.W, "windows": sel.windows, "D": sel.D, "C": sel.C, "fusion_weights": ""})

    for dim, systems in unimodal.items():
        if len(systems) < 2:
            continue
        frames = next(iter(systems.values()))[0]
        stacked = {p: np.column_stack([raw[p] for _, raw, _ in systems.values()]) for p in PARTITION_ORDER}

        def make():
            return LateFusion(postprocessor=_postprocessor(cfg))

        fitted, final, scored = _score_system(make, stacked, frames, dim)
        with atomic_path(artifact.file(f"late_fusion_{dim}.joblib")) as tmp:
            joblib.dump(fitted, tmp)
        weights = " ".join(f"{m}={w:.3f}" for m, w in zip(systems, fitted.linear_.coef_))
        fused = {p: fitted.linear_.predict(x) if len(x) else np.empty(0) for p, x in stacked.items()}
        record("late", dim, list(systems), frames, fused, fitted, final, scored,
               {"W": np.nan, "windows": " ".join(sel.windows for _, _, sel in systems.values()),
                "D": np.nan, "C": np.nan, "fusion_weights": f"{weights} bias={fitted.linear_.intercept_:.3f}"})
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
