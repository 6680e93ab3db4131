"""The ``evaluate`` stage: predict every partition with the saved models, post-process, score.

What each number is chosen on and scored on (the README's "Evaluation protocol"):

* W, D, C and the normalisation were chosen by the train stage on devel (the AVEC protocol).
* Late fusion's weights and each post-processing step (median length, centring, scaling) are
  chosen on held-out devel recordings (:mod:`~recola_pipeline.estimators.selection`): a devel
  recording is transformed only by steps fitted on the other devel recordings, and a step is
  kept only if the pooled CCC of those held-out predictions improves. The devel score reported
  is that held-out score, and the devel predictions written are those held-out predictions.
  With fewer than 3 devel recordings there is nothing to hold out: post-processing and late
  fusion are skipped, with a warning.
* Train and test are scored with the chosen steps fitted on all of devel; test only when its
  labels exist.
* Only labelled frames are scored; every CCC has a 95 % bootstrap interval over recordings.

``evaluate`` artifact (``models/evaluate/<hash>/``):

``results.csv``
    One row per (dimension, modality, fusion, estimator, partition): ``modality`` (``audio``, ``video`` or
    ``audio+video``), ``fusion`` (``none``, ``early``, ``late``), ``ccc`` (pooled), ``ccc_ci_low``,
    ``ccc_ci_high``, ``ccc_mean_per_recording``, ``pearson``, ``rmse``, ``n_frames`` (scored,
    i.e. labelled, frames), ``n_recordings``, ``W``, ``windows`` (W per modality), ``normalisation``,
    ``D``, ``C`` (empty for late fusion, whose inputs keep their own), ``fusion_weights`` (late
    fusion's linear weights, fitted on all of devel), ``postprocessing`` (steps kept), ``ccc_raw``
    (before post-processing; for late fusion, of the fused predictions), ``chosen_on``,
    ``scored_on``, ``features``, ``weights``; ``estimator`` (``svr``, ``gru``, ``lstm``; late
    fusion: those it fuses, ``svr+gru``), ``settings`` (a recurrent system's grid point) and
    ``ccc_raw_seed_sd`` (a recurrent system: the standard deviation of its single seeds' raw CCC);
    ``causal`` (true for the causal systems of ``train.causal``: ``causal-audio``, ``causal-late``).
``comparisons.csv``
    Paired bootstrap over recordings, per dimension and partition: the best centred system (on devel)
    against the best unimodal system and against its own raw predictions; each recurrent
    estimator's best system against the SVR's best (``compared_with`` = ``best svr (audio)``); with
    ``train.causal``, the best causal system against the best centred SVR system (``compared_with`` =
    ``best centred (audio)``: the cost of causality).
``predictions/<recording>.parquet``
    ``time``, ``gold_<dimension>`` (when labelled; NaN on unlabelled frames),
    ``<system>_<dimension>`` (post-processed; held out for devel) and ``raw_<system>_<dimension>``,
    system = ``audio``, ``video``, ``early``, ``late`` or a recurrent one (``gru-audio``).
``system_<system>_<dimension>.skops`` (skops format: :mod:`~recola_pipeline.safe_io`)
    Each system's whole model, one scikit-learn pipeline (:mod:`~recola_pipeline.estimators.bundle`):
    the train stage's ``normalise -> kernel -> regress`` and the post-processing chosen here; for
    late fusion, ``fuse -> postprocess``, where ``fuse`` holds the fused systems' pipelines.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import safe_io
from ..bootstrap import ccc_interval, paired_difference
from ..cache import read_table, write_table
from ..estimators import LateFusion, PostProcessor, SystemFusion
from ..estimators.bundle import late_fusion_pipeline, member_predictions, predict_frames, with_postprocessing
from ..estimators.delay import segments
from ..estimators.selection import (
    MIN_HELD_OUT_RECORDINGS,
    choose_postprocessing,
    held_out,
    recording_folds,
)
from ..extractors import AUDIO_FEATURE_SETS
from ..matrices import system_frames
from ..metrics import ccc, labelled_ccc, mean_per_recording, pearson, pooled, rmse
from ..modalities import RECURRENT, is_causal, row_system, system_key
from ..stage import Stage
from ..readers import load_data
from ..window import parse_windows

log = logging.getLogger(__name__)

PARTITION_ORDER = ("train", "devel", "test")
CHOSEN_ON = {
    "train": "devel",
    "devel": "devel (W, D, C, normalisation); held-out devel recordings (post-processing, fusion)",
    "test": "devel",
}
#: what a recurrent system's training chose besides (its settings are chosen on devel like the SVR's)
RECURRENT_CHOSEN_ON = "; training epochs: early stopping on train recordings held out of the fit"
SCORED_ON = {
    "train": "train (the data the models were fitted on)",
    "devel": "devel, each recording post-processed and fused by steps fitted on the other devel recordings",
    "test": "test",
}


def labelled_pairs(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> list[tuple]:
    """``(gold, prediction)`` of the labelled frames of each recording (recordings with none left out)."""
    pairs = []
    for seg in segments(groups):
        rows = np.isfinite(gold[seg])
        if rows.any():
            pairs.append((gold[seg][rows], pred[seg][rows]))
    return pairs


def score(gold: np.ndarray, pred: np.ndarray, groups: np.ndarray, *, resamples: int, seed: int) -> dict:
    """Pooled CCC with its bootstrap interval, mean per-recording CCC, pooled Pearson and RMSE,
    on labelled frames only."""
    pairs = labelled_pairs(gold, pred, groups)
    low, high = ccc_interval(pairs, resamples=resamples, seed=seed)
    return {"ccc": pooled(ccc, pairs), "ccc_ci_low": low, "ccc_ci_high": high,
            "ccc_mean_per_recording": mean_per_recording(ccc, pairs), "pearson": pooled(pearson, pairs),
            "rmse": pooled(rmse, pairs), "n_frames": int(sum(len(g) for g, _ in pairs)),
            "n_recordings": len(pairs)}


def provenance(inputs, modalities) -> dict:
    """Which features and which pretrained weights produced a system's predictions."""
    features, weights = [], []
    for modality in modalities:
        if modality == "audio":
            feature_set = inputs.config.audio.feature_set
            source = AUDIO_FEATURE_SETS[feature_set].description
            features.append(f"audio:{feature_set}")
            weights.append(f"{source} (no learned weights)")
        elif modality == "video":
            video = inputs.artifact("video").manifest()["info"]
            features.append(f"video:{video['backbone']} embeddings, PCA {video['pca_components']} components "
                            f"({video['pca_variance_kept']:.0%} of train variance), mean+std over W")
            weights.append(f"video {video['backbone']}: {video['weights']}")
        else:
            raise KeyError(f"no provenance known for modality {modality!r}")
    return {"features": "; ".join(features), "weights": "; ".join(weights)}


def postprocess_system(cfg, raw: dict, frames: dict, dim: str, folds, causal: bool = False
                       ) -> tuple[PostProcessor, dict]:
    """Choose post-processing on held-out devel, fit it on all of devel (``causal``: trailing median filters).

    Returns the fitted PostProcessor and the predictions per partition (devel: held out)."""
    devel = frames["devel"]
    if folds is None or not cfg.postprocess:
        chosen, devel_pred = PostProcessor(causal=causal), raw["devel"]
    else:
        chosen, devel_pred, _ = choose_postprocessing(
            raw["devel"], devel.gold[dim], devel.groups, folds, median_windows_s=cfg.median_windows_s,
            centring=cfg.centring, scaling=cfg.scaling, causal=causal)
    fitted = chosen.fit(raw["devel"], devel.gold[dim], devel.groups)
    final = {p: fitted.predict(raw[p], frames[p].groups) if len(raw[p]) else np.empty(0) for p in PARTITION_ORDER}
    final["devel"] = devel_pred
    return fitted, final


def run_evaluate(inputs, artifact) -> dict:
    """Predict, post-process and score every system; fit and score late fusion."""
    cfg = inputs.config.evaluate
    boot = dict(resamples=cfg.bootstrap_resamples, seed=cfg.bootstrap_seed)
    train_artifact = inputs.artifact("train")
    selected = read_table(train_artifact.file("selected.csv"))
    table, gold_tables = load_data(inputs.artifact("data"))
    dims = inputs.config.corpus.dimensions
    predictions = {rec: gold_tables[rec].rename(columns={d: f"gold_{d}" for d in dims}) for rec in table.recording}
    devel_recordings = int((table[table.partition == "devel"].labelled_frames > 0).sum())
    skipped = ""
    if devel_recordings < MIN_HELD_OUT_RECORDINGS:
        skipped = (f"devel has {devel_recordings} labelled recording(s); post-processing and late fusion need at "
                   f"least {MIN_HELD_OUT_RECORDINGS}, so that each can be chosen on recordings it is scored "
                   "without. Both are skipped: the devel numbers are the raw predictions")
        log.warning("evaluate: %s", skipped)
    rows, unimodal, scored_predictions = [], {}, {}

    def record(system, dim, modalities, fusion, estimator, causal, frames, raw, fitted, final, settings,
               members=None):
        for p in PARTITION_ORDER:
            f = frames[p]
            for seg in segments(f.groups):
                rec = f.groups[seg.start]
                predictions[rec][f"{system}_{dim}"] = final[p][seg]
                predictions[rec][f"raw_{system}_{dim}"] = raw[p][seg]
            if dim not in f.gold or not np.isfinite(f.gold[dim]).any():
                continue
            scored_predictions[(system, dim, p)] = (f.gold[dim], final[p], raw[p], f.groups)
            rows.append({"dimension": dim, "modality": "+".join(modalities), "fusion": fusion, "estimator": estimator,
                         "causal": causal, "partition": p, **score(f.gold[dim], final[p], f.groups, **boot), **settings,
                         "postprocessing": "+".join(fitted.steps_) or "none",
                         "ccc_raw": pooled(ccc, labelled_pairs(f.gold[dim], raw[p], f.groups)),
                         "ccc_raw_seed_sd": seed_spread(f.gold[dim], members[p]) if members else np.nan,
                         "chosen_on": CHOSEN_ON[p] + (RECURRENT_CHOSEN_ON if members else ""),
                         "scored_on": SCORED_ON[p],
                         **provenance(inputs, modalities)})

    folds = None
    for sel in selected.itertuples():
        bundle = safe_io.load(train_artifact.file(f"model_{sel.system}_{sel.dimension}.skops"))
        windows = parse_windows(sel.windows)
        causal = is_causal(sel)
        frames = {p: system_frames(inputs, windows, p, labelled_only=False, causal=causal) for p in PARTITION_ORDER}
        members = ({p: member_predictions(bundle["model"], f) if len(f.X) else None for p, f in frames.items()}
                   if sel.estimator != "svr" else None)
        # a recurrent system predicts its networks' mean (SequenceRegressor.predict): from the members, run once
        raw = {p: (members[p].mean(axis=1) if members else predict_frames(bundle["model"], f)) if len(f.X)
               else np.empty(0) for p, f in frames.items()}
        if folds is None and not skipped:
            folds = recording_folds(frames["devel"].groups, cfg.max_folds)
        if sel.fusion == "none":
            unimodal.setdefault((sel.dimension, causal), {})[sel.system] = (frames, raw, sel, bundle["model"])
        fitted, final = postprocess_system(cfg, raw, frames, sel.dimension, folds, causal)
        safe_io.dump(with_postprocessing(bundle["model"], fitted),
                     artifact.file(f"system_{sel.system}_{sel.dimension}.skops"))
        record(sel.system, sel.dimension, list(windows), sel.fusion, sel.estimator, causal, frames, raw, fitted, final,
               {"W": sel.W, "windows": sel.windows, "normalisation": sel.normalisation, "D": sel.D, "C": sel.C,
                "settings": sel.settings if isinstance(sel.settings, str) else "", "fusion_weights": ""}, members)

    for (dim, causal), systems in unimodal.items():  # centred systems fused together, causal ones together
        if len(systems) < 2 or skipped:
            continue
        frames = next(iter(systems.values()))[0]
        devel = frames["devel"]
        stacked = {p: np.column_stack([raw[p] for _, raw, _, _ in systems.values()]) for p in PARTITION_ORDER}
        late = SystemFusion([(m, model, f["devel"].X.shape[1]) for m, (f, _, _, model) in systems.items()])
        fusion = late.fit_predictions(stacked["devel"], devel.gold[dim], devel.groups).fusion_
        fused = {p: fusion.predict(x) if len(x) else np.empty(0) for p, x in stacked.items()}
        fused["devel"] = held_out(LateFusion(), stacked["devel"], devel.gold[dim], devel.groups, folds)
        fitted, final = postprocess_system(cfg, fused, frames, dim, folds, causal)
        late_system = system_key("svr", "", "late", causal)
        safe_io.dump(late_fusion_pipeline(late, fitted), artifact.file(f"system_{late_system}_{dim}.skops"))
        weights = " ".join(f"{m}={w:.3f}" for m, w in zip(systems, fusion.linear_.coef_))
        chosen = [sel for _, _, sel, _ in systems.values()]
        record(late_system, dim, _distinct(m for sel in chosen for m in parse_windows(sel.windows)), "late",
               "+".join(_distinct(sel.estimator for sel in chosen)), causal, frames, fused, fitted, final,
               {"W": np.nan, "windows": " ".join(sel.windows for sel in chosen),
                "normalisation": " ".join(f"{m}={sel.normalisation}" for m, sel in zip(systems, chosen)),
                "D": np.nan, "C": np.nan, "settings": "",
                "fusion_weights": f"{weights} bias={fusion.linear_.intercept_:.3f}"})
    for rec, frame in predictions.items():
        write_table(artifact.file(f"predictions/{rec}.parquet"), frame)
    results = pd.DataFrame(rows)
    check_every_dimension_scored(results, dims)
    write_table(artifact.file("results.csv"), results)
    comparisons = compare_systems(results, scored_predictions, **boot)
    write_table(artifact.file("comparisons.csv"), comparisons)
    return {"rows": len(results), "best_devel": _best(results), "skipped": skipped,
            "devel_folds": len(folds) if folds else 0}


def _distinct(items) -> list:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def seed_spread(gold: np.ndarray, members: np.ndarray) -> float:
    """Standard deviation over a recurrent system's networks (seeds) of their raw pooled CCC on labelled frames."""
    return float(np.std([labelled_ccc(gold, members[:, j]) for j in range(members.shape[1])]))


def check_every_dimension_scored(results: pd.DataFrame, dimensions) -> None:
    """Raise unless every dimension has finite devel scores: no dimension may drop out of the results.

    Raises
    ------
    RuntimeError
        A dimension has no devel row, or a non-finite CCC (the data stage guarantees rated devel
        frames in every dimension, so this is a bug, never an input problem).
    """
    devel = results[results.partition == "devel"] if len(results) else results
    for dim in dimensions:
        scores = devel.loc[devel.dimension == dim, "ccc"] if len(devel) else pd.Series(dtype=float)
        if not len(scores) or not np.isfinite(scores.to_numpy(dtype=float)).all():
            raise RuntimeError(f"evaluate: the {dim} devel scores are missing or not finite; nothing was written")


def compare_systems(results: pd.DataFrame, scored: dict, *, resamples: int, seed: int) -> pd.DataFrame:
    """Paired bootstrap, per dimension and scored partition, of the best centred system (chosen on devel)
    against the best unimodal system (chosen on devel) and against its own raw predictions; of
    each recurrent estimator's best system against the SVR's best (each chosen on devel); and of the
    best causal system against the best centred SVR system (the cost of causality; negative: a loss)."""
    rows = []
    devel = results[results.partition == "devel"]
    for dim, every in devel.groupby("dimension", sort=False):
        causal = every[[is_causal(row) for row in every.itertuples()]]
        candidates = every.drop(index=causal.index)
        best = candidates.loc[candidates.ccc.idxmax()]
        single = candidates[candidates.fusion == "none"]
        best_single = single.loc[single.ccc.idxmax()] if len(single) else None
        svr = candidates[candidates.estimator == "svr"]
        recurrent = [candidates[candidates.estimator == e] for e in RECURRENT]
        pairs = [(best, "raw predictions", None)]
        if best_single is not None and row_system(best_single) != row_system(best):
            pairs.insert(0, (best, f"best unimodal ({row_system(best_single)})", best_single))
        if len(svr):
            best_svr = svr.loc[svr.ccc.idxmax()]
            pairs += [(own.loc[own.ccc.idxmax()], f"best svr ({row_system(best_svr)})", best_svr)
                      for own in recurrent if len(own)]
            if len(causal):  # the cost of causality: best causal system against the best centred SVR system
                pairs.append((causal.loc[causal.ccc.idxmax()], f"best centred ({row_system(best_svr)})", best_svr))
        for partition in ("devel", "test"):
            for system, label, other in pairs:
                key = (row_system(system), dim, partition)
                if key not in scored:
                    continue
                gold, final, raw, groups = scored[key]
                pred = raw if other is None else scored[(row_system(other), dim, partition)][1]
                test = paired_difference(labelled_pairs(gold, final, groups), labelled_pairs(gold, pred, groups),
                                         resamples=resamples, seed=seed)
                rows.append({"dimension": dim, "partition": partition, "system": row_system(system),
                             "compared_with": label, **test})
    return pd.DataFrame(rows, columns=["dimension", "partition", "system", "compared_with", "difference",
                                       "ci_low", "ci_high", "p_not_better"])


def _best(results: pd.DataFrame) -> dict:
    devel = results[results.partition == "devel"]
    best = devel.loc[devel.groupby("dimension")["ccc"].idxmax()] if len(devel) else devel
    return {r.dimension: {"modality": r.modality, "fusion": r.fusion, "ccc": r.ccc} for r in best.itertuples()}


STAGE = Stage(
    name="evaluate", kind="models", sections=("evaluate",), upstream=lambda cfg: ["train"],
    libraries=("numpy", "scipy", "scikit-learn"), run=run_evaluate,
)
