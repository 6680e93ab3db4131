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
from . import logs
from .corpora import CORPORA
from .modalities import MODALITY_STAGES, SYSTEMS
from .parallel import BACKENDS
from .registry import installed
from .stages import STAGES, public_stages

# what a run needs is imported when it starts: ``--help`` reads names only

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


#: the subcommands beside running stages, with the line ``--help`` shows for each
SUBCOMMANDS = {
    "export": "write the trained model of a configuration or a run as a bundle folder",
    "predict": "arousal and valence at 40 ms for new recordings, from a bundle",
    "runs": "list the named runs under the artifact root",
    "compare": "set two or more runs side by side, with paired bootstrap differences",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the options in the README)."""
    parser = argparse.ArgumentParser(
        prog="recola-pipeline",
        description="Time-continuous emotion (arousal, valence) from speech and face video: "
                    "run or rerun the stages of the pipeline. With no option it runs the built-in demo corpus.",
        epilog="subcommands (recola-pipeline SUBCOMMAND --help for their options):\n"
               + "\n".join(f"  {name:9s} {line}" for name, line in SUBCOMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("--name", help="name of this run: its folder runs/NAME under the artifact root holds run.json, "
                                       "run.log, results.csv and report.html (default: date_time_corpus)")
    return parser


def stages_to_run(stage: str, config) -> list[str]:
    """``[stage]``, or for ``all`` every public stage except the feature stages of modalities
    that ``train.modalities`` leaves out (an audio-only corpus runs no video stage), except
    ``mrpn`` when a user corpus runs the continuous path while ``mrpn.corpus`` is still the demo,
    and except ``mrpn`` where its extra is not installed (with a warning saying how to add it)."""
    if stage != "all":
        return [stage]
    unused = {MODALITY_STAGES[m] for m in MODALITY_STAGES if m not in config.train.modalities}
    if config.corpus.name != "demo" and config.mrpn.corpus == "demo":
        unused.add("mrpn")
    extra = STAGES.entry("mrpn").extra
    if "mrpn" not in unused and not installed(extra):
        log.warning("mrpn: skipped, its libraries are not installed (pip install 'recola-pipeline[%s]')", extra)
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
    """``recola-pipeline export --out DIR [--run NAME | the options that chose the model]``."""
    parser = build_parser()
    parser.prog = "recola-pipeline export"
    parser.description = ("Write the trained model of a named run, or of this configuration, as a bundle: fitted "
                          "steps in skops format, settings, scores, a model card, checksums. The model must have "
                          "been trained (--stage evaluate) under the artifact root: export never trains.")
    parser.epilog = None
    parser.add_argument("--out", required=True, help="new folder for the bundle")
    parser.add_argument("--run", help="export the model of this named run (see recola-pipeline runs)")
    return parser


def build_runs_parser() -> argparse.ArgumentParser:
    """``recola-pipeline runs [--artifact-root DIR]``."""
    parser = argparse.ArgumentParser(prog="recola-pipeline runs", description=SUBCOMMANDS["runs"])
    parser.add_argument("--artifact-root", default=".", help="folder holding runs/ (default: .)")
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    """``recola-pipeline compare A B [...] [--artifact-root DIR] [--out FILE]``."""
    parser = argparse.ArgumentParser(prog="recola-pipeline compare", description=SUBCOMMANDS["compare"])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run names (the first is compared with each other)")
    parser.add_argument("--artifact-root", default=".", help="folder holding runs/ (default: .)")
    parser.add_argument("--out", default="compare.html", help="the comparison as a page (default: compare.html)")
    return parser


def build_predict_parser() -> argparse.ArgumentParser:
    """``recola-pipeline predict --model DIR INPUT... [--out DIR] [--system NAME]``."""
    parser = argparse.ArgumentParser(
        prog="recola-pipeline predict",
        description="Arousal and valence at 40 ms for new recordings, from an exported model.")
    parser.add_argument("--model", required=True, help="a bundle folder written by recola-pipeline export")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="audio or video files, AUDIO,VIDEO pairs, folders, or a CSV with audio and video columns")
    parser.add_argument("--live", metavar="SOURCE",
                        help="stream SOURCE through a causal system, one line per 40 ms frame on stdout: '-' (WAV or "
                             "raw 16-bit PCM on stdin), an audio file, or device:NAME|INDEX (extra [live])")
    parser.add_argument("--rate", type=int, help="--live -: sample rate (Hz) of raw PCM on stdin")
    parser.add_argument("--channels", type=int, default=1, help="--live: channels of raw PCM or a device (default 1)")
    parser.add_argument("--realtime", action="store_true", help="--live FILE: replay the file at real-time pace")
    parser.add_argument("--every", type=int, default=1, help="--live: one line per N frames (default 1: every frame)")
    parser.add_argument("--out", default="predictions",
                        help="folder for <name>.csv and <name>.png (default: predictions)")
    parser.add_argument("--system", choices=SYSTEMS,
                        help="best (chosen on devel per dimension; the default), audio, video, early or late; "
                             "best-causal (the default with --live) or a causal system")
    parser.add_argument("--format", dest="output_format", choices=["csv", "audformat", "json"], default="csv",
                        help="csv: <name>.csv per recording; audformat: also an audformat database (db.yaml) in --out; "
                             "with --live: csv or json lines")
    parser.add_argument("--jobs", type=int, default=1, help="recordings predicted in parallel (-1: all cores)")
    parser.add_argument("--backend", choices=BACKENDS, default="loky")
    parser.add_argument("--scheduler", default="", help="for --backend dask: local:N or tcp://host:8786")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "run"
    parsers = {"run": build_parser, "export": build_export_parser, "predict": build_predict_parser,
               "runs": build_runs_parser, "compare": build_compare_parser}
    args = parsers[command]().parse_args(argv if command == "run" else argv[1:])
    once = logs.console(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        with interrupts.guard():
            if command == "run":
                return _run(args, argv, once)
            return {"export": _export, "predict": _predict, "runs": _runs, "compare": _compare}[command](args)
    except interrupts.Interrupted as exc:
        if getattr(args, "live", None) is not None:  # a live stream ends here: nothing to resume
            log.warning("live: %s; every frame known was written", exc)
        else:
            log.error("%s: stopped; finished work is kept, run the same command again to resume", exc)
        return exc.exit_code
    except KeyboardInterrupt:  # raised before the guard was in place, or re-raised by a worker
        log.error("interrupted; finished work is kept, run the same command again to resume")
        return 130


def user_errors() -> tuple[type, ...]:
    """The errors that are the input's or the configuration's: logged as one line, exit 2."""
    from .cache import ArtifactError
    from .config import ConfigError
    from .corpora import CorpusError
    from .extractors import BackboneError
    from .inputs import InputError
    from .registry import MissingExtra
    from .runs import RunError
    return ConfigError, CorpusError, ArtifactError, BackboneError, InputError, RunError, MissingExtra


def _os_error(exc: OSError) -> int:
    """Log a failed read or write (disk full, read-only folder, permissions) by file and reason; exit 2."""
    log.error("cannot access %s: %s. Free space or fix permissions there (or pick another folder) and run again: "
              "finished work is kept", exc.filename or "a file", exc.strerror or exc)
    return 2


def _export(args: argparse.Namespace) -> int:
    from .config import load_config
    from .export import export_model
    from .inputs import writable_folder
    from .pipeline import Pipeline
    from .runs import load_run
    try:
        if args.run:
            root = Path(args.artifact_root or ".")
            record = load_run(root, args.run)
            config = load_config(None, data={s: v for s, v in record["config"].items() if s != "run"},
                                 source=f"run {args.run}", overrides=[f"run.artifact_root={json.dumps(str(root))}"])
        else:
            config = load_config(args.config, overrides=_overrides(args))
        writable_folder(Path(args.out).absolute().parent, "--out", create=False)
        pipeline = Pipeline(config)
        missing = [name for name, action, _ in pipeline.plan(["evaluate"]) if action == "build"]
        if missing:
            log.error("no trained model for this configuration under %s (the %s stages are not built); train it "
                      "first with the same options: recola-pipeline --stage evaluate ..., or export a named run "
                      "with --run NAME (recola-pipeline runs lists them)", Path(config.run.artifact_root).resolve(),
                      ", ".join(missing))
            return 2
        out = export_model(pipeline, args.out)
    except user_errors() as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)
    print(f"export: {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.live is not None:
        return _predict_live(args)
    if not args.inputs:
        log.error("predict: name the recordings to predict (INPUT ...), or a live source with --live")
        return 2
    if args.output_format == "json":
        log.error("predict: --format json is for --live; files are written as csv or audformat")
        return 2
    from .inputs import writable_folder
    from .prediction import predict_inputs
    try:
        writable_folder(args.out, "--out", create=True)
        outputs = predict_inputs(args.model, args.inputs, Path(args.out), system=args.system or "best", jobs=args.jobs,
                                 backend=args.backend, scheduler=args.scheduler, progress=not args.quiet,
                                 output_format=args.output_format)
    except user_errors() as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)
    for path in outputs:
        print(f"predict: {path}")
    return 0


def _predict_live(args: argparse.Namespace) -> int:
    """``predict --live SOURCE``: lines on stdout, messages on stderr."""
    from .live import run_live
    if args.inputs:
        log.error("predict: --live streams one source; leave out the INPUT files (%s)", " ".join(args.inputs))
        return 2
    if args.output_format == "audformat" or args.every < 1 or args.channels < 1:
        log.error("predict --live: --format must be csv or json, --every and --channels at least 1")
        return 2
    try:
        return run_live(args.model, args.live, system=args.system or "best-causal", rate=args.rate,
                        channels=args.channels, realtime=args.realtime, output_format=args.output_format,
                        every=args.every)
    except user_errors() as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)


def _runs(args: argparse.Namespace) -> int:
    from .compare import runs_table
    table = runs_table(Path(args.artifact_root))
    if table.empty:
        print(f"no runs under {Path(args.artifact_root).resolve() / 'runs'}")
        return 0
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .cache import write_text
    from .compare import compare
    from .runs import RunError
    try:
        text, page = compare(Path(args.artifact_root), args.runs)
        write_text(Path(args.out), page)
    except RunError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        return _os_error(exc)
    print(text)
    print(f"compare: {Path(args.out).resolve()}")
    return 0


def _run(args: argparse.Namespace, argv: list[str], once) -> int:
    from .config import load_config
    from .html_report import build_report
    from .pipeline import Pipeline
    from .runs import Run, default_name, unused_name
    try:
        config = load_config(args.config, overrides=_overrides(args))
        pipeline = Pipeline(config)
        stages = stages_to_run(args.stage, config)
        pipeline.force = set(stages) if args.force else set()
        if args.dry_run:
            for name, action, folder in pipeline.plan(stages):
                why = f"  ({pipeline.rebuild_reason(name)})" if action == "build" else ""
                print(f"{action:5s} {name:8s} {folder}{why}")
            return 0
        name = args.name or unused_name(Path(config.run.artifact_root), default_name(config.corpus.name))
        with Run(Path(config.run.artifact_root), name, argv, config, once=once) as run:
            pipeline.on_stage = run.stage
            for stage in stages:
                artifact = pipeline.ensure(stage)
                print(f"{stage}: {artifact.path}")
            if "evaluate" in pipeline.order(stages) and run.enabled:
                run.attach("results.csv", pipeline.ensure("evaluate").file("results.csv"))
                run.write("report.html", build_report(pipeline, run.record, run.warnings))
        print(f"run {name}: {run.folder}" + (f" (open {run.folder / 'report.html'})"
                                            if (run.folder / "report.html").exists() else ""))
    except user_errors() as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # disk full, read-only store, permissions: the file and the reason
        return _os_error(exc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
