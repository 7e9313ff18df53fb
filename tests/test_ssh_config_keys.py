"""apssh against a real OpenSSH sshd: the ssh config (aliases, ProxyJump, parsed
once) and keys and known_hosts (encrypted keys, no checking, parsed once)."""

from __future__ import annotations

import subprocess

import asyncssh
import pytest
from test_ssh_core import Recorder, _created, close_nodes, node  # noqa: F401  (closes what node() opened)

from apssh import Run, SshJob, SshNode
from asynciojobs import Scheduler

# the real readers, before a test counts their calls
asyncssh_read_key = asyncssh.read_private_key
asyncssh_read_known = asyncssh.read_known_hosts


# ----- ssh config
def test_ssh_config_aliases_are_honoured(lab):
    rec = Recorder()
    aliased = SshNode("node1", ssh_config=lab.ssh_config, formatter=rec)  # nothing else given
    _created.append(aliased)
    assert (aliased.username, aliased.port) == ("root", lab.port)
    job = SshJob(aliased, command=Run("echo via alias"))
    assert Scheduler(job).run() is True
    assert rec.out == [("node1", "via alias\n")]


def test_the_ssh_config_is_parsed_once_per_host(lab, tmp_path, monkeypatch):
    from asyncssh.config import SSHClientConfig

    config = tmp_path / "config"
    config.write_text(lab.ssh_config.read_text() + "Host *\n  ServerAliveInterval 30\n")
    parsed = []
    real_parse = SSHClientConfig.parse
    monkeypatch.setattr(SSHClientConfig, "parse",
                        lambda self, path: (parsed.append(path), real_parse(self, path))[1])
    rec = Recorder()
    nodes = [SshNode("node1", ssh_config=config, formatter=rec) for _ in range(3)]
    _created.extend(nodes)
    jobs = [SshJob(n, command=Run("echo once")) for n in nodes]
    assert Scheduler(*jobs).run() is True
    assert rec.out == [("node1", "once\n")] * 3
    assert len(parsed) == 1  # asyncssh would parse it again for each connection


def test_explicit_arguments_win_over_the_ssh_config(lab):
    n = SshNode("node1", ssh_config=lab.ssh_config, username="someone", port=1)
    assert (n.username, n.port) == ("someone", 1)
    ignored = SshNode("node1", ssh_config=None, port=lab.port)
    assert ignored.username == "root"


def test_a_broken_ssh_config_is_named(tmp_path):
    bad = tmp_path / "config"
    bad.write_text("Host x\n  Port notanumber\n")
    with pytest.raises(ValueError, match=f"ssh config {bad}"):
        SshNode("x", ssh_config=bad)


def test_proxyjump_from_the_ssh_config(lab, tmp_path):
    config = tmp_path / "config"
    config.write_text(
        f"Host jumper\n  HostName 127.0.1.1\n  Port {lab.gateway.port}\n  User root\n"
        f"  IdentityFile {lab.keys.client_key}\n  UserKnownHostsFile {lab.known_hosts}\n"
        f"Host behind\n  HostName 127.0.0.5\n  Port {lab.port}\n  ProxyJump jumper\n"
        f"  IdentityFile {lab.keys.client_key}\n  UserKnownHostsFile {lab.known_hosts}\n")
    rec = Recorder()
    behind = SshNode("behind", ssh_config=config, formatter=rec)
    _created.append(behind)
    assert Scheduler(SshJob(behind, command=Run("echo jumped"))).run() is True
    assert rec.out == [("behind", "jumped\n")]


# ----- keys and host-key defaults
def test_an_encrypted_key_is_skipped_with_a_clear_line(tmp_path, capsys):
    from apssh import import_private_key

    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)],
                   check=True)
    assert import_private_key(locked) is None
    err = capsys.readouterr().err
    assert f"key {locked} is encrypted: load it in an agent (ssh-add {locked})" in err
    assert import_private_key(locked, "secret") is not None


def test_known_hosts_none_disables_checking_and_says_so(lab, capsys):
    import apssh.hostkeys

    apssh.hostkeys._warned_none = False
    n = node(lab, known_hosts=None)
    assert "host keys are NOT checked" in capsys.readouterr().err
    assert Scheduler(SshJob(n, command=Run("true"))).run() is True
    node(lab, known_hosts=None)
    assert capsys.readouterr().err == ""  # said once


def test_keys_and_known_hosts_are_parsed_once_per_process(lab, monkeypatch):
    import apssh.hostkeys
    import apssh.keys

    calls = {"keys": 0, "known": 0}
    real_key, real_known = asyncssh_read_key, asyncssh_read_known

    def count_key(*args, **kwds):
        calls["keys"] += 1
        return real_key(*args, **kwds)

    def count_known(*args, **kwds):
        calls["known"] += 1
        return real_known(*args, **kwds)

    monkeypatch.setattr(apssh.keys.asyncssh, "read_private_key", count_key)
    monkeypatch.setattr(apssh.hostkeys.asyncssh, "read_known_hosts", count_known)
    apssh.keys._parsed.clear()
    apssh.hostkeys._parsed.clear()
    nodes = [node(lab, f"127.0.0.{i}") for i in range(1, 6)]
    assert Scheduler(*(SshJob(n, command=Run("true")) for n in nodes)).run() is True
    assert calls == {"keys": 1, "known": 1}
