"""Stage runner on the built-in demo corpus: end to end, reuse, --force, dry run, crash and resume."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_DEMO, as_overrides

from recola_pipeline import cli
from recola_pipeline.cache import read_table
from recola_pipeline.config import load_config
from recola_pipeline.corpora import demo
from recola_pipeline.metrics import pearson, pooled
from recola_pipeline.pipeline import Pipeline
from recola_pipeline.readers import load_data


def checksums(artifact):
    return artifact.manifest()["files"]


def test_demo_corpus_end_to_end(small_config):
    pipeline = Pipeline(small_config())
    data = pipeline.ensure("data")
    table, gold = load_data(data)
    assert sorted(table.partition) == ["devel", "test", "train"]
    assert (table.n_frames == 501).all() and table.labelled.all()
    demo_root = pipeline.ensure("demo").path
    for dim in ("arousal", "valence"):
        # the raters lag the truth by 1.2-2.8 s: the gold standard follows the truth 2 s later
        pairs = [(read_table(demo_root / "truth" / f"{rec}.csv")[dim].to_numpy()[:-50], gold[rec][dim].to_numpy()[50:])
                 for rec in table.recording]
        assert pooled(pearson, pairs) > 0.8, dim
    assert table.agreement_arousal.between(-1, 1).all() and table.agreement_arousal.mean() > 0.3


def test_demo_is_deterministic_and_parallel_safe(small_config, tmp_path):
    one = Pipeline(small_config()).ensure("demo")
    two = Pipeline(small_config(f'run.artifact_root="{tmp_path / "other"}"', "run.jobs=2")).ensure("demo")
    assert one.hash == two.hash
    assert checksums(one) == checksums(two)


def test_demo_media_follow_the_latent_traces(small_config):
    cv2 = pytest.importorskip("cv2")
    import soundfile as sf
    root = Pipeline(small_config("demo.duration_s=60.0")).ensure("demo").path
    truth = read_table(root / "truth" / "D01.csv")
    audio, rate = sf.read(root / "RECOLA-Audio-recordings" / "D01.wav")
    frame = int(rate * 0.04)
    energy = np.array([np.sqrt(np.mean(audio[i * frame:(i + 1) * frame] ** 2)) for i in range(len(truth) - 1)])
    smooth = pd.Series(20 * np.log10(energy + 1e-6)).rolling(100, center=True, min_periods=1).mean()
    assert np.corrcoef(smooth, truth.arousal[:-1])[0, 1] > 0.5
    capture = cv2.VideoCapture(str(root / "RECOLA-Video-recordings" / "D01.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 1500


def test_rerun_reuses_and_force_rebuilds(small_config):
    first = Pipeline(small_config()).ensure("data")
    stamp = first.manifest()["created"]
    again = Pipeline(small_config()).ensure("data")
    assert again.path == first.path and again.manifest()["created"] == stamp
    demo_before = Pipeline(small_config()).ensure("demo").manifest()["created"]
    forced = Pipeline(small_config(), force=["data"])
    forced.ensure("data")
    assert forced.ensure("demo").manifest()["created"] == demo_before  # only the asked stage


def test_hand_edited_artifact_is_rebuilt(small_config):
    artifact = Pipeline(small_config()).ensure("data")
    original = artifact.file("gold/D01.parquet").read_bytes()
    artifact.file("gold/D01.parquet").write_bytes(b"edited")
    rebuilt = Pipeline(small_config()).ensure("data")
    assert rebuilt.file("gold/D01.parquet").read_bytes() == original


def test_killed_stage_resumes_to_identical_artifacts(small_config, tmp_path, monkeypatch):
    reference = Pipeline(small_config(f'run.artifact_root="{tmp_path / "ref"}"')).ensure("demo")
    real = demo.generate_recording
    calls, armed = [], [True]

    def dies_on_second(root, rec_id, *args, **kwargs):
        calls.append(rec_id)
        if armed[0] and len(calls) == 2:
            raise SystemExit("killed mid-stage")
        return real(root, rec_id, *args, **kwargs)

    monkeypatch.setattr(demo, "generate_recording", dies_on_second)
    with pytest.raises(SystemExit):
        Pipeline(small_config()).ensure("demo")
    interrupted = Pipeline(small_config()).artifact("demo")
    assert not interrupted.complete
    assert not list(interrupted.path.rglob(".tmp-*"))
    calls.clear()
    armed[0] = False
    resumed = Pipeline(small_config()).ensure("demo")
    assert calls == ["D02", "D03"]  # D01 was finished before the crash and is not redone
    assert checksums(resumed) == checksums(reference)


def test_cli_dry_run_and_run(small_config, tmp_path, capsys):
    root = tmp_path / "cli"
    args = ["--artifact-root", str(root), "--quiet", "--jobs", "1",
            "--set", "demo.duration_s=20.0", "--set", "demo.recordings_per_partition=1"]
    assert cli.main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "build demo" in out and "build data" in out
    assert cli.main(args + ["--stage", "data"]) == 0
    assert cli.main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "reuse demo" in out and "reuse data" in out


def test_cli_reports_input_errors_with_exit_code_2(tmp_path, caplog):
    code = cli.main(["--corpus", "recola", "--data-root", str(tmp_path / "missing"),
                     "--artifact-root", str(tmp_path), "--quiet"])
    assert code == 2
    assert "missing does not exist" in caplog.text
    assert cli.main(["--set", "corpus.gold_standart=mean", "--quiet"]) == 2
    assert "did you mean 'gold_standard'" in caplog.text


def test_cli_reports_missing_video_weights_with_exit_code_2(tmp_path, caplog, monkeypatch):
    from huggingface_hub import constants

    small = ["--artifact-root", str(tmp_path), "--quiet", "--set", "demo.recordings_per_partition=1",
             "--set", "demo.duration_s=20.0"]
    assert cli.main(["--stage", "video", "--weights", str(tmp_path / "missing.pth"), *small]) == 2
    assert "missing.pth does not exist" in caplog.text
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as on a machine without the model hub
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_cache"))
    assert cli.main(["--stage", "video", "--set", "video.backbone=resnet18", *small]) == 2
    assert "pretrained weights of resnet18 are not cached" in caplog.text and "video.weights" in caplog.text


def test_two_runs_at_once_share_the_store(tmp_path):
    root = tmp_path / "shared_store"
    command = [sys.executable, "-m", "recola_pipeline.cli", "--stage", "data", "--quiet", "--jobs", "1",
               "--artifact-root", str(root), "--set", "demo.duration_s=20.0",
               "--set", "demo.recordings_per_partition=1"]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert [run.wait(timeout=300) for run in runs] == [0, 0], [run.stderr.read() for run in runs]
    pipeline = Pipeline(load_config(None, overrides=[f'run.artifact_root="{root}"', "demo.duration_s=20.0",
                                                     "demo.recordings_per_partition=1"]))
    for stage in ("demo", "data"):
        artifact = pipeline.artifact(stage)
        artifact.verify()  # both runs finished and the manifest matches every file
        assert len(list(artifact.path.parent.iterdir())) == 2  # the folder and its lock file, nothing else



def test_dask_backend_gives_the_same_artifacts_as_one_process(exported, tmp_path):
    """Dask's local cluster (two worker processes) builds every stage of the small demo, faces included,
    byte for byte as the session's store built in one process (``exported``)."""
    pytest.importorskip("distributed")
    def pipeline(root, *settings):
        return Pipeline(load_config(None, overrides=[f'run.artifact_root="{root}"', "run.progress=false",
                                                     *as_overrides(SMALL_DEMO), *settings]))
    one_process = pipeline(exported[0].parent / "store", "run.jobs=1")
    dask = pipeline(tmp_path / "dask", "run.backend=dask", 'run.scheduler="local:2"')
    for stage in ("demo", "data", "audio", "faces", "video", "train", "evaluate"):
        built, reference = dask.ensure(stage), one_process.artifact(stage)
        assert built.hash == reference.hash and reference.complete, stage  # backend and jobs are not in the identity
        assert checksums(built) == checksums(reference), stage
