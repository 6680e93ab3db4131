"""Decoding video frames with their timestamps: OpenCV first, PyAV where OpenCV cannot.

OpenCV's wheel decodes what its bundled FFmpeg knows (H.264/MPEG-4 ``.mp4``, MPEG-1 ``.mpg``,
VP6 ``.flv``); PyAV (``pip install av``) is tried for anything it cannot open. Frames carry the
container's presentation time, so variable frame rates and rates other than 25 fps are mapped
onto the 40 ms label grid by time (:func:`label_frame_sources`), never by index.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..corpora import CorpusError

DECODE_HINT = ("convert it with ffmpeg (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4) or install PyAV "
               "(pip install av) for codecs OpenCV's FFmpeg lacks")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found: frame rate, size, frame count the container declares, decoder."""

    fps: float
    width: int
    height: int
    declared_frames: int
    decoder: str

    @property
    def duration_s(self) -> float:
        """Declared length (frames / fps), 0 when the container does not say."""
        return self.declared_frames / self.fps if self.fps > 0 and self.declared_frames > 0 else 0.0


def _opencv_open(path: Path):
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        return None
    ok, frame = capture.read()
    if not ok or frame is None:
        capture.release()
        return None
    return capture, frame


def probe(path: str | Path) -> VideoInfo:
    """Open ``path``, decode its first frame and return its :class:`VideoInfo`.

    Raises
    ------
    CorpusError
        Missing file, or neither OpenCV nor PyAV can decode a frame (the message names the file,
        the decoders tried and how to fix it).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: video file not found; restore it or remove the recording's video")
    opened = _opencv_open(path)
    if opened is not None:
        capture, frame = opened
        info = VideoInfo(float(capture.get(cv2.CAP_PROP_FPS) or 0.0), frame.shape[1], frame.shape[0],
                         int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), "opencv")
        capture.release()
        return info
    try:
        import av
    except ImportError:
        raise CorpusError(f"{path}: OpenCV cannot decode this video and PyAV is not installed; "
                          f"{DECODE_HINT}") from None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            return VideoInfo(float(stream.average_rate or 0.0), frame.width, frame.height, int(stream.frames or 0),
                             "pyav")
    except (av.FFmpegError, IndexError, StopIteration) as exc:
        raise CorpusError(f"{path}: no decodable video frame (OpenCV and PyAV both failed: {exc}); the file is "
                          f"corrupt or truncated, or its codec is unsupported: {DECODE_HINT}") from None


def frames(path: str | Path, decoder: str, *, max_seconds: float = float("inf")) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame_bgr)`` in presentation order up to ``max_seconds``.

    Times come from the container; where it gives none (OpenCV reports 0 after the first frame)
    the frame index over the declared frame rate is used instead.
    """
    if decoder == "pyav":
        yield from _pyav_frames(Path(path), max_seconds)
        return
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            time_s = stamp if stamp > 0 or index == 0 else index / fps
            if time_s > max_seconds:
                return
            yield time_s, frame
            index += 1
    finally:
        capture.release()


def _pyav_frames(path: Path, max_seconds: float) -> Iterator[tuple[float, np.ndarray]]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time > max_seconds:
                return
            yield float(frame.time or 0.0), frame.to_ndarray(format="bgr24")


def audio_track(path: str | Path, rate: int) -> np.ndarray:
    """The sound of a video container (e.g. CREMA-D's ``.flv``), mono float64 at ``rate``, via PyAV.

    Raises
    ------
    CorpusError
        No audio stream, or a stream PyAV cannot decode.
    """
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise CorpusError(f"{path}: the container has no audio stream; add an audio-only file for this clip")
            resampler = av.AudioResampler(format="dbl", layout="mono", rate=rate)
            chunks = [resampled.to_ndarray().reshape(-1)
                      for frame in container.decode(container.streams.audio[0])
                      for resampled in resampler.resample(frame)]
            chunks += [resampled.to_ndarray().reshape(-1) for resampled in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise CorpusError(f"{path}: cannot decode its audio ({exc}); {DECODE_HINT}") from None
    return np.concatenate(chunks) if chunks else np.zeros(0)


def label_frame_sources(source_times: np.ndarray, n_frames: int, hop_s: float) -> np.ndarray:
    """Index of the decoded frame shown at each label time, -1 where the video has ended.

    Label frame k (t = k * hop) takes the frame on screen at t: the last decoded frame whose
    presentation time is at most t (1 ms tolerance for containers that round times to the
    millisecond). The last frame stays on screen for one median frame duration, end included
    (so a 25 fps video of N frames covers the N + 1 label frames 0 ... N x 40 ms, as RECOLA's
    7500 frames cover its 7501 labels); later label times have none.

    Examples
    --------
    >>> label_frame_sources(np.array([0.0, 0.033, 0.067, 0.1]), 4, 0.04).tolist()
    [0, 1, 2, 3]
    >>> label_frame_sources(np.array([0.0, 0.04]), 4, 0.04).tolist()
    [0, 1, 1, -1]
    """
    source_times = np.asarray(source_times, dtype=float)
    if source_times.size == 0:
        return np.full(n_frames, -1)
    label_times = np.arange(n_frames) * hop_s
    index = np.searchsorted(source_times, label_times + 1e-3, side="right") - 1
    duration = float(np.median(np.diff(source_times))) if source_times.size > 1 else hop_s
    index[(label_times > source_times[-1] + duration + 1e-3) | (index < 0)] = -1
    return index
