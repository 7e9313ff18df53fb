"""What the two companion distributions share (``apssh/`` and ``asynciojobs/`` here).

Packages of the field declare ``Requires-Dist: apssh`` and ``asynciojobs``; the code
of both is in the ``nepi-ng`` distribution, and a distribution has one name. Each
companion is an empty distribution under one of the historical names, whose only
content is a dependency on the very ``nepi-ng`` it comes with: installed next to it,
it satisfies those requirements, so that pip does not fetch apssh 0.27 or
asynciojobs 0.21 over our packages.

The version is read from ``asynciojobs/_version.py`` (the one place it is written),
its major number raised by one: always above the historical 0.27 and 0.21, and
moving with nepi-ng's (nepi-ng 0.1.0 comes with apssh 1.1.0 and asynciojobs 1.1.0).
"""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup

VERSION_FILE = Path(__file__).resolve().parent.parent / "asynciojobs" / "_version.py"


def nepi_ng_version() -> str:
    """nepi-ng's version, as ``asynciojobs/_version.py`` says."""
    return str(runpy.run_path(str(VERSION_FILE))["__version__"])


def companion_version(version: str) -> str:
    """The companions' version for nepi-ng's ``version``: its major number plus one."""
    major, _, rest = version.partition(".")
    return f"{int(major) + 1}.{rest}" if rest else f"{int(major) + 1}"


def setup_companion() -> None:
    """``setup()`` for a companion: no code, its version, and nepi-ng as its dependency."""
    version = nepi_ng_version()
    setup(version=companion_version(version), install_requires=[f"nepi-ng=={version}"],
          packages=[], py_modules=[])
