"""Shared helpers for the asynciojobs tests."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest


class Recorder:
    """Records events in order, and lets tests wait for one (no sleeps)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._waiters: dict[str, asyncio.Event] = {}

    def __call__(self, event: str) -> None:
        self.events.append(event)
        self._event(event).set()

    def _event(self, event: str) -> asyncio.Event:
        return self._waiters.setdefault(event, asyncio.Event())

    async def wait_for(self, event: str) -> None:
        await self._event(event).wait()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


async def never() -> None:
    """A coroutine that only ends when cancelled."""
    await asyncio.Event().wait()


async def value(x: object) -> object:
    return x


async def boom(message: str = "boom") -> None:
    raise ValueError(message)


def default_hangup() -> None:
    """For a child process: SIGHUP as by default, even when the tests run under nohup
    (an ignored SIGHUP is inherited, and left alone by the tools)."""
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def sudo_works() -> bool:
    """Root here, with sudo, and the plain user nepitest (made by the sshd fixture):
    what the sudo tests need (./dev test installs sudo; under CI a skip fails)."""
    import pwd

    try:
        pwd.getpwnam("nepitest")
    except KeyError:
        return False
    return os.geteuid() == 0 and shutil.which("sudo") is not None


# ----- the real sshd, for the apssh tests
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from sshd import Lab, start_lab  # noqa: E402


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    """Real OpenSSH daemons on loopback (see tests/sshd.py); never skipped under CI."""
    if shutil.which("sshd") is None and not os.path.exists("/usr/sbin/sshd"):
        if os.environ.get("CI") == "true":
            pytest.fail("sshd is missing under CI: .ci/run must install openssh-server")
        pytest.skip("sshd is not installed (apt-get install openssh-server)")
    # not under pytest's tmp dir: a plain user must reach authorized_keys (0755 all along)
    workdir = tempfile.mkdtemp(prefix="nepi-ng-sshd-")
    started = start_lab(Path(workdir))
    yield started
    started.stop()
    shutil.rmtree(workdir, ignore_errors=True)


# ----- under CI, a skipped test is a failed one: the suite must run whole
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"


class _StderrAsByDefault(logging.Handler):
    """What Python does with a WARNING when no logging is set up (its last resort):
    the bare message on the stderr of the moment. pytest sets up logging, which
    hides that; the tests check what users see without it."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


@pytest.fixture(autouse=True)
def diagnostics_on_stderr():
    handler = _StderrAsByDefault(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("asynciojobs", "apssh")]
    for logger in loggers:
        logger.addHandler(handler)
    yield
    for logger in loggers:
        logger.removeHandler(handler)
