"""RAVDESS and CREMA-D readers for the MRPN path: labels from file names, modality matching, actor folds."""
from __future__ import annotations

import pytest

from recola_pipeline.corpora import CorpusError
from recola_pipeline.mrpn.corpora import cremad, ravdess


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_ravdess_matches_modalities_by_code(tmp_path):
    audio = touch(tmp_path / "Actor_03" / "03-01-05-02-01-02-03.wav")
    video_only = touch(tmp_path / "Actor_03" / "02-01-05-02-01-02-03.mp4")
    touch(tmp_path / "Actor_03" / "01-01-05-02-01-02-03.mp4")  # audio-video: used only without a 02 file
    both = touch(tmp_path / "Actor_04" / "01-01-08-01-02-01-04.mp4")
    touch(tmp_path / "notes.txt")
    clips = {c.id: c for c in ravdess.read(tmp_path)}
    assert set(clips) == {"01-05-02-01-02-03", "01-08-01-02-01-04"}
    angry = clips["01-05-02-01-02-03"]
    assert (angry.audio, angry.video, angry.emotion, angry.actor, angry.gender) == (audio, video_only, "angry", 3, "male")
    surprised = clips["01-08-01-02-01-04"]
    assert (surprised.audio, surprised.video, surprised.gender) == (None, both, "female")


@pytest.mark.parametrize("name", ["03-01-09-01-01-01-01.wav", "04-01-01-01-01-01-01.wav", "03-01-01-01-01-01-25.wav",
                                  "clip_01.wav"])
def test_ravdess_rejects_names_outside_the_code(tmp_path, name):
    touch(tmp_path / name)
    with pytest.raises(CorpusError, match=name.replace(".", r"\.")):
        ravdess.read(tmp_path)


def test_ravdess_folds_are_the_twelve_actor_pairs(shared_dir):
    clips = ravdess.read(shared_dir / "data" / "ravdess_speech_16k")
    assert len(clips) == 1440 and all(c.audio is not None and c.video is None for c in clips)
    assert {c.emotion for c in clips} == set(ravdess.EMOTIONS)
    assert {c.actor for c in clips} == set(range(1, 25))
    folds = ravdess.folds(clips)
    assert folds == [(a, a + 1) for a in range(1, 25, 2)]
    for held in folds:
        assert sum(c.actor in held for c in clips) == 120
        assert {clip.gender for clip in clips if clip.actor in held} == {"male", "female"}


def test_cremad_prefers_wav_and_reads_genders(tmp_path):
    for actor in (1001, 1002, 1003, 1004, 1005, 1006):
        wav = touch(tmp_path / "AudioWAV" / f"{actor}_DFA_ANG_XX.wav")
        touch(tmp_path / "AudioMP3" / f"{actor}_DFA_ANG_XX.mp3")
        flv = touch(tmp_path / "VideoFlash" / f"{actor}_DFA_ANG_XX.flv")
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex\n1001,51,Male\n1002,21,Female\n1003,21,Female\n1004,42,Female\n1005,29,Male\n1006,58,Male\n")
    clips = cremad.read(tmp_path)
    assert len(clips) == 6 and clips[-1].audio == wav and clips[-1].video == flv and clips[-1].emotion == "angry"
    assert [c.gender for c in clips] == ["male", "female", "female", "female", "male", "male"]
    folds = cremad.folds(clips, n_folds=3)
    gender = {c.actor: c.gender for c in clips}
    assert sorted(a for fold in folds for a in fold) == [1001, 1002, 1003, 1004, 1005, 1006]
    for fold in folds:  # one man and one woman in each third
        assert sorted(gender[a] for a in fold) == ["female", "male"]


def test_cremad_rejects_unknown_emotion_codes(tmp_path):
    touch(tmp_path / "1001_DFA_XYZ_XX.wav")
    with pytest.raises(CorpusError, match="1001_DFA_XYZ_XX.wav"):
        cremad.read(tmp_path)


def test_cremad_sample_pairs_video_and_audio(shared_dir):
    clips = cremad.read(shared_dir / "data" / "cremad_sample")
    assert len(clips) == 12 and {c.emotion for c in clips} == set(cremad.EMOTIONS.values())
    with_video = [c for c in clips if c.video is not None]
    assert {c.actor for c in with_video} == {1001} and all(c.video.suffix == ".flv" for c in with_video)
    assert all(c.audio is not None and c.audio.suffix == ".wav" for c in clips)  # WAV preferred over MP3
    assert cremad.folds(clips) == [(1001,), (1002,)]
