"""The public names, their historical import paths, and the version."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import apssh
import asynciojobs


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(asynciojobs) if not name.startswith("_")}
    modules = {
        name for name in public
        if type(getattr(asynciojobs, name)).__name__ == "module"
    }
    assert set(asynciojobs.__all__) == (public - modules) | {"__version__"}
    for name in asynciojobs.__all__:
        assert getattr(asynciojobs, name) is not None


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("asynciojobs.job", ["AbstractJob", "Job"]),
        ("asynciojobs.printjob", ["PrintJob"]),
        ("asynciojobs.purescheduler", ["PureScheduler", "set_debug", "DEBUG"]),
        ("asynciojobs.scheduler", ["Scheduler", "PureScheduler", "SchedulerJob"]),
        ("asynciojobs.sequence", ["Sequence"]),
        ("asynciojobs.watch", ["Watch"]),
        ("asynciojobs.dotstyle", ["DotStyle"]),
        ("asynciojobs.engine", ["Engine"]),
        ("asynciojobs.version", ["__version__"]),
        ("asynciojobs.errors", ["SignalExit", "SchedulerError"]),
    ],
)
def test_historical_import_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_signal_exit_is_a_system_exit_with_the_shell_status():
    exc = asynciojobs.SignalExit(15)
    assert isinstance(exc, SystemExit) and not isinstance(exc, Exception)
    assert (exc.signum, exc.code) == (15, 143)
    assert str(exc) == "stopped by SIGTERM"
    assert "SignalExit" in asynciojobs.__all__


def test_versions_are_the_distributions():
    version = importlib.metadata.version("nepi-ng")
    assert asynciojobs.__version__ == version
    assert apssh.__version__ == version


def test_public_names_have_docstrings():
    for name in asynciojobs.__all__:
        obj = getattr(asynciojobs, name)
        if callable(obj):
            assert obj.__doc__, name


def test_apssh_public_names_and_historical_paths():
    for name in apssh.__all__:
        assert getattr(apssh, name) is not None, name
    for module, names in {
        "apssh.nodes": ["SshNode", "LocalNode"],
        "apssh.node": ["Node"],
        "apssh.process": ["Process", "ExpectTimeoutError", "ExpectEndError"],
        "apssh.group": ["Group", "GroupExpectError", "NodeResult"],
        "apssh.groupcopy": ["Put", "Get"],
        "apssh.sshproxy": ["SshProxy"],
        "apssh.sshjob": ["SshJob", "SshJobScript", "SshJobCollector"],
        "apssh.commands": ["Run", "RunScript", "RunString", "Push", "Pull"],
        "apssh.filecopy": ["Push", "Pull"],
        "apssh.formatters": ["HostFormatter", "TimeHostFormatter", "RawFormatter",
                             "SubdirFormatter", "CaptureFormatter", "TerminalFormatter",
                             "ColonFormatter", "TimeColonFormatter"],
        "apssh.keys": ["load_private_keys", "load_agent_keys", "import_private_key"],
        "apssh.deferred": ["Variables", "Deferred", "Capture"],
        "apssh.service": ["Service"],
        "apssh.errors": ["SudoError", "JobTimeoutError"],
        "apssh.topology": ["close_ssh_in_scheduler", "co_close_ssh_in_scheduler",
                           "topology_dot", "topology_graph", "topology_as_dotfile",
                           "topology_as_pngfile"],
    }.items():
        mod = importlib.import_module(module)
        for name in names:
            assert hasattr(mod, name), f"{module}.{name}"
    with pytest.raises(AttributeError):
        apssh.NoSuchThing  # noqa: B018


def test_import_apssh_does_not_import_asyncssh():
    import subprocess
    import sys

    code = "import sys, apssh; apssh.__version__; print('asyncssh' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_liboqs_found_without_ldconfig(tmp_path, monkeypatch):
    from apssh._asyncssh import find_liboqs

    (tmp_path / "liboqs.so.5").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/no/such/dir:{tmp_path}")
    assert find_liboqs() == str(tmp_path / "liboqs.so.5")


def test_importing_asyncssh_leaves_find_library_alone():
    import subprocess
    import sys

    code = ("import ctypes.util; before = ctypes.util.find_library; import apssh.sshproxy, sys; "
            "print('asyncssh' in sys.modules, ctypes.util.find_library is before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True True", out.stderr
