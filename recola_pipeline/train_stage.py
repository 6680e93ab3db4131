"""The ``train`` stage: search window W, delay D, C and the normalisation on devel, then fit
one model per system (each modality alone, and early fusion) and dimension on train.

For every modality, window length and normalisation the train features are normalised (train
statistics or per recording, NaN -> 0), optionally mapped through a Nystroem RBF kernel
approximation, and factorised once (:class:`~recola_pipeline.models.RidgePath`); every delay
then only changes the shifted targets and every C only the shrinkage, so the full AVEC grid
(W x D x C) costs about one fit per W. Devel predictions are shifted forward by D and scored by
pooled CCC against the unshifted gold, on labelled frames only; a training pair needs both of
its frames labelled. With two or more modalities, early fusion concatenates the features of each
modality at the window selected for it (per dimension) and searches D, C and the normalisation
the same way.
The best point per system and dimension is refitted on train as a
:class:`~recola_pipeline.models.DelayedRegressor` around an
:class:`~recola_pipeline.models.L2LinearSVR` and saved with joblib. Late fusion is fitted on
devel predictions, so it lives in the evaluate stage.

``train`` artifact (``models/train/<hash>/``): ``grid.csv`` (system, modality, fusion, dimension,
W, windows, D, C, ccc_devel for every point searched; W is empty for early fusion, whose
``windows`` reads e.g. ``audio=8 video=6``), ``selected.csv`` (the chosen point per system and
dimension), both with the ``normalisation`` of each point, and
``model_<system>_<dimension>.joblib`` (a dict: ``normaliser``, ``kernel`` (None or a fitted
Nystroem), ``regressor``, ``windows``, ``features``).
"""
from __future__ import annotations

import logging

import joblib
import numpy as np
import pandas as pd
from sklearn.kernel_approximation import Nystroem

from .cache import atomic_path, write_table
from .corpora import CorpusError
from .data_stage import load_data
from .labels import delay_frames
from .matrices import FrameMatrix, load_frames
from .metrics import labelled_ccc
from .models import DelayedRegressor, L2LinearSVR, Normaliser, RidgePath
from .models.delay import delayed_targets, shift_groups
from .stages import Pipeline, Stage, register

log = logging.getLogger(__name__)

#: modality -> the feature stage that extracts it (its config section of the same name has ``windows_s``)
MODALITY_STAGES = {"audio": "audio", "video": "video"}


def modality_windows(config, modality: str) -> list[float]:
    """Window lengths the feature stage of ``modality`` extracted."""
    return [float(w) for w in getattr(config, MODALITY_STAGES[modality]).windows_s]


def delays_s(cfg) -> list[float]:
    """The delay grid 0 : step : max in seconds."""
    n = int(np.floor(cfg.delay_max_s / cfg.delay_step_s + 1e-9)) + 1
    return [round(i * cfg.delay_step_s, 4) for i in range(n)]


def partition_frames(pipeline: Pipeline, modality: str, window_s: float, partition: str, *, labelled_only=True
                     ) -> FrameMatrix:
    """One partition's frames of one modality and window length, with gold."""
    table, gold = load_data(pipeline.ensure("data"))
    rows = table[table.partition == partition]
    if labelled_only:
        rows = rows[rows.labelled]
    lacking = [r.recording for r in rows.itertuples() if not (isinstance(getattr(r, modality), str)
                                                              and getattr(r, modality))]
    if lacking:
        raise CorpusError(f"{partition} recording(s) {', '.join(lacking)} have no {modality} file, so the {modality} "
                          f"models cannot use them: add the files, or drop '{modality}' from train.modalities")
    return load_frames(pipeline.ensure(MODALITY_STAGES[modality]), window_s, list(rows.recording), gold,
                       pipeline.config.corpus.dimensions)


def system_frames(pipeline: Pipeline, windows: dict[str, float], partition: str, *, labelled_only=True
                  ) -> FrameMatrix:
    """Frames of a system: one modality's, or (early fusion) several modalities' side by side.

    ``windows`` maps each modality to its window length; fused columns are prefixed with the
    modality (``audio:F0semitoneFrom27.5Hz_sma3nz_amean``).
    """
    parts = {m: partition_frames(pipeline, m, w, partition, labelled_only=labelled_only) for m, w in windows.items()}
    if len(parts) == 1:
        return next(iter(parts.values()))
    first = next(iter(parts.values()))  # same recordings and label frames: partition_frames checks every modality
    return FrameMatrix(np.hstack([f.X for f in parts.values()]), first.gold, first.groups, first.time,
                       [f"{m}:{c}" for m, f in parts.items() for c in f.columns])


def windows_label(windows: dict[str, float]) -> str:
    """``audio=8 video=6``: the window length of each modality of a system."""
    return " ".join(f"{m}={w:g}" for m, w in windows.items())


def labelled_rows(frames: FrameMatrix) -> np.ndarray:
    """Frames with a gold value in every dimension (the frames any fit may use)."""
    rows = np.ones(len(frames.X), dtype=bool)
    for values in frames.gold.values():
        rows &= np.isfinite(values)
    return rows


def fit_representation(cfg, normalisation: str, train: FrameMatrix):
    """Fit the normaliser (and the Nystroem map for the RBF kernel) on the labelled train frames.

    Per-recording normalisation has nothing to fit: each recording is standardised with the
    statistics of all its own frames, unsupervised, in every partition.
    """
    rows = labelled_rows(train)
    normaliser = Normaliser(normalisation).fit(train.X[rows])
    kernel = None
    if cfg.kernel == "rbf":
        Z = normaliser.transform(train.X, train.groups)[rows]
        kernel = Nystroem(kernel="rbf", gamma=1.0 / Z.shape[1], n_components=min(cfg.rbf_components, len(Z)),
                          random_state=cfg.seed).fit(Z)
    return normaliser, kernel


def represent(normaliser, kernel, frames: FrameMatrix) -> np.ndarray:
    """Normalised (and kernel-mapped) features of ``frames``."""
    Z = normaliser.transform(frames.X, frames.groups)
    return kernel.transform(Z) if kernel is not None else Z


def search_window(args) -> list[dict]:
    """Every (dimension, D, C) for one modality, window length and normalisation: devel CCC rows."""
    pipeline, modality, window_s, normalisation = args
    cfg = pipeline.config.train
    train = partition_frames(pipeline, modality, window_s, "train")
    devel = partition_frames(pipeline, modality, window_s, "devel")
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    path = RidgePath(represent(normaliser, kernel, train))
    Z_devel = represent(normaliser, kernel, devel)
    rows = []
    for dim in pipeline.config.corpus.dimensions:
        scores = delay_c_scores(path, train.gold[dim], train.groups, Z_devel, devel.gold[dim], devel.groups,
                                delays_s(cfg), cfg.c_grid, early_stop=cfg.delay_early_stop)
        rows += [{"system": modality, "modality": modality, "fusion": "none", "dimension": dim, "W": window_s,
                  "windows": windows_label({modality: window_s}), "normalisation": normalisation, "D": delay,
                  "C": c, "ccc_devel": score}
                 for delay, per_c in scores.items() for c, score in zip(cfg.c_grid, per_c)]
    return rows


def search_early(args) -> list[dict]:
    """Every (D, C) of early fusion for one dimension and normalisation, on the modalities' selected windows."""
    pipeline, dim, windows, normalisation = args
    cfg = pipeline.config.train
    train = system_frames(pipeline, windows, "train")
    devel = system_frames(pipeline, windows, "devel")
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    path = RidgePath(represent(normaliser, kernel, train))
    scores = delay_c_scores(path, train.gold[dim], train.groups, represent(normaliser, kernel, devel),
                            devel.gold[dim], devel.groups, delays_s(cfg), cfg.c_grid, early_stop=cfg.delay_early_stop)
    return [{"system": "early", "modality": "+".join(windows), "fusion": "early", "dimension": dim, "W": np.nan,
             "windows": windows_label(windows), "normalisation": normalisation, "D": delay, "C": c,
             "ccc_devel": score}
            for delay, per_c in scores.items() for c, score in zip(cfg.c_grid, per_c)]


def delay_c_scores(path: RidgePath, y_train, groups_train, Z_devel, y_devel, groups_devel, delays, Cs, *,
                   early_stop: bool = False) -> dict[float, list[float]]:
    """Devel CCC of the exact L2-loss SVR for every delay and C, sharing one factorisation.

    For delay D the train gold is shifted back by D (features at t learn gold at t + D, both frames
    labelled) and the devel predictions are shifted forward by D before being scored against the
    unshifted devel gold on its labelled frames. With ``early_stop`` the delays stop after 3 in a
    row that do not beat the best (AVEC).

    Returns
    -------
    dict
        delay (s) -> list of devel CCCs, one per C.
    """
    scores, best, stale = {}, -np.inf, 0
    for delay in delays:
        n = delay_frames(delay)
        targets, rows = delayed_targets(y_train, groups_train, n)
        coefs = path.coefs(np.where(rows, targets, 0.0), Cs, rows=rows)
        pred = shift_groups(path.predict(Z_devel, coefs), groups_devel, n, "forward")
        scores[delay] = [labelled_ccc(y_devel, pred[:, j]) for j in range(pred.shape[1])]
        top = np.nanmax(scores[delay])
        best, stale = (top, 0) if top > best else (best, stale + 1)
        if early_stop and stale >= 3:
            break
    return scores


def select(grid: pd.DataFrame) -> pd.DataFrame:
    """The best point per system and dimension (highest devel CCC; first of ties)."""
    ranked = grid.dropna(subset=["ccc_devel"]).sort_values(["system", "dimension", "ccc_devel"],
                                                           ascending=[True, True, False], kind="stable")
    return ranked.groupby(["system", "dimension"], sort=False).head(1).reset_index(drop=True)


def parse_windows(label: str) -> dict[str, float]:
    """Inverse of :func:`windows_label`."""
    return {m: float(w) for m, w in (part.split("=") for part in label.split())}


def fit_final(pipeline: Pipeline, system: str, dim: str, windows: dict[str, float], normalisation: str,
              delay: float, c: float) -> dict:
    """Refit the selected model of a system on train; returns the bundle saved with joblib."""
    cfg = pipeline.config.train
    train = system_frames(pipeline, windows, "train")
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    regressor = DelayedRegressor(L2LinearSVR(C=c), delay_s=delay).fit(
        represent(normaliser, kernel, train), train.gold[dim], train.groups)
    return {"normaliser": normaliser, "kernel": kernel, "regressor": regressor, "windows": windows,
            "features": train.columns, "system": system, "dimension": dim}


def predict_bundle(bundle: dict, frames: FrameMatrix) -> np.ndarray:
    """Predictions of a saved model bundle, aligned with the unshifted gold of ``frames``."""
    return bundle["regressor"].predict(represent(bundle["normaliser"], bundle["kernel"], frames), frames.groups)


def run_train(pipeline: Pipeline, artifact) -> dict:
    """Search the grid on devel and save one model per modality and dimension."""
    table, _ = load_data(pipeline.ensure("data"))
    for partition in ("train", "devel"):
        if not (table[table.partition == partition].labelled).any():
            raise CorpusError(f"the train stage needs labelled {partition} recordings; the corpus has none. "
                              "Check the partitions (corpus.partitions_csv)")
    cfg = pipeline.config.train
    jobs = [(pipeline, m, w, norm) for m in cfg.modalities for w in modality_windows(pipeline.config, m)
            for norm in cfg.normalisation]
    grid = pd.DataFrame([row for rows in pipeline.map(search_window, jobs, desc="train: W x D x C")
                         for row in rows])
    if len(cfg.modalities) > 1:  # early fusion on each modality's selected window
        unimodal = select(grid)
        jobs = [(pipeline, dim, {m: float(unimodal[(unimodal.system == m) & (unimodal.dimension == dim)].W.iloc[0])
                                 for m in cfg.modalities}, norm)
                for dim in pipeline.config.corpus.dimensions for norm in cfg.normalisation]
        grid = pd.concat([grid, pd.DataFrame([row for rows in pipeline.map(search_early, jobs, desc="train: early fusion")
                                              for row in rows])], ignore_index=True)
    write_table(artifact.file("grid.csv"), grid)
    selected = select(grid)
    write_table(artifact.file("selected.csv"), selected)
    for row in selected.itertuples():
        bundle = fit_final(pipeline, row.system, row.dimension, parse_windows(row.windows), row.normalisation,
                           row.D, row.C)
        with atomic_path(artifact.file(f"model_{row.system}_{row.dimension}.joblib")) as tmp:
            joblib.dump(bundle, tmp)
        log.info("train: %s %s: %s s, %s normalisation, D=%.1f s, C=%g, devel CCC %.3f (chosen and scored on "
                 "devel)", row.system, row.dimension, row.windows, row.normalisation, row.D, row.C, row.ccc_devel)
    return {"grid_points": len(grid), "kernel": cfg.kernel, "normalisation_searched": cfg.normalisation,
            "selected": selected.to_dict("records")}


register(Stage(
    name="train", kind="models", sections=("train",), version=2,
    upstream=lambda cfg: ["data", *sorted({MODALITY_STAGES[m] for m in cfg.train.modalities})],
    libraries=("numpy", "scikit-learn", "pandas"), run=run_train,
))
