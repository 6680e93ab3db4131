"""The categorical path's results over folds: the summary table, the seed's claims tested fold by
fold, and confusion matrices."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..cache import write_bytes, write_table  # noqa: E402
from .experiment import VARIANT_ORDER  # noqa: E402
from .training import scores  # noqa: E402


#: the seed's claims checked fold by fold: (network, baseline) pairs of variants
CLAIMS = (("N3", "N1"), ("N3", "N2"))


def paired_test(accuracy: np.ndarray, baseline: np.ndarray) -> dict:
    """How often and how surely ``accuracy`` beats ``baseline`` over the same folds.

    Returns
    -------
    dict
        ``ge``: folds with accuracy >= baseline, ``ties``: of those, the folds with equal
        accuracy; ``mean_difference`` (accuracy - baseline);
        ``sign_p``: two-sided exact sign test over the folds that differ (ties left out);
        ``wilcoxon_p``: two-sided Wilcoxon signed-rank test (zero differences left out; NaN
        when fewer than two folds differ).
    """
    from scipy.stats import binomtest, wilcoxon

    difference = np.asarray(accuracy, dtype=float) - np.asarray(baseline, dtype=float)
    nonzero = difference[difference != 0]
    wins = int((nonzero > 0).sum())
    return {"ge": int((difference >= 0).sum()), "ties": int((difference == 0).sum()),
            "mean_difference": float(difference.mean()),
            "sign_p": float(binomtest(wins, len(nonzero)).pvalue) if len(nonzero) else 1.0,
            "wilcoxon_p": float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else float("nan")}


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over folds per variant, modalities and time augmentation, how often training
    ran into ``max_epochs`` (``cap_hits``: the fraction of runs that never stopped on validation),
    and on the N3 rows the seed's claims fold by fold: for each of N1 and N2, the folds where N3
    is at least as accurate (same fold, same augmentation) and of those the ties, the mean
    difference and paired sign and Wilcoxon tests (:func:`paired_test`)."""
    keys = ["variant", "modalities", "time_augmentation"]
    results = results.assign(cap_hit=results["epochs"] >= results["max_epochs"])
    summary = (results.groupby(keys, sort=False)
               .agg(folds=("fold", "nunique"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                    macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
                    epochs_mean=("epochs", "mean"), cap_hits=("cap_hit", "mean"))
               .reset_index())
    pairs = results[results.variant.isin(VARIANT_ORDER[:3])].pivot_table(
        index=["time_augmentation", "fold"], columns="variant", values="accuracy")
    for network, baseline in CLAIMS:
        columns = [f"folds_{network}_ge_{baseline}", f"folds_{network}_tie_{baseline}", f"{network}_minus_{baseline}",
                   f"{network}_vs_{baseline}_sign_p", f"{network}_vs_{baseline}_wilcoxon_p"]
        for column in columns:
            summary[column.lower()] = np.nan
        if not {network, baseline} <= set(pairs.columns):
            continue
        for augment, folds in pairs.groupby(level="time_augmentation"):
            test = paired_test(folds[network].to_numpy(), folds[baseline].to_numpy())
            row = (summary.variant == network) & (summary.time_augmentation == augment)
            for column, key in zip(columns, ("ge", "ties", "mean_difference", "sign_p", "wilcoxon_p")):
                summary.loc[row, column.lower()] = test[key]
    return summary.round(6)


def plot_confusion(artifact, name: str, matrix: np.ndarray, classes: list[str], title: str) -> None:
    """A confusion matrix (rows: true class, counts and row percentages) as PNG."""
    figure, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.0 * len(classes) + 1.5))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{matrix[i, j]}\n{100 * rates[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    write_bytes(artifact.file(name), buffer.getvalue())


def confusions(artifact, runs: list[tuple[dict, bool]], classes: list[str]) -> list[str]:
    """Confusion matrices summed over folds, per network and time-augmentation setting."""
    totals: dict[tuple[str, bool], list] = {}
    for run, augment in runs:
        labels = np.asarray(run["test_labels"])
        for key, predicted in run["predictions"].items():
            totals.setdefault((key, augment), []).append(scores(labels, np.asarray(predicted), len(classes))["confusion"])
    names = []
    for (key, augment), matrices in totals.items():
        variant, modalities = key.split(":")
        matrix = np.sum(matrices, axis=0)
        named = f"{variant}_{modalities}" if variant in ("unimodal", "ensemble") else variant
        stem = f"confusion_{named}_{'aug' if augment else 'noaug'}"
        plot_confusion(artifact, f"{stem}.png", matrix, classes,
                       f"{variant} ({modalities}), time augmentation {'on' if augment else 'off'}: "
                       f"accuracy {100 * np.trace(matrix) / matrix.sum():.1f}% over {len(matrices)} folds")
        write_table(artifact.file(f"{stem}.csv"),
                    pd.DataFrame(matrix, index=classes, columns=classes).rename_axis("true").reset_index())
        names.append(f"{stem}.png")
    return names
