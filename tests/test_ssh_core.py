"""apssh against a real OpenSSH sshd: commands, results, connections, failures."""

from __future__ import annotations

import asyncio
import gc
import itertools
import subprocess

import pytest
from sshd import Lab

from apssh import (
    AuthenticationError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectRefusedError,
    GatewayError,
    HostKeyError,
    Run,
    SshJob,
    SshNode,
    close_ssh_in_scheduler,
)
from apssh.formatters import EXTENDED_DATA_STDERR, Formatter
from apssh.names import local_user
from asynciojobs import Scheduler
from asynciojobs.loop import run_in_thread_loop

_unique = itertools.count(1)


class Recorder(Formatter):
    """Keeps every line and event, per host."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[tuple[str, str]] = []
        self.err: list[tuple[str, str]] = []
        self.events: list[tuple[str, str]] = []

    def line(self, line, datatype, hostname):
        (self.err if datatype == EXTENDED_DATA_STDERR else self.out).append((hostname, line))

    def connection_made(self, hostname, username, direct):
        self.events.append(("connect", hostname))

    def connection_lost(self, hostname, exc, username):
        self.events.append(("lost" if exc else "closed", hostname))

    def stderr_line(self, line, hostname, username=None):
        self.events.append(("stderr", line))

    def connects(self, hostname: str | None = None) -> int:
        return sum(1 for kind, host in self.events
                   if kind == "connect" and hostname in (None, host))


_created: list[SshNode] = []


def node(lab: Lab, host: str = "127.0.0.1", *, formatter: Formatter | None = None,
         **kwds) -> SshNode:
    """A node of the test sshd (closed after the test)."""
    kwds.setdefault("port", lab.port)
    kwds.setdefault("keys", [lab.keys.client_key])
    kwds.setdefault("known_hosts", lab.known_hosts)
    kwds.setdefault("ssh_config", None)
    kwds.setdefault("timeout", 10)
    created = SshNode(host, formatter=formatter or Recorder(), **kwds)
    _created.append(created)
    return created


@pytest.fixture(autouse=True)
def close_nodes():
    """Close what each test opened, so no connection outlives its test."""
    yield
    nodes = list(reversed(_created))  # nodes behind gateways first
    _created.clear()

    async def close_all() -> None:
        for each in nodes:
            await each.close()

    run_in_thread_loop(close_all())


def remote_processes(pattern: str) -> list[str]:
    """Processes on this machine (where sshd runs) whose command line matches."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


# ----- running commands
def test_run_output_and_result(lab):
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), command=Run("echo hello; echo oops >&2"))
    assert Scheduler(job).run() is True
    assert job.result() == 0
    assert rec.out == [("127.0.0.1", "hello\n")]
    assert rec.err == [("127.0.0.1", "oops\n")]  # the pid marker never shows
    assert job.repr_result() == "OK"


def test_arguments_are_joined_and_read_at_run_time(lab):
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), command=Run("echo", 1, "two", 3.0))
    Scheduler(job).run()
    assert rec.out == [("127.0.0.1", "1 two 3.0\n")]


def test_critical_failure_raises_command_failed(lab):
    job = SshJob(node(lab), commands=[Run("false"), Run("echo never")])
    s = Scheduler(job, critical=False)
    assert s.run() is False
    exc = job.raised_exception()
    assert isinstance(exc, CommandFailedError) and exc.result == 1
    assert "command false returned 1 on node" in str(exc)


def test_non_critical_job_goes_on_and_returns_the_last_failure(lab):
    job = SshJob(node(lab), critical=False,
                 commands=[Run("false"), Run("true"), Run("exit 3"), Run("echo ok")])
    assert Scheduler(job).run() is True
    assert job.result() == 3
    assert job.repr_result() == "Ignr[0]:false->1 - Ignr[2]:exit 3->3"


def test_allowed_exits_and_signals(lab):
    job = SshJob(node(lab), commands=[Run("exit 4", allowed_exits=[4]),
                                      Run("kill -TERM $$", allowed_exits=["TERM"])])
    assert Scheduler(job).run() is True


def test_partial_last_line_is_terminated(lab):
    rec = Recorder()
    Scheduler(SshJob(node(lab, formatter=rec), command=Run("printf 'no newline'"))).run()
    assert rec.out == [("127.0.0.1", "no newline\n")]


def test_binary_output_does_not_break_a_job(lab):
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), command=Run("head -c 4000 /dev/urandom"))
    assert Scheduler(job).run() is True
    assert rec.out  # decoded with replacement characters


def test_a_line_with_format_keywords_is_printed_as_is(lab, capsys):
    from apssh import HostFormatter

    job = SshJob(node(lab, formatter=HostFormatter(verbose=False)),
                 command=Run("echo '{host} {linenl} 100%'"))
    Scheduler(job).run()
    assert capsys.readouterr().out == "127.0.0.1:{host} {linenl} 100%\n"


# ----- one connection per node
def test_one_connection_per_node_for_many_jobs(lab):
    rec = Recorder()
    n = node(lab, "127.0.0.2", formatter=rec)
    jobs = [SshJob(n, command=Run(f"echo {i}")) for i in range(12)]
    assert Scheduler(*jobs).run() is True
    assert rec.connects() == 1
    assert sorted(line for _, line in rec.out) == sorted(f"{i}\n" for i in range(12))


def test_the_connection_outlives_run_and_is_reused(lab):
    rec = Recorder()
    n = node(lab, "127.0.0.3", formatter=rec)
    first = Scheduler(SshJob(n, command=Run("true")))
    assert first.run() is True
    assert n.is_connected()
    assert Scheduler(SshJob(n, command=Run("true"))).run() is True
    assert rec.connects() == 1  # a second scheduler, the same connection
    close_ssh_in_scheduler(first)
    assert not n.is_connected()


@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_node_reconnects_in_a_new_event_loop(lab):
    rec = Recorder()
    n = node(lab, "127.0.0.4", formatter=rec)

    async def once(close: bool):
        status = await n.run("true")
        if close:
            await n.close()
        return status

    assert asyncio.run(once(close=False)) == 0
    assert asyncio.run(once(close=True)) == 0  # the first loop is closed: reconnect
    assert rec.connects() == 2
    gc.collect()  # the first loop's socket, left open by this test: collected here


async def test_nodes_can_be_built_inside_a_running_loop(lab):
    n = node(lab, "127.0.0.5", keys=None)  # keys found automatically
    assert n.username == "root"
    n2 = node(lab, "127.0.0.5")
    assert await n2.run("true") == 0
    await n2.close()


def test_many_concurrent_commands_wait_for_a_session(lab):
    n = node(lab, "127.0.0.6")
    jobs = [SshJob(n, command=Run("sleep 0.05")) for _ in range(40)]
    assert Scheduler(*jobs).run() is True  # MaxSessions 10: they queue, none fails


def test_plain_user(lab):
    if lab.plain_user is None:
        pytest.skip("no plain user (not root)")
    rec = Recorder()
    job = SshJob(node(lab, username=lab.plain_user, formatter=rec), command=Run("id -un"))
    assert Scheduler(job).run() is True
    assert rec.out == [("127.0.0.1", f"{lab.plain_user}\n")]


# ----- failures
def test_a_dead_node_fails_all_its_jobs_at_once_after_one_attempt(lab):
    rec = Recorder()
    dead = node(lab, "127.0.0.9", port=1, formatter=rec)  # nothing listens on port 1
    jobs = [SshJob(dead, command=Run("true"), critical=False) for _ in range(8)]
    assert Scheduler(*jobs).run() is True
    assert all(isinstance(job.raised_exception(), ConnectRefusedError) for job in jobs)
    assert rec.connects() == 1
    assert str(jobs[0].raised_exception()) == "root@127.0.0.9: connection refused"
    # the failure is forgotten when the run ends: the next run tries again
    Scheduler(SshJob(dead, command=Run("true"), critical=False)).run()
    assert rec.connects() == 2


def test_authentication_failure(lab, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    job = SshJob(node(lab, keys=[other]), command=Run("true"), critical=False)
    Scheduler(job).run()
    assert isinstance(job.raised_exception(), AuthenticationError)


def test_host_key_unknown_and_changed(lab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    job = SshJob(node(lab, known_hosts=empty), command=Run("true"), critical=False)
    Scheduler(job).run()
    assert isinstance(job.raised_exception(), HostKeyError)
    assert "unknown" in str(job.raised_exception())
    wrong = tmp_path / "wrong"
    fake = tmp_path / "fake"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fake)], check=True)
    fake_pub = " ".join((tmp_path / "fake.pub").read_text().split()[:2])
    wrong.write_text(f"[127.0.0.1]:{lab.port} {fake_pub}\n")
    job = SshJob(node(lab, known_hosts=wrong), command=Run("true"), critical=False)
    Scheduler(job).run()
    assert "mismatch" in str(job.raised_exception())


def test_accept_new_records_then_refuses_a_change(lab, tmp_path):
    known = tmp_path / "known_hosts"
    job = SshJob(node(lab, known_hosts=known, host_key_policy="accept-new"), command=Run("true"))
    assert Scheduler(job).run() is True
    assert f"[127.0.0.1]:{lab.port} ssh-ed25519" in known.read_text()
    job = SshJob(node(lab, known_hosts=known), command=Run("true"))  # now verify passes
    assert Scheduler(job).run() is True


def test_host_key_policy_off(lab, tmp_path):
    empty = tmp_path / "none"
    job = SshJob(node(lab, known_hosts=empty, host_key_policy="off"), command=Run("true"))
    assert Scheduler(job).run() is True


# ----- gateways
def test_nodes_behind_a_gateway_share_its_connection(lab):
    rec = Recorder()
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port, formatter=rec)
    nodes = [node(lab, f"127.0.0.{i}", gateway=gateway, formatter=rec) for i in (10, 11, 12)]
    jobs = [SshJob(n, command=Run("echo through")) for n in nodes]
    assert Scheduler(*jobs).run() is True
    assert rec.connects("127.0.1.1") == 1
    assert [line for _, line in rec.out] == ["through\n"] * 3
    assert nodes[0].distance() == 2
    deeper = node(lab, "127.0.0.13", gateway=nodes[0], formatter=rec)
    assert Scheduler(SshJob(deeper, command=Run("true"))).run() is True
    assert deeper.distance() == 3


def test_a_dead_gateway_fails_every_node_behind_it_once(lab):
    rec = Recorder()
    gateway = node(lab, "127.0.1.1", port=1, formatter=rec)
    nodes = [node(lab, f"127.0.0.{i}", gateway=gateway, formatter=rec) for i in (10, 11)]
    jobs = [SshJob(n, command=Run("true"), critical=False) for n in nodes for _ in range(3)]
    Scheduler(*jobs).run()
    errors = [job.raised_exception() for job in jobs]
    assert all(isinstance(e, GatewayError) for e in errors)
    assert "gateway root@127.0.1.1 unreachable (connection refused)" in str(errors[0])
    assert rec.connects("127.0.1.1") == 1


# ----- nothing left running
@pytest.mark.parametrize("as_plain_user", [False, True])
def test_command_timeout_kills_the_remote_process(lab, as_plain_user):
    if as_plain_user and lab.plain_user is None:
        pytest.skip("no plain user (not root)")
    user = lab.plain_user if as_plain_user else "root"
    token = f"29.{next(_unique)}{id(lab) % 1000}"
    job = SshJob(node(lab, username=user),
                 command=Run(f"sleep {token}; echo finished", timeout=0.5), critical=False)
    Scheduler(job).run()
    assert isinstance(job.raised_exception(), CommandTimeoutError)
    assert remote_processes(f"sleep {token}") == []


def test_scheduler_timeout_kills_remote_children_too(lab):
    token = f"28.{next(_unique)}"
    job = SshJob(node(lab), command=Run(f"(sleep {token}) & sleep {token}; wait"))
    s = Scheduler(job, timeout=0.5, critical=False)
    assert s.run() is False
    assert remote_processes(f"sleep {token}") == []


# ----- many sessions, many handshakes
def test_a_hundred_concurrent_commands_on_one_node(lab):
    n = node(lab, "127.0.0.14")
    jobs = [SshJob(n, command=Run("true")) for _ in range(100)]
    assert Scheduler(*jobs).run() is True  # MaxSessions 10: 100/100


async def test_handshake_pacer_grows_and_backs_off():
    from apssh.pacing import HandshakePacer

    pace = HandshakePacer(start=4, floor=2, ceiling=8)
    entered = []

    async def handshake(i):
        async with pace:
            entered.append(i)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(handshake(i)) for i in range(6)]
    await asyncio.sleep(0)
    assert pace.in_flight == 4 and len(pace.waiters) == 2  # the window holds 4
    await asyncio.gather(*tasks)
    assert sorted(entered) == list(range(6)) and pace.in_flight == 0
    pace.reset()
    assert pace.limit == 2
    pace.reset()
    assert pace.limit == 2  # never below the floor
    for _ in range(100):
        pace.succeeded()
    assert pace.limit == 8  # never above the ceiling


# ----- 0.27 bugs that concern the library
def test_sshproxy_without_username_and_nodes_without_formatter_warn_once(capsys, monkeypatch):
    from apssh import HostFormatter, LocalNode, SshProxy, formatters

    proxy = SshProxy("somewhere", username=None, formatter=HostFormatter(), ssh_config=None)
    assert proxy.__user_host__() == f"{local_user()}@somewhere"  # 0.27 crashed on len(None)
    assert capsys.readouterr() == ("", "")
    # as 0.27: a verbose HostFormatter and a warning on stdout, here once per process
    monkeypatch.setattr(formatters, "_warned_no_formatter", False)
    first = SshNode("somewhere", ssh_config=None)
    assert capsys.readouterr() == ("WARNING: no formatter specified for root@somewhere\n", "")
    assert type(first.formatter) is HostFormatter and first.formatter.verbose is True
    second = SshNode("elsewhere", ssh_config=None, verbose=False)
    assert capsys.readouterr() == ("", "")
    assert second.formatter is not first.formatter and second.formatter.verbose is False
    local = LocalNode()  # as 0.27: no warning for a LocalNode
    assert capsys.readouterr() == ("", "")
    assert type(local.formatter) is HostFormatter and local.formatter.verbose is True


def test_sshproxy_without_any_user_is_the_local_user(lab, tmp_path, monkeypatch):
    """As OpenSSH: the given user, else the ssh config's, else the local one: the
    real uid's name, whatever ``$LOGNAME``/``$USER`` say (here, another user the
    sshd would let in). ``SshNode`` keeps root as its default, as 0.27."""
    import os
    import pwd

    from apssh import SshProxy

    me = pwd.getpwuid(os.getuid()).pw_name
    other = lab.plain_user if lab.plain_user not in (None, me) else "root"
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, other)
    rec = Recorder()
    proxy = SshProxy("127.0.0.1", port=lab.port, keys=[lab.keys.client_key],
                     known_hosts=lab.known_hosts, ssh_config=None, formatter=rec)
    _created.append(proxy)  # type: ignore[arg-type]
    assert proxy.username == local_user() == me
    assert run_in_thread_loop(proxy.run("id -un")) == 0
    assert rec.out == [("127.0.0.1", f"{me}\n")]
    config = tmp_path / "config"
    config.write_text("Host 127.0.0.1\n  User someone\n")
    assert SshProxy("127.0.0.1", ssh_config=config).username == "someone"
    assert SshProxy("127.0.0.1", ssh_config=config, username="other").username == "other"
    assert SshNode("127.0.0.1", ssh_config=None).username == "root"


def test_every_connection_failure_has_a_one_line_reason():
    import socket

    import asyncssh

    from apssh.errors import ConnectionLostError, HostUnknownError
    from apssh.sshproxy import _Client

    n = SshNode("fit01", ssh_config=None, timeout=7)
    client = _Client(n)
    cases = [
        (ConnectionRefusedError(), ConnectRefusedError, "root@fit01: connection refused"),
        (TimeoutError(), TimeoutError, "root@fit01: timed out after 7s"),
        (socket.gaierror(), HostUnknownError, "root@fit01: cannot resolve host name"),
        (asyncssh.PermissionDenied("no"), AuthenticationError,
         "root@fit01: authentication failed"),
        (asyncssh.ConnectionLost("gone"), ConnectionLostError, "root@fit01: connection lost"),
        (asyncssh.HostKeyNotVerifiable("x"), HostKeyError,
         "root@fit01: host key unknown: not in known_hosts"),
    ]
    for exc, kind, message in cases:
        found = n._classify(exc, client)
        assert isinstance(found, kind) and str(found) == message
