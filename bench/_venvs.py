"""Throwaway virtual environments holding the releases we compare against."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def throwaway_python(where: Path, requirement: str) -> str | None:
    """A venv at ``where`` with ``requirement`` installed (made once); its python, or None."""
    python = where / "bin" / "python"
    if not python.exists():
        print(f"installing {requirement} into {where} ...", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", requirement],
                           check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            print(f"could not install {requirement}: {exc}", file=sys.stderr)
            return None
    return str(python)
