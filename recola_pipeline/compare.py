"""``recola-pipeline runs`` and ``recola-pipeline compare``: named runs side by side.

``compare A B ...`` sets the runs' devel and test CCCs side by side, per dimension and system.
Where two runs scored the same recordings (same ids, same gold standard), it adds a paired
bootstrap of the difference between their best systems (chosen on devel, per dimension), with
its interval and a plain verdict; where they did not, it says so and shows no paired test.
"""
from __future__ import annotations

import datetime
import html
from pathlib import Path

import numpy as np
import pandas as pd

from .bootstrap import paired_difference
from .cache import read_table
from .html_report import STYLE, best_per_dimension, system_label, verdict
from .modalities import row_system
from .runs import RunError, list_runs, load_run, stage_artifact


def runs_table(root: Path) -> pd.DataFrame:
    """One row per run: name, start, status, corpus, duration, best devel and test CCC per dimension."""
    rows = []
    for record in list_runs(root):
        wall = record.get("wall_s")
        row = {"name": record["name"], "started": (record.get("started") or "")[:16].replace("T", " "),
               "status": record.get("status"), "corpus": record.get("corpus"),
               "duration": str(datetime.timedelta(seconds=round(wall))) if wall is not None else "-"}
        results = Path(root) / "runs" / record["name"] / "results.csv"
        if results.is_file():
            for dim, best in best_systems(read_table(results)).items():
                row[f"{dim} devel"], row[f"{dim} test"] = best["devel"], best["test"]
        rows.append(row)
    return pd.DataFrame(rows)


def best_systems(results: pd.DataFrame) -> dict[str, dict]:
    """Per dimension: the best devel system's key (``audio_arousal``, ``late_valence``...), label,
    and its devel and test CCC (NaN without test labels)."""
    out = {}
    for dim, best, test in best_per_dimension(results):
        key = f"{row_system(best)}_{dim}"
        out[dim] = {"key": key, "label": system_label(best), "devel": float(best.ccc),
                    "test": float(test.ccc) if test is not None else np.nan}
    return out


def _predictions(record: dict, recordings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    evaluate = stage_artifact(record, "evaluate")
    return {rec: read_table(evaluate / "predictions" / f"{rec}.parquet") for rec in recordings.recording
            if evaluate is not None and (evaluate / "predictions" / f"{rec}.parquet").is_file()}


def paired_rows(first: dict, other: dict) -> tuple[list[dict], str]:
    """Paired bootstrap rows (best system of ``first`` minus that of ``other``) on the recordings both
    scored with identical gold; and a note when there are none."""
    rows, notes = [], []
    frames = []
    for record in (first, other):
        data = stage_artifact(record, "data")
        recordings = read_table(data / "recordings.csv")
        frames.append((recordings, _predictions(record, recordings)))
    best_a = best_systems(read_table(Path(first["folder"]) / "results.csv"))
    best_b = best_systems(read_table(Path(other["folder"]) / "results.csv"))
    for partition in ("devel", "test"):
        ids = [set(r[r.partition == partition].recording) for r, _ in frames]
        shared = sorted(ids[0] & ids[1])
        for dim in [d for d in best_a if d in best_b]:  # the first run's order: the same rows every time
            pairs_a, pairs_b = [], []
            for rec in shared:
                a, b = frames[0][1].get(rec), frames[1][1].get(rec)
                if a is None or b is None or f"gold_{dim}" not in a or not a[f"gold_{dim}"].equals(b.get(f"gold_{dim}")):
                    continue
                mask = a[f"gold_{dim}"].notna().to_numpy()
                if mask.sum() < 2 or best_a[dim]["key"] not in a or best_b[dim]["key"] not in b:
                    continue
                gold = a[f"gold_{dim}"].to_numpy()[mask]
                pairs_a.append((gold, a[best_a[dim]["key"]].to_numpy()[mask]))
                pairs_b.append((gold, b[best_b[dim]["key"]].to_numpy()[mask]))
            if not pairs_a:
                notes.append(f"{partition} {dim}: the runs share no recording with the same gold standard")
                continue
            result = paired_difference(pairs_a, pairs_b)
            rows.append({"dimension": dim, "partition": partition, "recordings": len(pairs_a),
                         "system": best_a[dim]["label"], "compared_with": best_b[dim]["label"], **result})
    return rows, "; ".join(notes)


def compare(root: Path, names: list[str]) -> tuple[str, str]:
    """The comparison of runs ``names`` as console text and as an HTML page.

    Raises
    ------
    RunError
        A run that does not exist or did not evaluate.
    """
    records = [load_run(root, name) for name in names]
    for record in records:
        if not (Path(record["folder"]) / "results.csv").is_file():
            raise RunError(f"run {record['name']} has no results.csv (it did not run the evaluate stage); "
                           "compare runs that evaluated")
    table = None
    for record in records:
        results = read_table(Path(record["folder"]) / "results.csv")
        scored = results[results.partition.isin(["devel", "test"])].copy()
        scored["system"] = [system_label(row) for row in scored.itertuples()]
        scored[record["name"]] = [f"{c:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{c:.3f}"
                                  for c, lo, hi in zip(scored.ccc, scored.ccc_ci_low, scored.ccc_ci_high)]
        part = scored[["dimension", "system", "partition", record["name"]]]
        table = part if table is None else table.merge(part, on=["dimension", "system", "partition"], how="outer")
    table = table.fillna("-")
    paired, notes = [], []
    for other in records[1:]:
        rows, note = paired_rows(records[0], other)
        paired += [{"runs": f"{records[0]['name']} - {other['name']}", **row} for row in rows]
        if note:
            notes.append(f"{records[0]['name']} vs {other['name']}: {note}")
    paired = pd.DataFrame(paired)
    text = "CCC [95 % CI] per run\n" + table.to_string(index=False)
    if len(paired):
        shown = paired.assign(verdict=[verdict(r) for r in paired.itertuples()])
        text += ("\n\nPaired bootstrap, best system (chosen on devel) of the first run minus the other's, on shared "
                 "recordings\n" + shown[["runs", "dimension", "partition", "recordings", "system", "compared_with",
                                         "difference", "ci_low", "ci_high", "verdict"]].round(3).to_string(index=False))
    if notes:
        text += "\n\nNo paired test where " + "; ".join(notes)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>compare {html.escape(' '.join(names))}"
            f"</title><style>{STYLE}</style></head><body><h1>Runs compared</h1>"
            + table.to_html(index=False, table_id="compare-table")
            + ("<h2>Paired comparisons</h2>" + paired.assign(verdict=[verdict(r) for r in paired.itertuples()])
               .to_html(index=False, table_id="paired-table") if len(paired) else "")
            + (f"<p>{html.escape('; '.join(notes))}</p>" if notes else "") + "</body></html>")
    return text, page
