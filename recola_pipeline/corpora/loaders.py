"""How each corpus layout of :data:`recola_pipeline.corpora.CORPORA` is read from the config."""
from __future__ import annotations

from pathlib import Path

from . import audformat_db, avec2016, manifest as manifest_layout, recola as recola_layout
from .base import Corpus, CorpusError


def demo(corpus_cfg, demo_root: Path | None) -> Corpus:
    """The generated demo corpus (RECOLA layout) under ``demo_root``."""
    corpus = recola_layout.read(demo_root, dimensions=corpus_cfg.dimensions)
    return Corpus("demo", corpus.recordings, corpus.read_ratings)


def manifest(corpus_cfg, demo_root: Path | None) -> Corpus:
    """A manifest CSV (``corpus.manifest``)."""
    if not corpus_cfg.manifest:
        raise CorpusError("corpus 'manifest' needs a manifest CSV: pass --manifest PATH")
    return manifest_layout.read(Path(corpus_cfg.manifest), dimensions=corpus_cfg.dimensions,
                                partitions_csv=corpus_cfg.partitions_csv)


def folder_corpus(module, name: str):
    """The loader of a corpus read from a folder (``--data-root``) by ``module.read``."""
    def read(corpus_cfg, demo_root: Path | None) -> Corpus:
        if not corpus_cfg.data_root:
            raise CorpusError(f"corpus '{name}' needs its folder: pass --data-root PATH")
        if corpus_cfg.gold_standard == "shipped" and "gold_standard" not in getattr(module, "OPTIONS", ()):
            raise CorpusError(f"corpus.gold_standard = 'shipped' reads the gold-standard files of the avec2016 layout "
                              f"(or a manifest's label files); the {name} layout ships none. Pick avec2016, mean or "
                              "ewe to build the gold standard from the individual ratings")
        return module.read(Path(corpus_cfg.data_root), dimensions=corpus_cfg.dimensions,
                           partitions_csv=corpus_cfg.partitions_csv, **layout_options(module, corpus_cfg))
    return read


def layout_options(module, corpus_cfg) -> dict:
    """The config settings a layout's ``read`` takes beyond the common ones (its ``OPTIONS``)."""
    return {key: getattr(corpus_cfg, key) for key in getattr(module, "OPTIONS", ())}


recola = folder_corpus(recola_layout, "recola")
avec = folder_corpus(avec2016, "avec2016")
audformat = folder_corpus(audformat_db, "audformat")
