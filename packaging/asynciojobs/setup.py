"""The companion distribution: its version and dependency come from ``../companion.py``."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parent.parent / "companion.py"))["setup_companion"]()
