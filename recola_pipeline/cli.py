"""Command line: ``recola-pipeline`` / ``python run_pipeline.py``.

Exit codes: 0 success, 2 a problem with the input or the configuration (the message says
which file and what to do), 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM (finished work is
kept; the same command resumes), 1 anything unexpected (with a traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import interrupts
from .cache import ArtifactError
from .config import ConfigError, load_config
from .corpora import CORPORA, CorpusError
from .export import export_model
from .extractors.backbones import BackboneError
from .inputs import InputError, writable_folder
from .modalities import MODALITY_STAGES
from .model import SYSTEMS
from .parallel import BACKENDS
from .pipeline import Pipeline, public_stages
from .prediction import predict_inputs

log = logging.getLogger("recola_pipeline")

#: Command-line options that are shorthands for ``--set section.key=value``.
SHORTHANDS = {
    "corpus": "corpus.name",
    "data_root": "corpus.data_root",
    "manifest": "corpus.manifest",
    "partitions": "corpus.partitions_csv",
    "jobs": "run.jobs",
    "backend": "run.backend",
    "scheduler": "run.scheduler",
    "artifact_root": "run.artifact_root",
    "weights": "video.weights",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the options in the README)."""
    parser = argparse.ArgumentParser(
        prog="recola-pipeline",
        description="Time-continuous emotion (arousal, valence) from speech and face video: "
                    "run or rerun the stages of the pipeline. With no option it runs the built-in demo corpus.",
    )
    parser.add_argument("--stage", default="all", choices=[*public_stages(), "all"],
                        help="stage to run; the stages before it are reused from the cache or built (default: all)")
    parser.add_argument("--config", help="TOML configuration file (see configs/)")
    parser.add_argument("--corpus", help=f"corpus layout: {', '.join(CORPORA)}")
    parser.add_argument("--data-root", help="folder of a RECOLA or AVEC 2016 copy")
    parser.add_argument("--manifest", help="manifest CSV for --corpus manifest")
    parser.add_argument("--partitions", help="recording,partition CSV overriding the default partitions")
    parser.add_argument("--weights", help="video backbone weights: a local .safetensors/.pth (timm) or .hdf5 "
                                           "(fer2013) file, 'pretrained' or 'random' (default: pretrained)")
    parser.add_argument("--artifact-root", help="folder holding features/ and models/ (default: .)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (TOML syntax), e.g. --set corpus.gold_standard=mean")
    parser.add_argument("--jobs", type=int, help="parallel workers (-1: all cores)")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="joblib backend for the per-recording and grid loops (default: loky)")
    parser.add_argument("--scheduler", help="for --backend dask: local:N (a LocalCluster of N workers) "
                                            "or tcp://host:8786 (a running scheduler)")
    parser.add_argument("--force", action="store_true", help="recompute the requested stage even when cached")
    parser.add_argument("--dry-run", action="store_true", help="print which artifacts would be reused or built")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def stages_to_run(stage: str, config) -> list[str]:
    """``[stage]``, or for ``all`` every public stage except the feature stages of modalities
    that ``train.modalities`` leaves out (an audio-only corpus runs no video stage), and except
    ``mrpn`` when a user corpus runs the continuous path while ``mrpn.corpus`` is still the demo."""
    if stage != "all":
        return [stage]
    unused = {MODALITY_STAGES[m] for m in MODALITY_STAGES if m not in config.train.modalities}
    if config.corpus.name != "demo" and config.mrpn.corpus == "demo":
        unused.add("mrpn")
    return [name for name in public_stages() if name not in unused]


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = []
    for option, dotted in SHORTHANDS.items():
        value = getattr(args, option)
        if value is not None:
            # a JSON string is a TOML basic string: quotes and backslashes in a path arrive unchanged
            overrides.append(f"{dotted}={value}" if option == "jobs" else f"{dotted}={json.dumps(value)}")
    if args.quiet:
        overrides.append("run.progress=false")
    return overrides + args.set


def build_export_parser() -> argparse.ArgumentParser:
    """``recola-pipeline export --out DIR [the options that chose the model]``."""
    parser = build_parser()
    parser.prog = "recola-pipeline export"
    parser.description = ("Write the trained model of this configuration (built first if needed) as a bundle: "
                          "fitted steps in skops format, settings, scores, a model card, checksums.")
    parser.add_argument("--out", required=True, help="new folder for the bundle")
    return parser


def build_predict_parser() -> argparse.ArgumentParser:
    """``recola-pipeline predict --model DIR INPUT... [--out DIR] [--system NAME]``."""
    parser = argparse.ArgumentParser(
        prog="recola-pipeline predict",
        description="Arousal and valence at 40 ms for new recordings, from an exported model.")
    parser.add_argument("--model", required=True, help="a bundle folder written by recola-pipeline export")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio or video files, AUDIO,VIDEO pairs, folders, or a CSV with audio and video columns")
    parser.add_argument("--out", default="predictions",
                        help="folder for <name>.csv and <name>.png (default: predictions)")
    parser.add_argument("--system", default="best", choices=SYSTEMS,
                        help="best (chosen on devel per dimension), audio, video, early or late")
    parser.add_argument("--format", dest="output_format", choices=["csv", "audformat"], default="csv",
                        help="csv: <name>.csv per recording; audformat: also an audformat database (db.yaml) in --out")
    parser.add_argument("--jobs", type=int, default=1, help="recordings predicted in parallel (-1: all cores)")
    parser.add_argument("--backend", choices=BACKENDS, default="loky")
    parser.add_argument("--scheduler", default="", help="for --backend dask: local:N or tcp://host:8786")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in ("export", "predict") else "run"
    if command == "run":
        args = build_parser().parse_args(argv)
    else:
        args = (build_export_parser() if command == "export" else build_predict_parser()).parse_args(argv[1:])
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        with interrupts.guard():
            return {"run": _run, "export": _export, "predict": _predict}[command](args)
    except interrupts.Interrupted as exc:
        log.error("%s: stopped; finished work is kept, run the same command again to resume", exc)
        return exc.exit_code
    except KeyboardInterrupt:  # raised before the guard was in place, or re-raised by a worker
        log.error("interrupted; finished work is kept, run the same command again to resume")
        return 130


def _os_error(exc: OSError) -> int:
    """Log a failed read or write (disk full, read-only folder, permissions) by file and reason; exit 2."""
    log.error("cannot access %s: %s. Free space or fix permissions there (or pick another folder) and run again: "
              "finished work is kept", exc.filename or "a file", exc.strerror or exc)
    return 2


def _export(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, overrides=_overrides(args))
        writable_folder(Path(args.out).absolute().parent, "--out", create=False)
        out = export_model(Pipeline(config), args.out)
    except (ConfigError, CorpusError, ArtifactError, BackboneError, InputError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)
    print(f"export: {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    try:
        writable_folder(args.out, "--out", create=True)
        outputs = predict_inputs(args.model, args.inputs, Path(args.out), system=args.system, jobs=args.jobs,
                                 backend=args.backend, scheduler=args.scheduler, progress=not args.quiet,
                                 output_format=args.output_format)
    except (CorpusError, ArtifactError, BackboneError, InputError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)
    for path in outputs:
        print(f"predict: {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, overrides=_overrides(args))
        pipeline = Pipeline(config)
        stages = stages_to_run(args.stage, config)
        pipeline.force = set(stages) if args.force else set()
        if args.dry_run:
            for name, action, folder in pipeline.plan(stages):
                print(f"{action:5s} {name:8s} {folder}")
            return 0
        for name in stages:
            artifact = pipeline.ensure(name)
            print(f"{name}: {artifact.path}")
    except (ConfigError, CorpusError, ArtifactError, BackboneError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # disk full, read-only store, permissions: the file and the reason
        return _os_error(exc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
