"""Face detection, tracking of the main face, and square crops.

Detection uses OpenCV's bundled Haar cascade (frontal face, default model) on every
``every``-th decoded frame: near the previous face first (:func:`detect`: a small region at
low resolution, a narrow range of sizes, about 2 ms), on the whole grey frame downscaled to
about ``detect_width`` pixels when that finds nothing. The main face is the largest box on the
first detection and afterwards the box overlapping the previous one most (the largest again
when none overlaps). Boxes are kept as (centre x, centre y, side) and
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
# The search near the previous face: the region reaches NEAR_REACH sides beyond its centre, is
# reduced so that the face is about NEAR_FACE_PX pixels, and takes faces NEAR_SIZES times its
# size. On the GRID clips and a 720p video (213 runs, 2026-11-22) against full-resolution
# detection: centre within 1.0 % of the face size (median; 99th percentile 3.5 %), size within
# 2.7 % (median); 2.3 ms a run, whole-frame fallbacks included, instead of 6.8 ms for the earlier
# search (a 64 px face, 1.25 sides, sizes 0.6-1.6).
NEAR_REACH = 1.0
NEAR_FACE_PX = 32.0
NEAR_SIZES = (0.75, 1.33)


def haar_detector() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face Haar cascade, from the wheel's own data folder."""
    path = cv2.data.haarcascades + CASCADE
    detector = cv2.CascadeClassifier(path)
    if detector.empty():
        raise RuntimeError(f"OpenCV's Haar cascade {path} is missing (OpenCV 5 wheels ship none); "
                           "install opencv-python-headless==4.14.0.94")
    return detector


def _haar(detector, grey: np.ndarray, min_side: int, max_side: int = 0, min_neighbours: int = 5) -> np.ndarray:
    grey = cv2.equalizeHist(grey)
    largest = (max_side, max_side) if max_side else (0, 0)
    boxes = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=min_neighbours, minSize=(min_side, min_side),
                                      maxSize=largest)
    return np.asarray(boxes, dtype=float).reshape(-1, 4)


def _squares(boxes: np.ndarray, scale: float, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """Detector rows (x, y, w, h) in a scaled image -> (cx, cy, side) in full-frame pixels."""
    boxes = boxes / scale
    return np.column_stack([x0 + boxes[:, 0] + boxes[:, 2] / 2, y0 + boxes[:, 1] + boxes[:, 3] / 2, boxes[:, 2]])


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``image`` to ``width`` x ``height`` by area averaging, fast.

    OpenCV's ``INTER_AREA`` is several times cheaper for whole-number factors than for others
    (0.09 ms for a 512 px square to 64 px, 0.48 ms for 500 px), so a reduction by more than 2
    first goes bilinearly to the smallest whole multiple of the target that is at least half the
    source (a reduction by at most 2, where every source pixel still takes part), then averages
    whole blocks: 0.16 ms for the 500 px square, within 0.5 grey levels (mean) of a direct
    ``INTER_AREA`` on detailed images.
    """
    fx, fy = -(-image.shape[1] // (2 * width)), -(-image.shape[0] // (2 * height))
    if fx >= 2 and fy >= 2:
        image = cv2.resize(image, (fx * width, fy * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _decimate(image: np.ndarray, factor: int) -> np.ndarray:
    """Grey ``image`` averaged over ``factor`` x ``factor`` blocks (OpenCV's fast whole-number
    ``INTER_AREA``); the last rows / columns short of a whole block are dropped."""
    if factor > 1:
        height, width = image.shape[0] // factor, image.shape[1] // factor
        image = cv2.resize(image[:height * factor, :width * factor], (width, height), interpolation=cv2.INTER_AREA)
    return _grey(image)


def detect(detector: cv2.CascadeClassifier, frame: np.ndarray, detect_width: int,
           near: np.ndarray | None = None) -> np.ndarray:
    """Faces in one frame (BGR or grey) as rows (centre x, centre y, side) in full-frame pixels.

    With ``near`` (the previous box) the detector first searches only the region within
    ``NEAR_REACH`` sides of its centre, reduced by the whole factor that brings the face nearest
    to ``NEAR_FACE_PX`` pixels, for faces ``NEAR_SIZES`` times its size (3 overlapping hits
    suffice there, 5 on the whole frame); the whole frame, reduced by the whole factor that
    brings its width nearest to ``detect_width``, is searched when that finds nothing.
    """
    height, width = frame.shape[:2]
    if near is not None:
        cx, cy, side = near
        x0, y0 = int(max(0, cx - NEAR_REACH * side)), int(max(0, cy - NEAR_REACH * side))
        x1, y1 = int(min(width, cx + NEAR_REACH * side)), int(min(height, cy + NEAR_REACH * side))
        factor = max(1, round(side / NEAR_FACE_PX))
        smallest, largest = (max(20, int(f * side / factor)) for f in NEAR_SIZES)
        if min(y1 - y0, x1 - x0) / factor > smallest:
            found = _haar(detector, _decimate(frame[y0:y1, x0:x1], factor), smallest, largest + 1, min_neighbours=3)
            if len(found):
                return _squares(found, 1 / factor, x0, y0)
    factor = max(1, round(width / detect_width))
    grey = _decimate(frame, factor)
    found = _haar(detector, grey, max(20, int(0.08 * min(grey.shape))))
    return _squares(found, 1 / factor) if len(found) else np.empty((0, 3))


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


def crop(frame: np.ndarray, box: np.ndarray, *, margin: float, size: int, grey: bool) -> np.ndarray:
    """A square crop around ``box`` enlarged by ``margin`` (fraction of the side on each side),
    padded by edge replication where it leaves the frame, resized to ``size`` x ``size`` by
    area averaging (:func:`shrink`). ``frame`` is BGR, or grey when ``grey`` is set."""
    cx, cy, side = box
    half = side * (0.5 + margin)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = int(round(cx + half)), int(round(cy + half))
    height, width = frame.shape[:2]
    patch = frame[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]  # not empty: the centre is inside
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_REPLICATE)
    if grey:
        patch = _grey(patch)
    return shrink(patch, size, size)
