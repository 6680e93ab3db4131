"""The code that computes an artifact is part of its identity: an edit rebuilds what it reaches, nothing else."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import recola_pipeline
from recola_pipeline.code_identity import closure, code_hash, import_graph, source_digest
from conftest import SMALL_DEMO

PACKAGE = Path(recola_pipeline.__file__).parent
ARGS = ["--jobs", "1", "--quiet", *SMALL_DEMO, "--set", "demo.video=false"]


def cli(source: Path, store: Path, *args: str) -> subprocess.CompletedProcess:
    """The command line of the package copy under ``source`` (it comes first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run([sys.executable, "-m", "recola_pipeline.console", "--artifact-root", str(store), *args, *ARGS],
                          cwd=source, env=env, capture_output=True, text=True, timeout=600)


def plan(source: Path, store: Path, stage: str, reasons: dict | None = None) -> dict[str, str]:
    """``stage -> reuse/build`` of ``--dry-run``; ``reasons`` (when given) gets each build line's reason."""
    done = cli(source, store, "--stage", stage, "--dry-run")
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        if reasons is not None and "(" in line:
            reasons[line.split()[1]] = line[line.index("(") + 1:line.rindex(")")]
    return {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}


def test_editing_a_feature_sets_function_body_rebuilds_the_audio_stage_and_only_what_follows(tmp_path):
    source, store = tmp_path / "src", tmp_path / "store"
    shutil.copytree(PACKAGE, source / "recola_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    located = subprocess.run([sys.executable, "-c", "import recola_pipeline; print(recola_pipeline.__file__)"],
                             cwd=source, env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True, text=True)
    assert located.stdout.strip() == str(source / "recola_pipeline" / "__init__.py")  # the copy runs, not the package
    built = cli(source, store, "--stage", "audio")
    assert built.returncode == 0, built.stderr
    reasons = {}
    assert plan(source, store, "train", reasons) == {"demo": "reuse", "data": "reuse", "audio": "reuse",
                                                     "train": "build"}
    assert reasons == {"train": "not built yet"}

    module = source / "recola_pipeline" / "extractors" / "opensmile_windows.py"
    text = module.read_text()
    module.write_text(text.replace('"""openSMILE\'s ``dBp``', '"""The ``dBp``', 1))  # a docstring: no code change
    assert module.read_text() != text
    assert plan(source, store, "audio") == {"demo": "reuse", "data": "reuse", "audio": "reuse"}

    body = "return {component.name: 10 * np.log10(np.maximum(np.nan_to_num(mean[:, 0]), DBP_FLOOR))}"
    assert body in text
    module.write_text(text.replace(body, body.replace("DBP_FLOOR", "DBP_FLOOR * 2")))  # one function body
    assert plan(source, store, "audio", reasons) == {"demo": "reuse", "data": "reuse", "audio": "build"}
    assert reasons["audio"].startswith("code changed since ")  # the dry run says why

    changed = cli(source, store, "--stage", "audio", "--dry-run", "--set", "audio.sample_rate=8000")
    assert "(settings audio.sample_rate; code changed since " in changed.stdout


def test_the_code_hash_follows_imports_and_ignores_docstrings_and_comments(tmp_path):
    graph = import_graph()
    reached = closure(["recola_pipeline.stages.audio"], graph)
    assert "recola_pipeline.extractors.audio_features" in reached  # imported by the stage module
    assert "recola_pipeline.extractors.opensmile_windows" not in reached  # picked by the setting: added by the stage
    assert "recola_pipeline.stages.train" not in reached
    assert code_hash(["recola_pipeline.stages.audio"]) != code_hash(["recola_pipeline.stages.audio",
                                                                      "recola_pipeline.extractors.opensmile_windows"])
    one, two, three = tmp_path / "one.py", tmp_path / "two.py", tmp_path / "three.py"
    one.write_text('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    two.write_text('"""Other words."""\n\n\ndef f(x):  # a comment\n    return x + 1\n')
    three.write_text('def f(x):\n    return x + 2\n')
    assert source_digest(one) == source_digest(two) != source_digest(three)
