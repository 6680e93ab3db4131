"""The ``audio`` stage: functionals over W-second windows, one row per 40 ms label frame.

Feature sets (``audio.feature_set``): ``egemaps`` (openSMILE's 88 eGeMAPS v02 functionals) and
``compare`` (its 6373 ComParE 2016 functionals), both from
:mod:`~recola_pipeline.extractors.opensmile_windows`, and ``librosa`` (mean and std of MFCC,
log-mel and spectral descriptors, :mod:`~recola_pipeline.extractors.librosa_set`).

``audio`` artifact (``features/audio/<hash>/``): ``w<W>/<recording>.parquet`` for every window
length W, with a ``time`` column (the label frames of the data stage) and the feature set's
columns (float32), and ``info/<recording>.json`` (audio length, padding, NaN/inf counts),
written last once every table has been read back and checked against the label frames. Audio
is mixed down to mono and resampled to ``audio.sample_rate``; audio longer than the label span
is cut at the last label frame plus half the longest window (so the last frames keep full
windows where the audio has them); audio shorter than the label span is accepted with a
warning and its last full window is repeated forwards. NaN and infinite descriptors are stored
as NaN and counted in the manifest; the train stage maps them to 0 after normalisation. The
feature sets are listed in :data:`~recola_pipeline.extractors.AUDIO_FEATURE_SETS`.
"""
from __future__ import annotations

import json
import logging

from ..cache import write_json, write_table
from ..corpora import CorpusError
from ..extractors import AUDIO_FEATURE_SETS
from ..extractors.audio_features import audio_features
from ..extractors.audio_io import load_audio
from ..matrices import verify_frames
from ..stage import Stage, library_versions
from ..readers import load_data
from ..reuse import copy_recording, earlier_recordings, recording_key

log = logging.getLogger(__name__)



def _finished(artifact, row, cfg) -> bool:
    """Whether an earlier run finished this recording: its info file and every window's features are there."""
    names = [f"{w.folder}/{row['recording']}.parquet" for w in cfg.windows]
    return artifact.has(f"info/{row['recording']}.json") and all(artifact.has(name) for name in names)


def extract_recording(args) -> dict:
    """Compute and write one recording's windowed features for every W; returns its summary.

    The summary (``info/<recording>.json``) is written last, after every feature file, and marks
    the recording as finished: a task run again (a resumed run, or dask recomputing the lost
    results of a killed worker) returns it without recomputing. A recording whose key (audio
    bytes, label frames, the stage's settings and code: :mod:`~recola_pipeline.reuse`) is in
    ``earlier``, another complete audio artifact of the store, is copied from there instead.
    """
    artifact, row, cfg, earlier = args
    info_name = f"info/{row['recording']}.json"
    if _finished(artifact, row, cfg):
        return json.loads(artifact.file(info_name).read_text())
    recording, n_frames = row["recording"], int(row["n_frames"])
    names = {w: f"{w.folder}/{{}}.parquet" for w in cfg.windows}
    key = recording_key(artifact, row["audio"], n_frames)
    copied = copy_recording(earlier[key], artifact, recording, list(names.values())) if key in earlier else None
    if copied is not None:
        info = {**copied, "recording": recording, "key": key, "reused_from": earlier[key][0].name}
    else:
        features = audio_features(load_audio(row["audio"], cfg.sample_rate), cfg.sample_rate, cfg.feature_set,
                                  list(names), n_frames, source=row["audio"])
        for w, table in features.tables.items():
            write_table(artifact.file(names[w].format(recording)), table)
        info = {"recording": recording, "audio_s": round(features.duration_s, 3), "padded": features.padded,
                "nonfinite": {w.folder: n for w, n in features.nonfinite.items()}, "key": key}
    for name in names.values():
        verify_frames(artifact.file(name.format(recording)), n_frames)
    write_json(artifact.file(info_name), info)
    return info


def run_audio(inputs, artifact) -> dict:
    """Extract every recording with audio that is not already in the (possibly partial) artifact."""
    cfg = inputs.config.audio
    table, _ = load_data(inputs.artifact("data"))
    rows = [r for r in table.to_dict("records") if isinstance(r["audio"], str) and r["audio"]]
    if not rows:
        raise CorpusError("no recording of this corpus has audio; the audio stage has nothing to do")
    earlier = {} if inputs.forced else earlier_recordings(artifact)
    todo = [(artifact, r, cfg, earlier) for r in rows if not _finished(artifact, r, cfg)]
    reused = []
    for result in inputs.map(extract_recording, todo, desc=f"audio: {cfg.feature_set}"):
        if result["padded"]:
            log.warning("audio: %s has %.2f s of audio, less than its ratings; the last full window is repeated",
                        result["recording"], result["audio_s"])
        if result.get("reused_from"):
            reused.append(result)
    if reused:
        log.info("audio: %d of %d recordings copied from earlier audio artifacts of this store (%s: the same audio "
                 "bytes, label frames, settings and code)", len(reused), len(rows),
                 ", ".join(sorted({r["reused_from"] for r in reused})))
    results = [json.loads(artifact.file(f"info/{r['recording']}.json").read_text()) for r in rows]
    return {"feature_set": cfg.feature_set, "windows_s": cfg.windows_s,
            "n_features": len(AUDIO_FEATURE_SETS[cfg.feature_set].feature_names()),
            "recordings": len(rows), "extracted_now": len(todo) - len(reused), "copied_now": len(reused),
            "padded": sorted(r["recording"] for r in results if r["padded"]),
            "nonfinite_values": {r["recording"]: r["nonfinite"] for r in results if any(r["nonfinite"].values())}}


def _feature_set_identity(config) -> dict:
    """The versions of the libraries the configured feature set computes with."""
    return {"feature_set_libraries": library_versions(AUDIO_FEATURE_SETS[config.audio.feature_set].libraries)}


STAGE = Stage(
    name="audio", kind="features", sections=("audio",), upstream=lambda cfg: ["data"],
    libraries=("soxr", "soundfile", "numpy"), run=run_audio, extra_identity=_feature_set_identity,
    code=lambda cfg: [AUDIO_FEATURE_SETS.module_of(cfg.audio.feature_set)],
)

