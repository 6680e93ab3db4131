"""Benchmark of the video path (one recording: decode, detect, track, crop, embed) against the
bare backbone forward pass, for two backbones.

Inputs, written once into a temporary folder:

* the GRID talking-face clips of ../shared/data/grid_talking_faces (360 x 288, 25 fps) looped
  into one video of at least 2000 frames;
* a synthetic 1280 x 720 video: the same GRID frames scaled up (1000 frames).

For each (video, backbone) it prints the frames per second of
:func:`recola_pipeline.stages.faces.embed_recording` end to end, the throughput of the bare
forward pass on as many crops in the same batches and threads, and their ratio (target
>= 0.6), plus the rate of decoding alone (grey frames for a grey network, as the stage
decodes them). Each rate is the best of ``--repeats`` runs, stage and bare forward pass
alternating, so that a busy moment of a shared machine does not decide the ratio. Ratios carry
over to other machines; seconds do not. The last line estimates a RECOLA recording (7500
frames at 1080 x 720, taken as the 720p rate).

    python benchmarks/video_stage.py [--backbones fer2013 resnet18] [--threads 2] [--repeats 3]

resnet18 runs with ``weights = "random"`` here (no pretrained file offline); its speed does not
depend on the weights.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from recola_pipeline.cache import Artifact
from recola_pipeline.config import load_config
from recola_pipeline.extractors import video_decode
from recola_pipeline.extractors.backbones import load_backbone
from recola_pipeline.stages.faces import embed_recording

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def write_video(path: Path, frames, fps: float, size: tuple[int, int]) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    count = 0
    for frame in frames:
        writer.write(frame)
        count += 1
    writer.release()
    return count


def grid_loop(out: Path, min_frames: int = 2000) -> Path:
    clips = sorted((SHARED / "data" / "grid_talking_faces").glob("*.mpg"))
    if not clips:
        raise SystemExit("../shared/data/grid_talking_faces is absent")
    frames = [f for clip in clips for _, f in video_decode.frames(clip, "opencv")]
    looped = (frames[i % len(frames)] for i in range(max(min_frames, len(frames))))
    path = out / "grid_loop.mp4"
    write_video(path, looped, 25, (frames[0].shape[1], frames[0].shape[0]))
    return path


def synthetic_720p(out: Path, n_frames: int = 1000) -> Path:
    """GRID's real faces scaled up to 1280 x 720 (900 x 720 picture, reflected borders)."""
    clips = sorted((SHARED / "data" / "grid_talking_faces").glob("*.mpg"))
    frames = [f for clip in clips for _, f in video_decode.frames(clip, "opencv")]
    upscaled = (cv2.copyMakeBorder(cv2.resize(frames[i % len(frames)], (900, 720), interpolation=cv2.INTER_CUBIC),
                                   0, 0, 190, 190, cv2.BORDER_REFLECT) for i in range(n_frames))
    path = out / "synthetic_720p.mp4"
    write_video(path, upscaled, 25, (1280, 720))
    return path


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def best_rate(function, n_frames: int, repeats: int) -> float:
    """Frames per second of the fastest of ``repeats`` calls of ``function``."""
    return n_frames / min(seconds(function) for _ in range(repeats))


def bench(video: Path, backbone_name: str, threads: int, repeats: int, work: Path) -> dict:
    cfg = load_config(None, overrides=[f"video.backbone={backbone_name}",
                                       f"video.weights={'pretrained' if backbone_name == 'fer2013' else 'random'}"]).video
    torch.set_num_threads(threads)
    backbone = load_backbone(backbone_name, cfg.weights, input_size=cfg.input_size)
    probed = video_decode.probe(video)
    n = sum(1 for _ in video_decode.frames(video, probed.decoder, grey=backbone.grey))
    decode = best_rate(lambda: sum(1 for _ in video_decode.frames(video, probed.decoder, grey=backbone.grey)), n,
                       repeats)
    row = {"recording": f"{video.stem}_{backbone_name}", "video": str(video), "decoder": probed.decoder,
           "fps": probed.fps, "n_frames": n}
    shape = (cfg.batch_size, backbone.input_size, backbone.input_size) + (() if backbone.grey else (3,))
    crops = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    backbone.embed(crops)  # warm-up

    def forward():
        for start in range(0, n, cfg.batch_size):
            backbone.embed(crops[:min(cfg.batch_size, n - start)])

    def stage():  # a fresh folder each time: embed_recording skips a recording already done
        folder = Artifact(Path(tempfile.mkdtemp(dir=work)), "faces", {})
        info.update(embed_recording((folder, row, cfg, 1e9, threads, None)))

    info = {}
    stage_times, bare_times = zip(*[(seconds(stage), seconds(forward)) for _ in range(repeats)])
    end_to_end, bare = n / min(stage_times), n / min(bare_times)
    return {"video": video.name, "backbone": f"{backbone_name} ({backbone.input_size} px)", "frames": n,
            "decode_fps": decode, "stage_fps": end_to_end, "bare_fps": bare,
            "ratio": end_to_end / bare, "faces": info["face_frames"] / info["label_frames"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["fer2013", "resnet18"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        videos = [grid_loop(work), synthetic_720p(work)]
        rows = [bench(v, b, args.threads, args.repeats, work) for v in videos for b in args.backbones]
    print(f"torch threads: {args.threads}")
    print(f"{'video':22s} {'backbone':20s} {'frames':>6s} {'decode':>8s} {'stage':>8s} "
          f"{'bare CNN':>8s} {'ratio':>6s} {'faces':>6s}")
    for r in rows:
        print(f"{r['video']:22s} {r['backbone']:20s} {r['frames']:6d} {r['decode_fps']:8.1f} "
              f"{r['stage_fps']:8.1f} {r['bare_fps']:8.1f} {r['ratio']:6.2f} {r['faces']:6.1%}")
    print("(frames per second; ratio = stage / bare CNN, target >= 0.6; faces = label frames with a face)")
    for r in rows:
        if r["video"].startswith("synthetic_720p"):
            print(f"RECOLA estimate, {r['backbone']}: 7500 frames at {r['stage_fps']:.1f} fps = "
                  f"{7500 / r['stage_fps'] / 60:.1f} min per recording on this machine")


if __name__ == "__main__":
    main()
