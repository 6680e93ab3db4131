"""Benchmark of the recurrent regressor beside the SVR: training search and prediction per audio hour.

On the real-speech sessions of ../shared/tools/make_sessions.py (RECOLA layout, audio,
eGeMAPS, per-recording normalisation, both dimensions), with the features computed first and not
timed, measures

1. the train stage's search with ``train.estimators = ["svr"]`` (the full AVEC grid) and with
   ``["gru"]`` (the default ``[sequence]`` grid, 3 seeds), each built afresh;
2. prediction with each selected model (feature matrix in memory: normalise, regress) on the
   devel and test recordings, as seconds per hour of audio,

and prints the ratios GRU / SVR. Target (issue 28): ``--stage evaluate`` of configs/sequence.toml
within 20 minutes on 2 cores.

    python benchmarks/sequence.py [--sessions DIR] [--artifact-root DIR] [--jobs 2]
"""
from __future__ import annotations

import time

from sessions import session_overrides

from recola_pipeline import safe_io
from recola_pipeline.cache import read_table
from recola_pipeline.config import load_config
from recola_pipeline.estimators.bundle import predict_frames
from recola_pipeline.window import parse_windows
from recola_pipeline.labels import LABEL_HOP_S
from recola_pipeline.matrices import system_frames
from recola_pipeline.pipeline import Pipeline


def timed_train(overrides: list[str], estimators: str) -> tuple[Pipeline, float]:
    """The train stage built afresh with ``train.estimators`` set; its wall time."""
    pipeline = Pipeline(load_config(None, overrides=[*overrides, f"train.estimators={estimators}"]), force=["train"])
    pipeline.ensure("audio")  # features are not part of the timing
    start = time.perf_counter()
    pipeline.ensure("train")
    return pipeline, time.perf_counter() - start


def prediction_s_per_hour(pipeline: Pipeline) -> float:
    """Seconds to predict one hour of audio with each selected model (mean over systems and dimensions)."""
    train = pipeline.ensure("train")
    selected = read_table(train.file("selected.csv"))
    seconds, hours = 0.0, 0.0
    for sel in selected.itertuples():
        model = safe_io.load(train.file(f"model_{sel.system}_{sel.dimension}.skops"))["model"]
        for partition in ("devel", "test"):
            frames = system_frames(pipeline, parse_windows(sel.windows), partition)
            start = time.perf_counter()
            predict_frames(model, frames)
            seconds += time.perf_counter() - start
            hours += len(frames.X) * LABEL_HOP_S / 3600
    return seconds / hours


def main() -> None:
    overrides = session_overrides(__doc__, "bench_sequence_")
    svr, svr_s = timed_train(overrides, '["svr"]')
    gru, gru_s = timed_train(overrides, '["gru"]')
    svr_predict, gru_predict = prediction_s_per_hour(svr), prediction_s_per_hour(gru)
    points = len(read_table(gru.ensure("train").file("grid.csv")))
    print(f"training search, SVR (full AVEC grid)      : {svr_s:8.1f} s")
    print(f"training search, GRU ({points} points x {gru.config.sequence.seeds} seeds) : {gru_s:8.1f} s")
    print(f"training search ratio GRU / SVR            : {gru_s / svr_s:8.1f}x")
    print(f"prediction, SVR                            : {svr_predict:8.3f} s per audio hour")
    print(f"prediction, GRU                            : {gru_predict:8.3f} s per audio hour")
    print(f"prediction ratio GRU / SVR                 : {gru_predict / svr_predict:8.1f}x")


if __name__ == "__main__":
    main()
