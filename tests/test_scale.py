"""Many hosts from one client: the handshake pacer (O(1) per handshake, FIFO, no lost
wake-up), a connect timeout that does not count the wait for a turn, the limit on
open files, and connections closed as soon as their host is done."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys

import pytest
from sshd import Lab, Sshd
from test_ssh_core import node

from apssh.cli import Apssh
from apssh.errors import ConnectTimeoutError
from apssh.pacing import HandshakePacer, pacer


# ----- the pacer alone
async def _held(pace: HandshakePacer, name: str, order: list[str], go: asyncio.Event) -> None:
    async with pace:
        order.append(name)
        await go.wait()


async def _settle(condition) -> None:
    """Let the ready tasks run until ``condition()`` holds (yields, no timing)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_pacer_is_first_come_first_served_one_slot_per_release():
    pace = HandshakePacer(start=2, floor=1, ceiling=2)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abcdefg"}
    tasks = [asyncio.create_task(_held(pace, name, order, gates[name])) for name in "abcdefg"]
    await _settle(lambda: order == ["a", "b"] and pace.waiting == 5)
    for done, then in (("a", "abc"), ("c", "abcd"), ("b", "abcde"), ("d", "abcdef")):
        gates[done].set()
        await _settle(lambda then=then: order == list(then))
        assert pace.in_flight == 2
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert order == list("abcdefg") and pace.in_flight == 0 and pace.waiting == 0
    assert pace.wakeups == pace.queued == 5


async def test_pacer_skips_a_cancelled_waiter_and_loses_no_slot():
    pace = HandshakePacer(start=1, floor=1, ceiling=1)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abcd"}
    tasks = {name: asyncio.create_task(_held(pace, name, order, gates[name])) for name in "abcd"}
    await _settle(lambda: order == ["a"] and pace.waiting == 3)
    tasks["b"].cancel()  # in line: skipped when its turn comes
    await _settle(lambda: tasks["b"].done())
    assert pace.waiting == 2
    gates["a"].set()
    await _settle(lambda: order == ["a", "c"])
    gates["c"].set()
    await _settle(lambda: order == ["a", "c", "d"])
    gates["d"].set()
    await asyncio.gather(*(t for n, t in tasks.items() if n != "b"))
    assert pace.in_flight == 0 and pace.waiting == 0 and not pace.waiters
    assert pace.wakeups == 2 and pace.queued == 3
    assert tasks["b"].cancelled()


async def test_pacer_passes_on_a_slot_given_to_a_waiter_cancelled_before_it_ran():
    pace = HandshakePacer(start=1, floor=1, ceiling=1)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abc"}
    tasks = {name: asyncio.create_task(_held(pace, name, order, gates[name])) for name in "abc"}
    await _settle(lambda: order == ["a"] and pace.waiting == 2)
    gates["a"].set()
    await _settle(lambda: tasks["a"].done())
    # b was handed the slot (woken) but has not run yet: cancel it now
    assert pace.wakeups == 1 and order == ["a"]
    tasks["b"].cancel()
    gates["c"].set()
    await asyncio.gather(tasks["c"])
    assert order == ["a", "c"] and tasks["b"].cancelled()
    assert pace.in_flight == 0 and pace.waiting == 0


async def test_pacer_limit_growth_wakes_what_fits_and_halving_holds_slots_back():
    pace = HandshakePacer(start=2, floor=1, ceiling=8)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abcdefgh"}
    tasks = [asyncio.create_task(_held(pace, name, order, gates[name])) for name in "abcdefgh"]
    await _settle(lambda: len(order) == 2)
    pace.succeeded()  # 2.5: no room yet, nobody woken
    assert pace.wakeups == 0 and int(pace.limit) == 2
    pace.succeeded()  # 2.9
    pace.succeeded()  # 3.24: one more fits, one is woken
    assert pace.wakeups == 1
    await _settle(lambda: len(order) == 3)
    pace.limit = 5.9
    pace.succeeded()  # 6.07
    assert pace.wakeups == 4  # exactly what fits under 6
    await _settle(lambda: len(order) == 6)
    pace.reset()  # halved to 3: six in flight, nobody enters until fewer than 3
    assert int(pace.limit) == 3
    for name in "abc":
        gates[name].set()
    await _settle(lambda: pace.in_flight == 3)
    assert len(order) == 6 and pace.wakeups == 4
    gates["d"].set()
    await _settle(lambda: len(order) == 7)
    assert pace.wakeups == 5
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert order == list("abcdefgh") and pace.wakeups == pace.queued == 6


async def test_pacer_wakes_each_waiting_handshake_exactly_once():
    """4,000 fake handshakes at once, with servers dropping some: one wake-up per
    handshake that waited (the pacer this replaced woke ~13 per host at 4,000)."""
    pace = HandshakePacer()
    entered: list[int] = []

    async def handshake(i: int) -> None:
        async with pace:
            entered.append(i)
            await asyncio.sleep(0)
        if i % 997 == 0:
            pace.reset()
        else:
            pace.succeeded()

    await asyncio.gather(*(handshake(i) for i in range(4000)))
    assert entered == list(range(4000))  # first come, first served
    assert pace.queued == 4000 - 64 and pace.wakeups == pace.queued
    assert pace.in_flight == 0 and pace.waiting == 0 and not pace.waiters


# ----- the connect timeout bounds the handshake, not the wait for a turn
@pytest.fixture
def silent_server():
    """A TCP port on loopback that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def test_waiting_for_a_turn_does_not_time_out(lab, silent_server):
    from apssh.cli.output import Progress

    pace = pacer()
    pace.limit = pace.floor = 1  # one handshake at a time in this loop
    try:
        silent = node(lab, port=silent_server, timeout=4)
        others = [node(lab, f"127.0.0.{i}", timeout=2.5) for i in range(1, 6)]
        first = asyncio.create_task(silent.connect_lazy())
        rest = [asyncio.create_task(n.connect_lazy()) for n in others]
        await _settle(lambda: pace.waiting == 5)  # in line behind the silent host
        shown = io.StringIO()
        Progress(6, shown).draw()
        assert "(5 waiting to connect)" in shown.getvalue()
        with pytest.raises(ConnectTimeoutError):  # its handshake is bounded
            await first
        # they waited 4s for their turn, more than their 2.5s timeout: all connect
        conns = await asyncio.gather(*rest)
        assert all(conns) and pace.waiting == 0
    finally:
        pace.limit, pace.floor = 64, 4
        for each in [silent, *others]:
            await each.close()


# ----- open files
def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_soft_open_file_limit_is_raised_to_the_hard_one():
    out = _child("import resource as r; from apssh.fdlimit import raise_soft_limit; "
                 "r.setrlimit(r.RLIMIT_NOFILE, (256, 700)); "
                 "print(raise_soft_limit(), r.getrlimit(r.RLIMIT_NOFILE))")
    assert out.stdout.split(maxsplit=1) == ["700.0", "(700, 700)\n"], out.stderr


def test_too_many_hosts_for_the_open_file_limit_is_one_line_before_anything_runs(lab):
    code = ("import resource as r, sys; r.setrlimit(r.RLIMIT_NOFILE, (300, 300)); "
            "from apssh.cli import Apssh; "
            f"sys.exit(Apssh().main('-p', '{lab.port}', '-k', '{lab.keys.client_key}', "
            "'-t', '127.0.2.[1-250],127.0.3.[1-250]', 'hostname'))")
    out = _child(code)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("apssh: 500 connections at once need about 564 open files, and "
                          "this process may open 300: use -w 236 (at most 236 hosts at "
                          "once), or raise the limit (ulimit -n 564, as root)\n")


def test_connections_at_once_counts_direct_hosts_and_gateways():
    from apssh.cli.tools import connections_at_once

    class Proxy:
        def __init__(self, gateway: Proxy | None = None) -> None:
            self.gateway = gateway

    gw = Proxy()
    inner = Proxy(gw)  # a gateway behind a gateway
    direct = [Proxy() for _ in range(10)]
    behind = [Proxy(inner) for _ in range(30)]
    assert connections_at_once(direct + behind, None) == 12
    assert connections_at_once(direct + behind, 4) == 6
    assert connections_at_once([*direct, gw], None) == 11


# ----- a host's connection closes when its job is done
@pytest.fixture(scope="module")
def twenty(lab: Lab, tmp_path_factory):
    """20 hosts (``host:port``) on two daemons, and a known_hosts file for them."""
    more = Sshd(lab.keys, f"scale-{os.getpid()}", [f"127.0.6.{i}" for i in range(1, 17)])
    known = tmp_path_factory.mktemp("scale") / "known_hosts"
    known.write_text(lab.known_hosts.read_text() + "\n".join(more.known_hosts_lines()) + "\n")
    hosts = [f"127.0.0.{i}:{lab.port}" for i in range(1, 11)]
    hosts += [f"127.0.6.{i}:{more.port}" for i in range(1, 11)]
    yield hosts, known
    more.stop()


@pytest.mark.parametrize("window", [None, 5])
def test_connections_close_as_their_host_is_done(lab, twenty, capsys, window):
    from asynciojobs import events

    hosts, known = twenty
    count = {"open": 0, "running": 0, "most": 0, "at_end": -1}
    problems: list[str] = []

    def watch(event: events.Event) -> None:
        kind = type(event).__name__
        count["open"] += {"ConnectionOpened": 1, "ConnectionClosed": -1}.get(kind, 0)
        count["running"] += {"JobStarted": 1, "JobEnded": -1}.get(kind, 0)
        count["most"] = max(count["most"], count["open"])
        if count["open"] > count["running"]:
            problems.append(f"{count['open']} open, {count['running']} running at {kind}")
        if kind == "RunEnded":
            count["at_end"] = count["open"]

    unsubscribe = events.subscribe(watch)
    try:
        code = Apssh().main("-k", str(lab.keys.client_key), "--known-hosts", str(known),
                            "-F", "none", "-l", "root", *(["-w", "5"] if window else []),
                            "-t", ",".join(hosts), "echo $SSH_CONNECTION")
    finally:
        unsubscribe()
    out, err = capsys.readouterr()
    assert code == 0 and err.splitlines()[-1] == "apssh: 20 ok, 0 failed"
    assert sorted(line.split(":")[0].strip() for line in out.splitlines()) == \
        sorted(h.split(":")[0] for h in hosts)
    assert problems == [] and count["at_end"] == 0
    assert count["most"] <= (window or 20)
