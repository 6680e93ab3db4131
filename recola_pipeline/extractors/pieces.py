"""A long recording in overlapping pieces, so that feature extraction holds one piece at a time.

Each piece has a *kept span* of ``piece_s`` seconds; the kept spans tile the recording. Its
audio starts ``context_s`` before the kept span (the LLDs' smoothing and pitch tracking see
the same past as in one pass) and ends ``lookahead_s`` after it (every window that starts in
the kept span is complete, and sees the same future). Pieces start on whole seconds, so the
10 ms LLD frames and the 40 ms windows of a piece fall on the recording's own grid.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Piece:
    """One piece: its audio, where that audio starts, and the span whose output is kept.

    Attributes
    ----------
    start_s : int
        Where ``signal`` starts in the recording (whole seconds).
    keep_from_s, keep_to_s : float
        The kept span; ``keep_to_s`` is infinite for the last piece.
    signal : ndarray
    """

    start_s: int
    keep_from_s: float
    keep_to_s: float
    signal: np.ndarray

    def kept_windows(self, hop_s: float) -> tuple[int, int | None]:
        """``(first, last)`` row slice of this piece's output at ``hop_s`` that the kept span holds
        (rows start every ``hop_s`` from the piece's start); ``last`` None for the last piece."""
        first = round((self.keep_from_s - self.start_s) / hop_s)
        last = None if math.isinf(self.keep_to_s) else round((self.keep_to_s - self.start_s) / hop_s)
        return first, last


def pieces(blocks: Iterable[np.ndarray], sample_rate: int, *, piece_s: int, context_s: int,
           lookahead_s: int) -> Iterator[Piece]:
    """Cut a stream of audio blocks into overlapping :class:`Piece` objects.

    Parameters
    ----------
    blocks : iterable of ndarray
        The recording's samples, in order, in blocks of any size.
    sample_rate : int
    piece_s, context_s, lookahead_s : int
        Seconds kept per piece, of audio before and after the kept span.

    Yields
    ------
    Piece
        A recording no longer than one piece plus its look-ahead is one piece: its whole signal.

    Examples
    --------
    >>> out = list(pieces([np.arange(10.0)], 1, piece_s=3, context_s=1, lookahead_s=2))
    >>> [(p.start_s, p.keep_from_s, p.keep_to_s, p.signal.tolist()) for p in out]
    [(0, 0, 3, [0.0, 1.0, 2.0, 3.0, 4.0]), (2, 3, 6, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), (5, 6, inf, [5.0, 6.0, 7.0, 8.0, 9.0])]
    """
    stream = iter(blocks)
    buffer, buffer_start, exhausted = np.zeros(0), 0, False
    keep_from = 0
    while True:
        start = max(0, keep_from - context_s)
        keep_to = keep_from + piece_s
        end = (keep_to + lookahead_s) * sample_rate
        while not exhausted and buffer_start + buffer.size <= end:  # one sample past `end`: there is more
            block = next(stream, None)
            if block is None:
                exhausted = True
            else:
                buffer = np.concatenate([buffer, np.asarray(block, dtype=float)])
        offset = start * sample_rate - buffer_start
        if buffer_start + buffer.size <= end:
            yield Piece(start, keep_from, math.inf, buffer[offset:])
            return
        yield Piece(start, keep_from, keep_to, buffer[offset:end - buffer_start])
        keep_from = keep_to
        drop = max(0, keep_from - context_s) * sample_rate - buffer_start
        buffer, buffer_start = buffer[drop:].copy(), buffer_start + drop
