#!/usr/bin/env python3
"""Run the recola-pipeline stages; see ``python run_pipeline.py --help``."""
import sys

from recola_pipeline.console import main

if __name__ == "__main__":
    sys.exit(main())
