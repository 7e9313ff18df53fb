"""Host keys as the ssh config says: StrictHostKeyChecking and UserKnownHostsFile per
host, explicit arguments first, against the real sshd of tests/sshd.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import Lab, keygen

from apssh import HostKeyError, Run, SshJob, SshNode
from apssh.cli import Apssh
from asynciojobs import Scheduler
from asynciojobs.loop import run_in_thread_loop

_made: list[SshNode] = []


@pytest.fixture(autouse=True)
def close_nodes() -> Iterator[None]:
    """Close the nodes each test made (those behind a gateway first)."""
    yield
    nodes = list(reversed(_made))
    _made.clear()

    async def close_all() -> None:
        for each in nodes:
            await each.close()

    run_in_thread_loop(close_all())


def write_config(lab: Lab, path: Path, known: str | Path, policy: str | None,
                 name: str = "n1", hostname: str = "127.0.0.1") -> Path:
    """An ssh config naming the lab's daemon ``name``, with these host key options."""
    path.write_text(
        f"Host {name}\n  HostName {hostname}\n  Port {lab.port}\n  User root\n"
        f"  IdentityFile {lab.keys.client_key}\n  UserKnownHostsFile {known}\n"
        + (f"  StrictHostKeyChecking {policy}\n" if policy else ""))
    return path


def node(name: str, config: Path, **kwds) -> SshNode:
    made = SshNode(name, ssh_config=config, timeout=10, **kwds)
    _made.append(made)
    return made


def run(*nodes: SshNode) -> list[BaseException | None]:
    """Run ``true`` on each node; what each raised."""
    jobs = [SshJob(each, command=Run("true"), critical=False) for each in nodes]
    Scheduler(*jobs).run()
    return [job.raised_exception() for job in jobs]


def other_key(tmp_path: Path) -> str:
    keygen(tmp_path / "other", "another host key")
    return " ".join((tmp_path / "other.pub").read_text().split()[:2])


def test_accept_new_records_the_key(lab, tmp_path):
    known = tmp_path / "known"
    config = write_config(lab, tmp_path / "config", known, "accept-new")
    assert run(node("n1", config)) == [None]
    assert f"[127.0.0.1]:{lab.port} ssh-ed25519" in known.read_text()
    # recorded: a node verifying against it connects
    strict = write_config(lab, tmp_path / "strict", known, "yes")
    assert run(node("n1", strict)) == [None]


def test_no_connects_records_and_lets_a_changed_key_through(lab, tmp_path, capfd):
    known = tmp_path / "known"
    config = write_config(lab, tmp_path / "config", known, "no")
    assert run(node("n1", config)) == [None]
    assert f"[127.0.0.1]:{lab.port} ssh-ed25519" in known.read_text()
    # changed: connects anyway (ssh_config(5)), says so, keeps the recorded key
    changed = f"[127.0.0.1]:{lab.port} {other_key(tmp_path)}\n"
    known.write_text(changed)
    for value in ("no", "off"):
        config = write_config(lab, tmp_path / "config", known, value)
        assert run(node("n1", config)) == [None]
    assert known.read_text() == changed
    assert "CHANGED" in capfd.readouterr().err


def test_yes_refuses_in_one_line_that_says_how_to_accept(lab, tmp_path):
    known = tmp_path / "known"
    known.write_text("")
    for value in ("yes", "ask"):
        config = write_config(lab, tmp_path / "config", known, value)
        [exc] = run(node("n1", config))
        assert isinstance(exc, HostKeyError)
        message = str(exc)
        assert "\n" not in message
        assert message.startswith("root@n1: host key unknown: not in known_hosts; to accept it:")
        assert 'host_key_policy="accept-new"' in message
        assert "--host-key-policy accept-new" in message
        assert '"StrictHostKeyChecking accept-new" under "Host n1"' in message
        command = f"ssh-keyscan -p {lab.port} 127.0.0.1 >> {known}"
        assert message.endswith(command)
    # the ssh-keyscan it gives works
    subprocess.run(command, shell=True, check=True, capture_output=True)
    assert run(node("n1", config)) == [None]


def test_user_known_hosts_file_verifies(lab, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    config = write_config(lab, tmp_path / "config", lab.known_hosts, None)
    assert run(node("n1", config)) == [None]
    config = write_config(lab, tmp_path / "config", f"{empty} {lab.known_hosts}", "yes")
    assert run(node("n1", config)) == [None]
    # none: no file; accept-new then connects and records nothing
    config = write_config(lab, tmp_path / "config", "none", "yes")
    assert isinstance(run(node("n1", config))[0], HostKeyError)
    for nothing in ("none", "/dev/null"):
        config = write_config(lab, tmp_path / "config", nothing, "accept-new")
        assert run(node("n1", config)) == [None]


def test_explicit_arguments_win_over_the_config(lab, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    config = write_config(lab, tmp_path / "config", empty, "no")
    [exc] = run(node("n1", config, host_key_policy="verify"))
    assert isinstance(exc, HostKeyError)
    assert empty.read_text() == ""
    config = write_config(lab, tmp_path / "config", empty, "yes")
    assert run(node("n1", config, known_hosts=lab.known_hosts)) == [None]
    assert run(node("n1", config, host_key_policy="off")) == [None]
    assert empty.read_text() == ""


def test_a_bad_value_names_the_file(lab, tmp_path):
    config = write_config(lab, tmp_path / "config", lab.known_hosts, "maybe")
    with pytest.raises(ValueError, match=r"ssh config .*config: StrictHostKeyChecking"):
        node("n1", config)


def test_cli_honours_the_config_and_its_options_win(lab, tmp_path, capsys):
    known = tmp_path / "known"
    known.write_text("")
    config = write_config(lab, tmp_path / "config", known, "accept-new")
    assert Apssh().main("-F", str(config), "--host-key-policy", "verify", "-t", "n1",
                        "true") == 255
    err = capsys.readouterr().err
    assert "n1: host key unknown" in err and "ssh-keyscan" in err
    assert Apssh().main("-F", str(config), "-t", "n1", "true") == 0
    assert f"[127.0.0.1]:{lab.port}" in known.read_text()
    # --known-hosts wins over UserKnownHostsFile
    config = write_config(lab, tmp_path / "config", known, "yes")
    other = tmp_path / "other"
    other.write_text("")
    assert Apssh().main("-F", str(config), "--known-hosts", str(other), "-t", "n1",
                        "true") == 255


def test_gateway_known_nodes_behind_it_accepted_by_a_host_block(lab, tmp_path, capsys):
    gateway_line = next(line for line in lab.known_hosts.read_text().splitlines()
                        if line.startswith("[127.0.1.1]"))
    known = tmp_path / "known"
    known.write_text(gateway_line + "\n")
    config = tmp_path / "config"
    config.write_text(
        f"Host gw\n  HostName 127.0.1.1\n  Port {lab.gateway.port}\n"
        "Host node1\n  HostName 127.0.0.2\nHost node2\n  HostName 127.0.0.3\n"
        f"Host node*\n  Port {lab.port}\n  StrictHostKeyChecking accept-new\n"
        f"Host *\n  User root\n  IdentityFile {lab.keys.client_key}\n"
        f"  UserKnownHostsFile {known}\n")
    gateway = node("gw", config)
    assert run(node("node1", config, gateway=gateway),
               node("node2", config, gateway=gateway)) == [None, None]
    lines = known.read_text().splitlines()
    assert lines[0] == gateway_line and len(lines) == 3
    assert {line.split()[0] for line in lines[1:]} == {f"[127.0.0.{i}]:{lab.port}"
                                                      for i in (2, 3)}
    # the CLI, the same way; the gateway alone is verified
    assert Apssh().main("-F", str(config), "-g", "gw", "-t", "node1,node2", "true") == 0
    known.write_text("")
    assert Apssh().main("-F", str(config), "-g", "gw", "-t", "node1", "true") == 255
    assert "gateway root@gw unreachable (host key unknown" in capsys.readouterr().err
    # behind the gateway, ssh-keyscan runs there
    known.write_text(gateway_line + "\n")
    config.write_text(config.read_text().replace("accept-new", "yes"))
    [exc] = run(node("node1", config, gateway=node("gw", config)))
    assert str(exc).endswith(f"ssh root@gw -p {lab.gateway.port} ssh-keyscan -p {lab.port} "
                             f"127.0.0.2 >> {known}")


def test_a_proxyjump_host_is_verified_by_asyncssh_alone(lab, tmp_path):
    """docs/ssh-hostkeys.md: the jump host of a ``ProxyJump`` is connected by
    asyncssh, so its ``StrictHostKeyChecking accept-new`` is not applied: unknown,
    it is refused, and nothing is recorded; as a ``gateway=`` node it is accepted."""
    known = tmp_path / "known"
    known.write_text("")
    config = tmp_path / "config"
    config.write_text(
        f"Host jump\n  HostName 127.0.1.1\n  Port {lab.gateway.port}\n"
        f"Host target\n  HostName 127.0.0.2\n  Port {lab.port}\n  ProxyJump jump\n"
        "Host node\n  HostName 127.0.0.2\n"
        f"  Port {lab.port}\n"
        f"Host *\n  User root\n  IdentityFile {lab.keys.client_key}\n"
        f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking accept-new\n")
    [exc] = run(node("target", config))
    # reported as the target's, without the one-line hint; the cause names the jump
    assert isinstance(exc, HostKeyError) and "to accept it" not in str(exc)
    assert "127.0.1.1" in str(exc.__cause__)
    assert known.read_text() == ""
    assert run(node("node", config, gateway=node("jump", config))) == [None]
    assert len(known.read_text().splitlines()) == 2  # the gateway and the node, recorded
