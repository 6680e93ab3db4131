"""Every stage of the pipeline, in one ordered list: ``--stage all`` runs the public ones in this order.

One module per stage, named after it; each defines ``STAGE`` (a :class:`~recola_pipeline.pipeline.Stage`)
and the function that builds its artifact. A stage reads what earlier stages wrote through
:mod:`recola_pipeline.readers` and never imports another stage module. The continuous path is
``demo`` (internal) -> ``data`` -> ``audio`` / ``faces`` (internal) -> ``video`` -> ``train`` ->
``evaluate`` -> ``report``; the categorical path is ``demo_clips`` (internal) -> ``clips``
(internal) -> ``mrpn``. To add a stage: write its module and put its ``STAGE`` here.
"""
from __future__ import annotations

from . import (
          audio,
          clips,
          data,
          demo,
          demo_clips,
          evaluate,
          faces,
          mrpn,
          report,
          train,
          video,
)

STAGES = (demo.STAGE, data.STAGE, audio.STAGE, faces.STAGE, video.STAGE, train.STAGE, evaluate.STAGE, report.STAGE,
          demo_clips.STAGE, clips.STAGE, mrpn.STAGE)
