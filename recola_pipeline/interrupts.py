"""SIGINT and SIGTERM that no library can swallow.

Python turns Ctrl-C into a ``KeyboardInterrupt`` raised wherever the main thread happens to
be. When that is inside a C library's callback into Python (openSMILE calls back once per
feature row), ctypes prints "Exception ignored on calling ctypes callback function" and the
library carries on with a row missing: the interrupt is lost and the output is wrong. So the
handler installed by :func:`guard` also *records* the signal, and every finished file passes
:func:`check` first (:func:`recola_pipeline.cache.atomic_path` calls it): after a signal, no
file is renamed into place and no artifact is marked complete, whether or not the exception
reached the code that was running.

``guard`` is entered by the command line and by every parallel task (:mod:`.parallel`), so a
loky worker process that receives the terminal's Ctrl-C stops writing as well.
"""
from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None
_depth = 0


class Interrupted(KeyboardInterrupt):
    """The run received SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum

    def __reduce__(self):  # raised in a worker process, re-raised in the parent by joblib
        return Interrupted, (self.signum,)


def _record_and_raise(signum, frame):
    global _received
    _received = signum
    raise Interrupted(signum)


def received() -> int | None:
    """The signal received since the outermost :func:`guard` was entered in this process, if any."""
    return _received


def check() -> None:
    """Raise :class:`Interrupted` if a signal was received, even one whose exception was swallowed."""
    if _received is not None:
        raise Interrupted(_received)


@contextlib.contextmanager
def guard():
    """Record SIGINT/SIGTERM for the duration of the block and raise at its end if one came.

    Only the main thread can install signal handlers; elsewhere (threads of the threading or
    dask backends) the block only checks, at its end, the signal the main thread recorded. The
    outermost guard of a process starts with no signal recorded and restores the previous
    handlers on exit.
    """
    global _received, _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        check()
        return
    previous = {}
    if _depth == 0:
        _received = None
        previous = {s: signal.signal(s, _record_and_raise) for s in SIGNALS}
    _depth += 1
    try:
        yield
        check()
    finally:
        _depth -= 1
        for s, handler in previous.items():
            signal.signal(s, handler)
