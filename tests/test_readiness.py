"""Readiness: a requirement met when a job fires it (``job.when(...)``)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import never

from asynciojobs import CycleError, Job, Scheduler
from asynciojobs.readiness import ReadinessError, ReadinessTimeoutError


async def _server(rec, get_readiness, fire=True):
    rec("server started")
    if fire:
        get_readiness().fire(port="5000")
    rec("server fired")
    await never()


async def _note(rec, text):
    rec(text)


def test_client_starts_when_fired_while_server_runs(rec):
    box = {}
    server = Job(_server, rec, lambda: box["r"], forever=True, label="server")
    ready = box["r"] = server.when("listening", timeout=5)

    async def client():
        rec(f"client {ready['port']}")
        return ready["port"]

    cli = Job(client, label="client", required=ready)
    sched = Scheduler(server, cli)
    assert sched.run(timeout=5)
    assert rec.events == ["server started", "client 5000", "server fired"] or \
        rec.events == ["server started", "server fired", "client 5000"]
    assert cli.result() == "5000"
    assert ready.matched == {"port": "5000"}


def test_timeout_fails_waiting_job_with_one_line(rec, capsys):
    box = {}
    server = Job(_server, rec, lambda: box["r"], False, forever=True, label="server")
    ready = box["r"] = server.when("listening on port", timeout=0.05)
    cli = Job(_note, rec, "client ran", label="client", required=ready)
    sched = Scheduler(server, cli, critical=False)
    assert not sched.run(timeout=5)
    exc = cli.raised_exception()
    assert isinstance(exc, ReadinessTimeoutError)
    lines = cli.failure_lines(exc)
    assert lines is not None and len(lines) == 1
    assert "'listening on port'" in lines[0] and "server" in lines[0] and "client" in lines[0]
    assert "client ran" not in rec.events
    assert not server.is_done()  # cancelled at the end, nothing left


def test_source_ending_without_firing_fails_at_once():
    async def quiet():
        return 1

    server = Job(quiet, label="server")
    ready = server.when("ready")  # no timeout: the end of the server decides
    other = Job(asyncio.sleep, 0, label="other", critical=False, required=ready)
    sched = Scheduler(server, other, critical=False)
    sched.run(timeout=5)
    assert isinstance(other.raised_exception(), ReadinessError)
    assert "ended before when 'ready'" in str(other.raised_exception())


def test_other_requirements_still_count(rec):
    box = {}
    server = Job(_server, rec, lambda: box["r"], forever=True, label="server")
    ready = box["r"] = server.when("go")
    gate = asyncio.Event()

    async def first():
        await rec.wait_for("server fired")
        rec("first done")

    one = Job(first, label="first")
    cli = Job(_note, rec, "client", label="client", required=[ready, one])
    Scheduler(server, one, cli).run(timeout=5)
    assert rec.events.index("first done") < rec.events.index("client")
    assert not gate.is_set()


def test_listing_dot_and_cycles(capsys):
    server = Job(never, forever=True, label="server")
    cli = Job(never, label="client", required=server.when("up"))
    sched = Scheduler(server, cli)
    sched.list()
    out = capsys.readouterr().out
    assert "requires={1 when 'up'}" in out
    assert "1 -> 2 [style=dashed,label=\"when 'up'\"];" in sched.dot_format()
    server.requires(cli)
    with pytest.raises(CycleError):
        sched.check_cycles() or sched.run()


def test_plain_requirement_replaces_readiness():
    server = Job(never, label="server")
    cli = Job(never, label="client", required=server.when("up"))
    cli.requires(server)
    assert not cli._conditions
    cli.requires(server.when("up"), remove=True)
    assert server not in cli.required


def test_runs_again():
    count = []

    async def serve(get):
        get().fire(n=len(count))
        await never()

    box = {}
    server = Job(serve, lambda: box["r"], forever=True)
    ready = box["r"] = server.when("n", timeout=5)
    cli = Job(lambda: asyncio.sleep(0, count.append(ready["n"])), required=ready)
    sched = Scheduler(server, cli)
    assert sched.run(timeout=5) and sched.run(timeout=5)
    assert count == [0, 1]


# ----- apssh: SshJob.when(pattern) on the real sshd
from test_ssh_core import Recorder as OutRecorder  # noqa: E402
from test_ssh_core import close_nodes, node, remote_processes  # noqa: E402, F401

from apssh import Deferred, Run, SshJob, Variables  # noqa: E402


def test_ssh_client_starts_on_server_output(lab):
    server_node, client_out = node(lab), OutRecorder()
    client_node = node(lab, formatter=client_out)
    env = Variables()
    server = SshJob(server_node, forever=True, label="server", command=Run(
        "sh -c 'sleep 0.3; echo listening on port 5000; sleep 60 # readiness-ok'"))
    ready = server.when(r"listening on port (?P<port>\d+)", timeout=30, variables=env)
    client = SshJob(client_node, label="client", required=ready,
                    command=Run(Deferred("echo got {{port}}", env)))
    sched = Scheduler(server, client, timeout=20)
    assert sched.run()
    assert ready["port"] == "5000"
    assert [line for _, line in client_out.out] == ["got 5000\n"]
    assert not remote_processes("readiness-ok")


def test_ssh_pattern_never_matching_fails_client(lab, capsys):
    server = SshJob(node(lab), forever=True, label="server",
                    command=Run("sh -c 'echo hello; sleep 60 # readiness-never'"))
    client = SshJob(node(lab), label="client", command=Run("echo ran"),
                    required=server.when(r"listening on port", timeout=0.5))
    sched = Scheduler(server, client, timeout=20, critical=False)
    assert not sched.run()
    exc = client.raised_exception()
    assert isinstance(exc, ReadinessTimeoutError)
    assert client.failure_lines(exc) == [
        "ReadinessTimeoutError: <SshJob `client`> waited 0.5s for <SshJob `server`> "
        "when 'listening on port'"]
    assert not remote_processes("readiness-never")
