"""The ``train`` stage: search window W, delay D, C and the normalisation on devel, then fit
one model per system (each modality alone, and early fusion) and dimension on train.

For every modality, window length and normalisation the train features are normalised (train
statistics or per recording, NaN -> 0), optionally mapped through a Nystroem RBF kernel
approximation, and factorised once (:class:`~recola_pipeline.estimators.RidgePath`); every delay
then only changes the shifted targets and every C only the shrinkage, so the full AVEC grid
(W x D x C) costs about one fit per W. Devel predictions are shifted forward by D and scored by
pooled CCC against the unshifted gold, on labelled frames only; a training pair needs both of
its frames labelled. With two or more modalities, early fusion concatenates the features of each
modality at the window selected for it (per dimension) and searches D, C and the normalisation
the same way.
The best point per system and dimension is refitted on train as a
:class:`~recola_pipeline.estimators.DelayedRegressor` around an
:class:`~recola_pipeline.estimators.L2LinearSVR` and saved in skops format (:mod:`~recola_pipeline.safe_io`). Late fusion is fitted on
devel predictions, so it lives in the evaluate stage.

``train.estimators`` chooses the regressors: ``svr`` (the above), and the recurrent ``gru`` and
``lstm`` (:mod:`~recola_pipeline.stages.train_sequence`), searched on the same features,
partitions and gold standard; a recurrent system is named ``<estimator>-<modality or early>``.

``train`` artifact (``models/train/<hash>/``): ``grid.csv`` (system, modality, fusion, dimension,
W, windows, D, C, ccc_devel for every point searched; W is empty for early fusion, whose
``windows`` reads e.g. ``audio=8 video=6``; ``estimator``; for recurrent points their
``settings`` and ``ccc_devel_seed_sd``, the spread of the single seeds' devel CCC), ``selected.csv``
(the chosen point per system and dimension), both with the ``normalisation`` of each point, and
``model_<system>_<dimension>.skops`` (a dict: ``model``, the scikit-learn pipeline
``normalise -> kernel -> regress`` of :mod:`~recola_pipeline.estimators.bundle`; ``windows``;
``features``).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import safe_io
from ..cache import write_table
from ..corpora import CorpusError
from ..estimators import DelayedRegressor, L2LinearSVR, RidgePath
from ..estimators.bundle import fit_representation, represent, system_pipeline
from ..estimators.delay import aligned_predictions, delayed_targets
from ..labels import delay_frames
from ..matrices import partition_frames, system_frames
from ..metrics import labelled_ccc
from ..modalities import MODALITY_STAGES, is_causal, modality_windows, system_key
from ..stage import Stage, library_versions
from ..readers import load_data
from ..window import Window, in_seconds, parse_windows, windows_label
from . import train_sequence

log = logging.getLogger(__name__)

def delays_s(cfg) -> list[float]:
    """The delay grid 0 : step : max in seconds."""
    n = int(np.floor(cfg.delay_max_s / cfg.delay_step_s + 1e-9)) + 1
    return [round(i * cfg.delay_step_s, 4) for i in range(n)]


def search_window(args) -> list[dict]:
    """Every (dimension, D, C) for one modality, window length and normalisation: devel CCC rows."""
    inputs, modality, window, normalisation, causal = args
    cfg = inputs.config.train
    train = partition_frames(inputs, modality, window, "train", causal=causal)
    devel = partition_frames(inputs, modality, window, "devel", causal=causal)
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    path = RidgePath(represent(normaliser, kernel, train))
    Z_devel = represent(normaliser, kernel, devel)
    rows = []
    for dim in inputs.config.corpus.dimensions:
        scores = delay_c_scores(path, train.gold[dim], train.groups, Z_devel, devel.gold[dim], devel.groups,
                                delays_s(cfg), cfg.c_grid, early_stop=cfg.delay_early_stop)
        rows += [{"system": system_key("svr", modality, "none", causal), "modality": modality, "fusion": "none",
                  "causal": causal, "dimension": dim, "W": window.seconds,
                  "windows": windows_label({modality: window}), "normalisation": normalisation, "D": delay,
                  "C": c, "ccc_devel": score}
                 for delay, per_c in scores.items() for c, score in zip(cfg.c_grid, per_c)]
    return rows


def search_early(args) -> list[dict]:
    """Every (D, C) of early fusion for one dimension and normalisation, on the modalities' selected windows."""
    inputs, dim, windows, normalisation, causal = args
    cfg = inputs.config.train
    train = system_frames(inputs, windows, "train", causal=causal)
    devel = system_frames(inputs, windows, "devel", causal=causal)
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    path = RidgePath(represent(normaliser, kernel, train))
    scores = delay_c_scores(path, train.gold[dim], train.groups, represent(normaliser, kernel, devel),
                            devel.gold[dim], devel.groups, delays_s(cfg), cfg.c_grid, early_stop=cfg.delay_early_stop)
    return [{"system": system_key("svr", "+".join(windows), "early", causal), "modality": "+".join(windows),
             "fusion": "early", "causal": causal, "dimension": dim, "W": np.nan,
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
        pred = aligned_predictions(path.predict(Z_devel, coefs), groups_devel, n)
        scores[delay] = [labelled_ccc(y_devel, pred[:, j]) for j in range(pred.shape[1])]
        top = np.nanmax(scores[delay])
        best, stale = (top, 0) if top > best else (best, stale + 1)
        if early_stop and stale >= 3:
            break
    return scores


def select(grid: pd.DataFrame) -> pd.DataFrame:
    """The best point per system and dimension (highest devel CCC; first of ties). Each estimator's systems are
    named apart (:func:`~recola_pipeline.modalities.system_key`)."""
    ranked = grid.dropna(subset=["ccc_devel"]).sort_values(["system", "dimension", "ccc_devel"],
                                                           ascending=[True, True, False], kind="stable")
    return ranked.groupby(["system", "dimension"], sort=False).head(1).reset_index(drop=True)


def fit_final(inputs, system: str, dim: str, windows: dict[str, Window], normalisation: str,
              delay: float, c: float, causal: bool = False) -> dict:
    """Refit the selected model of a system on train; returns the bundle (see :mod:`~recola_pipeline.estimators.bundle`)."""
    cfg = inputs.config.train
    train = system_frames(inputs, windows, "train", causal=causal)
    normaliser, kernel = fit_representation(cfg, normalisation, train)
    regressor = DelayedRegressor(L2LinearSVR(C=c), delay_s=delay).fit(
        represent(normaliser, kernel, train), train.gold[dim], train.groups)
    return {"model": system_pipeline(normaliser, kernel, regressor), "windows": in_seconds(windows),
            "features": train.columns, "system": system, "dimension": dim, "causal": causal}


def run_train(inputs, artifact) -> dict:
    """Search the grids on devel and save one model per system and dimension."""
    table, _ = load_data(inputs.artifact("data"))
    for partition in ("train", "devel"):
        if not (table[table.partition == partition].labelled).any():
            raise CorpusError(f"the train stage needs labelled {partition} recordings; the corpus has none. "
                              "Check the partitions (corpus.partitions_csv)")
    cfg = inputs.config.train
    recurrent = train_sequence.recurrent_estimators(inputs.config)
    train_recordings = int((table[table.partition == "train"].labelled).sum())
    if recurrent and train_recordings < 2:
        raise CorpusError(f"train.estimators {', '.join(recurrent)} needs at least 2 labelled train recordings (one "
                          f"is held out of each fit for early stopping); the corpus has {train_recordings}. Add "
                          "recordings to train, or train the SVR alone (train.estimators = [\"svr\"])")
    grid = svr_grid(inputs) if "svr" in cfg.estimators else pd.DataFrame()
    members = {}
    if recurrent:
        rows, members = train_sequence.search(inputs)
        grid = pd.concat([grid, pd.DataFrame(rows)], ignore_index=True)
    write_table(artifact.file("grid.csv"), grid)
    selected = select(grid)
    write_table(artifact.file("selected.csv"), selected)
    for row in selected.itertuples():
        if row.estimator == "svr":
            bundle = fit_final(inputs, row.system, row.dimension, parse_windows(row.windows), row.normalisation,
                               row.D, row.C, is_causal(row))
            chosen = f"C={row.C:g}"
        else:
            bundle = train_sequence.final_model(row, members)
            chosen = f"{row.settings}, seed spread (sd) {row.ccc_devel_seed_sd:.3f}"
        safe_io.dump(bundle, artifact.file(f"model_{row.system}_{row.dimension}.skops"))
        log.info("train: %s %s: %s s, %s normalisation, D=%.1f s, %s, devel CCC %.3f (chosen and scored on devel)",
                 row.system, row.dimension, row.windows, row.normalisation, row.D, chosen, row.ccc_devel)
    return {"grid_points": len(grid), "kernel": cfg.kernel, "normalisation_searched": cfg.normalisation,
            "estimators": cfg.estimators, "selected": selected.to_dict("records")}


def causal_modes(cfg) -> list[tuple[bool, list[str]]]:
    """``(causal, normalisations searched)``: the centred systems, and with ``train.causal`` the causal ones,
    which normalise with train or online statistics (a recording's own statistics need its future)."""
    return [(False, cfg.normalisation)] + ([(True, cfg.causal_normalisation)] if cfg.causal else [])


def svr_grid(inputs) -> pd.DataFrame:
    """The SVR's grid: every modality, W, D, C and normalisation, then early fusion on each modality's selected W
    (and the same for the causal systems with ``train.causal``)."""
    cfg = inputs.config.train
    modes = causal_modes(cfg)
    jobs = [(inputs, m, w, norm, causal) for causal, norms in modes for m in cfg.modalities
            for w in modality_windows(inputs.config, m) for norm in norms]
    grid = pd.DataFrame([row for rows in inputs.map(search_window, jobs, desc="train: W x D x C")
                         for row in rows])
    if len(cfg.modalities) > 1:  # early fusion on each modality's selected window
        unimodal = select(grid)
        jobs = [(inputs, dim, {m: Window(unimodal[(unimodal.system == system_key("svr", m, "none", causal))
                                                  & (unimodal.dimension == dim)].W.iloc[0])
                                 for m in cfg.modalities}, norm, causal)
                for causal, norms in modes for dim in inputs.config.corpus.dimensions for norm in norms]
        grid = pd.concat([grid, pd.DataFrame([row for rows in inputs.map(search_early, jobs, desc="train: early fusion")
                                              for row in rows])], ignore_index=True)
    return grid.assign(estimator="svr", settings="", ccc_devel_seed_sd=np.nan)


def _identity(config) -> dict:
    """The ``[sequence]`` settings and the torch version, when a recurrent regressor is trained."""
    if not train_sequence.recurrent_estimators(config):
        return {}
    return {"config_keys": {f"sequence.{k}": v for k, v in config.section("sequence").items()},
            "recurrent_libraries": library_versions(("torch",))}


STAGE = Stage(
    name="train", kind="models", sections=("train",),
    upstream=lambda cfg: ["data", *sorted({MODALITY_STAGES[m] for m in cfg.train.modalities})],
    libraries=("numpy", "scikit-learn", "pandas"), run=run_train, extra_identity=_identity,
)
