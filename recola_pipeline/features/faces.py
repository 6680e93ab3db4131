"""Face detection, tracking of the main face, and square crops.

Detection uses OpenCV's bundled Haar cascade (frontal face, default model) on every
``every``-th decoded frame: near the previous face first (a small region, a narrow range of
sizes: a few milliseconds), on the whole grey frame downscaled to ``detect_width`` pixels when
that finds nothing. The main face is the
largest box on the first detection and afterwards the box overlapping the previous one most
(the largest again when none overlaps). Boxes are kept as (centre x, centre y, side) and
tracked by :func:`track`:

1. a running median over ``smoothing`` consecutive detector runs removes single false
   detections;
2. between two detections at most ``max_gap`` frames apart the box is interpolated linearly;
3. across a longer gap, and before the first / after the last detection, a detection's box is
   held for the ``every`` - 1 frames between detector runs; the frames beyond have no face
   (NaN box).

Because boxes are only measured every ``every`` frames and interpolated in between, the box
moves by at most (difference of two smoothed detections) / ``every`` per frame.
"""
from __future__ import annotations

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


def haar_detector() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face Haar cascade, from the wheel's own data folder."""
    path = cv2.data.haarcascades + CASCADE
    detector = cv2.CascadeClassifier(path)
    if detector.empty():
        raise RuntimeError(f"OpenCV's Haar cascade {path} is missing (OpenCV 5 wheels ship none); "
                           "install opencv-python-headless==4.14.0.94")
    return detector


def _haar(detector, grey: np.ndarray, min_side: int, max_side: int = 0) -> np.ndarray:
    grey = cv2.equalizeHist(grey)
    boxes = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
                                      maxSize=(max_side, max_side) if max_side else (0, 0))
    return np.asarray(boxes, dtype=float).reshape(-1, 4)


def _squares(boxes: np.ndarray, scale: float, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """Detector rows (x, y, w, h) in a scaled image -> (cx, cy, side) in full-frame pixels."""
    boxes = boxes / scale
    return np.column_stack([x0 + boxes[:, 0] + boxes[:, 2] / 2, y0 + boxes[:, 1] + boxes[:, 3] / 2, boxes[:, 2]])


def detect(detector: cv2.CascadeClassifier, frame_bgr: np.ndarray, detect_width: int,
           near: np.ndarray | None = None) -> np.ndarray:
    """Faces in one frame as rows (centre x, centre y, side) in full-frame pixels.

    With ``near`` (the previous box) the detector first searches only a region 2.5 times the
    box around it, scaled so the face is about 64 pixels, for faces 0.6 to 1.6 times its size;
    the whole frame (downscaled to ``detect_width``) is searched when that finds nothing.
    """
    height, width = frame_bgr.shape[:2]
    if near is not None:
        cx, cy, side = near
        x0, y0 = int(max(0, cx - 1.25 * side)), int(max(0, cy - 1.25 * side))
        x1, y1 = int(min(width, cx + 1.25 * side)), int(min(height, cy + 1.25 * side))
        scale = min(1.0, 64.0 / side)
        region = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        if region.size and min(region.shape) * scale >= 40:
            if scale < 1.0:
                region = cv2.resize(region, (round(region.shape[1] * scale), round(region.shape[0] * scale)),
                                    interpolation=cv2.INTER_AREA)
            found = _haar(detector, region, max(20, int(0.6 * side * scale)), int(1.6 * side * scale) + 1)
            if len(found):
                return _squares(found, scale, x0, y0)
    scale = min(1.0, detect_width / width)
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    found = _haar(detector, grey, max(20, int(0.08 * min(grey.shape))))
    return _squares(found, scale) if len(found) else np.empty((0, 3))


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (cx, cy, side) squares."""
    lo = np.maximum(a[:2] - a[2] / 2, b[:2] - b[2] / 2)
    hi = np.minimum(a[:2] + a[2] / 2, b[:2] + b[2] / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


def main_face(boxes: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
    """The box to follow: most overlap with ``previous``, else the largest; None when no box."""
    if len(boxes) == 0:
        return None
    if previous is not None:
        overlaps = np.array([_overlap(b, previous) for b in boxes])
        if overlaps.max() > 0.1:
            return boxes[int(overlaps.argmax())]
    return boxes[int(boxes[:, 2].argmax())]


def track(detections: dict[int, np.ndarray | None], n_frames: int, *, every: int, max_gap: int,
          smoothing: int = 5) -> np.ndarray:
    """Boxes for every frame from detections on every ``every``-th frame (see the module docstring).

    The box of frame i depends only on detector runs within ``max_gap + (smoothing // 2 + 1) *
    every`` frames of i (:func:`track_horizon`), so a prefix of the detections gives the final
    boxes of all frames that far before its end; the video stage relies on this to crop while
    detection is still running.

    Parameters
    ----------
    detections : dict
        Frame index of each detector run (multiples of ``every``) -> (cx, cy, side), or None
        when it found no face.
    n_frames : int
    every : int
        Frames between two runs of the detector.
    max_gap : int
        Longest distance (frames) between two detections that is interpolated; at least ``every``.
    smoothing : int
        Odd number of consecutive detector runs in the running median (1: none); runs without a
        face are left out of it.

    Returns
    -------
    ndarray, shape (n_frames, 3)
        NaN rows for frames without a face.
    """
    boxes = np.full((n_frames, 3), np.nan)
    found = sorted(i for i, box in detections.items() if box is not None and i < n_frames)
    if not found:
        return boxes
    max_gap = max(max_gap, every)
    half = smoothing // 2
    smooth = np.array([np.median([detections[j] for j in range(i - half * every, i + (half + 1) * every, every)
                                  if detections.get(j) is not None], axis=0) for i in found])
    hold = every - 1
    for (i, a), (k, b) in zip(zip(found, smooth), zip(found[1:], smooth[1:])):
        if k - i <= max_gap:
            weights = (np.arange(i, k) - i)[:, None] / (k - i)
            boxes[i:k] = a + weights * (b - a)
        else:  # a long gap: each side keeps its box until the detector's next / after its last run
            boxes[i:i + hold + 1] = a
            boxes[k - hold:k] = b
    boxes[max(0, found[0] - hold):found[0]] = smooth[0]
    boxes[found[-1]:min(n_frames, found[-1] + hold + 1)] = smooth[-1]
    return boxes


def track_horizon(*, every: int, max_gap: int, smoothing: int) -> int:
    """Frames after frame i whose detections can still change the box of frame i."""
    return max(max_gap, every) + (smoothing // 2 + 1) * every


def crop(frame_bgr: np.ndarray, box: np.ndarray, *, margin: float, size: int, grey: bool) -> np.ndarray:
    """A square crop around ``box`` enlarged by ``margin`` (fraction of the side on each side),
    padded by edge replication where it leaves the frame, resized to ``size`` x ``size``."""
    cx, cy, side = box
    half = side * (0.5 + margin)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = int(round(cx + half)), int(round(cy + half))
    height, width = frame_bgr.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        frame_bgr = cv2.copyMakeBorder(frame_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = frame_bgr[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    if grey:
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
