"""MRPN clip inputs: spectrogram segments and the time augmentation."""
import numpy as np
import pytest

from recola_pipeline.mrpn.inputs import spectrogram_segments, time_slice


def test_spectrogram_segments_shape_and_standardisation():
    rate = 16000
    t = np.arange(int(3.0 * rate)) / rate
    tone = 0.01 * np.sin(2 * np.pi * 1000 * t)
    segments = spectrogram_segments(tone, rate)
    assert segments.shape == (11, 1, 257, 251) and segments.dtype == np.float32  # (3 - 1) / 0.2 + 1 segments
    peak_bin = segments[0, 0].mean(axis=1).argmax()
    assert peak_bin == round(1000 / (rate / 512))  # the tone's frequency bin
    loud = spectrogram_segments(100 * tone, rate)
    np.testing.assert_allclose(loud, segments, rtol=1e-4, atol=1e-5)  # standardised: level does not matter


def test_short_clip_is_padded_to_one_segment_and_silence_is_refused():
    assert spectrogram_segments(np.random.default_rng(0).normal(size=8000), 16000).shape[0] == 1
    with pytest.raises(ValueError, match="silent"):
        spectrogram_segments(np.zeros(16000), 16000)


def test_time_slice_covers_the_same_time_in_every_modality():
    rng = np.random.default_rng(3)
    rates, lengths = {"spectrogram": 5.0, "faces": 25.0, "lld": 100.0}, {"spectrogram": 16, "faces": 95, "lld": 380}
    for _ in range(200):
        spans = time_slice(rates, lengths, 1.0, rng)
        starts = {m: s.start / rates[m] for m, s in spans.items()}
        durations = {m: (s.stop - s.start) / rates[m] for m, s in spans.items()}
        assert max(starts.values()) - min(starts.values()) <= 0.2 + 1e-9
        assert all(d >= 1.0 - 1e-9 for d in durations.values())
        assert all(0 <= s.start < s.stop <= lengths[m] for m, s in spans.items())
    whole = time_slice(rates, {"spectrogram": 4, "faces": 20, "lld": 80}, 1.0, rng)
    assert whole == {"spectrogram": slice(0, 4), "faces": slice(0, 20), "lld": slice(0, 80)}
