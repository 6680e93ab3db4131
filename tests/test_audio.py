"""Audio stage: exact openSMILE functionals, window alignment, input handling."""
import glob

import numpy as np
import opensmile
import pandas as pd
import pytest
import soundfile as sf
from conftest import write_ratings

from recola_pipeline.corpora import recola
from recola_pipeline.extractors import AUDIO_FEATURE_SETS
from recola_pipeline.extractors.audio_features import audio_features
from recola_pipeline.extractors.opensmile_windows import OpenSmileSet
from recola_pipeline.extractors.windows import on_label_frames, strided_moments, strided_percentiles, time_indexed
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_audio_features, load_data
from recola_pipeline.window import Window, parse_windows, windows_label

RATE = 16000
EGEMAPS = OpenSmileSet("egemaps")


def speechlike(seconds, rng, burst_at=()):
    """Harmonic 'vowels' in noise at a moderate level, with 0.3 s loud bursts at the given times."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = (np.sin(2 * np.pi * 2.5 * t) > -0.2).astype(float)
    x = 0.02 * voiced * sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.002 * rng.standard_normal(t.size)
    for b in burst_at:
        x[(t >= b - 0.15) & (t < b + 0.15)] *= 20
    return np.clip(x, -1, 1)


def windowed_reference(signal, window_s, tmp_path, feature_set):
    """opensmile-python's own functionals with a fixed-window frame mode (one LLD pass per W)."""
    frame_mode = tmp_path / f"fixed{window_s}.inc"
    frame_mode.write_text(f"frameMode = fixed\nframeSize = {window_s}\nframeStep = 0.04\nframeCenterSpecial = left\n")
    smile = opensmile.Smile(feature_set, opensmile.FeatureLevel.Functionals,
                            options={"frameModeFunctionalsConf": str(frame_mode)})
    return smile.process_signal(signal, RATE)


@pytest.mark.parametrize("name, feature_set, seconds", [
    ("egemaps", opensmile.FeatureSet.eGeMAPSv02, 12.0),
    ("compare", opensmile.FeatureSet.ComParE_2016, 6.5),
])
def test_one_pass_equals_opensmile_fixed_windows(tmp_path, name, feature_set, seconds):
    """Every functional against openSMILE's own on the same fixed windows: the ones openSMILE
    computes per window, and the F0 and loudness percentiles from our sorted windows, are
    bit-identical; the averaging ones (eGeMAPS means and coefficients
    of variation, and the equivalent sound level, from cumulative sums) agree to float32
    precision, zero windows and windows of digital silence (-120 dB) included."""
    signal = speechlike(seconds, np.random.default_rng(0))
    signal[int(1.5 * RATE):int(6.5 * RATE)] = 0.0  # digital silence: windows without a voiced frame
    extractor = OpenSmileSet(name)
    ours = {w.seconds: frames.to_numpy() for w, frames in
            extractor.windowed_functionals(signal, RATE, [Window(4), Window(6)]).items()}
    names = extractor.feature_names()
    by_cumulative_sums = np.array([name == "egemaps" and (n.endswith(("_amean", "_stddevNorm"))
                                   and not n.startswith(("F0semitone", "loudness_"))
                                   or n == "equivalentSoundLevel_dBp") for n in names])
    assert by_cumulative_sums.sum() == (62 if name == "egemaps" else 0)
    for w in (4.0, 6.0):
        ref = windowed_reference(signal, w, tmp_path, feature_set)
        assert list(ref.columns) == names
        n = len(ours[w])
        assert n >= len(ref) - 1 and n > 0
        ref_values = ref.to_numpy()[:n]
        np.testing.assert_array_equal(ours[w][:, ~by_cumulative_sums], ref_values[:, ~by_cumulative_sums])
        np.testing.assert_allclose(ours[w][:, by_cumulative_sums], ref_values[:, by_cumulative_sums],
                                   rtol=1e-6, atol=1e-7)  # openSMILE: float32 sums
        if name == "egemaps" and w == 4.0:  # 5 s of silence: 4 s windows without a voiced frame, means 0
            assert (ref_values[:, by_cumulative_sums] == 0).any()
            assert (ref["F0semitoneFrom27.5Hz_sma3nz_percentile50.0"].to_numpy()[:n] == 0).any()
            assert (ref["equivalentSoundLevel_dBp"].to_numpy()[:n] == -120).any()
        starts = ref.index.get_level_values("start").total_seconds()[:n]
        np.testing.assert_allclose(starts, np.arange(n) * 0.04, atol=1e-6)


def test_strided_moments_match_a_direct_loop():
    rng = np.random.default_rng(8)
    frames = rng.normal(300.0, 2.0, (1000, 3)) * (rng.random((1000, 3)) > 0.4)
    used = frames != 0
    count, mean, std = strided_moments(frames, 400, 4, n_windows=160, used=used)  # last windows clipped
    for k in (0, 77, 150, 159):
        window = frames[4 * k:4 * k + 400]
        for c in range(3):
            values = window[:, c][window[:, c] != 0]
            assert count[k, c] == values.size
            assert mean[k, c] == pytest.approx(values.mean(), rel=1e-12)
            assert std[k, c] == pytest.approx(values.std(), rel=1e-7)
    count, mean, std = strided_moments(np.zeros((10, 1)), 4, 2, used=np.zeros((10, 1), bool))
    assert (count == 0).all() and np.isnan(mean).all() and np.isnan(std).all()


@pytest.mark.parametrize("nonzero", [False, True])
def test_strided_percentiles_match_numpy_linear_percentiles(nonzero, monkeypatch):
    """Every window (clipped ones at the end, a block boundary and windows without a used value
    included) against numpy's 'linear' percentiles of the same values."""
    rng = np.random.default_rng(9)
    values = (rng.normal(30.0, 5.0, 3000) * (rng.random(3000) > 0.4)).astype(np.float32)
    values[400:1300] = 0  # 900 zero frames: some 400-frame windows have no non-zero value
    used = values != 0 if nonzero else None
    n_windows = 700  # the last 75 windows run past the end
    count, ours = strided_percentiles(values, 400, 4, n_windows, [0.2, 0.5, 0.8], used=used)
    assert ours.dtype == np.float32
    for k in range(n_windows):
        window = values[4 * k:4 * k + 400]
        window = window[window != 0] if nonzero else window
        assert count[k] == window.size
        expected = np.percentile(window.astype(float), [20, 50, 80]) if window.size else np.zeros(3)
        np.testing.assert_allclose(ours[k], expected, rtol=1e-6, atol=0)
    if nonzero:
        assert (count == 0).sum() > 50
    monkeypatch.setattr("recola_pipeline.extractors.windows.PERCENTILE_BLOCK_WINDOWS", 64)
    _, small_blocks = strided_percentiles(values, 400, 4, n_windows, [0.2, 0.5, 0.8], used=used)
    np.testing.assert_array_equal(small_blocks, ours)


def test_window_convention_and_forms():
    values = np.arange(10.0)[:, None]  # window k has value k
    window = Window(0.4)  # W/2 = 5 frames
    aligned = window.centred(values, n_frames=20)
    np.testing.assert_array_equal(aligned[:, 0], [0] * 6 + list(range(1, 10)) + [9] * 5)
    frames = time_indexed(values, window, ["x"])
    assert frames.index.name == "time" and frames.index[0] == pytest.approx(0.2)  # window 0 is centred at W/2
    np.testing.assert_array_equal(on_label_frames(frames, window, 20, "test"), aligned)
    assert Window(4.0).half_frames == 50 and Window(4).frames == 100
    assert Window(4.0) == Window(4) and Window(8) > Window(6.08)
    assert (Window(6.08).folder, str(Window(6.08)), Window(6.08).seconds) == ("w6.08", "6.08", 6.08)
    assert parse_windows(windows_label({"audio": Window(8), "video": Window(6)})) == {"audio": Window(8),
                                                                                        "video": Window(6)}
    assert windows_label({"audio": Window(8), "video": Window(6)}) == "audio=8 video=6"
    for bad in (5.0, 0.0, -4.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="multiple|positive"):
            Window(bad)
    with pytest.raises(ValueError, match="shorter than the window"):
        Window(4.0).centred(np.empty((0, 3)), 10)


def test_frames_off_the_label_grid_are_refused_by_name(monkeypatch):
    """A feature set whose windows step at another hop, or start elsewhere, is a clear error, not a shift."""
    window = Window(0.4)
    late = time_indexed(np.zeros((10, 1)), window, ["x"])
    late.index = late.index + 0.04
    with pytest.raises(ValueError, match=r"toy set: the 0.4 s windows' frame 0 is at 0.24 s, not 0.2 s"):
        on_label_frames(late, window, 20, "toy set")
    slow = late.set_axis(pd.Index(0.2 + 0.08 * np.arange(10), name="time"))
    with pytest.raises(ValueError, match="frame 1 is at 0.28 s"):
        on_label_frames(slow, window, 20, "toy set")

    class TenMillisecondSet:  # a feature set that declares another hop is refused before it runs
        hop_dur = 0.01
        description, libraries = "toy", ()

        def windowed_functionals(self, signal, sample_rate, windows):
            raise AssertionError("not reached")

    monkeypatch.setitem(AUDIO_FEATURE_SETS, "ten_ms", TenMillisecondSet())
    with pytest.raises(ValueError, match="'ten_ms' steps its windows every 0.01 s; .* its hop_dur must be 0.04"):
        audio_features(np.zeros(RATE * 5), RATE, "ten_ms", [Window(4)], 10)


def audio_corpus(root, signals, n_frames):
    """RECOLA-layout corpus: one train recording per signal (sample rate, array)."""
    parts = ["recording,partition"]
    for rec, (rate, signal) in signals.items():
        path = root / recola.AUDIO_DIR / f"{rec}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, signal, rate)
        for dim in ("arousal", "valence"):
            write_ratings(root / recola.ANNOTATION_DIR / dim / f"{rec}.csv", n_frames)
        parts.append(f"{rec},train")
    (root / "partitions.csv").write_text("\n".join(parts) + "\n")
    return root


def run_audio(small_config, root, *overrides):
    pipeline = Pipeline(small_config("corpus.name=recola", f'corpus.data_root="{root}"', *overrides))
    return pipeline, pipeline.ensure("audio")


@pytest.mark.parametrize("feature_set, column", [("egemaps", "loudness_sma3_amean"), ("librosa", "rms_mean")])
@pytest.mark.parametrize("burst", [1.0, 15.0, 29.0])
def test_loudness_peak_is_centred_on_the_burst(small_config, tmp_path, burst, feature_set, column):
    """A loud burst at a known time: the windows containing it form a plateau of maximal mean
    loudness centred on the burst (clipped at the recording's start and end)."""
    w, seconds = 4.0, 30.0
    root = audio_corpus(tmp_path / "c", {"B": (RATE, speechlike(seconds, np.random.default_rng(1), [burst]))},
                        n_frames=int(seconds / 0.04) + 1)
    _, artifact = run_audio(small_config, root, "audio.windows_s=[4.0]", f"audio.feature_set={feature_set}")
    table = load_audio_features(artifact, Window(w), "B")
    loud = table[column].to_numpy()
    plateau = np.flatnonzero(loud > loud.max() - 0.25 * (loud.max() - np.median(loud)))
    t = table["time"].to_numpy()
    expected_start = max(burst - w / 2, 0.0)
    expected_end = min(burst + w / 2, seconds)
    assert t[plateau[0]] == pytest.approx(expected_start, abs=0.2)
    assert t[plateau[-1]] == pytest.approx(expected_end, abs=0.2)
    if 0 < burst - w / 2 and burst + w / 2 < seconds:
        assert (t[plateau[0]] + t[plateau[-1]]) / 2 == pytest.approx(burst, abs=0.08)


def test_any_rate_stereo_and_short_audio(small_config, tmp_path, caplog):
    rng = np.random.default_rng(2)
    mono16 = speechlike(10.0, rng)
    stereo44 = np.stack([speechlike(10.0, rng)] * 2, axis=1)
    root = audio_corpus(tmp_path / "c", {"A": (RATE, mono16), "S": (44100, np.repeat(stereo44, 1, axis=0))},
                        n_frames=251)
    # S: 44.1 kHz stereo samples of a 16 kHz-built signal last 10 * 16000 / 44100 = 3.6 s < 10 s of ratings
    (root / recola.AUDIO_DIR / "S.wav").unlink()
    sf.write(root / recola.AUDIO_DIR / "S.wav", np.stack([mono16[:int(6.0 * RATE)]] * 2, axis=1), RATE)
    _, artifact = run_audio(small_config, root, "audio.windows_s=[4.0]", "corpus.max_seconds=10.0")
    assert "S has 6.00 s of audio" in caplog.text
    short = load_audio_features(artifact, Window(4), "S")
    assert len(short) == 251
    # after the last full window (centre 4.0 s) the features are repeated forwards
    assert (short.iloc[100:, 1:].to_numpy() == short.iloc[100, 1:].to_numpy()).all()
    assert artifact.manifest()["info"]["padded"] == ["S"]


def test_resampled_8k_matches_16k_roughly(small_config, tmp_path):
    import soxr
    signal = speechlike(10.0, np.random.default_rng(4))
    root = audio_corpus(tmp_path / "c", {"A": (RATE, signal), "L": (8000, soxr.resample(signal, RATE, 8000))},
                        n_frames=251)
    _, artifact = run_audio(small_config, root, "audio.windows_s=[4.0]")
    a = load_audio_features(artifact, Window(4), "A")["F0semitoneFrom27.5Hz_sma3nz_amean"]
    low = load_audio_features(artifact, Window(4), "L")["F0semitoneFrom27.5Hz_sma3nz_amean"]
    assert np.median(np.abs(a - low)) < 0.5  # semitones: the 8 kHz copy is resampled to 16 kHz first


def test_demo_audio_stage_is_complete_and_aligned(small_config):
    pipeline = Pipeline(small_config("audio.windows_s=[4.0, 8.0]"))
    artifact = pipeline.ensure("audio")
    table, gold = load_data(pipeline.ensure("data"))
    for rec in table.recording:
        for w in (Window(4), Window(8)):
            features = load_audio_features(artifact, w, rec)
            assert features.shape == (len(gold[rec]), 89)
            np.testing.assert_array_equal(features["time"], gold[rec]["time"])
            assert np.isfinite(features.iloc[:, 1:].to_numpy()).mean() > 0.99


def test_real_clip_windows_match_isolated_opensmile(shared_dir):
    """Each 4 s window's functionals against openSMILE run on that window's audio alone.

    The two differ only where the LLDs' smoothing, F0 tracking and voicing decisions see audio
    beyond the window's edges: median relative deviation < 1 %, 90th percentile < 8 %
    (measured: 0.23 % and 3.3 %; README, "Audio features")."""
    files = sorted(glob.glob(str(shared_dir / "data" / "ravdess_speech_16k" / "Actor_01" / "*.flac")))[:6]
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    deviations = []
    for path in files:
        x, rate = sf.read(path)
        x = np.concatenate([x, x])
        ours = EGEMAPS.windowed_functionals(x, rate, [Window(4)])[Window(4)].to_numpy()
        for k in (0, 20, 40):
            start = int(round(k * 0.04 * rate))
            ref = smile.process_signal(x[start:start + 4 * rate], rate).to_numpy()[0]
            deviations.append(np.abs(ours[k] - ref) / np.maximum(np.abs(ref), 1e-3))
    deviations = np.concatenate(deviations)
    assert np.median(deviations) < 0.01 and np.percentile(deviations, 90) < 0.08


def test_librosa_window_statistics_match_a_direct_loop():
    from recola_pipeline.extractors.librosa_set import window_mean_std
    frames = np.random.default_rng(6).normal(5.0, 2.0, (1000, 3))
    ours = window_mean_std(frames, window_frames=400, step_frames=4)
    starts = range(0, 1000 - 400 + 1, 4)
    direct = np.array([np.ravel(np.c_[frames[s:s + 400].mean(axis=0), frames[s:s + 400].std(axis=0)])
                       for s in starts])
    assert ours.shape == direct.shape == (151, 6)
    np.testing.assert_allclose(ours, direct, atol=1e-9)


def test_librosa_set_shapes_and_names():
    from recola_pipeline.extractors import librosa_set
    frames = librosa_set.windowed_functionals(speechlike(6.0, np.random.default_rng(7)), RATE, [Window(4)])[Window(4)]
    # 598 frames of 25 ms at a 10 ms hop in 6 s; 4 s windows every 40 ms: (598 - 400) // 4 + 1
    assert frames.shape == (50, len(librosa_set.feature_names())) == (50, 118)
    np.testing.assert_allclose(frames.index, 2.0 + 0.04 * np.arange(50))  # centres: the first window's is W/2
    assert list(frames.columns) == librosa_set.feature_names()
    values = frames.to_numpy()
    assert np.isfinite(values).all()
    f0 = values[:, librosa_set.feature_names().index("f0_yin_mean")]
    assert 120 < np.median(f0) < 200  # the test signal's pitch is 140 +- 20 Hz
