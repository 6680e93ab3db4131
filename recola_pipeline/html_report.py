"""``report.html``: one self-contained page per run that says what was chosen on which data.

Everything is inline: the plots are SVG written by matplotlib, the style is one ``<style>``
block, and there is no script and no link, so the page makes no request and opens offline.
Every number shown is taken from the run's artifacts (``results.csv``, the train stage's grid,
the evaluate stage's predictions and comparisons, the data stage's recordings); the cells of the
results tables carry the full-precision value in ``data-value`` (tests compare them with
``results.csv``). Sections, in order: headline, results, data, per-recording CCC, delay curves,
grid heatmaps, traces, comparisons, warnings, provenance, reproduce.
"""
from __future__ import annotations

import html
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .cache import read_table  # noqa: E402
from .metrics import ccc  # noqa: E402
from .modalities import estimator_of, is_causal, row_system  # noqa: E402

SECTIONS = ("headline", "results", "data", "per-recording", "delay", "grid", "traces", "comparisons", "warnings",
            "provenance", "reproduce")
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.t{text-align:left}h2{border-bottom:2px solid #ddd;margin-top:2em}
figure{margin:1em 0}figcaption{font-size:.9em;color:#555}.best{font-weight:bold}code{background:#f5f5f5}"""


def _esc(value) -> str:
    return html.escape(str(value))


def _svg(figure) -> str:
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(figure, caption: str, name: str) -> str:
    return f'<figure data-figure="{_esc(name)}">{_svg(figure)}<figcaption>{caption}</figcaption></figure>'


def _number(value, digits: int = 3) -> str:
    """A table cell holding a number: shown rounded, its full value in ``data-value``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return '<td data-value="nan">n/a</td>'
    return f'<td data-value="{float(value)!r}">{float(value):.{digits}f}</td>'


def system_label(row) -> str:
    """A results row's system as a reader names it: ``audio``, ``early fusion``, ``gru audio``,
    ``gru early fusion``, ``late fusion`` (of SVRs), ``late fusion (svr+gru)``, ``causal audio``. Rows of
    runs from before the ``estimator`` column are SVR rows."""
    estimator = estimator_of(row)
    base = row.modality if row.fusion == "none" else f"{row.fusion} fusion"
    if is_causal(row):
        return f"causal {base}"
    if row.fusion == "late":
        return base if estimator == "svr" else f"{base} ({estimator})"
    return base if estimator == "svr" else f"{estimator} {base}"


def verdict(row) -> str:
    """A plain answer for a paired bootstrap difference."""
    if pd.isna(row.ci_low):
        return "cannot tell (fewer than 2 recordings)"
    if row.ci_low > 0:
        return "better"
    if row.ci_high < 0:
        return "worse"
    return "no detectable difference (the interval holds 0)"


def best_per_dimension(results: pd.DataFrame):
    """Per dimension (in table order): ``(dimension, best, test)``, the results row of the centred system
    with the highest devel CCC (the causal systems of ``train.causal`` are compared apart) and its test row
    (None when the test partition has no labels)."""
    devel = results[(results.partition == "devel") & ~_causal_rows(results)]
    for dim, group in devel.groupby("dimension", sort=False):
        best = group.loc[group.ccc.idxmax()]
        test = results[(results.partition == "test") & (results.dimension == dim)]
        test = test[[row_system(r) == row_system(best) for r in test.itertuples()]]
        yield dim, best, test.iloc[0] if len(test) else None


def _causal_rows(results: pd.DataFrame) -> np.ndarray:
    return np.array([is_causal(r) for r in results.itertuples()], dtype=bool)


def _headline(results: pd.DataFrame) -> str:
    rows, words = [], []
    for dim, best, test_row in best_per_dimension(results):
        cells = [_number(best.ccc), _number(best.ccc_ci_low), _number(best.ccc_ci_high)]
        cells += [_number(None)] * 3 if test_row is None else [_number(test_row.ccc), _number(test_row.ccc_ci_low),
                                                              _number(test_row.ccc_ci_high)]
        label = system_label(best)
        rows.append(f'<tr data-dimension="{_esc(dim)}"><td class="t">{_esc(dim)}</td><td class="t">{_esc(label)}</td>'
                    + "".join(cells) + "</tr>")
        settings = ("each fused system with its own window, normalisation, D and C" if pd.isna(best.D) else
                    f"window {_esc(best.windows)} s, normalisation {_esc(best.normalisation)}, delay D = {best.D:g} s, "
                    + (f"C = {best.C:g}" if estimator_of(best) == "svr" else _esc(best.settings)))
        words.append(f"<li><b>{_esc(dim)}</b>: {_esc(label)}, {settings}, post-processing "
                     f"{_esc(best.postprocessing)}. Chosen on {_esc(best.chosen_on)}; devel scored on "
                     f"{_esc(best.scored_on)}.</li>")
    causal = (" The causal systems (no future input, for live use) are in the results table, and what causality "
              "costs is in the comparisons." if _causal_rows(results).any() else "")
    return ("<p>The best system per dimension is the one with the highest devel CCC; its test CCC uses the choices "
            "made on devel. CCC is pooled over a partition's recordings, with a 95 % bootstrap interval over "
            f"recordings.{causal}</p><table id='headline-table'><tr><th>dimension</th><th>best system</th><th>devel CCC</th>"
            "<th>low</th><th>high</th><th>test CCC</th><th>low</th><th>high</th></tr>" + "".join(rows)
            + "</table><ul>" + "".join(words) + "</ul>")


def _results_table(results: pd.DataFrame) -> str:
    rows = []
    for r in results[results.partition.isin(["devel", "test"])].itertuples():
        rows.append(f'<tr data-dimension="{_esc(r.dimension)}" data-modality="{_esc(r.modality)}" '
                    f'data-fusion="{_esc(r.fusion)}" data-estimator="{_esc(estimator_of(r))}" '
                    f'data-causal="{str(is_causal(r)).lower()}" data-partition="{_esc(r.partition)}">'
                    f'<td class="t">{_esc(r.dimension)}</td><td class="t">{_esc(system_label(r))}'
                    f'</td><td class="t">{_esc(estimator_of(r))}</td><td class="t">{_esc(r.partition)}</td>'
                    f'{_number(r.ccc)}{_number(r.ccc_ci_low)}{_number(r.ccc_ci_high)}{_number(r.ccc_raw)}'
                    f'{_number(getattr(r, "ccc_raw_seed_sd", None))}<td>{int(r.n_recordings)}</td></tr>')
    return ("<table id='results-table'><tr><th>dimension</th><th>system</th><th>estimator</th><th>partition</th>"
            "<th>CCC</th><th>low</th><th>high</th><th>raw CCC (before post-processing)</th>"
            "<th>raw CCC spread over seeds (sd; recurrent)</th><th>recordings</th></tr>" + "".join(rows)
            + "</table>")


def _data(recordings: pd.DataFrame, info: dict, dims) -> str:
    rows = []
    for part, group in recordings.groupby("partition", sort=False):
        labelled = group.labelled_frames.sum() / max(group.n_frames.sum(), 1)
        agreement = "; ".join(f"{d} {group[f'agreement_{d}'].mean():.3f}" for d in dims if f"agreement_{d}" in group)
        rows.append(f'<tr><td class="t">{_esc(part)}</td><td>{len(group)}</td>'
                    f'<td>{group.n_frames.sum() * 0.04 / 60:.1f}</td><td>{labelled:.1%}</td>'
                    f'<td class="t">{_esc(agreement)}</td></tr>')
    return (f"<p>Corpus <b>{_esc(info.get('corpus'))}</b>, gold standard <b>{_esc(info.get('gold_standard'))}</b>; "
            "frames without a rating are predicted but never fitted or scored.</p><table><tr><th>partition</th>"
            "<th>recordings</th><th>minutes</th><th>labelled frames</th><th>rater agreement (mean pairwise CCC)</th>"
            "</tr>" + "".join(rows) + "</table>")


def scored_predictions(evaluate, recordings: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The evaluate stage's predictions of every devel and test recording, by ``(recording, partition)``."""
    return {(rec.recording, rec.partition): read_table(evaluate.file(f"predictions/{rec.recording}.parquet"))
            for rec in recordings[recordings.partition.isin(["devel", "test"])].itertuples()}


def per_recording_ccc(predictions: dict, systems: list[str]) -> pd.DataFrame:
    """CCC of every recording of :func:`scored_predictions` per system key (``audio_arousal``...),
    labelled frames only."""
    rows = []
    for (recording, partition), frame in predictions.items():
        for key in systems:
            dim = key.rsplit("_", 1)[1]
            if key not in frame or f"gold_{dim}" not in frame:
                continue
            mask = frame[f"gold_{dim}"].notna().to_numpy()
            value = ccc(frame[f"gold_{dim}"].to_numpy()[mask], frame[key].to_numpy()[mask]) if mask.sum() > 1 \
                else np.nan
            rows.append({"recording": recording, "partition": partition, "system": key, "ccc": value})
    return pd.DataFrame(rows, columns=["recording", "partition", "system", "ccc"])


def _per_recording(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p>No labelled devel or test recording.</p>"
    wide = table.pivot_table(index=["partition", "recording"], columns="system", values="ccc", sort=False)
    header = "".join(f"<th>{_esc(c)}</th>" for c in wide.columns)
    rows = "".join(f'<tr><td class="t">{_esc(p)}</td><td class="t">{_esc(r)}</td>'
                   + "".join(_number(v) for v in values) + "</tr>" for (p, r), values in zip(wide.index, wide.values))
    figure, ax = plt.subplots(figsize=(max(6, 0.5 * len(wide) + 3), 3.5))
    positions = np.arange(len(wide))
    for k, column in enumerate(wide.columns):
        ax.scatter(positions, wide[column], label=column, s=18, marker="o^sDv<>"[k % 7])
    ax.set_xticks(positions, [f"{r} ({p})" for p, r in wide.index], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("CCC of the recording")
    ax.set_title("Per-recording CCC (devel and test)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(alpha=0.3)
    return (f"<table id='per-recording-table'><tr><th>partition</th><th>recording</th>{header}</tr>{rows}</table>"
            + _figure(figure, "CCC of each recording on its labelled frames: a recording far below the others "
                              "drags the pooled number down.", "per-recording"))


def _delay(grid: pd.DataFrame, selected: pd.DataFrame) -> str:
    figure, ax = plt.subplots(figsize=(8, 4))
    for sel in selected.itertuples():
        if estimator_of(sel) != "svr":  # the recurrent grid has its own figure
            continue
        rows = grid[(grid.system == sel.system) & (grid.dimension == sel.dimension) & (grid.windows == sel.windows)
                    & (grid.normalisation == sel.normalisation)]
        curve = rows.groupby("D")["ccc_devel"].max()
        line, = ax.plot(curve.index, curve.values, marker=".", label=f"{sel.system} {sel.dimension}")
        ax.plot([sel.D], [curve.get(sel.D, np.nan)], marker="o", ms=9, mfc="none", color=line.get_color())
    ax.set_xlabel("annotation delay D (s)")
    ax.set_ylabel("raw devel CCC (before post-processing)")
    ax.set_title("Devel CCC against the annotation delay, at the selected window and normalisation")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(alpha=0.3)
    return _figure(figure, "Raw devel CCC of the regressor (best C per delay), before post-processing and fusion; "
                           "the circle marks the selected D. The headline's devel CCC is after post-processing and "
                           "fusion, chosen on held-out devel recordings, so it can differ.", "delay")


def _grid(grid: pd.DataFrame, selected: pd.DataFrame) -> str:
    parts = []
    for sel in selected.itertuples():
        if estimator_of(sel) != "svr":
            parts.append(_recurrent_grid(grid, sel))
            continue
        rows = grid[(grid.system == sel.system) & (grid.dimension == sel.dimension) & (grid.windows == sel.windows)
                    & (grid.normalisation == sel.normalisation)]
        table = rows.pivot_table(index="C", columns="D", values="ccc_devel")
        figure, ax = plt.subplots(figsize=(max(5, 0.35 * table.shape[1] + 2), max(2.5, 0.3 * table.shape[0] + 1.5)))
        image = ax.imshow(table.to_numpy(), aspect="auto", cmap="viridis", origin="lower")
        ax.set_xticks(range(table.shape[1]), [f"{d:g}" for d in table.columns], fontsize=7, rotation=90)
        ax.set_yticks(range(table.shape[0]), [f"{c:g}" for c in table.index], fontsize=7)
        ax.set_xlabel("delay D (s)")
        ax.set_ylabel("C")
        ax.set_title(f"{sel.system} {sel.dimension}: raw devel CCC, W = {sel.windows}, {sel.normalisation}")
        figure.colorbar(image, ax=ax, label="devel CCC")
        parts.append(_figure(figure, f"Devel CCC over delay and C at the selected window ({_esc(sel.windows)} s) and "
                                     f"normalisation; selected D = {sel.D:g} s, C = {sel.C:g}.",
                             f"grid-{sel.system}-{sel.dimension}"))
    return "".join(parts)


def _traces(predictions: dict, dims, systems: list[str]) -> str:
    parts = []
    for (recording, partition), frame in predictions.items():
        figure, axes = plt.subplots(len(dims), 1, figsize=(10, 2.4 * len(dims)), sharex=True, squeeze=False)
        for ax, dim in zip(axes[:, 0], dims):
            gold = frame.get(f"gold_{dim}")
            if gold is not None:
                ax.plot(frame["time"], gold, color="black", lw=1.3, label="gold standard")
                unlabelled = gold.isna().to_numpy()
                ax.fill_between(frame["time"], 0, 1, where=unlabelled, color="grey", alpha=0.2, step="mid",
                                transform=ax.get_xaxis_transform(), label="unlabelled")
            for key in systems:
                if key.endswith(f"_{dim}") and key in frame:
                    ax.plot(frame["time"], frame[key], lw=0.9, label=key.removesuffix(f"_{dim}"))
            ax.set_ylabel(f"{dim}")
            ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("time (s)")
        figure.suptitle(f"{recording} ({partition}): gold standard and predictions")
        parts.append(_figure(figure, f"{_esc(recording)} ({_esc(partition)}); shaded: frames without a "
                                     "rating (predicted, never scored).", f"trace-{recording}"))
    return "".join(parts)


def _comparisons(comparisons: pd.DataFrame) -> str:
    if comparisons.empty:
        return "<p>No paired comparison (one system per dimension).</p>"
    rows = "".join(f'<tr><td class="t">{_esc(c.dimension)}</td><td class="t">{_esc(c.partition)}</td>'
                   f'<td class="t">{_esc(c.system)}</td><td class="t">{_esc(c.compared_with)}</td>'
                   f'{_number(c.difference)}{_number(c.ci_low)}{_number(c.ci_high)}<td class="t">{_esc(verdict(c))}</td>'
                   "</tr>" for c in comparisons.itertuples())
    causal = (" A causal system against the best centred one: a negative difference is what causality costs."
              if comparisons.compared_with.str.startswith("best centred").any() else "")
    return (f"<p>Paired bootstrap over recordings: both systems scored on the same resampled recordings.{causal}</p>"
            "<table id='comparisons-table'><tr><th>dimension</th><th>partition</th><th>system</th><th>compared with"
            "</th><th>CCC difference</th><th>low</th><th>high</th><th>verdict</th></tr>" + rows + "</table>")


def _warnings(counts: dict) -> str:
    if not counts:
        return "<p>No warnings.</p>"
    rows = "".join(f'<tr><td>{n}</td><td class="t">{_esc(m)}</td></tr>' for m, n in counts.items())
    return f"<table id='warnings-table'><tr><th>count</th><th>warning</th></tr>{rows}</table>"


def _provenance(results: pd.DataFrame, record: dict) -> str:
    features = sorted(set(results.features.dropna())) if "features" in results else []
    weights = sorted(set(results.weights.dropna())) if "weights" in results else []
    stages = "".join(f'<tr><td class="t">{_esc(s["stage"])}</td><td class="t">{_esc(s["action"])}</td>'
                     f'<td>{s["wall_s"]:.1f}</td><td class="t"><code>{_esc(s["artifact"])}</code></td></tr>'
                     for s in record.get("stages", []))
    packages = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in record.get("packages", {}).items())
    return (f"<p>Features: {_esc('; '.join(features))}.<br>Weights: {_esc('; '.join(weights))}.<br>"
            f"Python {_esc(record.get('python'))}; {packages}.<br>Git commit {_esc(record.get('git_commit'))}"
            f"{' (uncommitted changes)' if record.get('git_dirty') else ''}; {_esc(record.get('cpu_count'))} CPUs."
            "</p><table id='stages-table'><tr><th>stage</th><th>artifact</th><th>seconds</th><th>folder</th></tr>"
            + stages + "</table>")


def _recurrent_grid(grid: pd.DataFrame, sel) -> str:
    """Devel CCC of every point of a recurrent system's grid (its seeds' mean), with the spread over seeds."""
    rows = grid[(grid.system == sel.system) & (grid.dimension == sel.dimension)].reset_index(drop=True)
    points = [[*r.settings.split(), f"normalisation={r.normalisation}"] for r in rows.itertuples()]
    common = [part for part in points[0] if all(part in p for p in points)]
    labels = ["\n".join(part for part in p if part not in common) or "the one point" for p in points]
    figure, ax = plt.subplots(figsize=(max(5, 1.3 * len(rows) + 2), 4.5))
    chosen = (rows.settings == sel.settings) & (rows.normalisation == sel.normalisation)
    ax.bar(range(len(rows)), rows.ccc_devel, yerr=rows.ccc_devel_seed_sd.fillna(0), capsize=3,
           color=["tab:orange" if c else "tab:blue" for c in chosen])
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("raw devel CCC (mean of the seeds' predictions)")
    ax.set_title(f"{sel.system} {sel.dimension}: the recurrent grid, W = {sel.windows}")
    ax.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return _figure(figure, f"Devel CCC of each grid point of {_esc(sel.system)} ({_esc(sel.dimension)}), before "
                           "post-processing; bars: the seeds' mean prediction, whiskers: the standard deviation of "
                           f"the single seeds' CCC; orange: the point chosen. Every point: {_esc(' '.join(common))}.",
                   f"grid-{sel.system}-{sel.dimension}")


def build_report(pipeline, record: dict, warnings: dict) -> str:
    """The HTML text of a run's report.

    Parameters
    ----------
    pipeline : Pipeline
        The run's pipeline, its data, train and evaluate artifacts complete.
    record : dict
        The run's ``run.json`` (name, command, versions, stages).
    warnings : dict
        Each warning message logged in the run, with its count.
    """
    data, train, evaluate = pipeline.ensure("data"), pipeline.ensure("train"), pipeline.ensure("evaluate")
    results = read_table(evaluate.file("results.csv"))
    recordings = read_table(data.file("recordings.csv"))
    dims = pipeline.config.corpus.dimensions
    selected = read_table(train.file("selected.csv"))
    systems = sorted({f"{s}_{d}" for s, d in zip(selected.system, selected.dimension)}
                     | {f"late_{d}" for d in dims if evaluate.has(f"system_late_{d}.skops")})
    predictions = scored_predictions(evaluate, recordings)
    grid = read_table(train.file("grid.csv"))
    counts = dict(warnings)
    for message in data.manifest()["info"].get("warnings", []):
        counts.setdefault(message, 1)
    body = {
        "headline": _headline(results),
        "results": _results_table(results),
        "data": _data(recordings, data.manifest()["info"], dims),
        "per-recording": _per_recording(per_recording_ccc(predictions, systems)),
        "delay": _delay(grid, selected),
        "grid": _grid(grid, selected),
        "traces": _traces(predictions, dims, systems),
        "comparisons": _comparisons(read_table(evaluate.file("comparisons.csv"))),
        "warnings": _warnings(counts),
        "provenance": _provenance(results, record),
        "reproduce": f"<pre><code>{_esc(record.get('reproduce', ''))}</code></pre><p>Run from the same folder (the "
                     "artifact root), the command reuses every artifact and rebuilds the report.</p>",
    }
    titles = {"headline": "Headline", "results": "All results", "data": "Data", "per-recording": "Per-recording CCC",
              "delay": "Delay curves", "grid": "Grid heatmaps", "traces": "Traces", "comparisons": "Paired comparisons",
              "warnings": "Warnings", "provenance": "Provenance", "reproduce": "Reproduce this run"}
    sections = "".join(f'<section id="{key}"><h2>{titles[key]}</h2>{body[key]}</section>' for key in SECTIONS)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>recola-pipeline run "
            f"{_esc(record.get('name'))}</title><style>{STYLE}</style></head><body><h1>Run "
            f"{_esc(record.get('name'))}</h1><p>{_esc(record.get('corpus'))} corpus, started "
            f"{_esc(record.get('started'))}.</p>{sections}</body></html>")
    return re.sub(r"<!--.*?-->", "", page, flags=re.S)  # matplotlib's SVG comments carry build dates
