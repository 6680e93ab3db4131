"""Every stage of the pipeline, in one ordered list: ``--stage all`` runs the public ones in this order.

One module per stage, named after it; each defines ``STAGE`` (a :class:`~recola_pipeline.stage.Stage`)
and the function that builds its artifact from a :class:`~recola_pipeline.stage.StageInputs` (its
settings and its upstream artifacts, complete: a stage never calls back into the runner). A stage reads what earlier stages wrote through
:mod:`recola_pipeline.readers` and never imports another stage module. The continuous path is
``demo`` (internal) -> ``data`` -> ``audio`` / ``faces`` (internal) -> ``video`` -> ``train`` ->
``evaluate`` -> ``report``; the categorical path is ``demo_clips`` (internal) -> ``clips``
(internal) -> ``mrpn``. To add a stage: write its module and add its name to ``ORDER``. The
registry names the stages without importing them (``--help`` lists them in a blink); a stage
module is imported when a run needs it.
"""
from __future__ import annotations

from ..registry import Entry, Registry

#: every stage, upstream before downstream
ORDER = ("demo", "data", "audio", "faces", "video", "train", "evaluate", "report", "demo_clips", "clips", "mrpn")
#: stages built on demand only (``--stage`` does not offer them)
INTERNAL = ("demo", "faces", "demo_clips", "clips")
#: the install extra a stage's libraries come from
EXTRAS = {"faces": "video", "video": "video", "demo_clips": "mrpn", "clips": "mrpn", "mrpn": "mrpn"}

STAGES = Registry("stage", {name: Entry(f"{__name__}.{name}:STAGE", extra=EXTRAS.get(name)) for name in ORDER})


def public_stages() -> list[str]:
    """Stages offered by ``--stage``, in the order ``--stage all`` runs them (nothing imported)."""
    return [name for name in ORDER if name not in INTERNAL]
