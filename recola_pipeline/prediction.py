"""``recola-pipeline predict``: the inputs it accepts, run in parallel, written as CSV and PNG."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .cache import write_bytes, write_table  # noqa: E402
from .corpora import CorpusError  # noqa: E402
from .corpora.audformat_db import write_predictions  # noqa: E402
from .corpora.base import read_csv_table  # noqa: E402
from .model import _is_video, load_model  # noqa: E402
from .parallel import parallel_imap  # noqa: E402

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def expand_inputs(inputs) -> list[tuple[str, Path | None, Path | None]]:
    """``(name, audio, video)`` for each recording named on the command line.

    An input is an audio or video file, an ``AUDIO,VIDEO`` pair, a folder (its audio and video
    files, paired by stem), or a CSV with ``audio`` and/or ``video`` columns (and optionally
    ``recording``; relative paths are relative to the CSV). A video without separate audio gives
    its own sound track to the audio modality.

    Raises
    ------
    CorpusError
        A path that does not exist, or a folder with no media file.
    """
    out = []
    for item in inputs:
        if "," in item and not Path(item).exists():
            audio, video = (Path(p.strip()) if p.strip() else None for p in item.split(",", 1))
            out.append(((audio or video).stem, audio, video))
            continue
        path = Path(item)
        if path.is_dir():
            media = {}
            for file in sorted(path.iterdir()):
                kind = "video" if _is_video(file) else "audio" if file.suffix.lower() in AUDIO_SUFFIXES else None
                if kind:
                    media.setdefault(file.stem, {})[kind] = file
            if not media:
                raise CorpusError(f"{path}: no audio or video file in the folder")
            out += [(stem, m.get("audio"), m.get("video")) for stem, m in media.items()]
        elif path.suffix.lower() == ".csv":
            table = read_csv_table(path, "recording list", "predict INPUT")
            for i, row in table.iterrows():
                files = {k: (path.parent / row[k].strip()) if row.get(k, "").strip() else None
                         for k in ("audio", "video")}
                name = row.get("recording", "").strip() or (files["audio"] or files["video"] or Path(f"row{i}")).stem
                out.append((name, files["audio"], files["video"]))
        else:
            out.append((path.stem, None if _is_video(path) else path, path if _is_video(path) else None))
    for name, audio, video in out:
        for file in (audio, video):
            if file is not None and not Path(file).is_file():
                raise CorpusError(f"input {name}: {file} does not exist")
    return out


def _predict_one(args) -> pd.DataFrame:
    model_dir, audio, video, system = args
    return _model(model_dir).predict(audio=audio, video=video, system=system)


_MODELS: dict = {}


def _model(path):
    if path not in _MODELS:  # one load per worker process
        _MODELS[path] = load_model(path)
    return _MODELS[path]


def predict_inputs(model_dir, inputs, out: Path, *, system: str = "best", jobs: int = 1, backend: str = "loky",
                   scheduler: str = "", progress: bool = True, output_format: str = "csv") -> list[Path]:
    """Predict every input and write ``<out>/<name>.csv`` (``time``, one column per dimension and
    the ``outside_training_range`` flag) and ``<out>/<name>.png`` (the traces), each as soon as it
    is predicted; with ``output_format='audformat'`` also an audformat database in ``out``
    (``db.yaml``, a segmented table ``predictions``; it holds every prediction in memory until
    the end). Returns the paths written."""
    model = load_model(model_dir)  # checks the bundle once, before any work
    recordings = expand_inputs(inputs)
    names = [name for name, _, _ in recordings]
    if len(set(names)) != len(names):
        raise CorpusError(f"two inputs share the name {next(n for n in names if names.count(n) > 1)!r}; "
                          "their outputs would overwrite each other")
    tasks = [(str(model.path), audio, video, system) for _, audio, video in recordings]
    written, kept = [None] * len(tasks), {}
    for i, frame in parallel_imap(_predict_one, tasks, jobs=jobs, backend=backend, scheduler=scheduler,
                                  desc="predict", progress=progress):
        write_table(out / f"{names[i]}.csv", frame)  # written as it comes: memory does not grow with the inputs
        write_bytes(out / f"{names[i]}.png", trace_plot(frame, names[i]))
        written[i] = out / f"{names[i]}.csv"
        if output_format == "audformat":
            kept[names[i]] = frame
    if output_format == "audformat":
        files = {name: str(Path(audio if audio is not None else video).resolve()) for name, audio, video in recordings}
        written.append(write_predictions({name: kept[name] for name in names}, files, out))
    return written


def trace_plot(frame: pd.DataFrame, title: str) -> bytes:
    """PNG bytes of the predicted traces."""
    import io
    fig, ax = plt.subplots(figsize=(9, 3))
    for column in frame.columns[1:]:
        if frame[column].dtype == bool:
            continue
        ax.plot(frame["time"], frame[column], label=column, linewidth=0.8)
    values = frame[[c for c in frame.columns[1:] if frame[c].dtype != bool]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (min(-1.0, finite.min()), max(1.0, finite.max())) if finite.size else (-1.0, 1.0)
    ax.set_ylim(low - 0.05, high + 0.05)  # every value shown, the [-1, 1] label scale at least
    ax.set_xlabel("time (s)")
    ax.set_ylabel("predicted value (label scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
