"""One recording's face frames and windowed face features: the computation the faces and video
stages store and ``predict`` applies to new recordings (one code path for both)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..corpora import CorpusError
from ..labels import LABEL_HOP_S
from . import video_decode
from .face_crops import Track, crop_batches
from ..window import Window
from .windows import windowed_mean_std

#: the per-frame columns of a face table that are not the embedding
BOX_COLUMNS = ("time", "face", "detected", "cx", "cy", "side")


def face_frames(row: dict, cfg, max_seconds: float, backbone) -> tuple[pd.DataFrame, dict]:
    """Decode, detect, track, crop and embed one video for label frames 0 ... ``row['n_frames']`` - 1.

    Parameters
    ----------
    row : dict
        ``recording``, ``video`` (path), ``n_frames``, ``fps`` and ``decoder`` (from
        :func:`~recola_pipeline.extractors.video_decode.probe`).
    cfg : VideoConfig
    max_seconds : float
    backbone : Backbone

    Returns
    -------
    table : DataFrame
        ``time``, ``face`` (1 with a face box), ``detected``, ``cx, cy, side`` and the embedding
        (NaN without a face).
    info : dict
        Frame counts, detection rate, largest box move, backbone and weights.
    """
    n_frames = int(row["n_frames"])
    embedded: dict[int, np.ndarray] = {}
    for item in crop_batches(row, cfg, backbone.input_size, backbone.grey, max_seconds):
        if isinstance(item, Track):
            times, detections, boxes = item.times, item.detections, item.boxes
        else:
            embedded.update(zip(item[0], backbone.embed(item[1])))
    times = np.asarray(times)
    if times.size == 0:
        raise CorpusError(f"{row['video']}: no frame could be decoded; the file is corrupt or truncated: "
                          f"{video_decode.DECODE_HINT}")
    sources = video_decode.label_frame_sources(times, n_frames, LABEL_HOP_S)
    has_face = (sources >= 0) & np.isfinite(boxes[np.maximum(sources, 0), 0])
    missing = sorted(set(sources[has_face].tolist()) - set(embedded))
    if missing:
        raise RuntimeError(f"{row['video']}: frames {missing[:5]} were shown at a label time but not embedded")
    values = np.full((n_frames, len(backbone.feature_names)), np.nan, dtype=np.float32)
    for k in np.flatnonzero(has_face):
        values[k] = embedded[int(sources[k])]

    safe = np.maximum(sources, 0)
    table = pd.DataFrame({"time": np.round(np.arange(n_frames) * LABEL_HOP_S, 2),
                          "face": has_face.astype(np.int8),
                          "detected": [s >= 0 and detections.get(int(s)) is not None for s in sources]})
    for k, column in enumerate(("cx", "cy", "side")):
        table[column] = np.where(sources >= 0, boxes[safe, k], np.nan).astype(np.float32)
    table = pd.concat([table, pd.DataFrame(values, columns=backbone.feature_names)], axis=1)
    found = sum(box is not None for box in detections.values())
    steps = np.abs(np.diff(boxes[:, :2], axis=0)).max(axis=1) / boxes[1:, 2]
    fps = row["fps"]
    info = {"recording": row["recording"], "decoder": row["decoder"], "fps": round(fps, 3),
            "decoded_frames": int(len(times)), "video_s": round(float(times[-1]) + 1 / fps, 3),
            "detector_runs": len(detections), "detection_rate": round(found / max(1, len(detections)), 4),
            "label_frames": n_frames, "face_frames": int(has_face.sum()),
            "no_face_frames": int(((sources >= 0) & ~has_face).sum()), "after_video_end": int((sources < 0).sum()),
            "max_box_step": round(float(np.nanmax(steps)) if np.isfinite(steps).any() else 0.0, 4),
            "backbone": backbone.name, "weights": backbone.weights}
    return table, info


def embedding(table: pd.DataFrame) -> np.ndarray:
    """The embedding columns of a face table (NaN rows: no face)."""
    return table[[c for c in table.columns if c not in BOX_COLUMNS]].to_numpy(dtype=np.float64)


def face_window_features(table: pd.DataFrame, pca, windows) -> dict[Window, pd.DataFrame]:
    """Per W, the mean and std of each PCA component over the centred window and the share of its
    frames with a face (``time``, ``pcNNN_mean``, ``pcNNN_std``, ``face_fraction``)."""
    names = [f"pc{i + 1:03d}" for i in range(pca.n_components_)]
    columns = [f"{n}_mean" for n in names] + [f"{n}_std" for n in names] + ["face_fraction"]
    values = embedding(table)
    face = np.isfinite(values).all(axis=1)
    projected = np.full((len(table), pca.n_components_), np.nan)
    if face.any():
        projected[face] = pca.transform(values[face])
    out = {}
    for w in windows:
        mean, std, fraction = windowed_mean_std(projected, w)
        frame = pd.DataFrame(np.column_stack([mean, std, fraction]).astype(np.float32), columns=columns)
        frame.insert(0, "time", table["time"].to_numpy())
        out[w] = frame
    return out
