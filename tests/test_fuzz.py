"""Property-based fuzzing of what users hand the pipeline: label files, manifests, configs.

The contract, for every generated input: exit 0 with finite, well-formed results, or exit 2 with
a message naming the input; never a traceback, a hang, a change to an existing artifact, or a
result that differs from the same input written cleanly (the same numbers in a plain
comma-separated UTF-8 file).

CI runs the ``ci`` profile (a bounded number of examples, well under 3 minutes); more with
``pytest tests/test_fuzz.py --hypothesis-profile=thorough`` (profiles in ``conftest.py``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import logging
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recola_pipeline.cli import main
from recola_pipeline.config import Config, load_config
from recola_pipeline.corpora import CorpusError
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data

RATE = 8000
SECONDS = 4.0
RECORDINGS = {"tr": "train", "dv": "devel", "te": "test"}
FUZZED = "dv"  # the recording whose arousal file is generated
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


class Messages(logging.Handler):
    """Collects the log messages of one example."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("recola_pipeline").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("recola_pipeline").removeHandler(self)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three 4 s recordings with clean 25 Hz label files; the fuzzed file and manifest go beside them."""
    folder = tmp_path_factory.mktemp("fuzz_corpus")
    t = np.arange(int(SECONDS * RATE)) / RATE
    for k, rec in enumerate(RECORDINGS):
        sf.write(folder / f"{rec}.wav", 0.1 * np.sin(2 * np.pi * (140 + 20 * k) * t), RATE)
        for dim in ("arousal", "valence"):
            times = np.round(np.arange(0, SECONDS + 1e-9, 0.04), 2)
            pd.DataFrame({"time": times, dim: np.round(np.sin(times + k) / 2, 4)}).to_csv(
                folder / f"{rec}_{dim}.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_store")


def complete_files(store: Path) -> dict:
    """Every file of every complete artifact, with its SHA-256."""
    out = {}
    for manifest in store.rglob("manifest.json"):
        for path in manifest.parent.rglob("*"):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- grammars
@st.composite
def rating_tables(draw) -> pd.DataFrame:
    """A valid label table: seconds at 1-25 Hz, possibly starting late, 1-3 raters in [-1, 1], a few blanks."""
    rate = draw(st.sampled_from([1.0, 2.0, 4.0, 10.0, 25.0]))
    start = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    times = np.round(np.arange(start, SECONDS + 1e-9, 1 / rate), 4)
    raters = draw(st.sampled_from([["arousal"], ["FM1", "FF1"], ["r1", "r2", "r3"]]))
    values = draw(st.lists(st.lists(st.floats(-1, 1, allow_nan=False).map(lambda v: round(v, 4)),
                                    min_size=len(raters), max_size=len(raters)),
                           min_size=len(times), max_size=len(times)))
    table = pd.DataFrame(values, columns=raters)
    blanks = draw(st.lists(st.tuples(st.integers(0, len(times) - 1), st.integers(0, len(raters) - 1)), max_size=3))
    for row, col in blanks:
        if col > 0:  # the first rater stays complete, so the dimension is always rated
            table.iat[row, col] = np.nan
    table.insert(0, "time", times)
    return table


@st.composite
def styles(draw) -> dict:
    """How another tool might write the same table."""
    return {"sep": draw(st.sampled_from([",", ";", "\t"])), "bom": draw(st.booleans()),
            "newline": draw(st.sampled_from(["\n", "\r\n"])), "pad": draw(st.sampled_from(["", " ", "  "])),
            "quote": draw(st.booleans()), "trailing_newline": draw(st.booleans())}


def write_styled(path: Path, table: pd.DataFrame, style: dict) -> None:
    def cell(value):
        text = "" if isinstance(value, float) and math.isnan(value) else (
            f"{value:g}" if isinstance(value, float) else str(value))
        text = f"{style['pad']}{text}{style['pad'] if style['sep'] != ' ' else ''}"
        return f'"{text}"' if style["quote"] else text
    lines = [style["sep"].join(cell(c) for c in table.columns)]
    lines += [style["sep"].join(cell(v) for v in row) for row in table.itertuples(index=False)]
    text = style["newline"].join(lines) + (style["newline"] if style["trailing_newline"] else "")
    path.write_bytes((b"\xef\xbb\xbf" if style["bom"] else b"") + text.encode())


CLEAN = {"sep": ",", "bom": False, "newline": "\n", "pad": "", "quote": False, "trailing_newline": True}

MUTATIONS = ["text", "inf", "1e400", "1e300", "-7e2", "negative time", "repeated time", "milliseconds", "header only",
             "empty", "binary", "no time column", "nan"]


def mutate(table: pd.DataFrame, how: str, row: int) -> pd.DataFrame | bytes:
    table = table.copy().astype(object)
    value_col = table.columns[1]
    if how in ("text", "inf", "1e400", "1e300", "-7e2", "nan"):
        table.at[row, value_col] = {"text": "high"}.get(how, how)
    elif how == "negative time":
        table.at[0, "time"] = -0.5
    elif how == "repeated time" and len(table) > 1:
        table.at[max(row, 1), "time"] = table.at[max(row, 1) - 1, "time"]
    elif how == "milliseconds":
        table["time"] = [int(round(float(t) * 1000)) for t in table["time"]]
    elif how == "header only":
        table = table.iloc[:0]
    elif how == "empty":
        return b""
    elif how == "binary":
        return bytes(range(256)) * 4
    elif how == "no time column":
        table = table.rename(columns={"time": "seconds"})
    return table


# --------------------------------------------------------------------------- running the data stage
def run_data(corpus: Path, store: Path, label: Path, manifest_style: dict) -> tuple[int, list[str], dict | None]:
    """Write a manifest pointing the devel arousal at ``label``; run ``--stage data``; the gold if it ran."""
    rows = []
    for rec, part in RECORDINGS.items():
        arousal = label.name if rec == FUZZED else str(label.parent.parent / f"{rec}_arousal.csv")
        rows.append([rec, part, f"../{rec}.wav", "", arousal, f"../{rec}_valence.csv"])
    manifest = label.parent / f"{label.stem}_manifest.csv"
    write_styled(manifest, pd.DataFrame(rows, columns=["recording", "partition", "audio", "video", "arousal",
                                                       "valence"]).astype(object), manifest_style)
    args = ["--quiet", "--stage", "data", "--corpus", "manifest", "--manifest", str(manifest), "--artifact-root",
            str(store), "--jobs", "1"]
    with Messages() as log:
        code = main(args)
    gold = None
    if code == 0:
        cfg = load_config(None, overrides=["corpus.name=manifest", f"corpus.manifest={json.dumps(str(manifest))}",
                                           f"run.artifact_root={json.dumps(str(store))}"])
        _, gold = load_data(Pipeline(cfg).artifact("data"))
    return code, log.messages, gold


def check_contract(code: int, messages: list[str], gold: dict | None, names: list[str]) -> None:
    assert code in (0, 2), f"exit {code}"
    if code == 2:
        assert any(any(name in m for name in names) for m in messages), messages
    else:
        for table in gold.values():
            values = table.drop(columns="time").to_numpy(dtype=float)
            assert np.isfinite(values[np.isfinite(values)]).all() and (np.abs(np.nan_to_num(values)) <= 10).all()
            assert np.array_equal(table["time"].to_numpy(), np.round(np.arange(len(table)) * 0.04, 2))


@SETTINGS
@given(table=rating_tables(), style=styles(), manifest_style=styles())
def test_a_label_file_written_by_another_tool_gives_the_clean_result(corpus, store, table, style, manifest_style):
    before = complete_files(store)
    with tempfile.TemporaryDirectory(dir=corpus) as folder:
        clean, styled = Path(folder) / "clean.csv", Path(folder) / "styled.csv"
        write_styled(clean, table, CLEAN)
        write_styled(styled, table, style)
        expected = run_data(corpus, store, clean, CLEAN)
        got = run_data(corpus, store, styled, manifest_style)
    check_contract(*got, names=["styled", "manifest"])
    assert got[0] == expected[0] == 0, (got[1], expected[1])
    for rec in RECORDINGS:
        pd.testing.assert_frame_equal(got[2][rec], expected[2][rec])
    after = complete_files(store)
    assert {k: v for k, v in after.items() if k in before} == before


@SETTINGS
@given(table=rating_tables(), how=st.sampled_from(MUTATIONS), row=st.integers(0, 3), style=styles())
def test_a_damaged_label_file_is_refused_by_name_or_read_as_written(corpus, store, table, how, row, style):
    before = complete_files(store)
    damaged = mutate(table, how, min(row, len(table) - 1))
    with tempfile.TemporaryDirectory(dir=corpus) as folder:
        path = Path(folder) / "damaged.csv"
        if isinstance(damaged, bytes):
            path.write_bytes(damaged)
        else:
            write_styled(path, damaged, style)
        code, messages, gold = run_data(corpus, store, path, CLEAN)
    check_contract(code, messages, gold, names=["damaged.csv", "damaged_manifest.csv"])
    if how not in ("nan",):  # every other mutation is an input error
        assert code == 2, (how, messages)
    after = complete_files(store)
    assert {k: v for k, v in after.items() if k in before} == before


# --------------------------------------------------------------------------- configs
SECTIONS = {f: list(getattr(Config(), f).__dataclass_fields__) for f in Config.__dataclass_fields__}

#: floats at the edges of what a double holds, and the sizes that allocated until killed before
EXTREME_FLOATS = st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 1e9, 1e30, 1e-9, 0.04,
                                  0.08 * 2**40])
scalars = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), EXTREME_FLOATS,
                    st.booleans(), st.text(max_size=12),
                    st.sampled_from(["demo", "recola", "manifest", "egemaps", "mean", "linear", "arousal", "valence",
                                     "loky", "pretrained", "random"]))
#: values nested a few levels (tables and arrays inside arrays), as a key may be given by mistake
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["a", "b", "windows_s"]), inner, max_size=2), max_leaves=8)


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


@st.composite
def toml_configs(draw) -> str:
    if draw(st.integers(0, 9)) == 0:  # now and then, a table or array nested up to thousands deep
        depth, opener = draw(st.integers(1, 3000)), draw(st.sampled_from(["[", "{a = "]))
        closer = "]" if opener == "[" else "}"
        return f"[{draw(st.sampled_from(list(SECTIONS)))}]\nwindows_s = {opener * depth}1{closer * depth}\n"
    lines = []
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "corpsu"]), unique=True, max_size=3)):
        lines.append(f"[{section}]")
        keys = SECTIONS.get(section, []) + ["unknown_key"]
        for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=3)):
            lines.append(f"{key} = {toml_value(draw(values))}")
    return "\n".join(lines) + "\n"


def finite_everywhere(cfg) -> bool:
    for section in SECTIONS:
        for value in vars(getattr(cfg, section)).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, float) and not math.isfinite(item):
                    return False
    return True


@SETTINGS
@given(text=toml_configs())
def test_any_config_file_is_used_or_refused_by_name(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "fuzz.toml"
    path.write_text(text)
    with Messages() as log:
        code = main(["--quiet", "--config", str(path), "--artifact-root", str(folder / "store"), "--dry-run"])
    assert code in (0, 2), text
    if code == 2:
        assert any("fuzz.toml" in m or "does not exist" in m or "needs" in m for m in log.messages), \
            (text, log.messages)
    else:
        assert finite_everywhere(load_config(path))
    assert not (folder / "store" / "features").exists() or not list((folder / "store").rglob("manifest.json"))


@SETTINGS
@given(key=st.sampled_from([f"{s}.{k}" for s, keys in SECTIONS.items() for k in keys] + ["corpus", "x.y.z"]),
       raw=st.text(max_size=20))
def test_any_set_override_is_used_or_refused_by_name(tmp_path_factory, key, raw):
    folder = tmp_path_factory.mktemp("set")
    with Messages() as log:
        code = main(["--quiet", "--set", f"{key}={raw}", "--artifact-root", str(folder / "store"), "--dry-run"])
    assert code in (0, 2), (key, raw)
    if code == 2:
        assert log.messages and any(key.split(".")[0] in m or "--set" in m or "does not exist" in m
                                    for m in log.messages), (key, raw, log.messages)


# ---------------------------------------------------------------- bundle manifests
#: path strings a bundle's checksums.json or model.json may name: its own files, and ways out of it
BUNDLE_PATHS = st.one_of(
    st.sampled_from(["model.json", "MODEL.md", "systems/audio_arousal.skops", "video/pca.skops", "../x", "/etc/hostname",
                     "systems/../../x", "systems//audio_arousal.skops", "./model.json", "", "systems", "a\\b",
                     "nonexistent.skops", "systems/audio_arousal.skops/..", "\u00e9.json"]),
    st.text(max_size=20))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | BUNDLE_PATHS,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(BUNDLE_PATHS, inner,
                                                                                      max_size=3), max_leaves=10)


@st.composite
def bundle_edits(draw):
    """A change an attacker or a broken copy could make: checksums.json entries added or replaced,
    or a model.json entry replaced (systems' files, the video entry, the array inventory)."""
    kind = draw(st.sampled_from(["checksum", "model-file", "model-value", "arrays"]))
    return kind, draw(BUNDLE_PATHS), draw(json_values)


@SETTINGS
@given(edit=bundle_edits())
def test_any_bundle_manifest_loads_or_is_refused_by_name_and_reads_nothing_outside(exported, tmp_path_factory, edit):
    from recola_pipeline import load_model
    from recola_pipeline.cache import ArtifactError, file_sha256
    kind, path, value = edit
    root = tmp_path_factory.mktemp("bundle")
    bundle = root / "bundle"
    shutil.copytree(exported[0], bundle)
    (root / "x").write_text("outside")
    checksums = json.loads((bundle / "checksums.json").read_text())
    description = json.loads((bundle / "model.json").read_text())
    if kind == "checksum":
        checksums[path] = value if isinstance(value, str) else file_sha256(root / "x")
    elif kind == "model-file":
        description["systems"]["audio_arousal"]["model"] = path
    elif kind == "model-value":
        description["systems"]["audio_arousal"] = value
    else:
        description["arrays"]["systems/audio_arousal.skops"] = value
    (bundle / "model.json").write_text(json.dumps(description))
    if kind != "checksum":
        checksums["model.json"] = file_sha256(bundle / "model.json")  # the forger updates the checksum too
    (bundle / "checksums.json").write_text(json.dumps(checksums))
    with opens_recorded() as opened:
        try:
            load_model(bundle).predict(audio=exported[1], system="audio")
        except (ArtifactError, CorpusError) as exc:
            assert str(bundle) in str(exc) or "model.json" in str(exc), exc
    assert str(root / "x") not in opened and "/etc/hostname" not in opened, opened


_OPENED: list | None = None


def _record_opens(event, args):
    if event == "open" and _OPENED is not None and isinstance(args[0], str):
        _OPENED.append(os.path.abspath(args[0]))


sys.addaudithook(_record_opens)  # audit hooks stay for the process; this one records only inside opens_recorded


@contextlib.contextmanager
def opens_recorded():
    """Every file path opened (by any means: builtins, io, os) inside the block."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None
