"""The README's "Extending" examples, followed through the documented extension points alone.

A toy audio feature set and a toy corpus are each added with one registry line (here
``monkeypatch.setitem``, in a fork one line in the registry's module) and run through
``--stage evaluate``; a toy clip corpus is listed by the ``clips`` stage.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from recola_pipeline.cli import main
from recola_pipeline.config import load_config
from recola_pipeline.corpora import CORPORA, Corpus, Recording
from recola_pipeline.corpora.ratings import read_label_file
from recola_pipeline.extractors import AUDIO_FEATURE_SETS
from recola_pipeline.extractors.windows import strided_moments, time_indexed
from recola_pipeline.labels import LABEL_HOP_S
from recola_pipeline.mrpn import CLIP_CORPORA
from recola_pipeline.mrpn.corpora import ravdess
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_clip_table


# --------------------------------------------------------------------------- a feature set (README example)
class RmsFeatureSet:
    """Mean and standard deviation of the 40 ms RMS energy over each W-second window."""

    description = "RMS energy (toy)"
    libraries = ("numpy",)

    def feature_names(self) -> list[str]:
        return ["rms_mean", "rms_std"]

    hop_dur = LABEL_HOP_S

    def windowed_functionals(self, signal, sample_rate, windows):
        hop = int(round(self.hop_dur * sample_rate))
        frames = signal[: len(signal) // hop * hop].reshape(-1, hop)
        rms = np.sqrt((frames ** 2).mean(axis=1))[:, None]
        out = {}
        for w in windows:  # Window objects: w.frames is W in 40 ms frames
            n_windows = max(len(rms) - w.frames + 1, 0)
            _, mean, std = strided_moments(rms, w.frames, 1, n_windows)
            out[w] = time_indexed(np.column_stack([mean[:, 0], std[:, 0]]), w, self.feature_names())
        return out


# --------------------------------------------------------------------------- a corpus (README example)
def toy_corpus(folder: Path):
    """A corpus kind whose recordings are ``<folder>/<partition>_<n>.wav`` with ``<stem>_<dim>.csv`` ratings."""
    def read(corpus_cfg, demo_root):
        recordings = []
        for wav in sorted(folder.glob("*.wav")):
            partition = wav.stem.split("_")[0]
            labels = {d: wav.with_name(f"{wav.stem}_{d}.csv") for d in corpus_cfg.dimensions}
            recordings.append(Recording(wav.stem, partition, wav, None, labels))
        return Corpus("toy", recordings, read_label_file)
    return read


def write_toy_corpus(folder: Path) -> None:
    rate, seconds = 8000, 16.0
    t = np.arange(int(seconds * rate)) / rate
    for k, name in enumerate(["train_1", "train_2", "devel_1", "devel_2", "test_1"]):
        trace = np.sin(2 * np.pi * t / (6 + k))  # arousal drives the loudness
        carrier = np.sin(2 * np.pi * (150 + 10 * k) * t)
        sf.write(folder / f"{name}.wav", 0.05 * (1.5 + trace) * carrier, rate)
        times = np.round(np.arange(0, seconds, 0.04), 2)
        for d in ("arousal", "valence"):
            value = np.sin(2 * np.pi * times / (6 + k)) * (1 if d == "arousal" else 0.5)
            pd.DataFrame({"time": times, d: np.round(value, 4)}).to_csv(folder / f"{name}_{d}.csv", index=False)


def test_a_new_feature_set_and_a_new_corpus_run_to_evaluate(tmp_path, monkeypatch):
    folder = tmp_path / "toy"
    folder.mkdir()
    write_toy_corpus(folder)
    monkeypatch.setitem(AUDIO_FEATURE_SETS, "rms", RmsFeatureSet())  # the feature set's registry line
    monkeypatch.setitem(CORPORA, "toy", toy_corpus(folder))  # the corpus's registry line
    args = ["--stage", "evaluate", "--corpus", "toy", "--artifact-root", str(tmp_path / "store"), "--jobs", "1",
            "--quiet", "--set", "audio.feature_set=rms", "--set", "audio.windows_s=[2.0, 4.0]",
            "--set", "train.delay_max_s=0.4", "--set", "evaluate.bootstrap_resamples=100"]
    assert main(args) == 0
    cfg = load_config(None, overrides=["corpus.name=toy", f'run.artifact_root="{tmp_path / "store"}"',
                                       "audio.feature_set=rms", "audio.windows_s=[2.0, 4.0]",
                                       "train.delay_max_s=0.4", "evaluate.bootstrap_resamples=100"])
    evaluate = Pipeline(cfg).artifact("evaluate")
    results = pd.read_csv(evaluate.file("results.csv"))
    devel = results[(results.partition == "devel") & (results.dimension == "arousal")]
    assert devel.features.eq("audio:rms").all() and devel.weights.str.startswith("RMS energy (toy)").all()
    assert devel.ccc.iloc[0] > 0.5  # loudness follows arousal in the toy corpus


# --------------------------------------------------------------------------- a clip corpus (README example)
def test_a_new_clip_corpus_is_listed_by_the_clips_stage(tmp_path, monkeypatch):
    source = Pipeline(load_config(None, overrides=[f'run.artifact_root="{tmp_path / "a"}"', "run.jobs=1",
                                                  "run.progress=false"])).ensure("demo_clips").path

    class RenamedRavdess:  # a clip corpus is a module (or object) with read(root) -> list[Clip]
        @staticmethod
        def read(root):
            return ravdess.read(root)

    monkeypatch.setitem(CLIP_CORPORA, "mine", RenamedRavdess)  # the clip corpus's registry line
    cfg = load_config(None, overrides=[f'run.artifact_root="{tmp_path / "b"}"', "run.jobs=1", "run.progress=false",
                                       "mrpn.corpus=mine", f'mrpn.data_root="{source}"',
                                       'mrpn.modalities=["spectrogram", "lld"]'])
    table = load_clip_table(Pipeline(cfg).ensure("clips"))
    assert len(table) == len(ravdess.read(source)) and table.emotion.nunique() >= 2
