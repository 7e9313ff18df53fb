"""ForwardJob against the real sshd: a tiny echo server here, reached through a
forward, by jobs that require the forward; the listener is gone afterwards."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from pathlib import Path

import pytest
from sshd import Lab

from apssh import (
    Capture,
    Deferred,
    HostFormatter,
    LocalNode,
    Run,
    ScenarioError,
    SshJob,
    SshNode,
    Variables,
    YamlLoader,
)
from apssh.forward import ForwardError, ForwardJob, parse_endpoint
from asynciojobs import Job, Scheduler
from asynciojobs.loop import run_in_thread_loop

_created: list[SshNode] = []


def node(lab: Lab) -> SshNode:
    created = SshNode("127.0.0.1", port=lab.port, keys=[lab.keys.client_key],
                      known_hosts=lab.known_hosts, ssh_config=None, timeout=10,
                      formatter=HostFormatter(verbose=False))
    _created.append(created)
    return created


@pytest.fixture(autouse=True)
def close_nodes():
    yield

    async def close_all() -> None:
        for created in _created:
            await created.close()

    run_in_thread_loop(close_all())
    _created.clear()


class Echo:
    """An asyncio echo server on 127.0.0.1 (on the thread's loop, the one
    ``Scheduler.run()`` uses), counting the connections it accepted."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture(name="echo")
def echo_fixture():
    echo = Echo()
    echo.port = run_in_thread_loop(echo.start())
    yield echo
    run_in_thread_loop(echo.stop())


async def talk(port: int, text: str) -> str:
    """Send one line to 127.0.0.1:port, return the line that comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text.encode() + b"\n")
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return answer.decode().strip()


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (a listener bound there)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
            return True
    return False


def test_local_forward_reaches_the_echo_server_and_closes_with_the_scheduler(lab, echo):
    forward = ForwardJob(node(lab), listen=0, to=f"127.0.0.1:{echo.port}", label="tunnel")
    seen: list[bool] = []

    async def client() -> str:
        assert forward.port is not None
        seen.append(listening(forward.port))
        return await talk(forward.port, "hello through the tunnel")

    user = Job(client, label="client", required=forward)
    scheduler = Scheduler(forward, user)
    assert scheduler.run(timeout=20) is True
    assert user.result() == "hello through the tunnel"
    assert seen == [True] and echo.accepted == 1
    port = forward.result()
    assert port > 0 and forward.port is None  # closed by the scheduler's end
    assert not listening(port)
    assert f"closed 127.0.0.1:{port}" in repr(forward)
    assert forward.text_label() == f"forward -L 127.0.0.1:0:127.0.0.1:{echo.port}"


def test_the_chosen_port_is_a_variable_for_deferred_commands(lab, echo):
    env = Variables()
    forward = ForwardJob(node(lab), listen=0, to=echo.port, capture=Capture("port", env))
    probe = ("exec 3<>/dev/tcp/127.0.0.1/{{port}}; echo deferred >&3; "
             "head -n 1 <&3")
    user = SshJob(LocalNode(), command=Run(Deferred(f"bash -c '{probe}'", env),
                                           capture=Capture("answer", env)),
                  required=forward)
    assert Scheduler(forward, user).run(timeout=20) is True
    assert env["port"] == str(forward.result())
    assert env["answer"] == "deferred"


def test_reverse_forward_listens_on_the_node_and_comes_back_here(lab, echo):
    env = Variables()
    gw = node(lab)
    forward = ForwardJob(gw, listen="127.0.0.1:0", to=f"127.0.0.1:{echo.port}",
                         reverse=True, capture=Capture("port", env))
    probe = "exec 3<>/dev/tcp/127.0.0.1/{{port}}; echo back >&3; head -n 1 <&3"
    user = SshJob(gw, command=Run(Deferred(f"bash -c '{probe}'", env),
                                  capture=Capture("answer", env)), required=forward)
    assert Scheduler(forward, user).run(timeout=20) is True
    assert env["answer"] == "back" and echo.accepted == 1
    assert forward.spec().startswith("-R 127.0.0.1:")
    assert not listening(forward.result())


def test_close_after_closes_as_soon_as_the_dependents_are_done(lab, echo):
    forward = ForwardJob(node(lab), listen=0, to=echo.port)
    scheduler = Scheduler(forward)

    async def client() -> str:
        assert forward.port is not None
        return await talk(forward.port, "once")

    user = Job(client, required=forward, scheduler=scheduler)
    closer = forward.close_after()  # the jobs requiring it: user
    assert closer.required == {user} and closer in scheduler.jobs
    after: list[bool] = []

    async def check() -> None:
        after.append(forward.port is None and not listening(forward.result()))

    Job(check, required=closer, scheduler=scheduler)
    assert scheduler.run(timeout=20) is True
    assert user.result() == "once" and after == [True]


def test_a_port_in_use_fails_the_job_with_one_line(lab, echo):
    forward = ForwardJob(node(lab), listen=echo.port, to=22, label="tunnel")
    user = Job(asyncio.sleep, 0, required=forward)
    scheduler = Scheduler(forward, user, critical=False)
    assert scheduler.run(timeout=20) is False
    exc = forward.raised_exception()
    assert isinstance(exc, ForwardError)
    lines = forward.failure_lines(exc)
    assert lines is not None and len(lines) == 1
    assert f"127.0.0.1:{echo.port}" in lines[0] and "root@127.0.0.1" in lines[0]
    assert lines[0].endswith(": Address already in use")
    assert user.is_idle()


def test_a_remote_port_in_use_fails_the_job_too(lab, echo):
    forward = ForwardJob(node(lab), listen=echo.port, to=22, reverse=True)
    assert Scheduler(forward, critical=False).run(timeout=20) is False
    exc = forward.raised_exception()
    assert isinstance(exc, ForwardError)
    assert str(exc).startswith(f"cannot listen on 127.0.0.1:{echo.port} on root@127.0.0.1: ")
    assert "\n" not in str(exc)


def test_an_aborted_run_leaves_no_listener(lab, echo):
    forward = ForwardJob(node(lab), listen=0, to=echo.port)
    scheduler = Scheduler(forward, critical=False)
    stuck = asyncio.Event()  # never set: this job is cancelled when the run aborts

    async def boom() -> None:
        raise RuntimeError("boom")

    hang = Job(stuck.wait, forever=True, required=forward, scheduler=scheduler)
    Job(boom, critical=True, required=forward, scheduler=scheduler)
    assert scheduler.run(timeout=20) is False
    assert hang.is_running() and not hang.is_done()
    assert not listening(forward.result())


@pytest.mark.parametrize(("value", "listen", "expected"), [
    (0, True, ("127.0.0.1", 0)),
    ("8080", True, ("127.0.0.1", 8080)),
    ("0.0.0.0:22", False, ("0.0.0.0", 22)),
    ("[::1]:22", False, ("::1", 22)),
    (("localhost", 5), False, ("localhost", 5)),
])
def test_endpoints(value, listen, expected):
    assert parse_endpoint(value, listen=listen) == expected


@pytest.mark.parametrize(("value", "listen", "message"), [
    (0, False, "must be HOST:PORT or a port (1-65535), got 0"),
    (70000, True, "got 70000"),
    ("host:http", False, "got 'host:http'"),
    (True, True, "got True"),
    ("bad host!:22", False, "bad host 'bad host!'"),
])
def test_bad_endpoints(value, listen, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_endpoint(value, listen=listen)


def test_a_local_node_cannot_forward():
    with pytest.raises(ValueError, match="SshNode"):
        ForwardJob(LocalNode(), to=22)  # type: ignore[arg-type]


def test_close_after_needs_dependents():
    forward = ForwardJob(SshNode("127.0.0.1", ssh_config=None), to=22)
    with pytest.raises(ValueError, match="scheduler"):
        forward.close_after()
    Scheduler(forward)
    with pytest.raises(ValueError, match="no job requires it"):
        forward.close_after()


def test_a_scheduler_runs_again_with_a_new_listener_each_time(lab, echo):
    forward = ForwardJob(node(lab), listen=0, to=echo.port, label="tunnel")

    async def client() -> str:
        assert forward.port is not None
        return await talk(forward.port, "again")

    user = Job(client, required=forward)
    scheduler = Scheduler(forward, user)
    ports = []
    for _ in range(2):
        assert scheduler.run(timeout=20) is True
        assert user.result() == "again"
        ports.append(forward.result())
        assert not listening(ports[-1])
    assert echo.accepted == 2
    assert "root@127.0.0.1\n-L 127.0.0.1:" in scheduler.dot_format()


# ----- YAML: forward: {listen: ..., to: ...}
def scenario(lab: Lab, tmp_path: Path, jobs: str, name: str = "forward.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        "nodes:\n"
        "  - id: here\n    localnode: true\n"
        f"  - id: gw\n    hostname: 127.0.0.1\n    port: {lab.port}\n"
        f"    keys: [{lab.keys.client_key}]\n    known_hosts: {lab.known_hosts}\n"
        "    ssh_config: null\n    formatter: HostFormatter\n    verbose: false\n"
        "jobs:\n" + jobs)
    return path


TALK = """import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
    sock.sendall(b"ping\\n")
    print(sock.makefile().readline().strip())
"""


def test_yaml_forward_feeds_its_port_to_the_jobs_requiring_it(lab, echo, tmp_path):
    (tmp_path / "talk.py").write_text(TALK)
    path = scenario(lab, tmp_path, (
        "  - id: tunnel\n    node: gw\n"
        f"    forward: {{listen: 0, to: '127.0.0.1:{echo.port}', capture: tunnel_port}}\n"
        "  - id: client\n    node: here\n    required: tunnel\n"
        "    commands:\n      - type: Run\n"
        f"        command: {sys.executable} {tmp_path / 'talk.py'} '{{{{tunnel_port}}}}'\n"
        "        capture: answer\n"))
    loader = YamlLoader(path)
    nodes, jobs, scheduler = loader.load_with_maps()
    assert isinstance(jobs["tunnel"], ForwardJob) and len(scheduler.jobs) == 2
    try:
        assert scheduler.run(timeout=20) is True
    finally:
        run_in_thread_loop(nodes["gw"].close())
    port = int(loader.variables["tunnel_port"])
    assert loader.variables["answer"] == "ping" and echo.accepted == 1
    assert not listening(port)


def test_yaml_close_dependents_adds_a_closing_job(lab, tmp_path):
    path = scenario(lab, tmp_path, (
        "  - id: tunnel\n    node: gw\n"
        "    forward: {to: 22, reverse: true, close: dependents}\n"
        "  - id: a\n    node: here\n    required: [tunnel]\n    commands: ['true']\n"
        "  - id: b\n    node: here\n    required: [tunnel]\n    commands: ['true']\n"))
    _, jobs, scheduler = YamlLoader(path).load_with_maps()
    closers = [job for job in scheduler.jobs if job not in jobs.values()]
    assert len(closers) == 1 and closers[0].label == "close tunnel"
    assert closers[0].required == {jobs["a"], jobs["b"]}


@pytest.mark.parametrize(("jobs", "line", "message"), [
    ("  - id: t\n    node: gw\n    forward: {to: 22, colour: red}\n",
     3, "job t, forward: unknown key 'colour'"),
    ("  - id: t\n    node: gw\n    forward:\n      listen: 70000\n      to: 22\n",
     4, "job t, forward: listen: must be a port (0-65535) or HOST:PORT, got 70000"),
    ("  - id: t\n    node: gw\n    forward: {to: 'db:0'}\n",
     3, "job t, forward: to: must be HOST:PORT or a port (1-65535), got 'db:0'"),
    ("  - id: t\n    node: gw\n    forward: {listen: 0}\n",
     3, "job t, forward: missing 'to:'"),
    ("  - id: t\n    node: gw\n    forward: 22\n",
     3, "job t: forward: must be a mapping {listen: ..., to: ...}, got 22"),
    ("  - id: t\n    node: gw\n    forward: {to: 22}\n    commands: ['true']\n",
     4, "job t: commands: not for a forward job"),
    ("  - id: t\n    node: here\n    forward: {to: 22}\n",
     2, "job t: node here is a local node: a forward goes through ssh"),
    ("  - id: t\n    node: gw\n    forward: {to: 22, close: soon}\n",
     3, "job t, forward: close: must be one of end, dependents, got 'soon'"),
    ("  - id: t\n    node: gw\n    forward:\n      to: 22\n      close: dependents\n",
     5, "job t, forward: close: dependents, but no job requires t"),
    ("  - id: t\n    node: gw\n    forward: {to: 22, capture: port}\n"
     "  - id: u\n    node: here\n    commands: ['echo {{port}}']\n",
     6, "job u: {{ port }} is captured by job t, not required before this job"),
    ("  - id: t\n    node: gw\n    forward: {to: 22}\n"
     "  - id: u\n    node: here\n    required: {job: t, when: x}\n    commands: ['true']\n",
     6, "job u: required: when: job t is not an SshJob"),
])
def test_yaml_forward_mistakes_are_one_line(lab, tmp_path, jobs, line, message):
    path = scenario(lab, tmp_path, jobs)
    line += path.read_text().split("\n").index("jobs:") + 1  # lines of jobs: count from 1
    with pytest.raises(ScenarioError) as info:
        YamlLoader(path).load()
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}:{line}: {message}"), text
