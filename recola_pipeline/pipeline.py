"""The runner: resolves each stage's artifact identity and runs stages against the artifact store.

What enters an identity is described in :mod:`recola_pipeline.stage`.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Callable

from .cache import Artifact, ArtifactError, ArtifactStore
from .code_identity import code_hash
from .config import Config
from .corpora import resolve_modalities
from .parallel import parallel_map
from .safe_io import check_model_file
from .stage import Stage, StageInputs, library_versions
from .stages import STAGES

log = logging.getLogger(__name__)


class StageGraph(dict):
    """``name -> Stage`` for every stage, each stage module imported on first look-up."""

    def __missing__(self, name: str) -> Stage:
        self[name] = STAGES[name]
        return self[name]


def stage_graph() -> StageGraph:
    """Every stage by name, in :data:`recola_pipeline.stages.ORDER` (modules imported when looked up)."""
    return StageGraph()


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
            extra = dict(stage.extra_identity(self.config)) if stage.extra_identity else {}
            config = {s: self.config.section(s) for s in stage.sections}
            config.update({key: self.setting(key) for key in stage.keys})
            config.update(extra.pop("config_keys", {}))
            self._identities[name] = {
                "stage": name,
                "code": code_hash(stage.modules(self.config)),
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

    def rebuild_reason(self, name: str) -> str:
        """Why ``name`` would be built: forced, never built, or what differs from its newest complete
        artifact in the store (settings by key, code, upstream stages, library versions)."""
        if name in self.force:
            return "forced (--force)"
        identity = self.identity(name)
        folder = self.artifact(name).path.parent
        built = []
        for manifest in folder.glob("*/manifest.json"):
            try:
                built.append(json.loads(manifest.read_text()))
            except (OSError, ValueError):
                continue
        if not built:
            return "not built yet"
        previous = max(built, key=lambda m: m.get("created", ""))
        before = previous.get("identity", {})
        changes = []
        settings = _differing(_flat(identity["config"]), _flat(before.get("config", {})))
        if settings:
            changes.append("settings " + ", ".join(settings[:3]) + (" ..." if len(settings) > 3 else ""))
        if identity["code"] != before.get("code"):
            changes.append("code")
        for part, label in (("upstream", "upstream "), ("libraries", "versions of ")):
            names = _differing(identity[part], before.get(part, {}))
            if names:
                changes.append(label + ", ".join(names))
        core = {"stage", "config", "code", "upstream", "libraries"}
        rest = _differing({k: v for k, v in identity.items() if k not in core},
                          {k: v for k, v in before.items() if k not in core})
        if rest:
            changes.append(", ".join(rest))
        what = "; ".join(changes) or "its identity"
        return f"{what} changed since {previous.get('hash', '?')}"

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
                info = self.stages[name].run(self.inputs(name), artifact)
            except BaseException:
                if not artifact.files():  # nothing finished to resume from: leave no trace
                    artifact.clear()
                raise
            artifact.finish(info)
        self._ready[name] = artifact
        self._record(name, "built", started, artifact)
        return artifact

    def inputs(self, name: str) -> StageInputs:
        """What the stage ``name`` is given to run: settings and its upstream artifacts (built first)."""
        upstream = {up: self.ensure(up) for up in self.order([name])[:-1]}
        return StageInputs(name, self.config, upstream, self.map, self.store.root, forced=name in self.force)

    def _record(self, name: str, action: str, started: float, artifact: Artifact) -> None:
        if self.on_stage is not None:
            self.on_stage({"stage": name, "action": action, "wall_s": round(time.perf_counter() - started, 3),
                           "artifact": str(artifact.path)})

    def _reusable(self, name: str, artifact: Artifact) -> bool:
        if not artifact.complete or name in self.force:
            return False
        try:
            artifact.verify(check_file=check_model_file)
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


def _text(value) -> str:
    """A value as the manifest stores it (JSON), so that a tuple and the list it was saved as compare equal."""
    return json.dumps(value, sort_keys=True, default=str)


def _differing(now: dict, then: dict) -> list[str]:
    """The keys whose values differ between two identity parts (absent on one side counts), sorted."""
    return sorted(k for k in now.keys() | then.keys() if _text(now.get(k)) != _text(then.get(k)))


def _flat(config: dict) -> dict:
    """``{"section": {"key": v}, "section.key": v}`` -> ``{"section.key": v}``."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
