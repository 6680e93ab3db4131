"""Clip corpora of the categorical path: each module's ``read(root) -> list[Clip]``.

They are registered in :data:`recola_pipeline.mrpn.CLIP_CORPORA`.
"""
