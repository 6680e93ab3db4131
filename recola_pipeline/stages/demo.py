"""The ``demo`` stage (internal): generates the built-in demo corpus in RECOLA layout.

``features/demo/<hash>/``: the recordings (:mod:`~recola_pipeline.corpora.demo`), ``partitions.csv``
and ``truth/<recording>.csv`` (the latent traces). Recordings already there are kept.
"""
from __future__ import annotations

from ..cache import write_table
from ..corpora import demo
from ..stage import Stage


def _generate_demo_recording(args) -> str:
    root, rec_id, index, cfg = args
    demo.generate_recording(root, rec_id, index, seed=cfg.seed, duration_s=cfg.duration_s,
                            sample_rate=cfg.sample_rate, video=cfg.video)
    return rec_id


def run_demo(inputs, artifact) -> dict:
    """Generate the demo corpus into the artifact folder; recordings already there are kept."""
    cfg = inputs.config.demo
    ids = demo.recording_ids(cfg.recordings_per_partition)
    todo = [(artifact.path, rec_id, i, cfg) for i, rec_id in enumerate(ids)
            if not all(artifact.has(f) for f in demo.recording_files(rec_id, cfg.video))]
    inputs.map(_generate_demo_recording, todo, desc="demo corpus")
    write_table(artifact.file("partitions.csv"), demo.partitions_table(cfg.recordings_per_partition))
    return {"recordings": len(ids), "generated_now": len(todo), "duration_s": cfg.duration_s}


STAGE = Stage(
    name="demo", kind="features", sections=("demo",), upstream=lambda cfg: [],
    libraries=("numpy", "scipy", "soundfile", "opencv-python-headless"), run=run_demo,
)
