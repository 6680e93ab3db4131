"""The ``demo_clips`` stage (internal): the generated categorical demo set.

``features/demo_clips/<hash>/``: clips of :mod:`~recola_pipeline.mrpn.corpora.demo` in RAVDESS's naming.
"""
from __future__ import annotations

from ..mrpn.corpora import demo as demo_clips
from ..stage import Stage


def _generate_clip(args) -> str:
    root, actor, code, index, seed, rate = args
    demo_clips.generate_clip(root, actor, code, index, seed=seed, sample_rate=rate)
    return code


def run_demo_clips(inputs, artifact) -> dict:
    """Generate the categorical demo clips into the artifact (clips already there are kept)."""
    cfg = inputs.config.demo
    names = demo_clips.clip_names()
    todo = [(artifact.path, actor, code, i, cfg.seed, cfg.sample_rate) for i, (actor, code) in enumerate(names)
            if not all(artifact.has(f) for f in demo_clips.clip_files(actor, code))]
    inputs.map(_generate_clip, todo, desc="demo clips")
    return {"clips": len(names), "generated_now": len(todo), "classes": [c[0] for c in demo_clips.CLASSES.values()]}


STAGE = Stage(
    name="demo_clips", kind="features", sections=(), upstream=lambda cfg: [],
    libraries=("numpy", "scipy", "soundfile", "opencv-python-headless"), run=run_demo_clips,
    keys=("demo.seed", "demo.sample_rate"),
)


