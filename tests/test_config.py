"""Typed TOML config: defaults, overrides, clear errors, per-stage hashing."""
import pytest

from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.pipeline import Pipeline


def test_defaults_run_the_demo():
    cfg = load_config(None)
    assert cfg.corpus.name == "demo"
    assert cfg.corpus.gold_standard == "avec2016"
    assert cfg.corpus.max_seconds == 300.0


def test_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[corpus]\nname = "recola"\ndata_root = "/data/RECOLA"\nmax_seconds = 200\n')
    cfg = load_config(path, overrides=["corpus.gold_standard=ewe", "run.jobs=2"])
    assert cfg.corpus.name == "recola"
    assert cfg.corpus.max_seconds == 200.0 and isinstance(cfg.corpus.max_seconds, float)
    assert cfg.corpus.gold_standard == "ewe"
    assert cfg.run.jobs == 2


def test_unknown_key_names_file_key_and_closest(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[corpus]\ngold_standart = "mean"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "corpus.gold_standart" in message and "gold_standard" in message


def test_unknown_section_suggests_closest(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[corpuss]\nname = "demo"\n')
    with pytest.raises(ConfigError, match=r"unknown section \[corpuss\].*corpus"):
        load_config(path)


@pytest.mark.parametrize("override, fragment", [
    ("run.jobs=\"two\"", "expected int"),
    ("run.jobs=true", "expected an integer"),
    ("corpus.dimensions=\"arousal\"", "expected a list"),
    ("corpus.gold_standard=median", "gold_standard must be one of"),
    ("corpus.name=semaine", "corpus.name must be one of"),
    ("corpus.dimensions=[\"dominance\"]", "distinct names of"),
    ("nonsense", "expected section.key=value"),
    ("mrpn.aggregator=\"gru\"", r"mrpn.aggregator must be one of \('lstm', 'transformer', 'stats'\)"),
])
def test_bad_values_are_errors(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, overrides=[override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[corpus\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_stage_hash_depends_only_on_its_settings(tmp_path):
    base = ["run.progress=false", f'run.artifact_root="{tmp_path}"']
    ref = Pipeline(load_config(None, overrides=base))
    other_gold = Pipeline(load_config(None, overrides=base + ["corpus.gold_standard=mean"]))
    other_jobs = Pipeline(load_config(None, overrides=base + ["run.jobs=1"]))
    other_demo = Pipeline(load_config(None, overrides=base + ["demo.seed=7"]))
    assert ref.artifact("demo").hash == other_gold.artifact("demo").hash
    assert ref.artifact("data").hash != other_gold.artifact("data").hash
    assert ref.artifact("data").hash == other_jobs.artifact("data").hash
    # a different demo corpus changes everything downstream
    assert ref.artifact("demo").hash != other_demo.artifact("demo").hash
    assert ref.artifact("data").hash != other_demo.artifact("data").hash
