"""The example configs in configs/ load without error."""
from pathlib import Path

import pytest

from recola_pipeline.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_loads(path):
    cfg = load_config(path)
    if "mrpn" in path.stem:  # the categorical path's configs name a clip corpus and its folder
        assert cfg.mrpn.corpus == "ravdess" and cfg.mrpn.data_root
    else:
        assert cfg.corpus.name in (path.stem, "recola")
