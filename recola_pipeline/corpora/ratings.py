"""Parsers for the rating files of RECOLA, AVEC 2016 and manifest corpora."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import LABEL_HOP_S
from .base import CorpusError

RECOLA_RATERS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")


def _check_time(path: Path, times: np.ndarray, rate_fixed: bool) -> None:
    if times.size < 2:
        raise CorpusError(f"{path}: needs at least two rows of ratings, found {times.size}")
    steps = np.diff(times)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 2
        raise CorpusError(f"{path}: time does not increase at data row {row}; sort or repair the file")
    if rate_fixed and not np.allclose(steps, LABEL_HOP_S, atol=1e-3):
        row = int(np.argmax(~np.isclose(steps, LABEL_HOP_S, atol=1e-3))) + 2
        raise CorpusError(f"{path}: rows must be 40 ms apart (RECOLA/AVEC 2016 label rate); "
                          f"data row {row} is {steps[row - 2] * 1000:.0f} ms after the previous one")
    if abs(times[0]) > 1e-6 and rate_fixed:
        raise CorpusError(f"{path}: the first row must be at time 0, found {times[0]}")


def _numeric(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    numeric = table.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & table.notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise CorpusError(f"{path}: non-numeric value {table.iat[row, col]!r} in column "
                          f"'{table.columns[col]}' at data row {row + 1}; repair the file")
    if numeric.isna().to_numpy().any():
        row, col = np.argwhere(numeric.isna().to_numpy())[0]
        raise CorpusError(f"{path}: empty or NaN value in column '{table.columns[col]}' at data row "
                          f"{row + 1}; every rater needs a value on every row")
    return numeric


def read_recola_ratings(path: Path, raters: tuple[str, ...] = RECOLA_RATERS) -> pd.DataFrame:
    """Read a RECOLA / AVEC 2016 individual-ratings file.

    The header is ``time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3`` (``;``-separated, trailing spaces
    in the rater names, which are stripped); rows are 40 ms apart from t = 0.

    Parameters
    ----------
    path : Path
    raters : tuple of str
        Rater columns that must be present.

    Returns
    -------
    DataFrame
        One column per rater, indexed by frame number.

    Raises
    ------
    CorpusError
        Unreadable file, missing rater column, non-numeric or empty value, irregular time.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep=";", dtype=str, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ratings ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "time" not in table.columns:
        raise CorpusError(f"{path}: no 'time' column; expected header 'time;{' ;'.join(raters)} '")
    missing = [r for r in raters if r not in table.columns]
    if missing:
        raise CorpusError(f"{path}: rater column(s) {', '.join(missing)} missing; expected header "
                          f"'time;{' ;'.join(raters)} '. Restore the file from the corpus release")
    table = _numeric(path, table[["time", *raters]])
    _check_time(path, table["time"].to_numpy(), rate_fixed=True)
    return table[list(raters)].reset_index(drop=True)


def read_arff_gold(path: Path) -> pd.DataFrame:
    """Read an AVEC 2016 gold-standard ARFF (``Instance_name, frameTime, GoldStandard`` rows)."""
    path = Path(path)
    lines = Path(path).read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    except StopIteration:
        raise CorpusError(f"{path}: no @data section; not an AVEC 2016 gold-standard ARFF") from None
    rows = [line.split(",") for line in lines[start:] if line.strip() and not line.startswith("%")]
    try:
        return pd.DataFrame({"time": [float(r[1]) for r in rows], "gold": [float(r[2]) for r in rows]})
    except (IndexError, ValueError):
        raise CorpusError(f"{path}: rows must look like 'train_1,0.04,-0.0229'") from None


def read_label_file(path: Path) -> pd.DataFrame:
    """Read a manifest label file (``time,<dimension>`` or ``time,<rater>,...`` at any rate).

    The values are linearly interpolated onto the 40 ms grid from t = 0 to the last time
    (before the first time the first value is held). Returns one column per rater; a file
    with a single value column is a single rater (its own gold standard).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep=None, engine="python", dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read labels ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "time" not in table.columns or len(table.columns) < 2:
        raise CorpusError(f"{path}: expected columns 'time,<dimension>' (seconds, value)")
    table = _numeric(path, table)
    times = table["time"].to_numpy()
    _check_time(path, times, rate_fixed=False)
    grid = np.arange(int(np.floor(times[-1] / LABEL_HOP_S + 1e-6)) + 1) * LABEL_HOP_S
    values = [c for c in table.columns if c != "time"]
    return pd.DataFrame({c: np.interp(grid, times, table[c].to_numpy()) for c in values})
