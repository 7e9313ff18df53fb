"""What the two companion distributions share (``apssh/`` and ``asynciojobs/`` here).

Packages of the field declare ``Requires-Dist: apssh`` and ``asynciojobs``; the code
of both is in the ``nepi-ng`` distribution, and a distribution has one name. Each
companion is an empty distribution under one of the historical names, whose only
content is a dependency on the very ``nepi-ng`` it comes with: installed next to it,
it satisfies those requirements, so that pip does not fetch apssh 0.27 or
asynciojobs 0.21 over our packages.

The version is read from ``asynciojobs/_version.py`` (the one place it is written):
the companions carry nepi-ng's own, so that ``pip show apssh``, ``apssh.__version__``
and ``apssh --version`` agree; it is above the historical 0.27 and 0.21.
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
    """The companions' version: nepi-ng's, which must be above apssh 0.27 (and so
    above asynciojobs 0.21) for the requirements of the field to be met."""
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers <= (0, 27):
        raise ValueError(f"nepi-ng {version}: the companions need a version above 0.27")
    return version


def setup_companion() -> None:
    """``setup()`` for a companion: no code, its version, and nepi-ng as its dependency."""
    version = nepi_ng_version()
    setup(version=companion_version(version), install_requires=[f"nepi-ng=={version}"],
          packages=[], py_modules=[])
