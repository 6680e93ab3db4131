"""The ``video`` stage: PCA of the face embeddings, windowed functionals at the label rate.

``features/video/<hash>/``: a PCA fitted on the train partition's face frames keeps
``video.pca_variance`` of the variance (AVEC 2016 kept 98 %); then, for every W in
``video.windows_s``, the mean and standard deviation of each component over the centred window,
aligned to the label frames like the audio (:meth:`~recola_pipeline.window.Window.centred`),
plus ``face_fraction`` (share of the window's frames with a face). A window without any face
frame is NaN, which the train stage maps to 0 after normalisation (the train mean).
Files: ``pca.skops``, ``w<W>/<recording>.parquet``.
"""
from __future__ import annotations

import logging

import numpy as np
from sklearn.decomposition import PCA

from .. import safe_io
from ..cache import write_table
from ..corpora import CorpusError
from ..extractors.face_embedding import embedding, face_window_features
from ..stage import Stage
from ..readers import load_face_frames, video_rows

log = logging.getLogger(__name__)


def run_video(inputs, artifact) -> dict:
    """PCA on the train partition's face frames, then windowed mean/std per W."""
    cfg = inputs.config.video
    face_artifact = inputs.artifact("faces")
    rows = video_rows(inputs)
    tables = {r["recording"]: load_face_frames(face_artifact, r["recording"]) for r in rows}
    train = [embedding(tables[r["recording"]]) for r in rows if r["partition"] == "train"]
    train = np.vstack(train) if train else np.empty((0, 0))
    train = train[np.isfinite(train).all(axis=1)] if train.size else train
    if len(train) < 2:
        raise CorpusError("video: the train partition has fewer than two frames with a face, so no PCA can be "
                          "fitted; check the train videos (the faces stage's info/ says how many faces were found)")
    pca = PCA(n_components=cfg.pca_variance if cfg.pca_variance < 1 else None, svd_solver="full").fit(train)
    safe_io.dump(pca, artifact.file("pca.skops"))
    for rec, table in tables.items():
        for w, out in face_window_features(table, pca, cfg.windows).items():
            write_table(artifact.file(f"{w.folder}/{rec}.parquet"), out)
    return {"backbone": cfg.backbone, "weights": face_artifact.manifest()["info"]["weights"],
            "pca_components": int(pca.n_components_),
            "pca_variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4),
            "train_face_frames": int(len(train)), "windows_s": cfg.windows_s, "recordings": len(tables)}


STAGE = Stage(
    name="video", kind="features", sections=("video",), upstream=lambda cfg: ["data", "faces"],
    libraries=("scikit-learn", "numpy"), run=run_video,
)
