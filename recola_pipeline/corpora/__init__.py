"""Corpus readers: one module per layout, all returning a :class:`Corpus`."""
from __future__ import annotations

from pathlib import Path

from . import audformat_db, avec2016, manifest, recola
from .base import PARTITIONS, Corpus, CorpusError, Recording

__all__ = ["CORPORA", "PARTITIONS", "Corpus", "CorpusError", "Recording", "corpus_modalities", "load_corpus",
           "resolve_modalities"]


def _demo(corpus_cfg, demo_root: Path | None) -> Corpus:
    corpus = recola.read(demo_root, dimensions=corpus_cfg.dimensions)
    return Corpus("demo", corpus.recordings, corpus.read_ratings)


def _manifest(corpus_cfg, demo_root: Path | None) -> Corpus:
    if not corpus_cfg.manifest:
        raise CorpusError("corpus 'manifest' needs a manifest CSV: pass --manifest PATH")
    return manifest.read(Path(corpus_cfg.manifest), dimensions=corpus_cfg.dimensions,
                         partitions_csv=corpus_cfg.partitions_csv)


def folder_corpus(module, name: str):
    """The registry entry of a corpus read from a folder (``--data-root``) by ``module.read``."""
    def read(corpus_cfg, demo_root: Path | None) -> Corpus:
        if not corpus_cfg.data_root:
            raise CorpusError(f"corpus '{name}' needs its folder: pass --data-root PATH")
        return module.read(Path(corpus_cfg.data_root), dimensions=corpus_cfg.dimensions,
                           partitions_csv=corpus_cfg.partitions_csv)
    return read


#: ``corpus.name`` -> ``(corpus_cfg, demo_root) -> Corpus``. A new layout is a module with a
#: ``read(root, *, dimensions, partitions_csv)`` function plus one line here (README, "Extending").
CORPORA = {"demo": _demo, "recola": folder_corpus(recola, "recola"), "avec2016": folder_corpus(avec2016, "avec2016"),
           "manifest": _manifest, "audformat": folder_corpus(audformat_db, "audformat")}


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
    return [m for m in ("audio", "video") if any(getattr(r, m) is not None for r in corpus.recordings)]


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
