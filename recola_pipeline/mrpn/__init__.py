"""The categorical side path: the Multi-modal Residual Perceptron Network (Chang & Skarbek 2021).

``config`` (its settings, the ``[mrpn]`` section), ``corpora`` (clip corpora: RAVDESS, CREMA-D,
the generated demo set), ``inputs`` (per-clip spectrogram, LLD and face sequences),
``extractors`` (the per-modality CNNs), ``networks`` (N1, N2, N3 = MRPN, late fusion) and
``training``. Its stages are ``demo_clips``, ``clips`` and
``mrpn`` in :mod:`recola_pipeline.stages`; it shares the crop engine and the openSMILE code of
the continuous path (:mod:`recola_pipeline.extractors`).

This module names the path's choices without importing torch (config validation and ``--help``
read them): the clip corpora (``mrpn.corpus``), the clip modalities, the network variants and
the sequence aggregators.
"""
from __future__ import annotations

from ..registry import Entry, Registry

#: ``mrpn.corpus`` -> the module whose ``read(root)`` and ``folds(clips)`` list it (the generated
#: demo set uses RAVDESS's naming). A new clip corpus is one module plus one line here.
CLIP_CORPORA = Registry("clip corpus", {
    "ravdess": Entry("recola_pipeline.mrpn.corpora.ravdess", extra="mrpn"),
    "cremad": Entry("recola_pipeline.mrpn.corpora.cremad", extra="mrpn"),
    "demo": Entry("recola_pipeline.mrpn.corpora.ravdess", extra="mrpn"),
})

#: the clip modalities (``mrpn.modalities``)
CLIP_MODALITIES = ("face", "spectrogram", "lld")
#: N1 (plain fusion), N2 (with unimodal heads), N3 (MRPN)
VARIANTS = ("N1", "N2", "N3")
#: the variants ``mrpn.variants`` may list: the networks and late fusion of the unimodal ones
ALL_VARIANTS = (*VARIANTS, "late")
#: how a branch summarises its sequence of segment features (``mrpn.aggregator``)
AGGREGATORS = ("lstm", "transformer", "stats")
