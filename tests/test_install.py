"""The install provides the distribution names ``apssh`` and ``asynciojobs``.

Packages of the field (r2lab among them) declare ``Requires-Dist: apssh`` and
``asynciojobs``; installed next to nepi-ng, they must find those requirements
satisfied by this project (the companions of ``packaging/``, installed by ``./dev``)
instead of having pip fetch apssh 0.27 and asynciojobs 0.21 over our packages.
Checked with pip itself, offline: a dry run against a local wheel that requires them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import asynciojobs

COMPANIONS = ("apssh", "asynciojobs")
#: the last versions published under those names, before this project
HISTORICAL = {"apssh": (0, 27), "asynciojobs": (0, 21)}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def write_wheel(directory: Path, name: str, version: str, requires: list[str]) -> Path:
    """A wheel of ``name`` holding no code, whose metadata requires ``requires``."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    files = {
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\n"
                                 f"Name: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {req}\n" for req in requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: nepi-ng tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(text.encode())},{len(text.encode())}\n"
                     for path, text in files.items()) + f"{dist_info}/RECORD,,\n"
    path = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in [*files.items(), (f"{dist_info}/RECORD", record)]:
            wheel.writestr(member, text)
    return path


def pip_dry_run(find_links: Path, requirement: str) -> subprocess.CompletedProcess[str]:
    """``pip install --dry-run`` of ``requirement`` in this venv, from ``find_links``
    only (no index, no network, no user configuration); its report on stdout."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
         "--find-links", str(find_links), "--report", "-", "--quiet", requirement],
        capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("name", COMPANIONS)
def test_companion_installed(name: str) -> None:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"distribution {name} not installed: ./dev installs packaging/{name}")
    version = tuple(int(part) for part in dist.version.split(".")[:2])
    assert version > HISTORICAL[name]
    # no code of its own: the import package is nepi-ng's, in step with it
    assert dist.requires == [f"nepi-ng=={asynciojobs.__version__}"]
    assert not [file for file in dist.files or [] if file.suffix == ".py"]


def test_dependents_satisfied_by_this_project(tmp_path: Path) -> None:
    write_wheel(tmp_path, "fake-r2lab", "1.0", ["apssh>=0.27", "asynciojobs>=0.21"])
    done = pip_dry_run(tmp_path, "fake-r2lab")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # nothing to install but the package itself: its requirements are already met
    assert [item["metadata"]["name"] for item in report["install"]] == ["fake-r2lab"]


def test_dry_run_would_see_a_missing_requirement(tmp_path: Path) -> None:
    """The check above can fail: a requirement nepi-ng does not meet is not met."""
    write_wheel(tmp_path, "fake-future", "1.0", ["apssh>=99"])
    done = pip_dry_run(tmp_path, "fake-future")
    assert done.returncode != 0
    assert "apssh" in done.stderr
