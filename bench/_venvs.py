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


INSTALLED = Path("/tmp/nepi-ng-bench-installed")
REPO = Path(__file__).resolve().parent.parent


def installed_nepi_ng() -> Path:
    """The bin/ of a venv holding this checkout installed as users install it (not
    editable, modules compiled), refreshed on every call."""
    python = throwaway_python(INSTALLED, str(REPO))
    if python is None:
        raise SystemExit("could not install nepi-ng into a venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                    str(REPO)], check=True, capture_output=True)
    return INSTALLED / "bin"
