"""Decoding video frames with their timestamps: OpenCV first, PyAV where OpenCV cannot.

OpenCV's wheel decodes what its bundled FFmpeg knows (H.264/MPEG-4 ``.mp4``, MPEG-1 ``.mpg``,
VP6 ``.flv``); PyAV (``pip install av``) is tried for anything it cannot open. Frames carry the
container's presentation time, so variable frame rates and rates other than 25 fps are mapped
onto the 40 ms label grid by time (:func:`label_frame_sources`), never by index.

Grey frames (for grey networks such as the FER-2013 one) are the decoder's own luma plane read
through PyAV, with no colour conversion: Y' is BT.601 grey by definition, and converting every
frame to BGR only to turn it back into grey was the largest single cost of the video path (about
half the decode time of a 720p frame). They keep the stream's levels (16 = black, 235 = white
in almost all video); :func:`luma_levels` stretches them to 0-255, which the video stage does on
the small face crops only (on a whole 720p frame the lookup costs half a decode). Stretched, they
are at least as close to the source's grey as ``cv2.cvtColor(frame, COLOR_BGR2GRAY)`` on
OpenCV's BGR decode, whose YUV -> BGR step rounds and clips (mean error 0.3-1.4 vs 1.0-2.5
grey levels on MPEG-4, MJPEG and H.264 test clips).
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


def frames(path: str | Path, decoder: str, *, max_seconds: float = float("inf"),
           grey: bool = False) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame)`` in presentation order up to ``max_seconds``.

    Frames are BGR ``(height, width, 3)``, or with ``grey`` the luma plane ``(height, width)``
    at the stream's levels (always read through PyAV; :func:`luma_levels` maps it to 0-255).
    Times come from the container; where it gives none (OpenCV reports 0 after the first frame,
    PyAV None) the frame index over the declared frame rate is used instead.
    """
    if decoder == "pyav" or grey:
        for time_s, frame in _pyav_frames(Path(path), max_seconds):
            yield time_s, _luma(frame) if grey else frame.to_ndarray(format="bgr24")
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


# 8-bit pixel formats whose first plane is the luma, one byte per pixel
_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
               "yuv411p", "yuv410p", "yuva420p", "nv12", "nv21"}
# video-range luma (16 = black, 235 = white) to full range, as FFmpeg's YUV -> RGB conversion does
_VIDEO_TO_FULL_RANGE = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def _luma(frame) -> np.ndarray:
    """A PyAV frame's Y plane (8-bit YUV formats), else its grey image through BGR."""
    if frame.format.name not in _LUMA_FIRST:
        return cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY)
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width].copy()


def _full_range(frame) -> bool:
    return (frame.format.name not in _LUMA_FIRST or frame.format.name.startswith("yuvj")
            or frame.color_range == 2)  # AVCOL_RANGE_JPEG


def luma_levels(path: str | Path) -> np.ndarray:
    """Lookup table (256 entries; ``levels[grey]`` applies it) from the grey frames of
    :func:`frames` to levels 0-255: a stretch of 16-235 for video-range streams, the identity for full-range ones
    (``yuvj*`` formats, a JPEG colour range, non-YUV formats)."""
    frame = next(_pyav_frames(Path(path), float("inf")), None)
    return np.arange(256, dtype=np.uint8) if frame is None or _full_range(frame[1]) else _VIDEO_TO_FULL_RANGE


def _pyav_frames(path: Path, max_seconds: float) -> Iterator[tuple[float, object]]:
    """``(time_s, PyAV frame)`` in presentation order up to ``max_seconds``."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 25.0)
            for index, frame in enumerate(container.decode(stream)):
                time_s = float(frame.time) if frame.time is not None else index / rate
                if time_s > max_seconds:
                    return
                yield time_s, frame
    except (av.FFmpegError, IndexError) as exc:
        raise CorpusError(f"{path}: PyAV cannot decode its video ({exc}); {DECODE_HINT}") from None


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
