"""Group: one command on many nodes, on the real sshd (127.0.0.[1-5]) and on LocalNodes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from test_process import mark, nothing_left
from test_ssh_core import Recorder, _created, node

from apssh import Group, GroupExpectError, LocalNode
from apssh.names import local_user

HOSTS = [f"127.0.0.{index}" for index in range(1, 6)]


async def closed(made):
    """Close the nodes ``made`` in the test's loop (and forget them)."""
    for each in made:
        await each.close()
        if each in _created:
            _created.remove(each)


@pytest.fixture
async def five(lab):
    """Five ssh nodes of the test sshd, closed after the test in its own loop."""
    made = [node(lab, host) for host in HOSTS]
    yield made
    await closed(made)


@pytest.fixture(params=["local", "ssh"])
async def some_nodes(request):
    """Three LocalNodes, or five ssh nodes."""
    if request.param == "local":
        made = [LocalNode(formatter=Recorder()) for _ in range(3)]
    else:
        lab = request.getfixturevalue("lab")
        made = [node(lab, host) for host in HOSTS]
    yield made
    await closed(made)


def expected_report(group, lines, summary):
    """The report, with the durations the group measured."""
    return "".join(f"{line} in {result.duration:.2f}s\n"
                   for line, result in zip(lines, group.results, strict=True)) + summary + "\n"


async def test_per_node_values_and_args(five, lab):
    group = Group(five, "echo {host} {fqdn} {rank} {user} {port} {args} {{host}} '{print}'",
                  args=["a", ["b c", "d;"]])
    await group.start()
    results = await group.wait(timeout=10)
    assert [result.state for result in results] == ["ok"] * 5
    args = ["a", "b c d;"] * 3
    for rank, proc in enumerate(group.processes):
        host = HOSTS[rank]
        assert proc.stdout_text == (f"{host} {host} {rank} {local_user()} {lab.port} "
                                    f"{args[rank]} {{host}} {{print}}\n")
    assert group.processes[1].command.endswith("'b c' 'd;' {host} '{print}'")
    assert group.values(2)["rank"] == "2"
    assert group.ok


async def test_expect_on_all_then_write_to_all(some_nodes):
    count = len(some_nodes)
    async with Group(some_nodes, "sh -c 'echo ready; read x; echo got $x from {rank}'",
                     show=False) as group:
        ready = await group.expect(r"^ready$", timeout=10)
        assert [found.group(0) for found in ready] == ["ready"] * count
        await group.write("hello\n")
        got = await group.expect(r"got (?P<word>\w+) from (?P<rank>\d+)", timeout=10)
        assert [(found["word"], found["rank"]) for found in got] == [
            ("hello", str(rank)) for rank in range(count)]
        await group.wait(timeout=10)
    labels = ([f"LOCALNODE#{rank}" for rank in range(count)] if count == 3 else HOSTS)
    assert group.report() == expected_report(
        group, [f"{label}: ok" for label in labels], f"{count} ok, 0 failed")


async def test_close_gives_every_node_end_of_file(some_nodes):
    group = await Group(some_nodes, "cat", show=False).start()
    await group.write(b"one\n")
    await group.close()
    await group.wait(timeout=10)
    assert [proc.stdout for proc in group.processes] == [b"one\n"] * len(some_nodes)
    assert group.ok


async def test_expect_timeout_names_the_nodes_that_did_not_match(five):
    word = mark()
    command = f"sh -c '[ $1 = 2 ] || echo ready; exec sleep 300' {word} {{rank}}"
    async with Group(five, command) as group:
        with pytest.raises(GroupExpectError) as info:
            await group.expect("ready", timeout=2)
        assert isinstance(info.value, TimeoutError)
        assert info.value.missing == ["127.0.0.3"]
        assert sorted(info.value.matches) == [0, 1, 3, 4]
        assert str(info.value) == "pattern 'ready' not seen on stdout within 2s on 1 node(s): " \
                                  "127.0.0.3"
        assert all(proc.running for proc in group.processes)  # they go on
    assert [result.state for result in group.results] == ["killed"] * 5
    assert await nothing_left(word)


async def test_kill_leaves_nothing_running(some_nodes):
    word = mark()
    group = await Group(some_nodes, f"sh -c 'echo started; sleep 300 & sleep 301' {word}",
                        show=False).start()
    await group.expect("started", timeout=10)
    assert not await nothing_left(word, 0)
    results = await group.kill()
    assert [result.state for result in results] == ["killed"] * len(some_nodes)
    assert all(result.duration is not None for result in results)
    assert await nothing_left(word)
    assert group.summary() == f"0 ok, 0 failed, {len(some_nodes)} killed: " + (
        "LOCALNODE#0,LOCALNODE#1,LOCALNODE#2" if len(some_nodes) == 3 else "127.0.0.[1-5]")


async def test_a_failing_node_and_the_report(five):
    group = await Group(five, "exit $(( {rank} == 1 ? 3 : 0 ))").start()
    await group.wait(timeout=10)
    assert not group.ok
    assert group.results[1].exit_status == 3
    assert group.results[1].reason == "exit 3"
    assert group.report() == expected_report(
        group, ["127.0.0.1: ok", "127.0.0.2: failed (exit 3)", "127.0.0.3: ok",
                "127.0.0.4: ok", "127.0.0.5: ok"],
        "4 ok, 1 failed: 127.0.0.2")


async def test_wait_timeout_kills_the_late_nodes(five):
    word = mark()
    group = await Group(five, f"sh -c '[ $1 = 3 ] && exec sleep 300; [ $1 = 1 ] && exit 3; "
                              f"exit 0' {word} {{rank}}").start()
    results = await group.wait(timeout=3)
    assert [result.state for result in results] == ["ok", "failed", "ok", "timed out", "ok"]
    assert results[3].reason == "still running after 3s"
    assert group.report() == expected_report(  # as in docs/processes.md
        group, ["127.0.0.1: ok", "127.0.0.2: failed (exit 3)", "127.0.0.3: ok",
                "127.0.0.4: timed out (still running after 3s)", "127.0.0.5: ok"],
        "3 ok, 1 failed: 127.0.0.2, 1 timed out: 127.0.0.4")
    assert await nothing_left(word)


async def test_an_unreachable_node_fails_and_the_others_run(lab):
    nodes = [node(lab, "127.0.0.1"), node(lab, "127.0.0.2", port=1)]
    try:
        group = await Group(nodes, "echo hi").start()
        results = await group.wait(timeout=10)
        assert [result.state for result in results] == ["ok", "failed"]
        assert results[1].reason and results[1].duration is None
        assert group.summary() == "1 ok, 1 failed: 127.0.0.2"
        with pytest.raises(GroupExpectError, match=r"127\.0\.0\.2$"):
            await group.expect("hi", timeout=5)
    finally:
        await closed(nodes)


async def test_misuse_is_refused():
    nodes = [LocalNode(formatter=Recorder())]
    with pytest.raises(TypeError):
        Group(nodes, "echo {args}", args="abc")
    with pytest.raises(ValueError, match="empty"):
        Group(nodes, "echo {args}", args=[])
    group = Group(nodes, "true")
    assert [result.state for result in group.results] == ["not started"]
    with pytest.raises(RuntimeError, match="start"):
        await group.wait()
    await group.start()
    with pytest.raises(RuntimeError, match="already"):
        await group.start()
    await group.wait(timeout=10)
    assert group.summary() == "1 ok, 0 failed"


async def test_cancelled_inside_async_with_kills_every_node(some_nodes):
    word = mark()
    started = asyncio.Event()
    holder: list[Group] = []

    async def body() -> None:
        async with Group(some_nodes, f"sh -c 'echo started; sleep 300' {word}",
                         show=False) as group:
            holder.append(group)
            await group.expect("started", timeout=10)
            started.set()
            await group.wait()

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [result.state for result in holder[0].results] == ["killed"] * len(some_nodes)
    assert await nothing_left(word)


# ----- per-node data to write
async def test_write_gives_each_node_its_own_data(some_nodes):
    count = len(some_nodes)
    group = await Group(some_nodes, "cat", show=False).start()
    await group.write([f"item {rank}\n" for rank in range(count)])           # by rank
    await group.write(lambda rank: None if rank == 1 else f"rank {rank}\n")  # a function
    await group.write(b"all\n")                                               # the same
    await group.close()
    await group.wait(timeout=10)
    assert [proc.stdout_text for proc in group.processes] == [
        f"item {rank}\n" + ("" if rank == 1 else f"rank {rank}\n") + "all\n"
        for rank in range(count)]


async def test_write_per_node_misuse_is_refused():
    group = await Group([LocalNode(formatter=Recorder()) for _ in range(2)], "cat",
                        show=False).start()
    with pytest.raises(ValueError, match="1 items for 2 nodes"):
        await group.write(["only one"])
    with pytest.raises(TypeError, match="int"):
        await group.write(3)  # type: ignore[arg-type]
    await group.write((b"a", "b"))
    await group.close()
    await group.wait(timeout=10)
    assert [proc.stdout for proc in group.processes] == [b"a", b"b"]


# ----- one shot: run(), run_sync()
async def test_run_writes_input_closes_and_waits(five):
    group = Group(five, "sh -c 'read x; echo $x {host}'", show=False)
    results = await group.run(timeout=10, input=lambda rank: f"hello-{rank}\n")
    assert [result.state for result in results] == ["ok"] * 5
    assert [proc.stdout_text for proc in group.processes] == [
        f"hello-{rank} {host}\n" for rank, host in enumerate(HOSTS)]


def test_run_sync_on_ssh_nodes_closes_them(lab):
    recorders = [Recorder() for _ in HOSTS[:3]]
    nodes = [node(lab, host, formatter=rec) for host, rec in zip(HOSTS, recorders, strict=False)]
    group = Group(nodes, "cat; exit $(( {rank} == 2 ? 4 : 0 ))", show=False)
    results = group.run_sync(timeout=10, input=["a", "b", "c"])
    assert [result.state for result in results] == ["ok", "ok", "failed"]
    assert [proc.stdout for proc in group.processes] == [b"a", b"b", b"c"]
    assert group.summary() == "2 ok, 1 failed: 127.0.0.3"
    assert not any(each.is_connected() for each in nodes)
    for host, rec in zip(HOSTS, recorders, strict=False):
        assert [kind for kind, _ in rec.events] == ["connect", "closed"], host
    # the nodes serve again, in another loop: they reconnect
    assert Group(nodes[:1], "true").run_sync(timeout=10)[0].ok


def test_run_sync_leaves_no_noise_at_exit(lab, tmp_path):
    """In a script of its own: nothing on stderr once the loop and the process end."""
    script = tmp_path / "script.py"
    script.write_text(
        "import gc, sys\n"
        "from apssh import Group, SshNode\n"
        "from apssh.formatters import Formatter\n"
        f"nodes = [SshNode(host, port={lab.port}, keys=[{str(lab.keys.client_key)!r}], "
        f"known_hosts={str(lab.known_hosts)!r}, ssh_config=None, formatter=Formatter()) "
        f"for host in {HOSTS[:2]!r}]\n"
        "group = Group(nodes, 'echo {host}', show=False)\n"
        "print(group.run_sync(timeout=10) and group.summary())\n"
        "del group, nodes\n"
        "gc.collect()\n")
    done = subprocess.run([sys.executable, "-X", "dev", str(script)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "2 ok, 0 failed\n", "")


async def test_run_sync_inside_a_running_loop_is_refused():
    group = Group([LocalNode(formatter=Recorder())], "true")
    with pytest.raises(RuntimeError, match=r"running event loop.*await group\.run\(\)"):
        group.run_sync()
    assert group.results[0].state == "not started"


async def test_run_cancelled_kills_every_node(some_nodes):
    word = mark()
    count = len(some_nodes)
    seen: list[str] = []
    all_started = asyncio.Event()

    class Lines(Recorder):
        def line(self, line, datatype, hostname):
            seen.append(line)
            if len(seen) == count:
                all_started.set()

    group = Group(some_nodes, f"sh -c 'echo started; sleep 300' {word}", formatter=Lines())
    task = asyncio.create_task(group.run(timeout=600))
    await all_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [result.state for result in group.results] == ["killed"] * count, group.report()
    assert await nothing_left(word)


def test_run_sync_closes_the_gateways_too(lab):
    rec = Recorder()
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port, formatter=rec)
    nodes = [node(lab, f"127.0.0.{i}", gateway=gateway, formatter=rec) for i in (10, 11)]
    group = Group(nodes, "echo {host}", show=False)
    assert [result.state for result in group.run_sync(timeout=30)] == ["ok", "ok"]
    assert [proc.stdout for proc in group.processes] == [b"127.0.0.10\n", b"127.0.0.11\n"]
    assert not gateway.is_connected() and not any(each.is_connected() for each in nodes)
    assert sorted(host for event, host in rec.events if event == "closed") == [
        "127.0.0.10", "127.0.0.11", "127.0.1.1"]
