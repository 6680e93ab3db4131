"""Corpus readers: one module per layout, all returning a :class:`Corpus`."""
from __future__ import annotations

from pathlib import Path

from . import avec2016, manifest, recola
from .base import PARTITIONS, Corpus, CorpusError, Recording

__all__ = ["PARTITIONS", "Corpus", "CorpusError", "Recording", "load_corpus"]


def load_corpus(corpus_cfg, *, demo_root: Path | None = None) -> Corpus:
    """List the corpus named in ``corpus_cfg`` (a :class:`~recola_pipeline.config.CorpusConfig`).

    ``demo_root`` is the folder of the generated demo corpus (RECOLA layout), used when
    ``corpus_cfg.name == 'demo'``.
    """
    dims = corpus_cfg.dimensions
    if corpus_cfg.name == "demo":
        corpus = recola.read(demo_root, dimensions=dims)
        return Corpus("demo", corpus.recordings, corpus.read_ratings)
    if corpus_cfg.name == "manifest":
        if not corpus_cfg.manifest:
            raise CorpusError("corpus 'manifest' needs a manifest CSV: pass --manifest PATH")
        return manifest.read(Path(corpus_cfg.manifest), dimensions=dims)
    if not corpus_cfg.data_root:
        raise CorpusError(f"corpus '{corpus_cfg.name}' needs its folder: pass --data-root PATH")
    reader = {"recola": recola, "avec2016": avec2016}[corpus_cfg.name]
    return reader.read(Path(corpus_cfg.data_root), dimensions=dims, partitions_csv=corpus_cfg.partitions_csv)
