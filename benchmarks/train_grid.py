"""Benchmark of the training grid: the full AVEC grid against naive refitting.

On the real-speech sessions of ../shared/tools/make_sessions.py (audio, eGeMAPS, arousal,
per-recording normalisation), times

1. the full AVEC grid, 6 W x 21 D x 16 C, one modality, as the train stage runs it (one
   factorisation per W, every D and C from it), for both dimensions at once (the target is
   for one; the features, and so the factorisation, are shared by the dimensions), and
2. naive refitting with scikit-learn's LinearSVR (liblinear, L2-loss, dual) for every
   (W, D, C): measured on one W and 3 delays, all 16 C, and extrapolated to the full grid
   (printed as an extrapolation),

and prints their ratio. Target: the full grid in <= 5 minutes on 2 cores.

    python benchmarks/train_grid.py [--sessions DIR] [--artifact-root DIR] [--jobs 2]
"""
from __future__ import annotations

import time
import warnings

from sessions import session_overrides
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVR

from recola_pipeline.config import load_config
from recola_pipeline.estimators.bundle import fit_representation, represent
from recola_pipeline.estimators.delay import shift_groups
from recola_pipeline.labels import delay_frames
from recola_pipeline.matrices import partition_frames
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.window import Window

WINDOWS = [4.0, 6.0, 8.0, 10.0, 12.0, 14.0]


def main() -> None:
    overrides = [*session_overrides(__doc__, "bench_train_"), f"audio.windows_s={WINDOWS}"]
    pipeline = Pipeline(load_config(None, overrides=overrides), force=["train"])  # time a real search
    pipeline.ensure("audio")  # features are not part of the timing
    start = time.perf_counter()
    pipeline.ensure("train")
    grid_s = time.perf_counter() - start
    cfg = pipeline.config.train
    n_points = len(WINDOWS) * 21 * len(cfg.c_grid) * len(pipeline.config.corpus.dimensions)

    train = partition_frames(pipeline, "audio", Window(8), "train")
    normaliser, kernel = fit_representation(cfg, "recording", train)
    X = represent(normaliser, kernel, train)
    sample_delays = [0.0, 4.0, 8.0]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for delay in sample_delays:
            y = shift_groups(train.gold["arousal"], train.groups, delay_frames(delay), "back")
            for c in cfg.c_grid:
                LinearSVR(C=c, loss="squared_epsilon_insensitive", dual=True, epsilon=0.0, max_iter=1000).fit(X, y)
    naive_sample_s = time.perf_counter() - start
    naive_s = naive_sample_s / len(sample_delays) * 21 * len(WINDOWS)
    print(f"frames: {len(X)} train, features: {X.shape[1]}, grid points: {n_points}")
    print(f"full grid as the train stage runs it : {grid_s:8.1f} s for both dimensions (target <= 300 s for one)")
    print(f"naive liblinear refits, measured      : {naive_sample_s:8.1f} s for 1 W x {len(sample_delays)} D x "
          f"{len(cfg.c_grid)} C")
    print(f"naive liblinear refits, extrapolated  : {naive_s:8.1f} s for the full grid of one dimension")
    print(f"speed-up of the shared factorisation  : {2 * naive_s / grid_s:8.0f}x (both dimensions)")


if __name__ == "__main__":
    main()
