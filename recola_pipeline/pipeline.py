"""The stage graph: what each stage depends on, and running stages against the artifact store.

A stage's artifact identity is built from (a) the config sections it reads, (b) the identities
of its upstream stages, (c) the versions of the libraries that change its numbers, (d) the
stage's own code version, and (e) for the data stage of a user corpus, a fingerprint (path,
size, modification time) of every input file. Settings that cannot change a result (jobs,
progress bars, the artifact root) are never part of it.
"""
from __future__ import annotations

import importlib.metadata
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .cache import Artifact, ArtifactError, ArtifactStore
from .config import Config
from .corpora import resolve_modalities
from .parallel import parallel_map

log = logging.getLogger(__name__)


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
        ``(Pipeline, Artifact) -> dict`` that writes the artifact's files and returns the
        information recorded in its manifest.
    version : int
        Bumped when a code change alters the stage's output.
    extra_identity : callable or None
        ``Pipeline -> dict`` of further identity (e.g. an input-file fingerprint, a weights
        file's SHA-256); its ``config_keys`` entry (``{"section.key": value}``) joins ``config``.
    public : bool
        Whether ``--stage`` offers it (internal stages such as ``demo`` are built on demand).
    """

    name: str
    kind: str
    sections: tuple[str, ...]
    upstream: Callable[[Config], list[str]]
    libraries: tuple[str, ...]
    run: Callable
    keys: tuple[str, ...] = ()
    version: int = 1
    extra_identity: Callable | None = field(default=None)
    public: bool = True


def stage_graph() -> dict[str, Stage]:
    """Every stage by name, from the ordered list in :mod:`recola_pipeline.stages`."""
    from .stages import STAGES  # the stage modules import this one: imported on use
    return {stage.name: stage for stage in STAGES}


def public_stages() -> list[str]:
    """Stages offered by ``--stage``, in the order ``--stage all`` runs them."""
    return [name for name, stage in stage_graph().items() if stage.public]


def library_versions(names) -> dict[str, str]:
    """Installed versions of the named distributions ('missing' when not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


class Pipeline:
    """Resolves stage identities and runs stages, reusing complete artifacts.

    Parameters
    ----------
    config : Config
    force : iterable of str
        Stages to recompute even when a complete artifact exists.

    An empty ``train.modalities`` is filled in here with the modalities the corpus has.
    """

    def __init__(self, config: Config, *, force=()):
        resolve_modalities(config)
        self.config = config
        self.store = ArtifactStore(config.run.artifact_root)
        self.force = set(force)
        self.stages = stage_graph()
        self._identities: dict[str, dict] = {}
        self._ready: dict[str, Artifact] = {}
        #: called with ``{"stage", "action", "wall_s", "artifact"}`` once per stage reused or built
        self.on_stage: Callable[[dict], None] | None = None

    def __getstate__(self) -> dict:
        """Sent to worker processes without the run's stage callback (it holds the open run.log)."""
        return {**self.__dict__, "on_stage": None}

    def identity(self, name: str) -> dict:
        """The identity of a stage's artifact under the current config."""
        if name not in self._identities:
            stage = self.stages[name]
            extra = dict(stage.extra_identity(self)) if stage.extra_identity else {}
            config = {s: self.config.section(s) for s in stage.sections}
            config.update({key: self.setting(key) for key in stage.keys})
            config.update(extra.pop("config_keys", {}))
            self._identities[name] = {
                "stage": name,
                "version": stage.version,
                "config": config,
                "upstream": {u: self.artifact(u).hash for u in stage.upstream(self.config)},
                "libraries": library_versions(stage.libraries),
                **extra,
            }
        return self._identities[name]

    def setting(self, key: str):
        """The value of one setting, ``section.key``."""
        section, name = key.split(".")
        return getattr(getattr(self.config, section), name)

    def artifact(self, name: str) -> Artifact:
        """The (possibly not yet built) artifact of a stage."""
        return self.store.artifact(self.stages[name].kind, name, self.identity(name))

    def order(self, names) -> list[str]:
        """The stages needed for ``names``, upstream first, each once."""
        ordered: list[str] = []

        def visit(name):
            for up in self.stages[name].upstream(self.config):
                visit(up)
            if name not in ordered:
                ordered.append(name)

        for name in names:
            visit(name)
        return ordered

    def plan(self, names) -> list[tuple[str, str, str]]:
        """``(stage, action, folder)`` for every stage needed, action 'reuse' or 'build'."""
        rows = []
        for name in self.order(names):
            artifact = self.artifact(name)
            action = "reuse" if artifact.complete and name not in self.force else "build"
            rows.append((name, action, str(artifact.path)))
        return rows

    def ensure(self, name: str) -> Artifact:
        """Return the complete artifact of ``name``, building it (and its upstream) if needed."""
        if name in self._ready:
            return self._ready[name]
        for up in self.stages[name].upstream(self.config):
            self.ensure(up)
        artifact = self.artifact(name)
        was_complete = artifact.complete
        started = time.perf_counter()
        if self._reusable(name, artifact):  # no lock needed to read: a store on read-only media is reused
            self._record(name, "reused", started, artifact)
            return artifact
        with artifact.lock():
            if not was_complete and self._reusable(name, artifact):  # built by another run while this one waited
                self._record(name, "reused", started, artifact)
                return artifact
            if artifact.complete or name in self.force:
                artifact.clear()
            log.info("%s: building %s", name, artifact.path)
            artifact.start()
            try:
                info = self.stages[name].run(self, artifact)
            except BaseException:
                if not artifact.files():  # nothing finished to resume from: leave no trace
                    artifact.clear()
                raise
            artifact.finish(info)
        self._ready[name] = artifact
        self._record(name, "built", started, artifact)
        return artifact

    def _record(self, name: str, action: str, started: float, artifact: Artifact) -> None:
        if self.on_stage is not None:
            self.on_stage({"stage": name, "action": action, "wall_s": round(time.perf_counter() - started, 3),
                           "artifact": str(artifact.path)})

    def _reusable(self, name: str, artifact: Artifact) -> bool:
        if not artifact.complete or name in self.force:
            return False
        try:
            artifact.verify()
        except ArtifactError as exc:
            log.warning("%s: %s; rebuilding it", name, exc)
            return False
        log.info("%s: reusing %s", name, artifact.path)
        self._ready[name] = artifact
        return True

    def map(self, function, items, desc: str):
        """:func:`~recola_pipeline.parallel.parallel_map` with this run's parallel settings."""
        run = self.config.run
        return parallel_map(function, items, jobs=run.jobs, backend=run.backend, scheduler=run.scheduler, desc=desc,
                            progress=run.progress)
