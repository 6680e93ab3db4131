"""``recola-pipeline predict --live SOURCE``: a causal model's predictions of a live source, one line per frame.

SOURCE is ``-`` (WAV or raw 16-bit PCM on stdin), an audio file (replayed as fast as it can be
read, or at real-time pace with ``--realtime``), or ``device:NAME`` / ``device:INDEX`` (a sound
input, with the ``[live]`` extra). Each line is written and flushed as soon as its frame is
known: ``time``, one column per dimension, ``latency_ms`` (from the arrival of the audio that
reached the frame's time to the line). End of input, Ctrl-C and a device that goes away all end
the stream with every known frame written (exit 0, or 130 for Ctrl-C).
"""
from __future__ import annotations

import json
import logging
import sys
import time
import wave
from pathlib import Path

import numpy as np

from . import interrupts
from .corpora import CorpusError
from .registry import require

log = logging.getLogger(__name__)

#: seconds of audio read from a source at a time (a 40 ms label frame is two blocks)
BLOCK_S = 0.02


def open_source(source: str, *, rate: int | None, channels: int, realtime: bool, default_rate: int):
    """The sample rate of ``source`` and an iterator over its blocks of samples (float or int16, (n, channels)).

    Raises
    ------
    CorpusError
        The source cannot be read, or raw PCM on stdin comes without ``rate``.
    """
    if source == "-":
        return _stdin(sys.stdin.buffer, rate, channels)
    if source.startswith("device:"):
        return _device(source[len("device:"):], rate or default_rate, channels)
    return _file(Path(source), realtime)


def _stdin(stream, rate: int | None, channels: int):
    """WAV (its header gives rate and channels) or raw 16-bit little-endian PCM (``rate`` and ``channels`` given)."""
    if stream.peek(4)[:4] == b"RIFF":
        try:
            wav = wave.open(stream, "rb")
        except (wave.Error, EOFError) as exc:
            raise CorpusError(f"stdin: not a WAV file wave can read ({exc}); send 16-bit PCM WAV, or raw 16-bit "
                              "PCM with --rate (e.g. ffmpeg -i IN -f s16le -ac 1 -ar 16000 -)") from None
        if wav.getsampwidth() != 2:
            raise CorpusError(f"stdin: {8 * wav.getsampwidth()}-bit WAV; send 16-bit PCM (e.g. sox IN -b 16 -t wav -)")
        rate, channels = wav.getframerate(), wav.getnchannels()
        read = wav.readframes
    else:
        if not rate:
            raise CorpusError("stdin: raw PCM needs its sample rate: pass --rate HZ (or send a WAV file)")
        frame_bytes = 2 * channels

        def read(n):
            return stream.read(n * frame_bytes)
    block = max(1, int(round(BLOCK_S * rate)))

    def blocks():
        pending = b""
        while True:
            data = read(block)
            if not data:
                return
            data = pending + data
            usable = len(data) - len(data) % (2 * channels)
            pending = data[usable:]
            if usable:
                yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16).reshape(-1, channels)
    return rate, blocks()


def _file(path: Path, realtime: bool):
    """An audio file in blocks, optionally at real-time pace."""
    import soundfile as sf
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise CorpusError(f"{path}: cannot read it as audio ({exc}); pass '-' for stdin, or device:NAME") from None
    rate = info.samplerate

    def blocks():
        start = time.perf_counter()
        read = 0
        with sf.SoundFile(str(path)) as handle:
            for block in handle.blocks(blocksize=max(1, int(round(BLOCK_S * rate))), dtype="float64",
                                       always_2d=True):
                read += len(block)
                if realtime:  # the block's last sample is not "recorded" before its time
                    time.sleep(max(0.0, start + read / rate - time.perf_counter()))
                yield block
    return rate, blocks()


def _device(name: str, rate: int, channels: int):
    """A sound input (PortAudio through sounddevice) by name or index."""
    try:
        sd = require("sounddevice", what="live prediction from a sound device", extra="live")
    except OSError as exc:  # sounddevice is installed but finds no PortAudio library
        raise CorpusError(f"live prediction from a sound device needs PortAudio ({exc}): install it (Debian/Ubuntu: "
                          "apt install libportaudio2; macOS: brew install portaudio)") from None
    device = int(name) if name.isdigit() else name
    try:
        stream = sd.InputStream(device=device, samplerate=rate, channels=channels, dtype="int16",
                                blocksize=max(1, int(round(BLOCK_S * rate))))
    except Exception as exc:  # sounddevice raises PortAudioError and ValueError for an unknown device
        raise CorpusError(f"sound device {name!r}: {exc}; list devices with python -m sounddevice") from None

    def blocks():
        with stream:
            while True:
                try:
                    data, _ = stream.read(stream.blocksize)
                except Exception as exc:  # the device went away: the stream ends cleanly
                    log.warning("sound device %s stopped (%s); the stream ends here", name, exc)
                    return
                yield data
    return rate, blocks()


class LineWriter:
    """Writes frames as CSV or JSON lines, flushed one by one; every ``every``-th frame."""

    def __init__(self, out, dimensions, output_format: str, every: int):
        self.out, self.dimensions, self.format, self.every = out, list(dimensions), output_format, every
        self.count = 0
        if output_format == "csv":
            self._write(",".join(["time", *self.dimensions, "latency_ms"]))

    def frames(self, table) -> None:
        for row in table.itertuples(index=False):
            keep = self.count % self.every == 0
            self.count += 1
            if not keep:
                continue
            values = {"time": round(row.time, 2), **{d: float(getattr(row, d)) for d in self.dimensions},
                      "latency_ms": round(row.latency_s * 1000, 1)}
            if self.format == "json":
                self._write(json.dumps(values))
            else:
                self._write(",".join([f"{values['time']:.2f}", *(f"{values[d]:.6f}" for d in self.dimensions),
                                      f"{values['latency_ms']:.1f}"]))

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()


def run_live(model_path, source: str, *, system: str, rate: int | None, channels: int, realtime: bool,
             output_format: str, every: int, out=None) -> int:
    """Stream ``source`` through the model's causal system, writing one line per frame; returns the exit code.

    Raises
    ------
    Interrupted
        Ctrl-C or SIGTERM, after every known frame was written (the command line exits 130 or 143).
    """
    from .model import load_model
    from .stream import causal_audio_systems
    out = out or sys.stdout
    model = load_model(model_path)
    causal_audio_systems(model, system)  # before the source is opened: a wrong system is the first error named
    source_rate, blocks = open_source(source, rate=rate, channels=channels, realtime=realtime,
                                      default_rate=model.description["audio"]["sample_rate"])
    stream = model.stream(sample_rate=source_rate, system=system)
    writer = LineWriter(out, model.dimensions, output_format, every)
    log.info("live: %s at %d Hz, system %s; algorithmic latency %s", source, source_rate, system,
             ", ".join(f"{d} {v:.2f} s" for d, v in stream.algorithmic_latency_s.items()))
    try:
        for block in blocks:
            writer.frames(stream.push(block))
        writer.frames(stream.close())
    except interrupts.Interrupted:
        stream.features.close()
        log.info("live: %d frames written", writer.count)
        raise
    except BrokenPipeError:  # the reader went away (e.g. | head): nothing left to write to
        stream.features.close()
        sys.stderr.close()
        return 0
    return 0
