"""The ``video`` stage: PCA of the face embeddings, windowed functionals at the label rate.

``features/video/<hash>/``: a PCA fitted on the train partition's face frames keeps
``video.pca_variance`` of the variance (AVEC 2016 kept 98 %); then, for every W in
``video.windows_s``, the mean and standard deviation of each component over the centred window,
aligned to the label frames like the audio (:func:`~recola_pipeline.extractors.windows.align_to_labels`),
plus ``face_fraction`` (share of the window's frames with a face). A window without any face
frame is NaN, which the train stage maps to 0 after normalisation (the train mean).
Files: ``pca.joblib``, ``w<W>/<recording>.parquet``.
"""
from __future__ import annotations

import logging

import joblib
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ..cache import atomic_path, write_table
from ..corpora import CorpusError
from ..extractors.windows import windowed_mean_std
from ..labels import LABEL_HOP_S
from ..matrices import window_name
from ..pipeline import Pipeline, Stage
from ..readers import load_face_frames, video_rows

log = logging.getLogger(__name__)


def _embedding(table: pd.DataFrame) -> np.ndarray:
    columns = [c for c in table.columns if c not in ("time", "face", "detected", "cx", "cy", "side")]
    return table[columns].to_numpy(dtype=np.float64)


def run_video(pipeline: Pipeline, artifact) -> dict:
    """PCA on the train partition's face frames, then windowed mean/std per W."""
    cfg = pipeline.config.video
    face_artifact = pipeline.ensure("faces")
    rows = video_rows(pipeline)
    tables = {r["recording"]: load_face_frames(face_artifact, r["recording"]) for r in rows}
    train = [_embedding(tables[r["recording"]]) for r in rows if r["partition"] == "train"]
    train = np.vstack(train) if train else np.empty((0, 0))
    train = train[np.isfinite(train).all(axis=1)] if train.size else train
    if len(train) < 2:
        raise CorpusError("video: the train partition has fewer than two frames with a face, so no PCA can be "
                          "fitted; check the train videos (the faces stage's info/ says how many faces were found)")
    pca = PCA(n_components=cfg.pca_variance if cfg.pca_variance < 1 else None, svd_solver="full").fit(train)
    with atomic_path(artifact.file("pca.joblib")) as tmp:
        joblib.dump(pca, tmp)
    names = [f"pc{i + 1:03d}" for i in range(pca.n_components_)]
    columns = [f"{n}_mean" for n in names] + [f"{n}_std" for n in names] + ["face_fraction"]
    for rec, table in tables.items():
        embedding = _embedding(table)
        face = np.isfinite(embedding).all(axis=1)
        projected = np.full((len(table), pca.n_components_), np.nan)
        if face.any():
            projected[face] = pca.transform(embedding[face])
        for w in cfg.windows_s:
            mean, std, fraction = windowed_mean_std(projected, w, LABEL_HOP_S)
            values = np.column_stack([mean, std, fraction]).astype(np.float32)
            out = pd.DataFrame(values, columns=columns)
            out.insert(0, "time", table["time"].to_numpy())
            write_table(artifact.file(f"{window_name(w)}/{rec}.parquet"), out)
    return {"backbone": cfg.backbone, "weights": face_artifact.manifest()["info"]["weights"],
            "pca_components": int(pca.n_components_),
            "pca_variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4),
            "train_face_frames": int(len(train)), "windows_s": cfg.windows_s, "recordings": len(tables)}


STAGE = Stage(
    name="video", kind="features", sections=("video",), upstream=lambda cfg: ["data", "faces"],
    libraries=("scikit-learn", "numpy"), run=run_video,
)
