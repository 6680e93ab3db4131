"""The README and the documentation site: short enough to read, honest about paths, and built
with ``mkdocs build --strict`` (every link resolves, the configuration reference is generated)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recola_pipeline.config import Config
from recola_pipeline.config_reference import MARKER, reference_markdown

ROOT = Path(__file__).resolve().parents[1]
#: pages for contributors, which may name the test data beside the repository
CONTRIBUTOR_PAGES = {"contributing.md", "ARCHITECTURE.md"}


def test_readme_is_short_and_holds_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 15_000
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"## Install and run the tests\n\n```bash\n(.+?)\n```", text, re.S).group(1)
    assert test_command in ci
    assert "run_pipeline.py --stage all" in re.search(r"## Install and run the demo.+?```bash\n(.+?)\n```", text,
                                                     re.S).group(1)


def test_user_docs_never_cite_the_shared_test_data():
    pages = [ROOT / "README.md", *(p for p in (ROOT / "docs").glob("*.md") if p.name not in CONTRIBUTOR_PAGES)]
    for page in pages:
        assert "../shared" not in page.read_text(), page


def test_every_config_key_is_in_the_generated_reference_and_no_stale_key_is_documented():
    table = reference_markdown()
    keys = {f"{section}.{key}" for section in Config.__dataclass_fields__
            for key in getattr(Config(), section).__dataclass_fields__}
    assert {k for k in keys if f"`{k}`" in table} == keys
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert MARKER in page
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)`", page, re.M))
    assert documented <= keys, documented - keys


def test_the_site_builds_strictly(tmp_path):
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                           "PATH": str(Path(sys.executable).parent)})
    assert done.returncode == 0, done.stderr[-3000:]
    configuration = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "corpus.allow_shared_labels" in configuration and "evaluate.median_windows_s" in configuration
