"""apssh's hook into asyncssh's ssh config parser (``StrictHostKeyChecking``):
registered on the installed asyncssh (a canary for its upgrades), and harmless
when an asyncssh lacks the private table it relies on."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from apssh import sshconfig
from apssh._asyncssh import asyncssh


def config_file(tmp_path: Path, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text("Host n1\n  HostName 127.0.0.1\n  StrictHostKeyChecking accept-new\n"
                    "Host *\n  StrictHostKeyChecking yes\n")
    return path


def test_canary_the_installed_asyncssh_keeps_strict_host_key_checking(tmp_path):
    """Fails when an asyncssh upgrade moved the private table apssh extends: then
    StrictHostKeyChecking would be ignored (see ``sshconfig``)."""
    assert sshconfig.STRICT_REGISTERED
    option, _ = asyncssh.config.SSHClientConfig._handlers["stricthostkeychecking"]
    assert option == "StrictHostKeyChecking"
    path = config_file(tmp_path)
    assert sshconfig.lookup(path, "n1")[0]["StrictHostKeyChecking"] == "accept-new"
    assert sshconfig.lookup(path, "other")[0]["StrictHostKeyChecking"] == "yes"


@pytest.mark.parametrize("module", [
    SimpleNamespace(),  # no SSHClientConfig at all
    SimpleNamespace(SSHClientConfig=SimpleNamespace(), SSHConfig=SimpleNamespace()),
    SimpleNamespace(SSHClientConfig=SimpleNamespace(_handlers=()),
                    SSHConfig=SimpleNamespace(_set_string=print)),
])
def test_an_asyncssh_without_the_table_is_no_crash(module):
    assert sshconfig.register_strict_host_key_checking(module) is False  # type: ignore[arg-type]


def test_a_table_as_expected_is_extended():
    handlers: dict[str, object] = {}
    module = ModuleType("fake")
    module.SSHClientConfig = SimpleNamespace(_handlers=handlers)  # type: ignore[attr-defined]
    module.SSHConfig = SimpleNamespace(_set_string=print)  # type: ignore[attr-defined]
    assert sshconfig.register_strict_host_key_checking(module) is True
    assert handlers == {"stricthostkeychecking": ("StrictHostKeyChecking", print)}


def test_not_registered_it_is_ignored_with_one_warning(tmp_path, monkeypatch, capsys):
    handlers = dict(asyncssh.config.SSHClientConfig._handlers)
    del handlers["stricthostkeychecking"]
    monkeypatch.setattr(asyncssh.config.SSHClientConfig, "_handlers", handlers)
    monkeypatch.setattr(sshconfig, "STRICT_REGISTERED", False)
    monkeypatch.setattr(sshconfig, "_warned_strict", False)
    first, second = config_file(tmp_path, "first"), config_file(tmp_path, "second")
    assert "StrictHostKeyChecking" not in sshconfig.lookup(first, "n1")[0]
    assert "StrictHostKeyChecking" not in sshconfig.lookup(second, "n1")[0]
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1
    assert f"StrictHostKeyChecking in {first} is ignored" in err


def test_not_registered_no_warning_without_the_option(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sshconfig, "STRICT_REGISTERED", False)
    monkeypatch.setattr(sshconfig, "_warned_strict", False)
    path = tmp_path / "config"
    path.write_text("Host n1\n  HostName 127.0.0.1\n  # StrictHostKeyChecking no\n")
    sshconfig.lookup(path, "n1")
    assert capsys.readouterr().err == ""
