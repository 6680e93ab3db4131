"""Bounded memory under load: a long recording is processed in pieces with the predictions of
one pass, and predicting many files holds one file's output at a time (benchmarks/predict_memory.py
measures the full-size cases)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from hypothesis import given
from hypothesis import strategies as st

from recola_pipeline import load_model
from recola_pipeline.extractors import AUDIO_FEATURE_SETS
from recola_pipeline.extractors.audio_io import load_audio, mono_blocks
from recola_pipeline.extractors.pieces import pieces
from recola_pipeline.window import Window

RATE = 16000


def voice(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Speech-like sound: a gliding harmonic tone in bursts, with noise (pitch, voicing, pauses)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t) + 15 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    bursts = (np.sin(2 * np.pi * 0.45 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    return 0.2 * tone * bursts * (1 + 0.4 * np.sin(2 * np.pi * 0.11 * t)) + rng.normal(0, 0.01, t.size)


@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=30), piece=st.integers(1, 4),
       context=st.integers(0, 2), lookahead=st.integers(0, 3))
def test_pieces_tile_the_recording_with_their_context(sizes, piece, context, lookahead):
    rate = 100
    signal = np.arange(sum(sizes), dtype=float)
    blocks = np.split(signal, np.cumsum(sizes)[:-1])
    out = list(pieces(blocks, rate, piece_s=piece, context_s=context, lookahead_s=lookahead))
    assert out[0].keep_from_s == 0 and np.isinf(out[-1].keep_to_s)
    for before, after in zip(out, out[1:]):
        assert after.keep_from_s == before.keep_to_s
    for p in out:
        assert p.start_s == max(0, p.keep_from_s - context)
        np.testing.assert_array_equal(p.signal, signal[p.start_s * rate:p.start_s * rate + p.signal.size])
        if not np.isinf(p.keep_to_s):  # a kept span always has its look-ahead, and audio follows it
            assert p.start_s * rate + p.signal.size == (p.keep_to_s + lookahead) * rate < signal.size
    assert out[-1].start_s * rate + out[-1].signal.size == signal.size


def test_streamed_audio_equals_the_whole_file_read(tmp_path):
    """Mixed to mono and resampled block by block: the same samples as the one-shot read."""
    stereo = np.column_stack([voice(7.3, rate=44100), voice(7.3, seed=1, rate=44100)])
    sf.write(tmp_path / "a.flac", 0.8 * stereo, 44100)
    whole = load_audio(tmp_path / "a.flac", RATE)
    streamed = np.concatenate(list(mono_blocks(tmp_path / "a.flac", RATE, block_frames=12345)))
    np.testing.assert_array_equal(streamed, whole)
    limited = np.concatenate(list(mono_blocks(tmp_path / "a.flac", RATE, limit=50000, block_frames=4096)))
    np.testing.assert_array_equal(limited, whole[:50000])


def test_features_from_pieces_equal_one_pass_bit_for_bit():
    signal = voice(75.0)
    extractor = AUDIO_FEATURE_SETS["egemaps"]
    whole = extractor.windowed_functionals(signal, RATE, [Window(4), Window(8)])
    blocks = np.array_split(signal, 17)
    parts = pieces(blocks, RATE, piece_s=20, context_s=5, lookahead_s=13)
    pieced = extractor.windowed_functionals_of_pieces(parts, RATE, [Window(4), Window(8)])
    for w in whole:
        assert pieced[w].shape == whole[w].shape
        pd.testing.assert_frame_equal(pieced[w], whole[w], check_exact=True)


def test_a_long_recording_predicted_in_pieces_gives_the_one_pass_predictions(exported, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, soxr.resample(voice(70.0), RATE, 22050), 22050)  # resampled on the way in, too
    model = load_model(exported[0])
    one_pass = model.predict(audio=path, system="audio")
    model.piece_s = 15
    pieced = model.predict(audio=path, system="audio")
    assert len(one_pass) == int(np.floor(70.0 / 0.04 + 1e-6)) + 1
    pd.testing.assert_frame_equal(pieced, one_pass, check_exact=True)


def test_a_recording_longer_than_the_training_cut_is_predicted_whole(exported, tmp_path):
    """corpus.max_seconds cuts training corpora; predict covers the whole input."""
    path = tmp_path / "long.wav"
    sf.write(path, voice(40.0), RATE)
    model = load_model(exported[0])
    model.description = {**model.description, "max_seconds": 20.0}  # a bundle trained on 20 s cuts
    frame = model.predict(audio=path, system="audio")
    assert len(frame) == 1001 and frame["time"].iloc[-1] == 40.0


PEAK = """
import json, resource, sys
from recola_pipeline import load_model
from recola_pipeline.prediction import predict_inputs
mode, bundle, out, *inputs = sys.argv[1:]
if mode == "api":
    model = load_model(bundle)
    model.piece_s = 20
    model.predict(audio=inputs[0], system="audio")
else:
    predict_inputs(bundle, inputs, __import__("pathlib").Path(out), system="audio", jobs=1, progress=False)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def peak_rss_kb(*args) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_memory_does_not_grow_with_the_recording_length(exported, tmp_path):
    """Four times the audio, in pieces of 20 s: peak RSS within 1.5x (the issue's bound for 60 vs 10 min)."""
    for minutes in (1, 4):
        sf.write(tmp_path / f"{minutes}.wav", voice(60.0 * minutes, seed=minutes), RATE)
    short = peak_rss_kb("api", exported[0], tmp_path, tmp_path / "1.wav")
    long = peak_rss_kb("api", exported[0], tmp_path, tmp_path / "4.wav")
    assert long <= 1.5 * short, (short, long)


def test_memory_does_not_grow_with_the_number_of_files(exported, tmp_path):
    """Six times the files: peak RSS within 1.2x, and every file is written."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for k in range(36):
        sf.write(folder / f"f{k:03d}.wav", voice(9.0, seed=k), RATE)
    few = peak_rss_kb("files", exported[0], tmp_path / "few", *sorted(folder.glob("*.wav"))[:6])
    many = peak_rss_kb("files", exported[0], tmp_path / "many", folder)
    assert many <= 1.2 * few, (few, many)
    assert len(list((tmp_path / "many").glob("*.csv"))) == 36
