"""Parsers for the rating files of RECOLA, AVEC 2016 and manifest corpora.

Every reader returns the ratings on the 40 ms label grid from t = 0, one column per rater,
with NaN wherever that rater has no value (label coverage, docs/ARCHITECTURE.md):

* a rating file covers the time from its first row to its last, plus half of its row period
  at each end (the value of the nearest row is held there); frames before or after are NaN;
* an empty or NaN cell leaves that rater out at that time; two consecutive values of a rater at
  most ``max_gap_s`` apart (or one row period, when the file's rows are slower than that) are
  linearly interpolated; a longer gap is NaN;
* ``inf``, text, values beyond +-10 (:data:`MAX_ABS_RATING`: ratings are on a [-1, 1] scale, so
  such a value is a unit or export error), negative or non-increasing times, and times that look
  like milliseconds (rows 10 s or more apart) are errors naming file, row and column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import LABEL_HOP_S
from .base import CorpusError, corpus_file, read_csv_table

RECOLA_RATERS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")

#: longest gap between two values of one rater that is interpolated (seconds); see the README
MAX_GAP_S = 1.0
#: largest absolute rating accepted (the scale is [-1, 1]; values beyond 1.5 get a warning in the data stage)
MAX_ABS_RATING = 10.0
#: largest rating file read (a 300 s RECOLA file with six raters is about 300 kB)
MAX_LABEL_BYTES = 200 * 2**20
#: a median row step at least this long (seconds) means the times are not in seconds
MAX_ROW_STEP_S = 10.0


def _check_time(path: Path, times: np.ndarray, on_label_grid: bool) -> None:
    if times.size < 2:
        raise CorpusError(f"{path}: needs at least two rows of ratings, found {times.size}")
    if np.isnan(times).any():
        row = int(np.argmax(np.isnan(times))) + 1
        raise CorpusError(f"{path}: empty time at data row {row}; every row needs its time")
    if times[0] < 0:
        raise CorpusError(f"{path}: negative time {times[0]} at data row 1; times are seconds from the start "
                          "of the recording")
    steps = np.diff(times)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 2
        raise CorpusError(f"{path}: time does not increase at data row {row}; sort or repair the file")
    if np.median(steps) >= MAX_ROW_STEP_S:
        raise CorpusError(f"{path}: rows are {np.median(steps):g} apart in column 'time' (data rows 1-2: {times[0]:g}, "
                          f"{times[1]:g}); times must be in seconds. Milliseconds? Divide the time column by 1000")
    if on_label_grid:
        frames = times / LABEL_HOP_S
        off = np.abs(frames - np.round(frames)) > 0.025
        if off.any():
            row = int(np.argmax(off)) + 1
            raise CorpusError(f"{path}: rows must lie on the 40 ms label grid (RECOLA/AVEC 2016 label rate); "
                              f"data row {row} is at {times[row - 1]} s")


def _numeric(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Values as floats: empty and NaN cells stay NaN; text and infinities are errors."""
    numeric = table.apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    text = table.apply(lambda column: column.str.strip().str.lower())
    blank = table.isna() | text.isin(["", "nan", "na", "n/a"])
    bad = numeric.isna() & ~blank
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise CorpusError(f"{path}: non-numeric value {table.iat[row, col]!r} in column "
                          f"'{table.columns[col]}' at data row {row + 1}; repair the file")
    infinite = np.isinf(numeric.to_numpy(dtype=float))
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise CorpusError(f"{path}: non-finite value {table.iat[row, col]!r} in column '{table.columns[col]}' "
                          f"at data row {row + 1}; repair the file (leave the cell empty if the rater gave no value)")
    values = numeric.drop(columns="time", errors="ignore").to_numpy(dtype=float)
    absurd = np.abs(np.nan_to_num(values)) > MAX_ABS_RATING
    if absurd.any():
        row, col = np.argwhere(absurd)[0]
        column = [c for c in table.columns if c != "time"][col]
        raise CorpusError(f"{path}: value {table[column].iat[row]!r} in column '{column}' at data row {row + 1} is "
                          f"beyond +-{MAX_ABS_RATING:g}; ratings are on a [-1, 1] scale. Rescale the file (e.g. a "
                          "0-100 slider: value / 50 - 1) or repair the cell")
    return numeric.astype(float)


def on_label_grid(times: np.ndarray, values: pd.DataFrame, *, max_gap_s: float = MAX_GAP_S) -> pd.DataFrame:
    """Ratings at any (possibly irregular) times, placed on the 40 ms grid from t = 0.

    Parameters
    ----------
    times : ndarray, shape (n_rows,)
        Increasing times in seconds.
    values : DataFrame, shape (n_rows, n_raters)
        One column per rater; NaN where the rater gave no value.
    max_gap_s : float
        Longest interval between two values of a rater that is bridged by linear interpolation;
        the file's own row period is always bridged.

    Returns
    -------
    DataFrame
        One column per rater, one row per label frame from t = 0 to the last frame within half a
        row period of the last row; NaN outside each rater's covered time. ``attrs['last_time_s']``
        is the time of the last row.

    Examples
    --------
    >>> grid = on_label_grid(np.array([0.12, 0.2]), pd.DataFrame({"r": [1.0, 2.0]}))
    >>> grid["r"].round(2).tolist()
    [nan, nan, 1.0, 1.0, 1.5, 2.0, 2.0]
    """
    times = np.asarray(times, dtype=float)
    period = float(np.median(np.diff(times)))
    half = period / 2 + 1e-9
    bridge = max(max_gap_s, period) + 1e-9
    n_frames = int(np.floor((times[-1] + half) / LABEL_HOP_S + 1e-6)) + 1
    grid = np.arange(n_frames) * LABEL_HOP_S
    out = {}
    for column in values.columns:
        valid = values[column].notna().to_numpy()
        t, v = times[valid], values[column].to_numpy()[valid]
        trace = np.full(n_frames, np.nan)
        if t.size:
            right = np.clip(np.searchsorted(t, grid), 0, t.size - 1)
            left = np.clip(right - 1, 0, t.size - 1)
            nearest = np.where(np.abs(grid - t[left]) <= np.abs(t[right] - grid), left, right)
            bridged = (t[left] <= grid) & (grid <= t[right]) & (t[right] - t[left] <= bridge)
            held = np.abs(grid - t[nearest]) <= half
            trace = np.where(bridged, np.interp(grid, t, v), np.where(held, v[nearest], np.nan))
        out[column] = trace
    grid_table = pd.DataFrame(out)
    grid_table.attrs["last_time_s"] = float(times[-1])
    return grid_table


def _read_table(path: Path, what: str, sep: str | None = None) -> pd.DataFrame:
    """A rating file as text cells (``sep`` None: detected); a regular file of at most 200 MiB."""
    return read_csv_table(path, f"{what} file", "the corpus's label paths", sep=sep, max_bytes=MAX_LABEL_BYTES,
                          skip_initial_space=True)


def read_recola_ratings(path: Path, raters: tuple[str, ...] = RECOLA_RATERS, *, max_gap_s: float = MAX_GAP_S
                        ) -> pd.DataFrame:
    """Read a RECOLA / AVEC 2016 individual-ratings file.

    The header is ``time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3`` (``;``-separated, trailing spaces
    in the rater names, which are stripped); rows lie on the 40 ms grid. A file may start after
    t = 0, stop before the recording ends, skip rows or leave cells empty: see the module
    docstring for what is labelled then.

    Parameters
    ----------
    path : Path
    raters : tuple of str
        Rater columns that must be present.
    max_gap_s : float
        Longest gap of a rater that is interpolated.

    Returns
    -------
    DataFrame
        One column per rater, indexed by label frame from t = 0 (NaN: not rated).

    Raises
    ------
    CorpusError
        Unreadable file, missing rater column, non-numeric or infinite value, times off the grid.
    """
    path = Path(path)
    table = _read_table(path, "ratings", sep=";")
    if "time" not in table.columns:
        raise CorpusError(f"{path}: no 'time' column; expected header 'time;{' ;'.join(raters)} '")
    missing = [r for r in raters if r not in table.columns]
    if missing:
        raise CorpusError(f"{path}: rater column(s) {', '.join(missing)} missing; expected header "
                          f"'time;{' ;'.join(raters)} '. Restore the file from the corpus release")
    table = _numeric(path, table[["time", *raters]])
    times = table["time"].to_numpy()
    _check_time(path, times, on_label_grid=True)
    return on_label_grid(np.round(times / LABEL_HOP_S) * LABEL_HOP_S, table[list(raters)], max_gap_s=max_gap_s)


#: names of the time attribute of a gold-standard ARFF (compared in lower case)
ARFF_TIME_NAMES = ("frametime", "frame_time", "time")


def read_arff_gold(path: Path) -> pd.DataFrame:
    """Read a gold-standard ARFF file by its header (``time``, ``gold`` columns, checked like a rating file).

    Both published forms are read, with their attributes in any order, comments and quoted
    values: AVEC 2016's ``Instance_name string, frameTime numeric, GoldStandard numeric`` and
    the RECOLA release's ``frametime numeric, GoldStandard<Dimension> numeric``. The time is the
    attribute named ``frameTime`` / ``frame_time`` / ``time`` (any case); the gold value is the
    numeric attribute whose name starts with ``GoldStandard``, or else the only other numeric one.
    """
    import arff  # liac-arff

    path = corpus_file(Path(path), "gold-standard file", "the corpus's label paths", max_bytes=MAX_LABEL_BYTES)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            parsed = arff.load(handle)
    except (OSError, arff.ArffException, UnicodeDecodeError, ValueError) as exc:
        raise CorpusError(f"{path}: not a readable ARFF file ({exc}); a gold-standard ARFF has '@attribute' lines "
                          "for the time and the value, then '@data' rows like '0.04,-0.0199'") from None
    names = [name for name, _ in parsed["attributes"]]
    numeric = [name for name, kind in parsed["attributes"] if isinstance(kind, str) and kind.upper() in
               ("NUMERIC", "REAL", "INTEGER")]
    time = next((n for n in numeric if n.lower() in ARFF_TIME_NAMES), None)
    gold = [n for n in numeric if n.lower().startswith("goldstandard")] or [n for n in numeric if n != time]
    if time is None or len(gold) != 1:
        raise CorpusError(f"{path}: attributes {names}; a gold-standard ARFF needs a numeric time attribute "
                          f"({' or '.join(ARFF_TIME_NAMES)}) and one numeric GoldStandard attribute")
    def cells(name):  # as text, so that every check of a rating file applies ('?' is a missing value)
        return ["" if row[names.index(name)] is None else str(row[names.index(name)]) for row in parsed["data"]]

    return checked_values(path, pd.DataFrame({"time": cells(time), "gold": cells(gold[0])}, dtype=str))


def read_arff_ratings(path: Path, *, max_gap_s: float = MAX_GAP_S) -> pd.DataFrame:
    """A gold-standard ARFF as the labels of a recording: one ``gold`` column on the 40 ms grid."""
    table = read_arff_gold(path)
    return on_label_grid(table["time"].to_numpy(), table.drop(columns="time"), max_gap_s=max_gap_s)


def checked_values(where, table: pd.DataFrame) -> pd.DataFrame:
    """A ``time`` + raters table of text cells as floats, with every check a rating file gets
    (non-finite, beyond +-10, negative, non-increasing or millisecond-looking times)."""
    table = _numeric(where, table)
    _check_time(where, table["time"].to_numpy(), on_label_grid=False)
    return table


def read_label_file(path: Path, *, max_gap_s: float = MAX_GAP_S) -> pd.DataFrame:
    """Read a manifest label file (``time,<dimension>`` or ``time,<rater>,...`` at any rate).

    The separator (``,`` ``;`` tab) is detected; a UTF-8 byte-order mark and CRLF line ends are
    accepted. The values are placed on the 40 ms grid by :func:`on_label_grid`. Returns one
    column per rater; a file with a single value column is a single rater (its own gold standard).
    A ``.arff`` file is a gold standard in ARFF (:func:`read_arff_gold`).
    """
    path = Path(path)
    if path.suffix.lower() == ".arff":
        return read_arff_ratings(path, max_gap_s=max_gap_s)
    table = _read_table(path, "labels")
    if "time" not in table.columns or len(table.columns) < 2:
        raise CorpusError(f"{path}: expected columns 'time,<dimension>' (seconds, value)")
    table = checked_values(path, table)
    return on_label_grid(table["time"].to_numpy(), table.drop(columns="time"), max_gap_s=max_gap_s)
