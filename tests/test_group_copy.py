"""Put and Get: copies to and from many nodes, on the real sshd (127.0.0.[1-5]) and on
LocalNodes. The sshd runs on this machine: a node's remote files are local files."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_group import HOSTS, closed, five  # noqa: F401 (five is a fixture)
from test_ssh_core import Recorder, node

from apssh import BadNameError, LocalNode
from apssh.groupcopy import Get, Put


def durations(copies) -> bool:
    return all(result.duration is not None and result.duration >= 0
               for result in copies.results)


async def test_put_onto_every_node_with_per_node_paths(five, tmp_path):  # noqa: F811
    for host in HOSTS:
        (tmp_path / f"{host}.conf").write_text(f"conf of {host}\n")
    (tmp_path / "common").write_text("for all\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    put = Put(five, [str(tmp_path / "{host}.conf"), str(tmp_path / "common")],
              str(remote / "{rank}-{host}") + "/")
    for rank, host in enumerate(HOSTS):
        (remote / f"{rank}-{host}").mkdir()
    results = await put.run(timeout=30)
    assert [result.state for result in results] == ["ok"] * 5
    for rank, host in enumerate(HOSTS):
        assert (remote / f"{rank}-{host}" / f"{host}.conf").read_text() == f"conf of {host}\n"
        assert (remote / f"{rank}-{host}" / "common").read_text() == "for all\n"
    assert put.ok and durations(put)
    assert put.summary() == "5 ok, 0 failed"
    assert results[0].command.startswith(f"Push: {tmp_path}/127.0.0.1.conf ... (2 total) onto ")


async def test_get_a_missing_file_fails_that_node_only(five, tmp_path):  # noqa: F811
    served = tmp_path / "served"
    served.mkdir()
    for host in HOSTS:
        if host != "127.0.0.3":
            (served / f"{host}.log").write_bytes(f"log of {host}\n".encode() + b"\xff\x00")
    get = Get(five, str(served / "{host}.log"), str(tmp_path / "logs" / "{host}.log"))
    async with get:
        results = await get.wait(timeout=30)
    assert [result.state for result in results] == ["ok", "ok", "failed", "ok", "ok"]
    assert "127.0.0.3.log" in (results[2].reason or "")
    for host in HOSTS:
        fetched = tmp_path / "logs" / f"{host}.log"
        if host == "127.0.0.3":
            assert not fetched.exists()
        else:
            assert fetched.read_bytes() == f"log of {host}\n".encode() + b"\xff\x00"
    assert get.summary() == "4 ok, 1 failed: 127.0.0.3"
    assert get.report().splitlines()[2].startswith(f"127.0.0.3: failed ({served}/127.0.0.3.log")


async def test_an_unreachable_node_fails_and_the_others_copy(lab, tmp_path):
    (tmp_path / "x.log").write_text("x\n")
    nodes = [node(lab, "127.0.0.1"), node(lab, "127.0.0.2", port=1), node(lab, "127.0.0.4")]
    try:
        get = Get(nodes, str(tmp_path / "x.log"), str(tmp_path / "got" / "{host}") + "/")
        results = await get.run(timeout=30)
        assert [result.state for result in results] == ["ok", "failed", "ok"]
        assert results[1].reason
        assert sorted(os.listdir(tmp_path / "got")) == ["127.0.0.1", "127.0.0.4"]
        assert (tmp_path / "got" / "127.0.0.4" / "x.log").read_text() == "x\n"
        assert get.summary() == "2 ok, 1 failed: 127.0.0.2"
    finally:
        await closed(nodes)


async def test_on_local_nodes_with_rank(tmp_path):
    nodes = [LocalNode(formatter=Recorder()) for _ in range(3)]
    (tmp_path / "src").write_text("data\n")
    put = await Put(nodes, str(tmp_path / "src"), str(tmp_path / "dst-{rank}")).start()
    await put.wait(timeout=10)
    assert put.ok
    get = Get(nodes, str(tmp_path / "dst-{rank}"), str(tmp_path / "back" / "{host}-{rank}"))
    assert [result.state for result in get.results] == ["not started"] * 3
    await get.run(timeout=10)
    assert sorted(os.listdir(tmp_path / "back")) == [f"LOCALNODE-{rank}" for rank in range(3)]
    assert get.report().splitlines()[-1] == "3 ok, 0 failed"
    assert get.results[1].label == "LOCALNODE#1"


def test_get_run_sync_closes_the_connections(lab, tmp_path):
    (tmp_path / "f").write_text("f\n")
    recorders = [Recorder(), Recorder()]
    nodes = [node(lab, host, formatter=rec) for host, rec in zip(HOSTS, recorders, strict=False)]
    results = Get(nodes, str(tmp_path / "f"), str(tmp_path / "{host}.f")).run_sync(timeout=30)
    assert [result.state for result in results] == ["ok", "ok"]
    assert (tmp_path / "127.0.0.2.f").read_text() == "f\n"
    assert not any(each.is_connected() for each in nodes)
    for rec in recorders:
        assert [event for event, _ in rec.events if event in ("connect", "closed")] == [
            "connect", "closed"]


async def test_a_stuck_copy_times_out_and_the_others_end(five, tmp_path):  # noqa: F811
    """A named pipe nobody writes: the server's open() of it blocks until we write."""
    for host in HOSTS:
        if host == "127.0.0.2":
            os.mkfifo(tmp_path / f"{host}.src")
        else:
            (tmp_path / f"{host}.src").write_text("ok\n")
    get = Get(five, str(tmp_path / "{host}.src"), str(tmp_path / "{host}.dst"))
    try:
        results = await get.run(timeout=2)
        assert [result.state for result in results] == ["ok", "timed out", "ok", "ok", "ok"]
        assert results[1].reason == "still copying after 2s"
        assert get.summary() == "4 ok, 0 failed, 1 timed out: 127.0.0.2"
    finally:  # the server's open() ends once a writer comes
        with contextlib.suppress(OSError):  # ENXIO: no reader left
            os.close(os.open(tmp_path / "127.0.0.2.src", os.O_WRONLY | os.O_NONBLOCK))


async def test_misuse_is_refused(tmp_path):
    nodes = [LocalNode(formatter=Recorder()) for _ in range(2)]
    with pytest.raises(ValueError, match=r"LOCALNODE#0 and LOCALNODE#1 would both write"):
        Get(nodes, "/etc/hostname", str(tmp_path / "{host}"))
    with pytest.raises(BadNameError):  # a value never takes a path out of its directory
        Put(nodes, "x", "dir/{args}", args=["..", "b"])
    put = Put(nodes, "x", "y-{rank}")
    with pytest.raises(RuntimeError, match="start"):
        await put.wait()
    with pytest.raises(RuntimeError, match=r"await put\.run\(\)"):
        put.run_sync()
    await put.start()
    with pytest.raises(RuntimeError, match="already"):
        await put.start()
    await put.kill()


def test_the_runnable_snippet_of_the_docs(tmp_path):
    """docs/processes.md: the snippet without asyncio runs and prints what the page says."""
    text = (Path(__file__).parent.parent / "docs" / "processes.md").read_text()
    section = text[text.index("## Without asyncio"):]
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.DOTALL)[:2]
    assert "LocalNode()" in code
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.stdout, done.stderr) == (printed, "")
