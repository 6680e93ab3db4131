"""What a stage is: the record each stage module defines, below both the runner and the stages.

A stage's artifact identity is built from (a) the config sections it reads, (b) the identities
of its upstream stages, (c) the versions of the libraries that change its numbers, (d) the code
that computes it (:mod:`recola_pipeline.code_identity`), and (e) for the data stage of a user
corpus, a fingerprint (path, size, modification time) of every input file. Settings that cannot
change a result (jobs, progress bars, the artifact root) are never part of it.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes
    ----------
    name : str
    kind : str
        ``features`` or ``models``: which artifact root it writes under.
    sections : tuple of str
        Config sections whose values change its output (all their keys enter its identity).
    keys : tuple of str
        Further settings (``section.key``) it reads; settings read only under a condition are
        returned by ``extra_identity`` under ``config_keys``. Every setting a stage reads must be
        in its identity or an upstream stage's (``tests/test_architecture.py`` checks it);
        ``[run]`` (paths, parallelism, progress bars) never changes a number and is never part of it.
    upstream : callable
        ``Config -> list of stage names`` it reads.
    libraries : tuple of str
        Distributions whose versions change its numbers.
    run : callable
        ``(StageInputs, Artifact) -> dict`` that writes the artifact's files and returns the
        information recorded in its manifest. A stage never sees the runner: it gets its settings
        and its upstream artifacts, complete.
    code : callable or None
        ``Config -> list of module names``: the implementations its settings pick (e.g. the
        audio feature set's module). Their code, the stage module's and every package module
        these import are part of the identity.
    extra_identity : callable or None
        ``Config -> dict`` of further identity (e.g. an input-file fingerprint, a weights
        file's SHA-256); its ``config_keys`` entry (``{"section.key": value}``) joins ``config``.
    """

    name: str
    kind: str
    sections: tuple[str, ...]
    upstream: Callable
    libraries: tuple[str, ...]
    run: Callable
    keys: tuple[str, ...] = ()
    code: Callable | None = None
    extra_identity: Callable | None = field(default=None)

    def modules(self, config) -> list[str]:
        """The modules whose code (with what they import) computes this stage's artifact."""
        return [self.run.__module__, *(self.code(config) if self.code else ())]


@dataclass(frozen=True)
class StageInputs:
    """What a stage's ``run`` is given: the settings, the complete artifacts of every stage upstream of
    it (directly or not), and the run's parallel map.

    Attributes
    ----------
    stage : str
    config : Config
    upstream : dict
        ``stage name -> Artifact``, each complete.
    map : callable
        ``(function, items, desc) -> results`` with the run's jobs, backend and progress bars.
    store_root : Path
        The artifact root (the data stage stores the demo corpus's paths relative to it).
    forced : bool
        ``--force`` named this stage: compute everything, copy nothing from other artifacts
        (:mod:`~recola_pipeline.reuse`).
    """

    stage: str
    config: object
    upstream: dict
    map: Callable
    store_root: Path
    forced: bool = False

    def artifact(self, name: str):
        """The complete artifact of the upstream stage ``name``."""
        if name not in self.upstream:
            raise KeyError(f"stage {self.stage!r} reads {name!r}, which is not upstream of it "
                           f"({', '.join(self.upstream) or 'none'}); declare it in its Stage.upstream")
        return self.upstream[name]


def library_versions(names) -> dict[str, str]:
    """Installed versions of the named distributions ('missing' when not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions
