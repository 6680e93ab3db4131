"""Corpus readers: one module per layout, all returning a :class:`Corpus`."""
from __future__ import annotations

from pathlib import Path

from ..modalities import MODALITY_STAGES
from ..registry import Registry
from .base import PARTITIONS, Corpus, CorpusError, Recording

__all__ = ["CORPORA", "PARTITIONS", "Corpus", "CorpusError", "Recording", "corpus_modalities", "load_corpus",
           "resolve_modalities"]

#: ``corpus.name`` -> ``(corpus_cfg, demo_root) -> Corpus`` (:mod:`.loaders`). A new layout is a module
#: with a ``read(root, *, dimensions, partitions_csv)`` function, its loader and one line here
#: (docs, "Extending").
CORPORA = Registry("corpus layout", {
    "demo": "recola_pipeline.corpora.loaders:demo",
    "recola": "recola_pipeline.corpora.loaders:recola",
    "avec2016": "recola_pipeline.corpora.loaders:avec",
    "manifest": "recola_pipeline.corpora.loaders:manifest",
    "audformat": "recola_pipeline.corpora.loaders:audformat",
})


def load_corpus(corpus_cfg, *, demo_root: Path | None = None) -> Corpus:
    """List the corpus named in ``corpus_cfg`` (a :class:`~recola_pipeline.config.CorpusConfig`).

    ``demo_root`` is the folder of the generated demo corpus (RECOLA layout), used when
    ``corpus_cfg.name == 'demo'``.
    """
    return CORPORA[corpus_cfg.name](corpus_cfg, demo_root)


def corpus_modalities(config) -> list[str]:
    """The modalities (``audio``, ``video``) that at least one recording of the configured corpus has.

    The demo corpus is not generated for this: its settings say whether it has video.
    """
    if config.corpus.name == "demo":
        return ["audio", "video"] if config.demo.video else ["audio"]
    corpus = load_corpus(config.corpus)
    return [m for m in MODALITY_STAGES if any(getattr(r, m) is not None for r in corpus.recordings)]


def resolve_modalities(config) -> None:
    """Fill an empty ``train.modalities`` with the corpus's modalities; refuse one the corpus lacks.

    Raises
    ------
    CorpusError
        ``train.modalities`` names a modality no recording has (before any feature is extracted).
    """
    available = corpus_modalities(config)
    if not config.train.modalities:
        if not available:
            raise CorpusError(f"corpus '{config.corpus.name}' has neither audio nor video files")
        config.train.modalities = available
        return
    lacking = [m for m in config.train.modalities if m not in available]
    if lacking:
        raise CorpusError(f"train.modalities lists {', '.join(lacking)}, but no recording of corpus "
                          f"'{config.corpus.name}' has a {lacking[0]} file: drop it from train.modalities "
                          f"(or leave train.modalities empty to use {', '.join(available) or 'none'})")
