"""Registries that name implementations without importing them.

The pluggable parts that live in modules of their own (audio feature sets, corpus layouts, clip
corpora, estimators, stages) each have one :class:`Registry`, owned by the package that
implements them. An entry is a name, a ``"module:attr"`` string and the install extra
its libraries come from. Listing the names (config validation, ``--help``) imports nothing; the
implementation is imported when a run first looks it up, and a missing optional library gives
one line naming the extra to install::

    >>> SETS = Registry("feature set", {"mean": Entry("statistics:fmean")})
    >>> list(SETS), "mean" in SETS
    (['mean'], True)
    >>> SETS["mean"]([1.0, 2.0])
    1.5
"""
from __future__ import annotations

import importlib
import importlib.util
import types
from collections.abc import MutableMapping
from dataclasses import dataclass

#: the extras of setup.cfg beyond the base install (the audio path), by the modules they add
EXTRA_MODULES = {"video": ("torch", "torchvision", "timm", "cv2"), "mrpn": ("torch", "torchvision", "timm", "cv2"),
                 "sequence": ("torch", "safetensors"), "dask": ("distributed",)}


#: the target of an entry registered as an object
_OBJECT = "<object>"


class MissingExtra(ImportError):
    """An implementation whose optional library is not installed; the message names the extra."""


@dataclass(frozen=True)
class Entry:
    """Where an implementation lives and what it needs.

    Attributes
    ----------
    target : str
        ``"package.module:attribute"``, or ``"package.module"`` for a module that is itself the
        implementation.
    extra : str or None
        The setup.cfg extra that installs its libraries (None: the base install has them).
    """

    target: str
    extra: str | None = None

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.target.partition(":")[2]


class Registry(MutableMapping):
    """A mapping ``name -> implementation`` that imports each implementation on first look-up.

    Assigning an object (``registry["rms"] = RmsFeatureSet()``) registers an implementation that
    is already loaded: a plug-in of the user's own, or a test double.

    Parameters
    ----------
    kind : str
        What the entries are, for messages (``"audio feature set"``).
    entries : dict
        ``name -> Entry`` (or a ``"module:attr"`` string for an entry the base install covers).
    """

    def __init__(self, kind: str, entries: dict):
        self.kind = kind
        self._entries = {name: Entry(e) if isinstance(e, str) else e for name, e in entries.items()}
        self._loaded: dict = {}

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    def entry(self, name: str) -> Entry:
        """The entry of ``name`` (nothing imported)."""
        return self._entries[name]

    def module_of(self, name: str) -> str:
        """The module that implements ``name`` (nothing imported for a registered entry)."""
        if name in self._loaded and self._entries[name].target == _OBJECT:
            value = self._loaded[name]
            return value.__name__ if isinstance(value, types.ModuleType) else type(value).__module__
        return self._entries[name].module

    def __setitem__(self, name: str, value) -> None:
        self._entries[name] = Entry(_OBJECT)
        self._loaded[name] = value

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        self._loaded.pop(name, None)

    def __getitem__(self, name: str):
        if name not in self._loaded:
            entry = self._entries[name]  # KeyError for an unknown name, as a dict
            self._loaded[name] = load_target(entry.target, what=f"{self.kind} '{name}'", extra=entry.extra)
        return self._loaded[name]


def installed(extra: str | None) -> bool:
    """Whether the libraries of an extra are installed (looked up, not imported)."""
    for module in EXTRA_MODULES.get(extra, ()):
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def require(module: str, *, what: str, extra: str, instead: str = ""):
    """Import a module of an optional path (e.g. video decoding for a video input), naming the extra it needs.

    ``instead`` is a way to do without it, added to the message.
    """
    return load_target(module, what=what, extra=extra, instead=instead)


def load_target(target: str, *, what: str, extra: str | None = None, instead: str = ""):
    """Import ``"module:attr"`` (or a module); a missing third-party library raises :class:`MissingExtra`."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == __name__.split(".")[0]:
            raise
        install = f"pip install 'recola-pipeline[{extra}]'" if extra else "reinstall recola-pipeline"
        raise MissingExtra(f"{what} needs the library '{missing}', which is not installed: {install}"
                           + (f" (or {instead})" if instead else "")) from exc
    return getattr(module, attribute) if attribute else module
