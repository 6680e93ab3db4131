"""Checks on the files a user points the pipeline at, before anything reads them.

A path option can name anything: a folder, a FIFO (reading it blocks forever), ``/dev/zero``
(reading it never ends), a file larger than any real config. :func:`checked_file` looks at the
file with ``stat`` only, which never blocks, and refuses all of these with a message naming the
setting to fix.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

#: the separators a table from another tool may use
SEPARATORS = ",;\t"


class InputError(ValueError):
    """A path that does not name a readable regular file of sensible size."""


def checked_file(path, what: str, setting: str, *, max_bytes: int) -> Path:
    """Return ``path`` if it is an existing regular file of at most ``max_bytes``.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should hold, for the message (e.g. ``"config file"``).
    setting : str
        The option or key that named it, for the message (e.g. ``"--config"``).
    max_bytes : int

    Raises
    ------
    InputError
        Missing, a folder, a FIFO, a device or another non-regular file, or too large.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist; fix {setting}") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror}); fix {setting}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {path} is a folder, not a file; fix {setting}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {path} is not a regular file (a pipe, socket or device); fix {setting}")
    if info.st_size > max_bytes:
        raise InputError(f"{what} {path} is {info.st_size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:g} MiB "
                         f"a {what} can sensibly be; fix {setting}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path} is not readable (permissions); fix {setting} or the file's permissions")
    return path


def writable_folder(folder, setting: str, *, create: bool) -> Path:
    """Return ``folder`` after proving a file can be written in it (one created and removed).

    A run that would fail only at its last step (predictions computed for an hour, then a
    read-only ``--out``) fails at its first instead.

    Parameters
    ----------
    folder : str or Path
    setting : str
        The option that named it, for the message (e.g. ``"--out"``).
    create : bool
        Create the folder (and its parents) when missing; otherwise its nearest existing parent
        is checked, and nothing is created.

    Raises
    ------
    InputError
        Read-only, full, not a folder, or no permission; the message names the folder.
    """
    folder = Path(folder)
    probe_in = folder
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not probe_in.exists() and probe_in != probe_in.parent:
                probe_in = probe_in.parent
        if not probe_in.is_dir():
            raise InputError(f"{probe_in} is not a folder; fix {setting}")
        with tempfile.TemporaryFile(dir=probe_in, prefix=".write-test-") as handle:
            handle.write(b"0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise InputError(f"cannot write to {probe_in} ({exc.strerror or exc}); pick a writable folder for {setting} "
                         "or free space there") from None
    return folder


def sniff_separator(path) -> str:
    """The separator of a small CSV-like table, by one rule: of ``,``, ``;`` and tab, the one its
    header (first line) holds most often; a tie goes to the earlier in that order, and a header
    with none of them is a one-column table, read as comma-separated.

    Only these three are considered (a space would split padded cells such as RECOLA's
    ``FM1 ``), and only the header counts: a header names the columns, while a data row may hold
    a decimal comma or a quoted path.

    >>> import tempfile, pathlib
    >>> table = pathlib.Path(tempfile.mkdtemp()) / "ratings.csv"
    >>> _ = table.write_text("time;FM1 ;FM2\\n0,04;0,1;0,2\\n")
    >>> sniff_separator(table)
    ';'
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline(1 << 16)
    counts = {sep: first.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)  # the first of the most frequent, in SEPARATORS order
    return best if counts[best] else ","
