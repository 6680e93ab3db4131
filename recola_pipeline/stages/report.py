"""The ``report`` stage: plots and a short Markdown summary of the evaluation.

``report`` artifact (``models/report/<hash>/``): ``results.csv`` (copy of the evaluate table),
``summary.md`` (best system per dimension with bootstrap intervals, settings, features and weights,
and the paired bootstrap comparisons), and PNG plots:
``plots/traces_<recording>.png`` (gold vs prediction per devel recording),
``plots/ccc_vs_delay.png`` (devel CCC against the annotation delay, per modality and dimension, at
the selected W and normalisation and the best C per delay) and ``plots/ccc_bars.png`` (CCC by
modality and fusion, with intervals).
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..cache import read_table, write_bytes, write_table, write_text  # noqa: E402
from ..html_report import best_per_dimension, system_label, verdict  # noqa: E402
from ..modalities import estimator_of  # noqa: E402
from ..stage import Stage  # noqa: E402


def _save(artifact, name: str, figure) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    write_bytes(artifact.file(name), buffer.getvalue())


def plot_traces(artifact, recording: str, frame: pd.DataFrame, systems: list[str], dimensions) -> None:
    """Gold vs prediction of every system for one recording."""
    figure, axes = plt.subplots(len(dimensions), 1, figsize=(10, 2.6 * len(dimensions)), sharex=True, squeeze=False)
    for ax, dim in zip(axes[:, 0], dimensions):
        if f"gold_{dim}" in frame:
            ax.plot(frame["time"], frame[f"gold_{dim}"], color="black", lw=1.4, label="gold standard")
        for system in systems:
            if system.endswith(f"_{dim}") and system in frame:
                ax.plot(frame["time"], frame[system], lw=1.0, label=system.removesuffix(f"_{dim}"))
        if f"gold_{dim}" in frame:  # frames without a rating: predicted, never scored
            ax.fill_between(frame["time"], 0, 1, where=frame[f"gold_{dim}"].isna().to_numpy(), color="grey",
                            alpha=0.2, step="mid", transform=ax.get_xaxis_transform(), label="unlabelled")
        ax.set_ylabel(dim)
        ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")  # beside the data, never over it
    axes[-1, 0].set_xlabel("time (s)")
    figure.suptitle(f"{recording}: gold standard and predictions")
    _save(artifact, f"plots/traces_{recording}.png", figure)


def plot_ccc_vs_delay(artifact, grid: pd.DataFrame, selected: pd.DataFrame) -> None:
    """Devel CCC against delay at the selected W (best C per delay), per SVR system and dimension."""
    figure, ax = plt.subplots(figsize=(7, 4))
    for sel in selected.itertuples():
        if estimator_of(sel) != "svr":
            continue
        rows = grid[(grid.system == sel.system) & (grid.dimension == sel.dimension) & (grid.windows == sel.windows)
                    & (grid.normalisation == sel.normalisation)]
        curve = rows.groupby("D")["ccc_devel"].max()
        ax.plot(curve.index, curve.values, marker=".", label=f"{sel.system} {sel.dimension} ({sel.windows} s)")
        ax.axvline(sel.D, color=ax.lines[-1].get_color(), ls=":", lw=0.8)
    ax.set_xlabel("annotation delay D (s)")
    ax.set_ylabel("raw devel CCC (before post-processing)")
    ax.set_title("Raw devel CCC against delay; dotted line: the selected D\n(summary.md reports devel CCC after "
                 "post-processing and fusion)", fontsize=9)
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(alpha=0.3)
    _save(artifact, "plots/ccc_vs_delay.png", figure)


def plot_ccc_bars(artifact, results: pd.DataFrame) -> None:
    """Pooled CCC by system (estimator, modality, fusion), dimension and partition, with 95 % bootstrap intervals."""
    scored = results[results.partition.isin(["devel", "test"])].copy()
    scored["system"] = [system_label(row) for row in scored.itertuples()]
    table = scored.pivot_table(index=["dimension", "system"], columns="partition", values="ccc")
    low = scored.pivot_table(index=["dimension", "system"], columns="partition", values="ccc_ci_low", dropna=False)
    high = scored.pivot_table(index=["dimension", "system"], columns="partition", values="ccc_ci_high", dropna=False)
    low, high = low.reindex_like(table), high.reindex_like(table)
    errors = [[(table[c] - low[c]).fillna(0).to_numpy(), (high[c] - table[c]).fillna(0).to_numpy()]
              for c in table.columns]
    figure, ax = plt.subplots(figsize=(max(5, 1.2 * len(table)), 4))
    table.index = [f"{dim}: {system}" for dim, system in table.index]  # readable ticks, not tuples
    table.plot.bar(ax=ax, yerr=errors, capsize=3)
    if "devel" in table:
        for dim in dict.fromkeys(label.split(":")[0] for label in table.index):
            rows = [i for i, label in enumerate(table.index) if label.startswith(f"{dim}:")]
            best = max(rows, key=lambda i: table["devel"].iloc[i])
            ax.annotate("best on devel", (best, table.to_numpy().max(axis=1)[best]), ha="center", va="bottom",
                        xytext=(0, 14), textcoords="offset points", fontsize=7, arrowprops={"arrowstyle": "-"})
    ax.set_title("CCC per system and dimension (pooled over recordings)")
    ax.set_ylabel("CCC, 95 % bootstrap interval over recordings")
    ax.set_xlabel("")
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    _save(artifact, "plots/ccc_bars.png", figure)


def _interval(row) -> str:
    if pd.isna(row.ccc):
        return "n/a"
    if pd.isna(row.ccc_ci_low):
        return f"{row.ccc:.3f}"
    return f"{row.ccc:.3f} [{row.ccc_ci_low:.3f}, {row.ccc_ci_high:.3f}]"


def summary_markdown(results: pd.DataFrame, comparisons: pd.DataFrame, data_info: dict, evaluate_info: dict) -> str:
    """Best system per dimension (on devel) with its devel and test scores, intervals and settings."""
    lines = ["# recola-pipeline results", "",
             f"Corpus: {data_info.get('corpus')} ({data_info.get('recordings')} recordings, "
             f"partitions {data_info.get('partitions')}), gold standard: {data_info.get('gold_standard')}; "
             f"{data_info.get('labelled_frames')} of {data_info.get('frames')} label frames are labelled "
             "(only those are fitted and scored).", "",
             "CCC is pooled over the recordings of a partition, with a 95 % bootstrap interval over recordings. "
             "W, D, C and the normalisation are chosen on devel; post-processing and late fusion are chosen on "
             "held-out devel recordings, and the devel CCC is that held-out score. Test is scored with the "
             "choices made on devel.", ""]
    if evaluate_info.get("skipped"):
        lines += [f"**Note:** {evaluate_info['skipped']}.", ""]
    lines += ["| dimension | best system | devel CCC [95 % CI] | test CCC [95 % CI] | W (s) | normalisation | D (s) "
              "| C (SVR) or network | post-processing | features | weights |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]

    def setting(value) -> str:
        return "per modality" if pd.isna(value) else f"{value:g}"

    for dim, best, test in best_per_dimension(results):
        test_ccc = _interval(test) if test is not None else "no labels"
        system = system_label(best)
        fused = f", weights {best.fusion_weights}" if isinstance(best.fusion_weights, str) and best.fusion_weights else ""
        lines.append(f"| {dim} | {system} | {_interval(best)} | {test_ccc} | {best.windows} | {best.normalisation} | "
                     f"{setting(best.D)} | {setting(best.C) if estimator_of(best) == 'svr' else best.settings} | "
                     f"{best.postprocessing}{fused} | {best.features} | "
                     f"{best.weights} |")
    if len(comparisons):
        lines += ["", "Is the best system better? Paired bootstrap over recordings (the same resampled recordings "
                  "for both; p = share of resamples in which it is not better):", "",
                  "| dimension | partition | best system | compared with | CCC difference [95 % CI] | p | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for c in comparisons.itertuples():
            answer = verdict(c)
            interval = "" if pd.isna(c.ci_low) else f" [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
            lines.append(f"| {c.dimension} | {c.partition} | {c.system} | {c.compared_with} | "
                         f"{c.difference:+.3f}{interval} | {c.p_not_better:.3f} | {answer} |")
    lines += ["", "Plots: `plots/ccc_bars.png`, `plots/ccc_vs_delay.png`, `plots/traces_<recording>.png`.", ""]
    return "\n".join(lines)


def run_report(inputs, artifact) -> dict:
    """Write the summary, the results table and the plots."""
    evaluate = inputs.artifact("evaluate")
    train = inputs.artifact("train")
    results = read_table(evaluate.file("results.csv"))
    write_table(artifact.file("results.csv"), results)
    data = inputs.artifact("data")
    summary = summary_markdown(results, read_table(evaluate.file("comparisons.csv")), data.manifest()["info"],
                               evaluate.manifest()["info"])
    write_text(artifact.file("summary.md"), summary)
    plot_ccc_bars(artifact, results)
    plot_ccc_vs_delay(artifact, read_table(train.file("grid.csv")), read_table(train.file("selected.csv")))
    recordings = read_table(data.file("recordings.csv"))
    dims = inputs.config.corpus.dimensions
    for rec in recordings[recordings.partition == "devel"].recording:
        frame = read_table(evaluate.file(f"predictions/{rec}.parquet"))
        systems = [c for c in frame.columns if c != "time" and not c.startswith(("gold_", "raw_"))]
        plot_traces(artifact, rec, frame, systems, dims)
    return {"summary": "summary.md", "plots": sorted(f for f in artifact.files() if f.endswith(".png"))}


STAGE = Stage(
    name="report", kind="models", sections=(), upstream=lambda cfg: ["evaluate"],
    libraries=("matplotlib",), run=run_report,
)
