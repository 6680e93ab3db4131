"""The console entry point (``recola-pipeline``, ``python run_pipeline.py``).

It imports the command line only inside :func:`main`, so a Ctrl-C while the libraries are
still loading (seconds on a cold machine) ends with exit 130 and one line, not a traceback.
"""
import sys

#: exit code of a run stopped by SIGINT (128 + 2), as :mod:`recola_pipeline.cli` uses
INTERRUPTED = 130


def main(argv=None) -> int:
    """Import and run :func:`recola_pipeline.cli.main`; a Ctrl-C during the import exits 130."""
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("ERROR interrupted while starting; nothing was run", file=sys.stderr)
        return INTERRUPTED
    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
