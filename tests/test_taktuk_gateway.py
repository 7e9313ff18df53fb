"""apssh --taktuk through a gateway, against real sshd daemons on loopback.

The inner daemons accept the test key only from the gateway's address
(``from="127.0.22.1"`` in their authorized_keys): the client, whose connections
to loopback leave from 127.0.0.1, cannot log into them. The relays TakTuk runs on
the gateway (and on the inner hosts it deploys) bind 127.0.22.1: the ssh config
given with ``-F`` says so with a ``Match exec`` that holds only in an ssh
session to the gateway's or an inner host's address, never in the client.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sshd import Lab, Sshd

from apssh.cli import Appull, Apssh
from apssh.taktuk import SshSettings, TaktukGroup, TaktukHost, command_line, parse_line
from apssh.taktukline import layout

pytestmark = pytest.mark.skipif(shutil.which("taktuk") is None and os.environ.get("CI") != "true",
                                reason="taktuk is not installed (apt-get install taktuk)")

GW = "127.0.22.1"
INNER = [f"127.0.23.{i}" for i in range(1, 5)]
#: an inner address where nothing listens
DEAD = "127.0.23.9"


@dataclass
class Net:
    """The gateway's daemon, the inner one, and what the client gives apssh."""

    gateway: Sshd
    inner: Sshd
    known: Path
    config: Path
    key: Path

    def argv(self, *more: str) -> list[str]:
        """apssh --taktuk's options: the inner daemon's port by default (-p)."""
        return ["--taktuk", "-p", str(self.inner.port), "-k", str(self.key),
                "--known-hosts", str(self.known), "-F", str(self.config), "-l", "root",
                *more]

    @property
    def gw(self) -> str:
        return f"{GW}:{self.gateway.port}"

    def accepted(self, daemon: Sshd, since: int = 0, least: int = 0) -> list[str]:
        """Where each login this daemon accepted came from (after the first
        ``since``), once its log (read by a thread) tells at least ``least``."""
        deadline = time.monotonic() + 10
        while True:
            found = [line.split(" from ", 1)[1].split()[0] for line in list(daemon.log)
                     if "Accepted publickey" in line][since:]
            if len(found) >= least or time.monotonic() > deadline:
                return found
            time.sleep(0.05)  # polls the log for what the daemon wrote already


@pytest.fixture(scope="module")
def net(lab: Lab, tmp_path_factory) -> Iterator[Net]:
    work = tmp_path_factory.mktemp("taktuk-gw")
    gateway = Sshd(lab.keys, f"taktuk-gw-{os.getpid()}", [GW])
    keys = copy.copy(lab.keys)  # the same keys; the inner daemons' own authorized_keys
    keys.authorized_keys = lab.keys.workdir / f"taktuk-inner-{os.getpid()}.keys"
    keys.authorized_keys.write_text(f'from="{GW}" {lab.keys.client_pub}\n')
    keys.authorized_keys.chmod(0o644)
    inner = Sshd(keys, f"taktuk-inner-{os.getpid()}", INNER, max_startups="100:30:200")
    known = work / "known_hosts"
    known.write_text("".join(f"{line}\n" for line in
                             gateway.known_hosts_lines() + inner.known_hosts_lines()))
    # true in an ssh session to the gateway or to an inner host: where the relays run
    behind = lab.keys.workdir / f"taktuk-behind-{os.getpid()}"
    behind.write_text('#!/bin/sh\ncase " $SSH_CONNECTION " in\n'
                      f'  *" {GW} "*|*" 127.0.23."*) exit 0;;\nesac\nexit 1\n')
    behind.chmod(0o755)
    config = lab.keys.workdir / f"taktuk-gw-{os.getpid()}.ssh_config"
    config.write_text(f"Match host 127.0.23.* exec {behind}\n  BindAddress {GW}\n")
    config.chmod(0o644)
    yield Net(gateway, inner, known, config, lab.keys.client_key)
    gateway.stop()
    inner.stop()


def run(capsys, tool, *argv: str) -> tuple[int, str, str]:
    code = tool().main(*argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----- pieces
def test_hosts_behind_a_gateway_are_nested_under_it():
    gw = TaktukHost("gw", "root", 2200)
    hosts = [TaktukHost("a", "root", 22), TaktukHost("b", "root", 22, gw),
             TaktukHost("c", "u", 22, gw), TaktukHost("d", "root", 22, TaktukHost("b", "root",
                                                                                  22, gw))]
    argv = command_line("taktuk", hosts, SshSettings(), [], arity=None)
    spec = argv[argv.index("-b"):]
    words = [word for word in spec if not word.startswith("exec ssh")]
    assert words == [
        "-b", "-l", "root", "-c", "-m", "a", "-e",
        "-b", "-l", "root", "-c", "-G", "gw", "-[",
        "-b", "-l", "root", "-c", "-m", "b", "-[", "-l", "root", "-c", "-m", "d", "-]", "-e",
        "-b", "-l", "u", "-c", "-m", "c", "-e", "-]", "-e"]
    assert "-p 2200" in spec[spec.index("gw") - 2]  # the client reaches gw on its port
    places = layout(hosts)
    assert places.positions == {"1": 0, "2.1": 1, "2.2": 2, "2.1.1": 3}
    assert places.gateways == {"2": ("root@gw", (1, 3, 2)), "2.1": ("root@b", (3,))}
    line = parse_line(b"o 2.1.1 n 6869\n", places.positions)
    assert line is not None and (line.kind, line.index, line.data) == ("stdout", 3, b"hi\n")
    failed = parse_line(b"S 3 2 \n", places.positions)
    assert failed is not None and (failed.index, failed.position) == (None, "2")


def test_a_gateway_that_is_a_target_is_one_node():
    gw = TaktukHost("gw", "root", 22)
    argv = command_line("taktuk", [TaktukHost("a", "root", 22, gw), gw], SshSettings(), [])
    assert "-G" not in argv and argv.count("-m") == 2
    assert argv[argv.index("gw") + 1] == "-["
    assert layout([TaktukHost("a", "root", 22, gw), gw]).positions == {"1": 1, "1.1": 0}


# ----- against the daemons
def test_inner_hosts_are_out_of_the_clients_reach(net, capsys):
    """Without the gateway, the client's own ssh (the same options) is refused."""
    code, out, err = run(capsys, Apssh, *net.argv("-t", " ".join(INNER[:2]), "hostname"))
    assert code == 255 and out == ""
    for host in INNER[:2]:
        assert f"apssh: root@{host}:{net.inner.port}: authentication failed" in err.splitlines()
    assert net.accepted(net.inner).count("127.0.0.1") == 0


def test_gateway_deploys_the_inner_hosts(net, capsys, tmp_path):
    """-g gw: TakTuk reaches every inner host from the gateway, one of them dead;
    outcome lines, exit code, -b, summary and record as in the direct mode, and the
    gateway is no target."""
    before = len(net.accepted(net.gateway)), len(net.accepted(net.inner))
    code, out, err = run(capsys, Apssh, *net.argv(
        "-g", net.gw, "-b", "--record", str(tmp_path), "-t", " ".join([*INNER, DEAD]),
        f"set -- $SSH_CONNECTION; echo from $1; [ $3 != {INNER[1]} ] || exit 3"))
    assert code == 255, err
    rule = "-" * len("127.0.23.[1-4] (4)")
    assert out.splitlines() == [rule, "127.0.23.[1-4] (4)", rule, f"from {GW}"]
    lines = err.splitlines()
    prefix = f"apssh: root@{net.gw}->root@"
    assert f"{prefix}{INNER[1]}:{net.inner.port}: exit 3" in lines
    assert f"{prefix}{DEAD}:{net.inner.port}: connection refused" in lines
    assert lines[-1] == "apssh: 3 ok, 2 failed: 127.0.23.[2,9]"
    # one login on the gateway, the four inner ones from its address, none from here
    assert net.accepted(net.gateway, before[0], 1) == ["127.0.0.1"]
    assert net.accepted(net.inner, before[1], 4) == [GW] * 4
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    data = json.loads((run_dir / "run.json").read_text())
    assert sorted(job["node"] for job in data["jobs"]) == [*INNER, DEAD]
    assert data["nodes"][DEAD]["failed"] == "connection refused"


def test_gateway_down_fails_each_host_behind_it(net, capsys):
    code, out, err = run(capsys, Apssh, *net.argv("-g", f"{GW}:1", "-t", " ".join(INNER[:2]),
                                                  "hostname"))
    assert code == 255 and out == ""
    for host in INNER[:2]:
        assert f"apssh: root@{GW}:1->root@{host}:{net.inner.port}: gateway root@{GW} " \
               "unreachable (connection refused)" in err.splitlines()
    assert err.splitlines()[-1] == "apssh: 0 ok, 2 failed: 127.0.23.[1-2]"


def test_gateway_as_a_target_and_a_chain(net, capsys):
    """The gateway is a target too (one node, one login), an inner host is the
    gateway of another."""
    before = len(net.accepted(net.gateway))
    chain = f"{net.gw}->{INNER[0]}"
    code, out, err = run(capsys, Apssh, *net.argv(
        "-t", f"{net.gw} {chain} {chain}->{INNER[2]}", "set -- $SSH_CONNECTION; echo $1"))
    assert code == 0, err
    assert sorted(out.splitlines()) == sorted(
        [f"{GW}:127.0.0.1", f"{INNER[0]}:{GW}", f"{INNER[2]}:{GW}"])
    assert err.splitlines()[-1] == "apssh: 3 ok, 0 failed"
    assert net.accepted(net.gateway, before, 1) == ["127.0.0.1"]


def test_appull_through_the_gateway(net, capsys, tmp_path):
    """Each inner host's file, staged by its nested position, lands in place."""
    code, out, err = run(capsys, Appull, *net.argv(
        "-g", net.gw, "-t", " ".join(INNER[:3]), "@:/etc/hostname", f"{tmp_path}/{{host}}"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == INNER[:3]
    for host in INNER[:3]:
        assert (tmp_path / host).read_bytes() == Path("/etc/hostname").read_bytes()


def test_library_group_behind_a_gateway(net):
    gw = TaktukHost(GW, "root", net.gateway.port)
    hosts = [TaktukHost(host, "root", net.inner.port, gw) for host in (INNER[3], DEAD)]
    settings = SshSettings(keys=(str(net.key),), known_hosts=(str(net.known),),
                           config=str(net.config))
    results = TaktukGroup(hosts, command="echo $SSH_CONNECTION", settings=settings).run()
    assert results[0].status == 0 and results[0].stdout.split()[::2] == [
        GW.encode(), INNER[3].encode()]
    assert results[1].unreachable and results[1].reason == "connection refused"
    down = TaktukGroup([TaktukHost(INNER[3], "root", net.inner.port, TaktukHost(GW, "root", 1))],
                       command="true", settings=settings).run()
    assert down[0].reason == f"gateway root@{GW} unreachable (connection refused)"


def test_lost_or_failed_gateway_ends_the_hosts_behind_it():
    """What the run tells each host when its gateway fails or is lost (TakTuk tells
    nothing of the hosts nested under it)."""
    from apssh.taktuk_run import TaktukRun

    gw = TaktukHost("gw", "root")
    hosts = [TaktukHost("a", "root"), TaktukHost("b", "root", gateway=gw),
             TaktukHost("c", "root", gateway=gw)]

    def told(*raw: bytes) -> list[tuple[str, bytes | int] | None]:
        run = TaktukRun(["true"], len(hosts), layout=layout(hosts))
        for line in raw:
            parsed = parse_line(line, run.layout.positions if run.layout else None)
            assert parsed is not None
            run.dispatch(parsed)
        return [_first(feed) for feed in run.feeds]

    refused = b"ssh: connect to host gw port 22: Connection refused".hex().encode()
    assert told(b"c 2 " + refused + b"\n", b"S 3 2 \n") == [
        None, ("failed", b"gateway root@gw unreachable (connection refused)"),
        ("failed", b"gateway root@gw unreachable (connection refused)")]
    assert told(b"S 5 2 \n") == [None, ("lost", b"connection lost: gateway root@gw lost"),
                                 ("lost", b"connection lost: gateway root@gw lost")]
    assert told(b"S 3 2.1 \n") == [None, ("failed", b"connection failed"), None]


def _first(feed: Any) -> tuple[str, bytes | int] | None:
    """The first line a feed was given, if any."""
    if feed.queue.empty():
        return None
    line = feed.queue.get_nowait()
    return (line.kind, line.data) if line is not None else None
