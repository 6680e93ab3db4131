"""The console and ``run.log``: timestamped lines, each distinct warning shown once.

A warning logged again with the same text (a worker process that repeats it, a check run once
per recording) is counted, not printed again; the run's ``run.json`` and ``report.html`` list
every warning once with its count.
"""
from __future__ import annotations

import logging
import sys
from collections import Counter

FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE = "%Y-%m-%d %H:%M:%S"
LOGGER = "recola_pipeline"


class OnceFilter(logging.Filter):
    """Let each warning text through once and count every occurrence (the same decision for every
    handler that sees the record, so the console and run.log show the same lines)."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "shown_once"):
            message = record.getMessage()
            repeated = record.levelno >= logging.WARNING and message in self.counts
            if record.levelno >= logging.WARNING:
                self.counts[message] += 1
            record.shown_once = not repeated
        return record.shown_once


def formatter() -> logging.Formatter:
    """Timestamped lines: ``2026-12-06 20:45:23 WARNING ...``."""
    return logging.Formatter(FORMAT, DATE)


def console(level: int) -> OnceFilter:
    """(Re)install the package's console handler on stderr, showing ``level`` and above; return its filter."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, "recola_console", False)]:
        logger.removeHandler(handler)
    once = OnceFilter()
    handler = logging.StreamHandler(sys.stderr)
    handler.recola_console = True
    handler.setFormatter(formatter())
    handler.addFilter(once)
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # run.log keeps the INFO lines a quiet console leaves out
    return once
