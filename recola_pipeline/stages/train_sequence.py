"""The train stage's search of the recurrent regressors (``train.estimators`` gru, lstm).

Every point of the ``[sequence]`` grid (hidden, layers, bidirectional, dropout, learning rate,
segment length, D) and every normalisation of ``train.normalisation`` is trained on train, once
per seed, as a parallel job of one torch thread; early stopping holds out whole train
recordings, never devel. A point's devel CCC is that of its seeds' mean prediction, scored on
labelled devel frames as the SVR grid is; the spread over seeds is reported beside it. The
networks of the point chosen on devel are the model: nothing is refitted.

Systems: each modality alone at ``sequence.window_s`` (0: its shortest window), and with two or
more modalities early fusion of their features side by side.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..estimators import SEQUENCE_GRID
from ..estimators.bundle import fit_normaliser, system_pipeline
from ..estimators.sequence import SequenceRegressor, combine
from ..matrices import system_frames
from ..metrics import labelled_ccc
from ..modalities import modality_windows, system_key
from ..window import Window, in_seconds, parse_windows, windows_label

def recurrent_estimators(config) -> list[str]:
    """The recurrent cells ``train.estimators`` asks for, in its order."""
    return [e for e in config.train.estimators if e != "svr"]


def input_window(config, modality: str) -> Window:
    """The window whose functionals a recurrent network reads: ``sequence.window_s``, or the shortest extracted."""
    windows = modality_windows(config, modality)
    if not config.sequence.window_s:
        return min(windows)
    if config.sequence.window_s not in [w.seconds for w in windows]:
        raise ValueError(f"sequence.window_s = {config.sequence.window_s:g} s is not one of the {modality} windows "
                         f"extracted ({', '.join(map(str, windows))}); add it to {modality}.windows_s")
    return Window(config.sequence.window_s)


def settings_label(settings: dict) -> str:
    """``cell=gru hidden=64 ...``: a grid point as written in grid.csv and results.csv."""
    return " ".join(f"{k}={v}" for k, v in settings.items())


def grid_points(config) -> list[dict]:
    """Every recurrent setting searched: cell x the ``[sequence]`` grids."""
    cfg = config.sequence
    grids = [getattr(cfg, key) for key in SEQUENCE_GRID]
    return [{"cell": cell, **{SEQUENCE_GRID[k]: v for k, v in zip(SEQUENCE_GRID, values)}}
            for cell in recurrent_estimators(config) for values in itertools.product(*grids)]


def regressor(config, settings: dict, seed: int, n_seeds: int = 1) -> SequenceRegressor:
    """The regressor of a grid point, with the run's fixed training settings."""
    cfg = config.sequence
    return SequenceRegressor(**settings, segment_hop=cfg.segment_hop_frames, batch_size=cfg.batch_size,
                             max_epochs=cfg.max_epochs, patience=cfg.patience,
                             validation_fraction=cfg.validation_fraction, n_seeds=n_seeds, random_state=seed,
                             n_threads=1)


def systems(config) -> list[tuple[str, dict]]:
    """``(fusion, windows)`` of each recurrent system: each modality alone, and early fusion of two or more."""
    windows = {m: input_window(config, m) for m in config.train.modalities}
    out = [("none", {m: w}) for m, w in windows.items()]
    return out + ([("early", windows)] if len(windows) > 1 else [])


def fit_member(args) -> tuple[SequenceRegressor, np.ndarray, object, list]:
    """One network of one grid point (one seed), its devel predictions, and the normaliser and feature columns
    it was fitted with."""
    inputs, windows, dim, normalisation, settings, seed = args
    train = system_frames(inputs, windows, "train")
    devel = system_frames(inputs, windows, "devel")
    normaliser = fit_normaliser(normalisation, train)
    member = regressor(inputs.config, settings, seed).fit(normaliser.transform(train.X, train.groups),
                                                          train.gold[dim], train.groups)
    return member, member.predict(normaliser.transform(devel.X, devel.groups), devel.groups), normaliser, \
        train.columns


def search(inputs) -> tuple[list[dict], dict]:
    """Search every recurrent system, dimension, normalisation and grid point on devel.

    Returns
    -------
    rows : list of dict
        grid.csv rows (one per point; ``ccc_devel`` of the seeds' mean, ``ccc_devel_seed_sd``).
    members : dict
        ``(system, dimension, normalisation, settings label) -> (normaliser, feature columns, fitted single-seed
        regressors)``.
    """
    config = inputs.config
    seeds = [config.train.seed + i for i in range(config.sequence.seeds)]
    points = [(fusion, windows, dim, norm, settings)
              for fusion, windows in systems(config) for dim in config.corpus.dimensions
              for norm in config.train.normalisation for settings in grid_points(config)]
    jobs = [(inputs, windows, dim, norm, settings, seed) for _, windows, dim, norm, settings in points
            for seed in seeds]
    fitted = iter(inputs.map(fit_member, jobs, desc="train: recurrent networks"))
    devel_gold = {}
    rows, members = [], {}
    for fusion, windows, dim, norm, settings in points:
        point = [next(fitted) for _ in seeds]
        key = (windows_label(windows), dim)
        if key not in devel_gold:
            devel_gold[key] = system_frames(inputs, windows, "devel").gold[dim]
        gold = devel_gold[key]
        modality = "+".join(windows)
        system = system_key(settings["cell"], modality, fusion)
        label = settings_label(settings)
        _, _, normaliser, columns = point[0]  # the same train frames, so the same normaliser, for every seed
        members[(system, dim, norm, label)] = (normaliser, columns, [m for m, *_ in point])
        seed_scores = [labelled_ccc(gold, pred) for _, pred, *_ in point]
        rows.append({"system": system, "modality": modality, "fusion": fusion, "dimension": dim,
                     "W": next(iter(windows.values())).seconds if fusion == "none" else np.nan,
                     "windows": windows_label(windows), "normalisation": norm, "D": settings["delay_s"], "C": np.nan,
                     "ccc_devel": labelled_ccc(gold, np.mean([pred for _, pred, *_ in point], axis=0)),
                     "estimator": settings["cell"], "settings": label,
                     "ccc_devel_seed_sd": float(np.std(seed_scores))})
    return rows, members


def final_model(row, members: dict) -> dict:
    """The model of a selected recurrent point: its normaliser and its seeds' networks, averaged (no refit)."""
    normaliser, columns, networks = members[(row.system, row.dimension, row.normalisation, row.settings)]
    return {"model": system_pipeline(normaliser, None, combine(networks)),
            "windows": in_seconds(parse_windows(row.windows)),
            "features": columns, "system": row.system, "dimension": row.dimension}
