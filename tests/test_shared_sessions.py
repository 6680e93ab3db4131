"""The data stage on real-speech sessions from ../shared/tools/make_sessions.py (skips without ../shared)."""
import subprocess
import sys

import numpy as np
import pytest

from recola_pipeline.corpora import avec2016
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data


def make_sessions(shared_dir, out, layout):
    subprocess.run([sys.executable, str(shared_dir / "tools" / "make_sessions.py"),
                    "--clips", str(shared_dir / "data" / "ravdess_speech_16k"), "--out", str(out),
                    "--layout", layout, "--actors", "1,9,17"], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("layout", ["recola", "avec2016"])
def test_sessions_read_in_both_layouts(shared_dir, small_config, tmp_path, layout):
    root = make_sessions(shared_dir, tmp_path / layout, layout)
    pipeline = Pipeline(small_config(f"corpus.name={layout}", f'corpus.data_root="{root}"'))
    table, gold = load_data(pipeline.ensure("data"))
    assert sorted(table.partition) == ["devel", "test", "train"]
    assert table.labelled.all()
    # every session is fully rated: frames cover the audio (cut at 300 s)
    expected = np.minimum(np.floor(table.audio_s / 0.04).astype(int) + 1, 7501)
    assert (abs(table.n_frames - expected) <= 1).all()
    if layout == "avec2016":
        for rec in table.recording:
            for dim in ("arousal", "valence"):
                shipped = avec2016.read_shipped_gold(root, rec, dim)
                ours = gold[rec][dim].to_numpy()
                assert len(shipped) >= len(ours)
                np.testing.assert_allclose(ours, shipped["gold"].to_numpy()[:len(ours)], atol=1e-4)
