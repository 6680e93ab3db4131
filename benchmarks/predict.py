"""``predict`` with an audio-only model against bare openSMILE eGeMAPS LLD extraction.

Trains (or reuses) the default audio-only model on the real-speech sessions of
``../shared/tools/make_sessions.py``, exports it, then times, on the same session files and one
process each, (a) ``recola-pipeline predict`` through the Python API (features for the chosen
windows, the models, post-processing) and (b) ``opensmile.Smile(eGeMAPSv02,
LowLevelDescriptors).process_file``, the floor any eGeMAPS-based predictor pays. Prints both
times and their ratio (machine-independent: both run on the same cores).

    python ../shared/tools/make_sessions.py --clips ../shared/data/ravdess_speech_16k --out /tmp/ravdess_sessions
    python benchmarks/predict.py --sessions /tmp/ravdess_sessions [--store /tmp/bench_store]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import opensmile

from recola_pipeline import load_model
from recola_pipeline.config import load_config
from recola_pipeline.export import export_model
from recola_pipeline.pipeline import Pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", required=True, help="make_sessions.py output (RECOLA layout)")
    parser.add_argument("--store", default="/tmp/bench_predict_store", help="artifact root for training")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    args = parser.parse_args()
    config = load_config(None, overrides=["corpus.name=recola", f"corpus.data_root={json.dumps(args.sessions)}",
                                          f"run.artifact_root={json.dumps(args.store)}", "run.progress=false"])
    folder = Path(tempfile.mkdtemp(prefix="bench_model_"))
    model = load_model(export_model(Pipeline(config), folder / "model"))
    files = sorted((Path(args.sessions) / "RECOLA-Audio-recordings").glob("*.wav"))
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)

    def timed(function) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for path in files:
                function(path)
            best = min(best, time.perf_counter() - start)
        return best

    predict_s = timed(lambda path: model.predict(audio=path, system="audio"))
    lld_s = timed(lambda path: smile.process_file(str(path)))
    print(f"{len(files)} sessions, windows {model.description['systems']['audio_arousal']['windows']} (arousal), "
          f"{model.description['systems']['audio_valence']['windows']} (valence)")
    print(f"predict (audio model): {predict_s:.1f} s")
    print(f"openSMILE eGeMAPS LLDs: {lld_s:.1f} s")
    print(f"ratio predict / LLDs: {predict_s / lld_s:.2f}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
