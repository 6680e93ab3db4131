"""The crop engine: decode -> detect and track -> crop, overlapped in threads.

Shared by the ``faces`` stage (every label frame) and the ``clips`` stage of the categorical
path (every ``stride``-th frame). A decode thread fills a bounded buffer of frames, a second
thread detects faces and crops the frames a tracking horizon behind
(:func:`~recola_pipeline.extractors.faces.track_horizon`; their boxes are final), and the caller
consumes the crops as they come. Each frame is decoded once and at most ``horizon + 100``
frames are held in memory.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
from dataclasses import dataclass

import numpy as np

from ..labels import LABEL_HOP_S
from . import faces, video_decode

log = logging.getLogger(__name__)

_DONE = None
_CHUNK = 50  # frames whose boxes are settled (and cropped) at a time


class _Stopped(Exception):
    """Raised in the detection thread when the consumer has stopped."""


class _FrameBuffer:
    """Decoded frames not yet cropped, filled by the decode thread (bounded: it waits when full)."""

    def __init__(self, capacity: int):
        self.condition = threading.Condition()
        self.frames: collections.deque = collections.deque()
        self.first = 0  # index of frames[0]
        self.capacity = capacity
        self.finished = False
        self.stopped = False  # set when the consumer leaves: done, an exception or an interrupt
        self.error: BaseException | None = None

    def fill(self, row, max_seconds: float, grey: bool) -> None:
        """Decode thread body (grey: luma frames, see :func:`~recola_pipeline.features.video_decode.frames`)."""
        try:
            for time_s, frame in video_decode.frames(row["video"], row["decoder"], max_seconds=max_seconds,
                                                     grey=grey):
                with self.condition:
                    self.condition.wait_for(lambda: len(self.frames) < self.capacity or self.stopped)
                    if self.stopped:
                        return
                    self.frames.append((time_s, frame))
                    self.condition.notify_all()
        except BaseException as exc:  # re-raised by the reader
            self.error = exc
        finally:
            with self.condition:
                self.finished = True
                self.condition.notify_all()

    def get(self, index: int):
        """``(time, frame)`` of frame ``index`` (waiting for it), or None after the last frame."""
        with self.condition:
            self.condition.wait_for(lambda: self.finished or self.stopped or index < self.first + len(self.frames))
            if self.stopped:
                raise _Stopped
            if self.error is not None:
                raise self.error
            return self.frames[index - self.first] if index < self.first + len(self.frames) else None

    def stop(self) -> None:
        """Make both threads return at their next frame (the consumer has left; a no-op for threads
        that have already finished)."""
        with self.condition:
            self.stopped = True
            self.condition.notify_all()

    def drop_until(self, index: int) -> None:
        """Forget frames before ``index`` (cropped or skipped)."""
        with self.condition:
            while self.first < index and self.frames:
                self.frames.popleft()
                self.first += 1
            self.condition.notify_all()


def _shown(times: list, index: int, n_frames: int, stride: int = 1) -> bool:
    """Whether decoded frame ``index`` is the one on screen at some label frame k (with k a multiple
    of ``stride``; see :func:`~recola_pipeline.features.video_decode.label_frame_sources`); the
    last frame is kept."""
    if index + 1 >= len(times):
        return True
    k = np.arange(max(0, int((times[index] - 0.01) / LABEL_HOP_S)),
                  min(n_frames, int(times[index + 1] / LABEL_HOP_S) + 2))
    label_times = k[k % stride == 0] * LABEL_HOP_S
    return bool(np.any((times[index] <= label_times + 1e-3) & (label_times + 1e-3 < times[index + 1])))


def _detect_and_crop(cfg, settings: dict, size, levels, n_frames, frames: _FrameBuffer, out: queue.Queue,
                     stride: int) -> None:
    """Detect every ``detect_every``-th frame; once the frames a tracking horizon back have final
    boxes (:func:`~recola_pipeline.features.faces.track` with ``settings``), crop them and queue
    batches. The last item is the whole video's :class:`Track`. ``levels``: for grey frames, the
    lookup table to 0-255 (:func:`~recola_pipeline.features.video_decode.luma_levels`) applied
    to the crops; None for BGR frames."""
    grey = levels is not None

    def queue_batch(indices, batch):
        crops = np.stack(batch)
        out.put((indices, levels[crops] if grey else crops))

    try:
        horizon = faces.track_horizon(**settings)
        detector, previous = faces.haar_detector(), None
        times, detections, boxes = [], {}, np.empty((0, 3))
        settled, batch, indices, index = 0, [], [], 0
        while True:
            item = frames.get(index)
            if item is not None:
                times.append(item[0])
                if index % cfg.detect_every == 0:
                    box = faces.main_face(faces.detect(detector, item[1], cfg.detect_width, near=previous), previous)
                    detections[index] = box
                    previous = box if box is not None else previous
                index += 1
            end = index if item is None else index - horizon
            if end - settled >= _CHUNK or (item is None and end > settled):
                window = {i: b for i, b in detections.items() if i >= settled - horizon}
                chunk = faces.track(window, index, **settings)[settled:end]
                boxes = np.vstack([boxes, chunk])
                for offset, box in enumerate(chunk):
                    i = settled + offset
                    if np.isfinite(box[0]) and _shown(times, i, n_frames, stride):
                        batch.append(faces.crop(frames.get(i)[1], box, margin=cfg.margin, size=size, grey=grey))
                        indices.append(i)
                        if len(batch) == cfg.batch_size:
                            queue_batch(indices, batch)
                            batch, indices = [], []
                settled = end
                frames.drop_until(settled)
            if item is None:
                break
        if batch:
            queue_batch(indices, batch)
        out.put(Track(np.asarray(times), detections, boxes))
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


@dataclass
class Track:
    """A video's decoded frame times, detector results and tracked boxes (cx, cy, side)."""

    times: np.ndarray
    detections: dict
    boxes: np.ndarray


def crop_batches(row, cfg, size: int, grey: bool, max_seconds: float, *, stride: int = 1):
    """Yield ``(frame indices, crops)`` batches of one video's face crops, then its :class:`Track`.

    Three threads overlap: one decodes into a bounded buffer, one detects faces and crops the
    frames whose boxes are final, and the caller consumes the batches (e.g. runs the network).
    Only frames on screen at a label frame k with k a multiple of ``stride`` are cropped.
    """
    settings = dict(every=cfg.detect_every, max_gap=max(1, int(round(cfg.max_gap_s * row["fps"]))),
                    smoothing=cfg.smoothing)
    frames, batches = _FrameBuffer(capacity=faces.track_horizon(**settings) + 2 * _CHUNK), queue.Queue(maxsize=4)
    workers = [threading.Thread(target=frames.fill, args=(row, max_seconds, grey), daemon=True),
               threading.Thread(target=_detect_and_crop, daemon=True,
                                args=(cfg, settings, size, video_decode.luma_levels(row["video"]) if grey else None,
                                      int(row["n_frames"]), frames, batches, stride))]
    for worker in workers:
        worker.start()
    try:
        while (item := batches.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        _stop_and_join(frames, batches, workers)


def _stop_and_join(frames: _FrameBuffer, batches: queue.Queue, workers: list) -> None:
    """Stop both threads and wait for them, however the consumer left (done, error, Ctrl-C).

    A thread must not outlive its run: at interpreter shutdown a daemon thread still inside
    OpenCV or FFmpeg is torn down mid-call, which can abort the process (exit -6, SIGABRT) instead
    of the exit 130 an interrupt owes. Each thread returns within one frame's work once stopped;
    the queue is drained so that a thread blocked on a full queue can finish its put.
    """
    frames.stop()
    for worker in workers:
        while worker.is_alive():
            try:
                while True:
                    batches.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)


# A network needing less than this per crop (the FER-2013 one: 0.02 GFLOP; resnet18 at 224 px:
# 3.6) costs about what decoding a 720p frame and following the face cost; see network_threads.
LIGHT_NETWORK_FLOPS = 0.5e9


def network_threads(threads: int, backbone) -> int:
    """Intra-op torch threads for the network while a recording is embedded with ``threads`` cores.

    A light network (< ``LIGHT_NETWORK_FLOPS`` per crop) leaves one core to the decode and
    detection threads: they then need about a core between them, and torch's threads, which wait
    for each other after every layer, lose more than they gain on oversubscribed cores
    (``benchmarks/video_stage.py``, fer2013 on a 720p video with 2 cores: 309 frames/s with one
    torch thread, 223 with two). A heavier network takes every core, as the network is then
    nearly all the work. Embeddings do not depend on the thread count (bit-identical).
    """
    return max(1, threads - 1) if backbone.flops_per_crop() < LIGHT_NETWORK_FLOPS else threads



def strided_crops(row, cfg, size: int, grey: bool, max_seconds: float, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, list, int]:
    """Face crops of the frames on screen at label frames 0, ``stride``, 2 ``stride``, ...

    Returns
    -------
    label_frames, source_frames : ndarray of int
        The label frames k whose frame has a face box, and the decoded frame shown at each.
    crops : list of ndarray
        One crop per entry of ``label_frames``.
    shown : int
        Strided label frames with a frame on screen (with or without a face).
    """
    crops = {}
    for item in crop_batches(row, cfg, size, grey, max_seconds, stride=stride):
        if isinstance(item, Track):
            track = item
        else:
            crops.update(zip(item[0], item[1]))
    sources = video_decode.label_frame_sources(track.times, int(row["n_frames"]), LABEL_HOP_S)
    label_frames = np.arange(0, len(sources), stride)
    label_frames = label_frames[sources[label_frames] >= 0]
    shown = len(label_frames)
    label_frames = np.asarray([k for k in label_frames if int(sources[k]) in crops], dtype=int)
    source_frames = sources[label_frames].astype(int)
    return label_frames, source_frames, [crops[int(s)] for s in source_frames], shown

