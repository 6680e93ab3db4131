"""The shape of the code: stages do not import each other, valid names come from the registries,
and every setting a stage reads is part of its artifact's identity."""
from __future__ import annotations

import dataclasses

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from recola_pipeline import cli
from recola_pipeline.code_identity import cycles, import_graph
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CORPORA
from recola_pipeline.estimators import L2LinearSVR, Normaliser
from recola_pipeline.extractors import AUDIO_FEATURE_SETS
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.stages import INTERNAL, STAGES, public_stages

GRAPH = import_graph()
STAGE_MODULES = {f"recola_pipeline.stages.{name}" for name in STAGES}


def test_no_import_cycles_among_the_package_modules():
    """Imports deferred into functions count: a cycle there still ties the modules together."""
    assert cycles(GRAPH) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail


def test_no_stage_module_imports_another():
    for module in STAGE_MODULES:
        others = GRAPH[module] & (STAGE_MODULES - {module})
        assert not others, f"{module} imports {sorted(others)}"


def test_stage_modules_are_reached_through_the_registry_only():
    for module, imported in GRAPH.items():
        if module not in STAGE_MODULES:
            assert not imported & STAGE_MODULES, f"{module} imports {sorted(imported & STAGE_MODULES)}"


def test_the_stage_list_is_the_only_order():
    assert [name for name in STAGES if name not in INTERNAL] == public_stages() == \
        ["data", "audio", "video", "train", "evaluate", "report", "mrpn"]
    assert all(STAGES[name].name == name for name in STAGES)


def test_config_and_cli_take_valid_names_from_the_registries(monkeypatch):
    toy = object()
    monkeypatch.setitem(AUDIO_FEATURE_SETS, "toy_set", toy)
    monkeypatch.setitem(CORPORA, "toy_corpus", lambda cfg, root: None)
    cfg = load_config(None, overrides=["audio.feature_set=toy_set"])
    assert cfg.audio.feature_set == "toy_set"
    with pytest.raises(ConfigError, match="toy_set"):
        load_config(None, overrides=["audio.feature_set=nothing"])
    with pytest.raises(ConfigError, match="toy_corpus"):
        load_config(None, overrides=["corpus.name=nothing"])
    assert "toy_corpus" in cli.build_parser().format_help().replace("\n", " ").replace("  ", " ")


# --------------------------------------------------------------------------- identity from the code
class Reads:
    """Which settings each stage's run reads."""

    def __init__(self):
        self.stack: list[str] = []
        self.by_stage: dict[str, set[str]] = {}

    def add(self, key: str) -> None:
        if self.stack:
            self.by_stage.setdefault(self.stack[-1], set()).add(key)


class TrackedSection:
    def __init__(self, name, section, reads):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_reads", reads)

    def __getattr__(self, key):
        self._reads.add(f"{self._name}.{key}")
        return getattr(self._section, key)


class TrackedConfig:
    def __init__(self, config, reads):
        self._config, self._reads = config, reads

    def __getattr__(self, name):
        return TrackedSection(name, getattr(self._config, name), self._reads)

    def section(self, name):
        return self._config.section(name)


def declared(pipeline: Pipeline, name: str) -> set[str]:
    """Settings in the identity of ``name`` and of every stage upstream of it."""
    keys = set()
    for stage in pipeline.order([name]):
        for key, value in pipeline.identity(stage)["config"].items():
            keys |= {f"{key}.{k}" for k in value} if isinstance(value, dict) else {key}
    return keys


def test_every_setting_a_stage_reads_is_in_its_identity(tmp_path):
    cfg = load_config(None, overrides=[
        f'run.artifact_root="{tmp_path}"', "run.jobs=1", "run.progress=false", "demo.recordings_per_partition=1",
        "demo.duration_s=20.0", "audio.windows_s=[4.0]", "video.windows_s=[4.0]", "train.c_grid=[0.01]",
        "train.delay_max_s=0.4", "evaluate.bootstrap_resamples=100", "video.finetune_epochs=1",
        "mrpn.max_epochs=2", "mrpn.patience=2", "mrpn.folds=[1]", 'mrpn.variants=["N1"]',
        "mrpn.time_augmentation=[false]"])
    pipeline = Pipeline(cfg)
    reads = Reads()
    for name in STAGES:
        stage = pipeline.stages[name]

        def run(p, artifact, _run=stage.run, _name=name):
            reads.stack.append(_name)
            try:
                return _run(p, artifact)
            finally:
                reads.stack.pop()
        pipeline.stages[name] = dataclasses.replace(stage, run=run)
    for name in public_stages():
        pipeline.identity(name)  # identities first, from the plain config
    pipeline.config = TrackedConfig(cfg, reads)
    for name in public_stages():
        pipeline.ensure(name)
    assert set(reads.by_stage) == set(STAGES), "every stage ran"
    for name, keys in reads.by_stage.items():
        missing = {k for k in keys if not k.startswith("run.")} - declared(pipeline, name)
        assert not missing, f"stage {name} reads {sorted(missing)} but they are not in its identity"


# --------------------------------------------------------------------------- general estimators

@parametrize_with_checks([L2LinearSVR(), Normaliser("train")])
def test_general_estimators_follow_scikit_learn(estimator, check):
    """The estimators meant to be general pass scikit-learn's own checks (the delay, post-processing
    and late-fusion steps take recording groups and are tested in test_models.py)."""
    check(estimator)
