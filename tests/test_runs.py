"""Named runs as a user meets them: the run folder, ``runs``, ``compare``, ``export --run``, the
report read by a parser and in headless Chromium, the console's warnings."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_3

from recola_pipeline import logs
from recola_pipeline.cli import SUBCOMMANDS, main
from recola_pipeline.html_report import SECTIONS

RUN = ["--stage", "report", "--jobs", "1", "--quiet", *DEMO_3]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, demo_3_store):
    """``demo`` and ``other`` (one setting changed) in one artifact root: a copy of the session's store, so
    ``demo`` reuses every stage and ``other`` builds from train on."""
    root = tmp_path_factory.mktemp("runs") / "store"
    shutil.copytree(demo_3_store, root, symlinks=True)
    assert main([*RUN, "--name", "demo", "--artifact-root", str(root)]) == 0
    assert main([*RUN, "--name", "other", "--artifact-root", str(root), "--set", "train.c_grid=[0.001]"]) == 0
    return root


def test_a_named_run_records_what_it_did(two_runs):
    folder = two_runs / "runs" / "demo"
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "complete" and record["name"] == "demo" and record["wall_s"] > 0
    assert record["command"][:3] == ["recola-pipeline", "--stage", "report"]
    assert record["config"]["train"]["c_grid"] == [0.001, 0.01] and record["python"] and record["cpu_count"]
    assert "scikit-learn" in record["packages"] and "git_commit" in record and "git_dirty" in record
    stages = {s["stage"]: s for s in record["stages"]}
    assert {"data", "audio", "faces", "video", "train", "evaluate", "report"} <= set(stages)
    assert all(s["action"] in ("built", "reused") and s["wall_s"] >= 0 and Path(s["artifact"]).is_dir()
               for s in stages.values())
    other = {s["stage"]: s["action"] for s in json.loads((two_runs / "runs" / "other" / "run.json").read_text())
             ["stages"]}
    assert other["audio"] == "reused" and other["train"] == "built"  # only what the change reaches is rebuilt
    evaluate = Path(stages["evaluate"]["artifact"])
    assert (folder / "results.csv").read_bytes() == (evaluate / "results.csv").read_bytes()
    lines = (folder / "run.log").read_text().splitlines()
    assert lines and all(line[:4].isdigit() and line[10] == " " for line in lines)  # 2026-12-06 20:45:23 ...
    assert (two_runs / "runs" / "latest").resolve() == (two_runs / "runs" / "other").resolve()


def test_runs_lists_every_run_with_its_scores(two_runs, capsys):
    assert main(["runs", "--artifact-root", str(two_runs)]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert "arousal devel" in header and "valence test" in header and "duration" in header
    assert [row.split()[0] for row in rows] == ["demo", "other"]
    results = pd.read_csv(two_runs / "runs" / "demo" / "results.csv")
    best = results[results.partition == "devel"].groupby("dimension").ccc.max()
    assert f"{best['arousal']:.3f}" in rows[0] and f"{best['valence']:.3f}" in rows[0]


def test_compare_prints_both_runs_and_a_paired_test_on_their_shared_recordings(two_runs, capsys, tmp_path):
    out_html = tmp_path / "compare.html"
    assert main(["compare", "demo", "other", "--artifact-root", str(two_runs), "--out", str(out_html)]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "other"):
        results = pd.read_csv(two_runs / "runs" / name / "results.csv")
        row = results[(results.partition == "test") & (results.dimension == "arousal") & (results.modality == "audio")
                      & (results.fusion == "none")].iloc[0]
        assert f"{row.ccc:.3f} [{row.ccc_ci_low:.3f}, {row.ccc_ci_high:.3f}]" in out
    assert "Paired bootstrap" in out and "demo - other" in out
    page = out_html.read_text()
    assert "compare-table" in page and "paired-table" in page


def test_compare_says_when_runs_share_no_recordings(two_runs, capsys, tmp_path):
    assert main([*RUN, "--name", "seed7", "--artifact-root", str(two_runs), "--set", "demo.seed=7",
                 "--set", "demo.video=false"]) == 0  # other recordings; audio alone is enough to show it
    capsys.readouterr()
    assert main(["compare", "demo", "seed7", "--artifact-root", str(two_runs), "--out", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "share no recording" in out and "Paired bootstrap" not in out


def test_compare_or_export_of_an_unknown_run_exits_2_naming_the_runs(two_runs, caplog, tmp_path):
    assert main(["compare", "demo", "nope", "--artifact-root", str(two_runs), "--out", str(tmp_path / "c.html")]) == 2
    assert "no run 'nope'" in caplog.text and "demo" in caplog.text


def test_a_failed_run_is_marked_and_never_latest(two_runs, monkeypatch):
    import recola_pipeline.html_report as html_report

    def broken(*args, **kwargs):
        raise RuntimeError("report writer broke")

    monkeypatch.setattr(html_report, "build_report", broken)  # the command line imports it when a run starts
    latest = (two_runs / "runs" / "latest").resolve()
    with pytest.raises(RuntimeError):
        main([*RUN, "--name", "broken", "--artifact-root", str(two_runs)])
    record = json.loads((two_runs / "runs" / "broken" / "run.json").read_text())
    assert record["status"] == "failed" and "report writer broke" in record["error"]
    assert (two_runs / "runs" / "latest").resolve() == latest


def test_export_of_a_named_run_and_never_training_silently(two_runs, tmp_path, caplog):
    empty = tmp_path / "empty"
    assert main(["export", "--out", str(tmp_path / "bundle"), "--artifact-root", str(empty), "--quiet"]) == 2
    assert "no trained model" in caplog.text and "--stage evaluate" in caplog.text
    assert not empty.exists() and not (tmp_path / "bundle").exists()
    assert main(["export", "--run", "demo", "--out", str(tmp_path / "bundle"), "--artifact-root", str(two_runs),
                 "--quiet"]) == 0
    description = json.loads((tmp_path / "bundle" / "model.json").read_text())
    train = next(s for s in json.loads((two_runs / "runs" / "demo" / "run.json").read_text())["stages"]
                 if s["stage"] == "train")
    assert description["artifacts"]["train"] == Path(train["artifact"]).name


def test_help_names_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("export", "predict", "runs", "compare"):
        assert f"  {name} " in out and SUBCOMMANDS[name] in out


def test_the_same_warning_is_printed_once_and_counted(capsys):
    once = logs.console(logging.INFO)
    log = logging.getLogger("recola_pipeline.stages.data")
    for _ in range(3):
        log.warning("recording X has a lead-in")
    log.warning("another warning")
    err = capsys.readouterr().err.splitlines()
    assert sum("recording X has a lead-in" in line for line in err) == 1 and len(err) == 2
    assert once.counts == {"recording X has a lead-in": 3, "another warning": 1}


# ---------------------------------------------------------------- the report
class ReportParser(HTMLParser):
    """Sections, figures and the numbers of the results tables, as a browser's DOM holds them."""

    def __init__(self):
        super().__init__()
        self.sections, self.figures, self.svgs, self.rows, self.requests = [], [], 0, [], []
        self._row = None
        self._table = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "action", "data"):
            value = attrs.get(key) or ""
            if value and not value.startswith("#"):
                self.requests.append(value)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        elif tag == "figure":
            self.figures.append(attrs.get("data-figure"))
        elif tag == "svg":
            self.svgs += 1
        elif tag == "table":
            self._table.append(attrs.get("id"))
        elif tag == "tr" and self._table and self._table[-1] in ("results-table", "headline-table"):
            self._row = {"table": self._table[-1], **{k: v for k, v in attrs.items() if k.startswith("data-")},
                         "values": []}
        elif tag == "td" and self._row is not None and "data-value" in attrs:
            self._row["values"].append(float(attrs["data-value"]))
        elif tag in ("script", "link", "iframe", "img"):
            self.requests.append(f"<{tag}>")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._table:
            self._table.pop()


def check_report(html: str, results: pd.DataFrame, recordings: list[str]) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    assert parser.sections == list(SECTIONS)
    assert not parser.requests, parser.requests
    for figure in ("per-recording", "delay", *(f"trace-{r}" for r in recordings)):
        assert figure in parser.figures, figure
    assert any(f.startswith("grid-") for f in parser.figures) and parser.svgs == len(parser.figures)
    shown = [r for r in parser.rows if r["table"] == "results-table" and "data-partition" in r]
    expected = results[results.partition.isin(["devel", "test"])]
    assert len(shown) == len(expected)
    for row, r in zip(shown, expected.itertuples()):
        assert (row["data-dimension"], row["data-modality"], row["data-fusion"], row["data-estimator"],
                row["data-partition"]) == (r.dimension, r.modality, r.fusion, r.estimator, r.partition)
        np.testing.assert_array_equal(row["values"], [r.ccc, r.ccc_ci_low, r.ccc_ci_high, r.ccc_raw, r.ccc_raw_seed_sd])
    headline = [r for r in parser.rows if r["table"] == "headline-table" and "data-dimension" in r]
    devel = results[(results.partition == "devel") & ~results.get("causal", pd.Series(False, results.index)).astype(bool)]
    for row in headline:
        best = devel[devel.dimension == row["data-dimension"]].ccc.max()
        assert row["values"][0] == best
    assert len(headline) == 2
    return parser


def test_the_report_holds_every_section_figure_and_the_numbers_of_results_csv(two_runs):
    folder = two_runs / "runs" / "demo"
    recordings = pd.read_csv(next((two_runs / "features" / "data").glob("*/recordings.csv")), dtype={"recording": str})
    shown = recordings[recordings.partition.isin(["devel", "test"])].recording.tolist()
    check_report((folder / "report.html").read_text(), pd.read_csv(folder / "results.csv"), shown)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium (Debian package chromium)")


def load_in_chromium(browser: str, page: Path, work: Path) -> tuple[str, list[str], list[str]]:
    """Open ``page`` in headless Chromium with the network blocked (a dead proxy): the DOM after
    load, the requests the page made (from Chromium's net log: those of the page's own network
    partition, ``file://``, not the browser's update checks), and its console lines."""
    work.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--proxy-server=127.0.0.1:9", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={work / 'profile'}", f"--log-net-log={work / 'net.json'}", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (work / "net.json").read_text().rstrip()
    log = json.loads(text if text.endswith("}") else text.rstrip(",") + "]}")  # a log cut at exit lacks its end
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [e["params"]["url"] for e in log["events"] if e["type"] == start_job
                and "file://" in e["params"].get("network_isolation_key", "")
                and not e["params"]["url"].startswith("file:")]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done.stdout, requests, console


def test_the_report_in_headless_chromium_offline(two_runs, tmp_path):
    """Loaded in a real browser with the network blocked: no request leaves the file, no console
    message, the DOM after load holds every section, figure and number; a screenshot is kept.
    The same probe first catches a page that does request and log (so the check can fail)."""
    browser = chromium()
    probe = tmp_path / "probe.html"
    probe.write_text('<html><body><img src="http://example.com/x.png"><script>console.error("boom")</script>'
                     "</body></html>")
    _, requests, console = load_in_chromium(browser, probe, tmp_path / "probe")
    assert requests == ["http://example.com/x.png"] and any("boom" in line for line in console)
    folder = two_runs / "runs" / "demo"
    dom, requests, console = load_in_chromium(browser, folder / "report.html", tmp_path / "report")
    assert requests == [] and console == []
    recordings = pd.read_csv(next((two_runs / "features" / "data").glob("*/recordings.csv")), dtype={"recording": str})
    shown = recordings[recordings.partition.isin(["devel", "test"])].recording.tolist()
    check_report(dom, pd.read_csv(folder / "results.csv"), shown)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'shot'}",
                    f"--screenshot={shot}", "--window-size=1300,3000", (folder / "report.html").resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000


def test_a_read_only_store_is_still_reused_and_the_run_goes_unrecorded(two_runs, monkeypatch, caplog, capsys):
    """A complete store on read-only media: every stage reused, a warning that the run is not recorded."""
    from recola_pipeline import runs

    def read_only(self, *args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(runs.Path, "mkdir", read_only)
    before = sorted(p.name for p in (two_runs / "runs").iterdir())
    assert main([*RUN, "--name", "ro", "--artifact-root", str(two_runs)]) == 0
    assert "this run is not recorded" in caplog.text and "Read-only file system" in caplog.text
    assert sorted(p.name for p in (two_runs / "runs").iterdir()) == before
