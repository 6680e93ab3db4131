"""The shape of the code: stages do not import each other, valid names come from the registries,
and every setting a stage reads is part of its artifact's identity."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from recola_pipeline import cli
from recola_pipeline.code_identity import cycles, import_graph
from recola_pipeline.config import ConfigError, load_config
from recola_pipeline.corpora import CORPORA
from recola_pipeline.estimators import DelayedRegressor, L2LinearSVR, LateFusion, Normaliser, PostProcessor
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
        derived = getattr(type(self._section), key, None)
        if isinstance(derived, property):  # e.g. ``windows`` from ``windows_s``: the settings it reads count
            return derived.fget(self)
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

ORDER_MATTERS = "rows are consecutive 40 ms frames of a recording: the delay shifts predictions along them"
#: checks that cannot apply to a step, with the reason (scikit-learn's ``expected_failed_checks``)
NOT_APPLICABLE = {
    "Normaliser(mode='recording')": {
        "check_methods_subset_invariance": "each recording is standardised with the statistics of its own rows, "
                                           "so a subset of rows gets the subset's statistics"},
    "DelayedRegressor(delay_s=0.4)": {
        "check_methods_subset_invariance": ORDER_MATTERS,
        "check_methods_sample_order_invariance": ORDER_MATTERS,
        "check_regressors_train": ORDER_MATTERS + " (on independent samples a delay of 10 rows learns nothing)"},
}


def not_applicable(estimator) -> dict:
    return NOT_APPLICABLE.get(repr(estimator), {})


@parametrize_with_checks([L2LinearSVR(), Normaliser("train"), Normaliser("recording"), DelayedRegressor(),
                          DelayedRegressor(delay_s=0.4), LateFusion()], expected_failed_checks=not_applicable)
def test_general_estimators_follow_scikit_learn(estimator, check):
    """Every general fitted step passes scikit-learn's own checks; ``groups`` is optional (one recording
    without it). :class:`PostProcessor` is not general: it post-processes one column, the regressor's
    predictions, so the checks' multi-column data cannot apply (its conventions are tested below)."""
    check(estimator)


def test_the_post_processor_follows_the_conventions_that_apply_to_one_column():
    post = PostProcessor(median_s=0.2, centring=True, scaling=True)
    assert clone(post).get_params() == post.get_params()
    with pytest.raises(NotFittedError):
        post.predict(np.zeros((3, 1)))
    rng = np.random.default_rng(0)
    pred, gold = rng.normal(size=(50, 1)), rng.normal(size=50)
    assert post.fit(pred, gold) is post and post.n_features_in_ == 1
    assert post.get_params() == clone(post).get_params()  # fit changed no parameter
    np.testing.assert_array_equal(post.predict(pred), post.predict(pred.ravel()))  # a column or a 1-D array
    with pytest.raises(ValueError, match="one column of predictions, got 2 columns"):
        PostProcessor().fit(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="requires y to be passed"):
        PostProcessor().fit(pred, None)


def test_a_system_is_one_pipeline_with_groups_routed_to_its_steps():
    from recola_pipeline.estimators.bundle import predict_system, raw_predictions, system_pipeline, with_postprocessing
    rng = np.random.default_rng(1)
    X, groups = rng.normal(size=(200, 3)), np.repeat(["a", "b"], 100)
    y = X @ [1.0, -0.5, 0.2] + 0.1 * rng.normal(size=200)
    normaliser = Normaliser("recording").fit(X)
    regressor = DelayedRegressor(L2LinearSVR(C=0.1), delay_s=0.2).fit(normaliser.transform(X, groups), y, groups)
    model = system_pipeline(normaliser, None, regressor)
    raw = regressor.predict(normaliser.transform(X, groups), groups)
    np.testing.assert_array_equal(predict_system(model, X, groups), raw)
    post = PostProcessor(median_s=0.2, scaling=True).fit(raw, y, groups)
    whole = with_postprocessing(model, post)
    assert [name for name, _ in whole.steps] == ["normalise", "kernel", "regress", "postprocess"]
    np.testing.assert_array_equal(predict_system(whole, X, groups), post.predict(raw, groups))
    np.testing.assert_array_equal(raw_predictions(whole, X, groups), raw)
    assert not np.array_equal(predict_system(whole, X, None), predict_system(whole, X, groups))  # groups reach it


def test_importing_the_package_config_and_command_line_loads_no_heavy_library():
    """``--help``, config validation and ``import recola_pipeline`` read registry names only."""
    import subprocess
    import sys
    heavy = ("torch", "torchvision", "cv2", "opensmile", "librosa", "timm")
    probe = ("import sys, recola_pipeline, recola_pipeline.config, recola_pipeline.cli, recola_pipeline.pipeline; "
             "recola_pipeline.cli.build_parser().format_help(); recola_pipeline.config.load_config(None); "
             f"print([m for m in {heavy!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


SKOPS_PROBE = """
import hashlib, os, sys, tempfile
{first}
from sklearn.linear_model import Ridge
from recola_pipeline import safe_io
path = os.path.join(tempfile.mkdtemp(), "model.skops")
safe_io.dump(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), path)
assert type(safe_io.load(path)).__name__ == "Ridge"
loaded = "torch" in sys.modules
from skops.io import _trusted_types as trusted
names = sorted(trusted.SKLEARN_ESTIMATOR_TYPE_NAMES) + sorted(trusted.SKLEARN_INTERNAL_TYPE_NAMES)
import torch
print(loaded, len(names), hashlib.sha256(" ".join(names).encode()).hexdigest(), torch.__name__)
"""


def test_model_files_are_read_and_written_without_loading_torch_with_the_same_allow_list():
    """Importing skops lists scikit-learn's estimators, which loaded torch (2-3 s) for models that never
    use it; ``safe_io`` hides torch for that import only: skops's allow-list is the one it builds with
    torch loaded, and torch imports afterwards as usual."""
    import subprocess
    import sys
    pytest.importorskip("torch")
    outputs = []
    for first in ("", "import torch"):
        done = subprocess.run([sys.executable, "-c", SKOPS_PROBE.format(first=first)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split())
    hidden, loaded = outputs
    assert hidden[0] == "False" and loaded[0] == "True"
    assert int(hidden[1]) > 100 and hidden[1:] == loaded[1:]


def test_the_faces_stage_loads_without_torch_and_running_it_names_the_extra():
    """A reused faces artifact needs the stage's identity only (no torch); building it without torch says
    which extra to install."""
    import subprocess
    import sys
    probe = ("import sys; sys.modules['torch'] = None\n"
             "from recola_pipeline.registry import MissingExtra\n"
             "from recola_pipeline.stages import STAGES\n"
             "stage = STAGES['faces']\n"
             "try:\n    stage.run(None, None)\nexcept MissingExtra as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("stage 'faces' needs the library 'torch', which is not installed: "
                                   "pip install 'recola-pipeline[video]'")


def test_a_registry_names_without_importing_and_says_which_extra_is_missing():
    from recola_pipeline.registry import Entry, MissingExtra, Registry
    registry = Registry("thing", {"ok": "json:dumps", "absent": Entry("no_such_library_here:thing", extra="video")})
    assert list(registry) == ["ok", "absent"] and "absent" in registry
    assert registry["ok"]([1]) == "[1]"
    with pytest.raises(MissingExtra, match="thing 'absent' needs the library 'no_such_library_here', which is not "
                                           "installed: pip install 'recola-pipeline\\[video\\]'"):
        registry["absent"]
    registry["mine"] = object()  # a plug-in registered as an object
    assert registry.module_of("mine") == "builtins" and registry.module_of("ok") == "json"


def test_system_fusion_is_the_late_fusion_of_its_systems_raw_predictions():
    from recola_pipeline.estimators.bundle import predict_system, system_pipeline
    from recola_pipeline.estimators.fusion import SystemFusion
    rng = np.random.default_rng(2)
    groups = np.repeat(["a", "b"], 100)
    Xa, Xv = rng.normal(size=(200, 3)), rng.normal(size=(200, 2))
    y = Xa[:, 0] - Xv[:, 1] + 0.1 * rng.normal(size=200)
    systems = []
    for name, X in (("audio", Xa), ("video", Xv)):
        normaliser = Normaliser().fit(X)
        regressor = DelayedRegressor(L2LinearSVR(C=0.1)).fit(normaliser.transform(X), y, groups)
        systems.append((name, system_pipeline(normaliser, None, regressor), X.shape[1]))
    X = np.hstack([Xa, Xv])
    late = SystemFusion(systems).fit(X, y, groups)
    raw = np.column_stack([predict_system(model, part, groups) for (_, model, _), part in zip(systems, (Xa, Xv))])
    np.testing.assert_array_equal(late.predict(X, groups), LateFusion().fit(raw, y).predict(raw))
    with pytest.raises(ValueError, match="5 feature columns side by side"):
        late.predict(Xa, groups)
