"""RAVDESS (Livingstone & Russo 2018): labels from file names, 12 actor-pair folds.

File names ``MM-VV-EE-II-SS-RR-AA.ext``: modality (01 audio-video, 02 video only, 03 audio
only), vocal channel (01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad,
05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal, 02 strong), statement,
repetition, actor (01-24; odd male, even female). A clip is the code without its modality:
its audio comes from the audio-only file (03), its video from the video-only file (02) or else
the audio-video file (01). Any folder layout works (``Actor_XX/`` as released, or flat).

Example
-------
>>> parse_name("03-01-05-02-01-02-07.flac")
{'modality': 3, 'channel': 1, 'emotion': 'angry', 'intensity': 2, 'statement': 1, 'repetition': 2, 'actor': 7}
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ...corpora.base import CorpusError
from .clips import Clip, pick_audio

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MEDIA = (".wav", ".flac", ".mp3", ".mp4")
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def parse_name(name: str) -> dict:
    """The fields of a RAVDESS file name; CorpusError when it does not follow the code."""
    match = _NAME.match(Path(name).stem)
    fields = [int(g) for g in match.groups()] if match else []
    if not match or not (1 <= fields[0] <= 3 and 1 <= fields[1] <= 2 and 1 <= fields[2] <= 8 and 1 <= fields[6] <= 24):
        raise CorpusError(f"{name}: not a RAVDESS file name (MM-VV-EE-II-SS-RR-AA: modality 01-03, channel 01-02, "
                          "emotion 01-08, actor 01-24); rename it or move it out of the corpus folder")
    return {"modality": fields[0], "channel": fields[1], "emotion": EMOTIONS[fields[2] - 1], "intensity": fields[3],
            "statement": fields[4], "repetition": fields[5], "actor": fields[6]}


def read(root: Path) -> list[Clip]:
    """Every clip under ``root`` (searched recursively), sorted by code.

    Raises
    ------
    CorpusError
        Missing folder, no media file, or a media file whose name is not a RAVDESS code.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: RAVDESS folder does not exist; pass the folder holding Actor_01 ... Actor_24")
    files = defaultdict(lambda: {"audio": [], "video": {}})
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in MEDIA):
        fields = parse_name(path.name)
        key = path.stem[3:]
        if fields["modality"] == 3:
            files[key]["audio"].append(path)
        else:
            files[key]["video"][fields["modality"]] = path
    if not files:
        raise CorpusError(f"{root}: no RAVDESS media files ({', '.join(MEDIA)}) found")
    clips = []
    for key, found in sorted(files.items()):
        fields = parse_name(f"03-{key}")
        video = found["video"].get(2) or found["video"].get(1)
        clips.append(Clip(key, fields["actor"], "male" if fields["actor"] % 2 else "female", fields["emotion"],
                          pick_audio(found["audio"]), video))
    return clips


def folds(clips: list[Clip]) -> list[tuple[int, ...]]:
    """The 12 actor-disjoint folds of the MRPN paper: actors (1, 2), (3, 4), ... (23, 24) held out."""
    actors = sorted({c.actor for c in clips})
    return [pair for pair in ((a, a + 1) for a in range(1, 25, 2)) if set(pair) & set(actors)]
