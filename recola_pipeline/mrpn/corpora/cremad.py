"""CREMA-D (Cao et al. 2014): labels from file names, gender-balanced actor folds.

File names ``ActorID_Sentence_Emotion_Level.ext`` (``1001_DFA_ANG_XX.flv``): actor 1001-1091,
one of 12 sentences, emotion ANG DIS FEA HAP NEU SAD, level LO MD HI XX. Audio comes from
``.wav`` / ``.flac`` / ``.mp3`` files (WAV preferred), video from ``.flv`` / ``.mp4`` files with
the same name, anywhere under the root. Actor genders come from the release's
``VideoDemographics.csv`` (columns ``ActorID``, ``Sex``) when it is found under the root or
given; otherwise they are ``unknown`` and folds are balanced by actor count only.

Example
-------
>>> parse_name("1001_DFA_ANG_XX.flv")
{'actor': 1001, 'sentence': 'DFA', 'emotion': 'angry', 'level': 'XX'}
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from ...corpora.base import CorpusError
from .clips import Clip, pick_audio

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
AUDIO, VIDEO = (".wav", ".flac", ".mp3"), (".flv", ".mp4")
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(name: str) -> dict:
    """The fields of a CREMA-D file name; CorpusError when it does not follow the code."""
    match = _NAME.match(Path(name).stem)
    if not match or match.group(3) not in EMOTIONS:
        raise CorpusError(f"{name}: not a CREMA-D file name (ActorID_Sentence_Emotion_Level with emotion one of "
                          f"{', '.join(EMOTIONS)}); rename it or move it out of the corpus folder")
    return {"actor": int(match.group(1)), "sentence": match.group(2), "emotion": EMOTIONS[match.group(3)],
            "level": match.group(4)}


def _genders(root: Path, demographics: Path | None) -> dict[int, str]:
    path = demographics or next(iter(sorted(root.rglob("VideoDemographics.csv"))), None)
    if path is None:
        return {}
    table = pd.read_csv(path)
    if not {"ActorID", "Sex"} <= set(table.columns):
        raise CorpusError(f"{path}: expected columns ActorID and Sex (CREMA-D's VideoDemographics.csv)")
    return {int(a): str(s).strip().lower() for a, s in zip(table.ActorID, table.Sex)}


def read(root: Path, *, demographics: Path | None = None) -> list[Clip]:
    """Every clip under ``root`` (searched recursively), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: CREMA-D folder does not exist; pass the folder holding AudioWAV/ and VideoFlash/")
    files = defaultdict(lambda: {"audio": [], "video": []})
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO + VIDEO):
        parse_name(path.name)
        files[path.stem]["audio" if path.suffix.lower() in AUDIO else "video"].append(path)
    if not files:
        raise CorpusError(f"{root}: no CREMA-D media files ({', '.join(AUDIO + VIDEO)}) found")
    genders = _genders(root, demographics)
    clips = []
    for stem, found in sorted(files.items()):
        fields = parse_name(stem)
        clips.append(Clip(stem, fields["actor"], genders.get(fields["actor"], "unknown"), fields["emotion"],
                          pick_audio(found["audio"]), sorted(found["video"])[0] if found["video"] else None))
    return clips


def folds(clips: list[Clip], n_folds: int = 10) -> list[tuple[int, ...]]:
    """Actor-disjoint folds of about 1/n_folds of the actors each, genders dealt out in turn.

    Actors are sorted by gender then ID and dealt round-robin, so each fold holds about the same
    number of actors of each gender (with ``unknown`` genders: the same number of actors).
    """
    actors = sorted({(c.gender, c.actor) for c in clips})
    n_folds = max(1, min(n_folds, len(actors)))
    dealt = [[] for _ in range(n_folds)]
    for i, (_, actor) in enumerate(actors):
        dealt[i % n_folds].append(actor)
    return [tuple(sorted(fold)) for fold in dealt]
