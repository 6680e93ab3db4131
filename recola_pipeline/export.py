"""``recola-pipeline export``: a trained pipeline as one self-describing, safe folder.

Layout of a bundle ``DIR``:

``model.json``
    Format version, library versions, the dimensions, the label rate, the feature settings
    (audio feature set, sample rate and window per system; video backbone, its weights and their
    SHA-256, the detection settings), every system with its files, the system chosen per
    dimension (best devel CCC) and the devel and test scores with their intervals, each with
    what it was chosen and scored on.
``config.json``
    The whole configuration the model was trained with.
``systems/<system>_<dimension>.skops``, ``video/pca.skops``
    Each system's model, one scikit-learn pipeline (:mod:`~recola_pipeline.estimators.bundle`;
    for late fusion, ``fuse -> postprocess``, whose ``fuse`` step holds the fused systems), and the
    video PCA, in skops format (:mod:`~recola_pipeline.safe_io`: nothing is executed on load).
``systems/<system>_<dimension>.safetensors``
    The weights of a system's recurrent networks (GRU/LSTM), named ``<step path>/<network>/<parameter>``;
    the system's ``network`` entry in ``model.json`` gives their architecture and training settings.
``video/finetuned.safetensors``
    The fine-tuned backbone's weights, when the faces stage fine-tuned it.
``MODEL.md``
    The model card: data, scores, intended use, limits.
``checksums.json``
    SHA-256 of every other file; :func:`~recola_pipeline.model.load_model` verifies them, and
    reads nothing outside the bundle (:mod:`~recola_pipeline.bundle_io`).

``model.json`` also states the train gold standard's range per dimension (``label_range``) and every array of every skops file (``arrays``: dtype and shape, from the
``.npy`` headers); an array that differs, or is not numeric, is refused before it is loaded.
"""
from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, safe_io
from .bundle_io import FORMAT
from .cache import file_sha256, read_table, write_json, write_text
from .config import VIDEO_EMBEDDING_KEYS
from .corpora import CorpusError
from .estimators.sequence import detach_weights
from .modalities import is_causal, row_system, system_key
from .pipeline import Pipeline, library_versions

LIBRARIES = ("numpy", "scipy", "scikit-learn", "skops", "opensmile", "librosa", "soxr", "torch", "timm",
             "opencv-python-headless")


def export_model(pipeline: Pipeline, out: str | Path) -> Path:
    """Write the bundle of the pipeline's trained model to ``out`` (built first if needed).

    Raises
    ------
    CorpusError
        ``out`` exists and is not an empty folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(f"{out} exists and is not an empty folder; pass a new folder to --out")
    evaluate = pipeline.ensure("evaluate")
    train = pipeline.ensure("train")
    results = read_table(evaluate.file("results.csv"))
    selected = read_table(train.file("selected.csv"))
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "systems").mkdir(parents=True)
    systems = {}
    for sel in selected.itertuples():
        key = f"{sel.system}_{sel.dimension}"
        bundle = safe_io.load(train.file(f"model_{key}.skops"))
        systems[key] = {"system": sel.system, "estimator": sel.estimator, "dimension": sel.dimension,
                        "causal": is_causal(sel), "windows": bundle["windows"], "features": list(bundle["features"]),
                        "normalisation": sel.normalisation, "D": float(sel.D), "C": float(sel.C),
                        **_copy_model(evaluate.file(f"system_{key}.skops"), tmp / "systems", key)}
        if sel.estimator != "svr":
            systems[key]["network"] = {k: v for k, v in bundle["model"].named_steps["regress"].get_params().items()
                                       if k != "n_threads"}
    for dim in pipeline.config.corpus.dimensions:
        for causal in (False, True):
            late = system_key("svr", "", "late", causal)
            key = f"{late}_{dim}"
            if evaluate.has(f"system_{key}.skops"):
                fused = [f"{sel.system}_{dim}" for sel in selected.itertuples()  # the evaluate stage's order
                         if sel.dimension == dim and sel.fusion == "none" and is_causal(sel) == causal]
                systems[key] = {"system": late, "dimension": dim, "causal": causal, "inputs": fused,
                                **_copy_model(evaluate.file(f"system_{key}.skops"), tmp / "systems", key)}
    video = _export_video(pipeline, tmp) if "video" in pipeline.config.train.modalities else None
    devel = results[results.partition == "devel"]
    causal_rows = np.array([is_causal(r) for r in devel.itertuples()], dtype=bool)
    chosen, chosen_causal = (
        {r.dimension: f"{row_system(r)}_{r.dimension}"
         for r in rows.loc[rows.groupby("dimension", sort=False)["ccc"].idxmax()].itertuples()} if len(rows) else {}
        for rows in (devel[~causal_rows], devel[causal_rows]))
    score_columns = ["dimension", "modality", "fusion", "estimator", "causal", "partition", "ccc", "ccc_ci_low",
                     "ccc_ci_high", "n_frames", "n_recordings", "chosen_on", "scored_on"]
    description = {
        "format": FORMAT, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recola_pipeline": __version__, "libraries": library_versions(LIBRARIES),
        "dimensions": list(pipeline.config.corpus.dimensions), "label_hop_s": 0.04,
        "max_seconds": pipeline.config.corpus.max_seconds, "corpus": pipeline.config.corpus.name,
        "audio": {"feature_set": pipeline.config.audio.feature_set, "sample_rate": pipeline.config.audio.sample_rate},
        "video": video, "systems": systems, "chosen": chosen, "chosen_causal": chosen_causal,
        "label_range": _label_range(pipeline),
        "scores": results.assign(causal=[is_causal(r) for r in results.itertuples()])[score_columns].to_dict("records"),
        "artifacts": {"train": train.hash, "evaluate": evaluate.hash},
    }
    description["arrays"] = {p.relative_to(tmp).as_posix(): safe_io.array_inventory(p)
                             for p in sorted(tmp.rglob("*.skops"))}
    write_json(tmp / "model.json", description)
    config = {s: pipeline.config.section(s) for s in ("corpus", "audio", "video", "train", "evaluate")}
    write_json(tmp / "config.json", config)
    write_text(tmp / "MODEL.md", model_card(description, results))
    write_json(tmp / "checksums.json", {p.relative_to(tmp).as_posix(): file_sha256(p)
                                        for p in sorted(tmp.rglob("*")) if p.is_file()})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _label_range(pipeline: Pipeline) -> dict[str, list[float]]:
    """Per dimension, the smallest and largest gold value of the train recordings (what the
    model learned from; :meth:`~recola_pipeline.model.TrainedModel.predict` flags predictions
    far outside it)."""
    data = pipeline.ensure("data")
    table = read_table(data.file("recordings.csv"))
    golds = [read_table(data.file(f"gold/{rec}.parquet")) for rec in table.loc[table.partition == "train", "recording"]]
    return {dim: [float(np.nanmin([g[dim].min() for g in golds])), float(np.nanmax([g[dim].max() for g in golds]))]
            for dim in pipeline.config.corpus.dimensions}


def _copy_model(source: Path, folder: Path, key: str) -> dict:
    """Copy a system's model file after checking it loads safely (allow-listed types only); the weights of its
    recurrent networks go to a safetensors file beside it. Returns the ``model`` (and ``weights``) entries."""
    model = safe_io.load(source)
    tensors = detach_weights(model)
    safe_io.dump(model, folder / f"{key}.skops")
    entry = {"model": f"{folder.name}/{key}.skops"}
    if tensors:
        from safetensors.numpy import save_file
        save_file(tensors, str(folder / f"{key}.safetensors"))
        entry["weights"] = f"{folder.name}/{key}.safetensors"
    return entry


def _export_video(pipeline: Pipeline, tmp: Path) -> dict:
    import torch
    from safetensors.torch import save_file

    from .extractors.backbones import weights_digest
    cfg = pipeline.config.video
    faces, video = pipeline.ensure("faces"), pipeline.ensure("video")
    (tmp / "video").mkdir()
    _copy_model(video.file("pca.skops"), tmp / "video", "pca")
    finetuned = None
    if faces.has("finetune/model.pt"):
        state = torch.load(faces.file("finetune/model.pt"), map_location="cpu", weights_only=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "video" / "finetuned.safetensors"))
        finetuned = "video/finetuned.safetensors"
    info = faces.manifest()["info"]
    return {"settings": {k: getattr(cfg, k) for k in VIDEO_EMBEDDING_KEYS}, "weights_used": info["weights"],
            "weights_sha256": weights_digest(cfg.backbone, cfg.weights), "pca": "video/pca.skops",
            "finetuned": finetuned}


def model_card(description: dict, results: pd.DataFrame) -> str:
    """``MODEL.md``: what the model was trained on, its scores and what it is (not) for."""
    rows = [f"| {r.dimension} | {r.modality} | {r.fusion} | {r.estimator} | {'yes' if is_causal(r) else 'no'} | "
            f"{r.partition} | {r.ccc:.3f} "
            f"[{r.ccc_ci_low:.3f}, {r.ccc_ci_high:.3f}] | {r.chosen_on} | {r.scored_on} |"
            for r in results.itertuples() if r.partition in ("devel", "test")]
    chosen = ", ".join(f"{d}: {s}" for d, s in description["chosen"].items())
    causal = ", ".join(f"{d}: {s}" for d, s in description.get("chosen_causal", {}).items())
    causal_line = (f"- Causal systems (no future input; live prediction, docs/live.md), best per dimension on devel: "
                   f"{causal}.\n" if causal else "- No causal system (train.causal was off): offline use only.\n")
    video = description["video"]
    return f"""# Model card

Time-continuous {' and '.join(description['dimensions'])} at 40 ms from speech{' and face video' if video else ''},
trained with recola-pipeline {description['recola_pipeline']} on the `{description['corpus']}` corpus
(train partition; W, D, C and normalisation chosen on devel).

- Audio features: {description['audio']['feature_set']} at {description['audio']['sample_rate']} Hz.
- Video: {f"{video['settings']['backbone']} ({video['weights_used']})" if video else 'not used'}.
- System used per dimension (best devel CCC): {chosen}.
{causal_line}
## Scores (CCC with 95 % bootstrap intervals over recordings)

| dimension | modality | fusion | estimator | causal | partition | CCC [95 % CI] | chosen on | scored on |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## Intended use and limits

For research on continuous affect: predicting arousal and valence traces of recordings like the
training corpus (one speaker, close microphone{', frontal face' if video else ''}). Scores hold for data like the
devel and test partitions above; on other speakers, languages, microphones or rating scales
expect lower agreement and re-validate. Not for decisions about individuals. The predictions
are at 40 ms on the input's own time axis, annotation delay accounted for.
"""
