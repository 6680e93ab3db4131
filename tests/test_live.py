"""Causal systems and live prediction: nothing reads the future, a stream gives the causal offline numbers."""
from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recola_pipeline import load_model
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.estimators import Normaliser, PostProcessor
from recola_pipeline.estimators.normalise import online_zscore
from recola_pipeline.estimators.postprocess import median_frames, trailing_median

FIXTURE = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


from recola_pipeline.window import Window
# ------------------------------------------------------------------ causal steps, alone


@given(window_frames=st.sampled_from([2, 4, 6, 10]), n_windows=st.integers(1, 40))
def test_each_causal_frame_takes_the_window_that_ends_there(window_frames, n_windows):
    window = Window(window_frames * 0.04)
    n_frames = n_windows + window_frames - 1  # window k spans frames k ... k + W, the last ends at the last frame
    windows = np.arange(n_windows, dtype=float)[:, None]  # row k: the window starting at frame k
    causal = window.trailing(window.centred(windows, n_frames))[:, 0]
    for t in range(n_frames):
        expected = t - window_frames if t >= window_frames else np.nan  # the window [t - W, t]
        assert (np.isnan(causal[t]) and np.isnan(expected)) or causal[t] == expected, t


@given(values=st.lists(st.floats(-5, 5), min_size=1, max_size=60), width=st.integers(1, 9))
def test_the_trailing_median_is_the_median_of_each_value_and_those_before(values, width):
    values = np.array(values)
    padded = np.concatenate([np.full(width - 1, values[0]), values])
    expected = [np.median(padded[i:i + width]) for i in range(len(values))]
    np.testing.assert_array_equal(trailing_median(values, width), expected)


def test_a_causal_post_processor_never_reads_a_later_prediction():
    rng = np.random.default_rng(0)
    pred, gold = rng.normal(size=200), rng.normal(size=200)
    post = PostProcessor(median_s=0.6, centring=True, scaling=True, causal=True).fit(pred, gold)
    changed = pred.copy()
    changed[120:] += 10
    np.testing.assert_array_equal(post.predict(pred)[:120], post.predict(changed)[:120])
    centred = PostProcessor(median_s=0.6, causal=False).fit(pred, gold)
    assert not np.array_equal(centred.predict(pred)[:120], centred.predict(changed)[:120])  # looks ahead
    assert post.steps_[0] == f"trailing median {median_frames(0.6) * 0.04:.2f} s"


@given(cuts=st.lists(st.integers(1, 79), max_size=6, unique=True), prior=st.sampled_from([0.0, 5.0, 50.0]))
def test_online_normalisation_in_pieces_equals_one_pass_and_matches_its_formula(cuts, prior):
    rng = np.random.default_rng(1)
    X = rng.normal(3, 2, size=(80, 3))
    X[[4, 30], 1] = np.nan
    mean, scale = np.array([3.0, 2.5, 1.0]), np.array([2.0, 1.0, 0.5])
    whole, _ = online_zscore(X, mean, scale, prior)
    parts, sums = [], None
    for piece in np.split(X, sorted(cuts)):
        Z, sums = online_zscore(piece, mean, scale, prior, sums)
        parts.append(Z)
    np.testing.assert_array_equal(np.vstack(parts), whole)  # bit for bit: what a stream gets
    t, f = 40, 1  # the formula, written out for one frame and feature: the train prior plus the frames up to t
    past = X[:t + 1, f][np.isfinite(X[:t + 1, f])] - mean[f]
    m = past.sum() / (prior + past.size)
    v = (prior * scale[f] ** 2 + (past ** 2).sum()) / (prior + past.size) - m ** 2
    assert whole[t, f] == pytest.approx((X[t, f] - mean[f] - m) / np.sqrt(v), rel=1e-9)
    assert whole[4, 1] == 0.0  # NaN maps to 0


def test_online_normalisation_uses_only_each_recordings_past():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2))
    groups = np.repeat(["a", "b"], 50)
    normaliser = Normaliser("online", warmup_s=0.4).fit(X)
    changed = X.copy()
    changed[30:50] *= 5  # later frames of recording a
    before, after = normaliser.transform(X, groups), normaliser.transform(changed, groups)
    np.testing.assert_array_equal(before[:30], after[:30])
    np.testing.assert_array_equal(before[50:], after[50:])  # recording b starts afresh


@pytest.mark.parametrize("override, message", [
    ('train.causal_normalisation=["recording"]', "future"),
    ('train.estimators=["gru"]', "must include 'svr'"),
    ("train.online_warmup_s=-1", "online_warmup_s"),
])
def test_causal_settings_that_cannot_hold_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides=["train.causal=true", override])


# ------------------------------------------------------------------ a trained causal model


def test_evaluate_scores_causal_systems_beside_centred_ones_with_the_cost(exported_causal):
    _, store, _ = exported_causal
    evaluate = next((store / "models" / "evaluate").glob("*/results.csv")).parent
    results = pd.read_csv(evaluate / "results.csv")
    for dim in ("arousal", "valence"):
        for causal in (True, False):
            rows = results[(results.dimension == dim) & (results.causal == causal)]
            assert set(rows.partition) == {"train", "devel", "test"}
            assert rows.ccc_ci_low.le(rows.ccc).all() and rows.ccc.le(rows.ccc_ci_high).all()
    causal_rows = results[results.causal]
    assert set(causal_rows.normalisation) == {"online"}  # the fixture's causal normalisation
    with_median = causal_rows.postprocessing.str.contains("median")
    assert with_median.any()
    assert causal_rows.postprocessing[with_median].str.contains(r"(trailing|causal) median", regex=True).all()
    assert not results[~results.causal].postprocessing.str.contains("trailing|causal", regex=True).any()
    comparisons = pd.read_csv(evaluate / "comparisons.csv")
    cost = comparisons[comparisons.compared_with.str.startswith("best centred")]
    assert set(zip(cost.dimension, cost.partition)) == {(d, p) for d in ("arousal", "valence") for p in ("devel", "test")}
    assert (cost.system == "causal-audio").all()
    assert (cost.ci_low <= cost.difference).all() and (cost.difference <= cost.ci_high).all()


def test_the_report_shows_causal_systems_and_their_cost_in_a_browser(exported_causal, tmp_path):
    from conftest import CAUSAL_DEMO
    from test_runs import chromium, load_in_chromium

    from recola_pipeline.cli import main
    store = tmp_path / "store"
    shutil.copytree(exported_causal[1], store, symlinks=True)
    assert main(["--stage", "report", "--name", "live", "--artifact-root", str(store), "--jobs", "1", "--quiet",
                 *CAUSAL_DEMO]) == 0
    dom, requests, console = load_in_chromium(chromium(), store / "runs" / "live" / "report.html", tmp_path / "browser")
    assert not requests and not console, (requests, console)
    rows = re.findall(r'<tr [^>]*data-causal="(true|false)"[^>]*>.*?</tr>', dom)
    results = pd.read_csv(store / "runs" / "live" / "results.csv")
    shown = results[results.partition.isin(["devel", "test"])]
    assert rows == ["true" if c else "false" for c in shown.causal]
    assert dom.count(">causal audio<") == shown.causal.sum()
    assert "what causality costs" in dom and ">best centred (audio)<" in dom
    headline = dom[dom.index("headline-table"):dom.index("</table>", dom.index("headline-table"))]
    assert "causal" not in headline  # the headline names the best centred system


def test_an_exported_causal_model_says_which_systems_are_causal(exported_causal):
    model_dir = exported_causal[0]
    description = json.loads((model_dir / "model.json").read_text())
    flags = {key: entry["causal"] for key, entry in description["systems"].items()}
    assert flags == {"audio_arousal": False, "audio_valence": False,
                     "causal-audio_arousal": True, "causal-audio_valence": True}
    assert description["chosen_causal"] == {"arousal": "causal-audio_arousal", "valence": "causal-audio_valence"}
    card = (model_dir / "MODEL.md").read_text()
    assert "Causal systems (no future input" in card and "| causal |" in card


def test_causal_predictions_of_a_file_equal_the_evaluate_stage(exported_causal):
    model_dir, store, audio = exported_causal
    evaluated = pd.read_parquet(next((store / "models" / "evaluate").glob(f"*/predictions/{audio.stem}.parquet")))
    predicted = load_model(model_dir).predict(audio=audio, system="best-causal")
    for dim in ("arousal", "valence"):
        np.testing.assert_allclose(predicted[dim], evaluated[f"causal-audio_{dim}"], atol=1e-9)


def test_causal_predictions_never_read_later_audio(exported_causal, tmp_path):
    """Audio after 20 s is replaced: causal frames up to 19.5 s keep their values (openSMILE's LLDs look at
    most a few frames ahead; the means computed from cumulative sums round with the whole recording's
    column means, far below 1e-6), while the centred system's frames within W/2 before the change move."""
    model_dir, _, audio = exported_causal
    signal, rate = sf.read(audio)
    changed = signal.copy()
    changed[20 * rate:] = np.random.default_rng(0).normal(0, 0.3, changed.size - 20 * rate)
    sf.write(tmp_path / "changed.wav", changed, rate)
    model = load_model(model_dir)
    for system, unchanged in (("causal-audio", True), ("audio", False)):
        before = model.predict(audio=audio, system=system)
        after = model.predict(audio=tmp_path / "changed.wav", system=system)
        early = before.time <= 19.5
        moved = max(np.abs(before[d][early] - after[d][early]).max() for d in ("arousal", "valence"))
        assert (moved < 1e-6) if unchanged else (moved > 1e-3), (system, moved)


@FIXTURE
@given(chunks=st.lists(st.one_of(st.integers(1, 40), st.integers(41, 9000)), min_size=1, max_size=30)
       .filter(lambda sizes: sum(sizes) >= 4000))
def test_live_functionals_equal_the_batch_windows_whatever_the_chunks(exported_causal, chunks):
    from recola_pipeline.extractors.opensmile_live import LiveFunctionals
    from recola_pipeline.extractors.opensmile_windows import EGEMAPS
    signal, rate = sf.read(exported_causal[2], dtype="int16")
    signal = signal[:12 * rate]
    batch = EGEMAPS.windowed_functionals(signal / 32768.0, rate, [Window(4)])[Window(4)].to_numpy()
    live = LiveFunctionals(EGEMAPS, rate, [Window(4)])
    rows, position, handed_out = [], 0, 0
    for size in (chunks * (signal.size // sum(chunks) + 1)):
        if position >= signal.size:
            break
        live.push(signal[position:position + size])
        position += size
        first, new = live.completed()[Window(4)]
        assert first == handed_out  # each window handed out once, in order
        rows.append(new)
        handed_out += len(new)
    live.finish()
    rows.append(live.completed()[Window(4)][1])
    live.close()
    rows = np.vstack(rows)
    assert rows.shape == batch.shape
    np.testing.assert_allclose(rows, batch, rtol=1e-9, atol=1e-9)


def test_the_live_lld_period_is_the_batch_one():
    from recola_pipeline.extractors.opensmile_live import LLD_PERIOD_S
    from recola_pipeline.extractors.opensmile_windows import EGEMAPS
    _, llds = EGEMAPS._run(np.random.default_rng(0).normal(0, 0.1, 16000 * 5), 16000, [Window(4)])
    assert {round(period, 6) for _, _, period in llds.values()} == {LLD_PERIOD_S}


def _stream(model, signal, chunks, **kwargs) -> pd.DataFrame:
    parts, position, k = [], 0, 0
    with model.stream(**kwargs) as stream:
        while position < len(signal):
            size = chunks[k % len(chunks)]
            parts.append(stream.push(signal[position:position + size]))
            position, k = position + size, k + 1
        parts.append(stream.close())
    return pd.concat(parts, ignore_index=True)


@FIXTURE
@given(chunks=st.lists(st.one_of(st.integers(1, 40), st.integers(41, 12000)), min_size=1, max_size=20)
       .filter(lambda sizes: sum(sizes) >= 4000))  # single samples too, without 480 000 pushes
def test_a_stream_in_any_chunks_gives_the_causal_offline_predictions(exported_causal, chunks):
    model_dir, _, audio = exported_causal
    model = load_model(model_dir)
    steps = {dim: model._system_model(model._system(dim, "best-causal")["model"], None).named_steps
             for dim in model.dimensions}  # the fixture exercises every causal step
    assert all(s["normalise"].mode == "online" for s in steps.values())
    assert any(s["regress"].delay_frames_ > 0 for s in steps.values())
    assert any(median_frames(s["postprocess"].median_s) > 1 for s in steps.values())
    assert all(s["postprocess"].causal for s in steps.values())
    offline = model.predict(audio=audio, system="best-causal")
    signal, rate = sf.read(audio, dtype="int16")
    live = _stream(model, signal, chunks, sample_rate=rate)
    np.testing.assert_array_equal(live.time, offline.time)
    for dim in model.dimensions:
        np.testing.assert_allclose(live[dim], offline[dim], atol=1e-6, rtol=0)
    assert (live.latency_s >= 0).all()


def test_float_stereo_and_resampled_streams_give_the_offline_predictions(exported_causal, tmp_path):
    import soxr
    model_dir, _, audio = exported_causal
    model = load_model(model_dir)
    signal, rate = sf.read(audio)
    stereo = np.column_stack([signal, 0.5 * signal])
    sf.write(tmp_path / "stereo.wav", stereo, rate, subtype="PCM_16")
    stereo = sf.read(tmp_path / "stereo.wav")[0]
    live = _stream(model, stereo, [777, 5000], sample_rate=rate, system="causal-audio")
    offline = model.predict(audio=tmp_path / "stereo.wav", system="causal-audio")
    np.testing.assert_allclose(live.arousal, offline.arousal, atol=1e-6, rtol=0)
    high = soxr.resample(signal, rate, 22050)
    sf.write(tmp_path / "22k.wav", high, 22050, subtype="FLOAT")
    live = _stream(model, sf.read(tmp_path / "22k.wav")[0], [1000, 3331], sample_rate=22050)
    offline = model.predict(audio=tmp_path / "22k.wav", system="best-causal")
    assert len(live) == len(offline)
    np.testing.assert_allclose(live.valence, offline.valence, atol=1e-6, rtol=0)


def test_streaming_needs_a_causal_audio_system(exported_causal, exported):
    with pytest.raises(CorpusError, match="needs a causal audio system"):
        load_model(exported_causal[0]).stream(system="audio")
    with pytest.raises(CorpusError, match="no causal system"):
        load_model(exported[0]).stream()


# ------------------------------------------------------------------ the command line


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "recola_pipeline.cli", "predict", *args], input=stdin,
                          capture_output=True, timeout=300)


def test_predict_live_from_stdin_prints_one_line_per_frame_equal_to_offline(exported_causal):
    model_dir, _, audio = exported_causal
    offline = load_model(model_dir).predict(audio=audio, system="best-causal")
    done = _cli("--model", str(model_dir), "--live", "-", "--format", "json", stdin=audio.read_bytes())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line["time"] for line in lines] == offline.time.tolist()
    for dim in ("arousal", "valence"):
        np.testing.assert_allclose([line[dim] for line in lines], offline[dim], atol=1e-6, rtol=0)
    assert all(line["latency_ms"] >= 0 for line in lines)
    raw = sf.read(audio, dtype="int16")[0].astype("<i2").tobytes()  # raw PCM: rate given
    done = _cli("--model", str(model_dir), "--live", "-", "--rate", "16000", "--every", "25", stdin=raw)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    csv = pd.read_csv(io.StringIO(done.stdout.decode()))
    assert list(csv.columns) == ["time", "arousal", "valence", "latency_ms"]
    np.testing.assert_allclose(csv.time, offline.time[::25])
    np.testing.assert_allclose(csv.arousal, offline.arousal[::25], atol=1e-6)


def test_predict_live_refuses_what_it_cannot_stream(exported_causal):
    model_dir = str(exported_causal[0])
    done = _cli("--model", model_dir, "--live", "-", stdin=b"\x00\x01" * 100)
    assert done.returncode == 2 and b"--rate" in done.stderr
    done = _cli("--model", model_dir, "--live", "-", "--system", "audio", stdin=b"\x00\x01" * 100)
    assert done.returncode == 2 and b"causal audio system" in done.stderr
    done = _cli("--model", model_dir, "--live", "/nonexistent.wav")
    assert done.returncode == 2 and b"/nonexistent.wav" in done.stderr


def test_a_sound_device_that_goes_away_ends_the_stream_cleanly(exported_causal, monkeypatch):
    from recola_pipeline.live import run_live
    model_dir, _, audio = exported_causal
    signal = sf.read(audio, dtype="int16")[0][:16000 * 6]

    class InputStream:  # a fake device: 6 s of the recording, then it is unplugged
        def __init__(self, device, samplerate, channels, dtype, blocksize):
            assert (samplerate, channels, dtype) == (16000, 1, "int16")
            self.blocksize, self.position = blocksize, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            if self.position >= signal.size:
                raise RuntimeError("device unavailable")
            block = signal[self.position:self.position + n]
            self.position += n
            return block[:, None], False

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(InputStream=InputStream))
    out = io.StringIO()
    assert run_live(model_dir, "device:1", system="best-causal", rate=None, channels=1, realtime=False,
                    output_format="csv", every=1, out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 6 * 25 + 1  # header, frames 0.00 ... 6.00 s


def test_ctrl_c_ends_a_live_stream_with_every_known_frame_written(exported_causal):
    """The real command, replaying a recording at real-time pace, gets SIGINT after its first second of lines."""
    model_dir, _, audio = exported_causal
    process = subprocess.Popen([sys.executable, "-m", "recola_pipeline.cli", "predict", "--model", str(model_dir),
                                "--live", str(audio), "--realtime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [process.stdout.readline() for _ in range(1 + 25)]  # the header and one second of frames
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors.decode()[-2000:]
    table = pd.read_csv(io.BytesIO(b"".join(lines) + rest))
    assert 25 <= len(table) < 30 * 25  # stopped early, every line whole
    np.testing.assert_allclose(np.diff(table.time), 0.04)
    assert b"live: stopped by SIGINT; every frame known was written" in errors


def test_live_docs_name_what_is_tested():
    page = (Path(__file__).resolve().parents[1] / "docs" / "live.md").read_text()
    for phrase in ("--live -", "stream(", "push(", "cost of causality", "benchmarks/live.py"):
        assert phrase in page, phrase
