"""Clip corpora of the categorical path: each module's ``read(root) -> list[Clip]``.

``READERS`` maps ``mrpn.corpus`` to its reader (the generated demo set uses RAVDESS's naming).
A new clip corpus is one module with a ``read`` function plus one line here.
"""
from __future__ import annotations

from . import cremad, ravdess
from .clips import Clip

READERS = {"ravdess": ravdess, "cremad": cremad, "demo": ravdess}

__all__ = ["READERS", "Clip"]
