"""ssh faults against real daemons: hostile names, unresolvable hosts, unusable keys,
gateways going away, partial copies, daemons killed or frozen under running commands.

Daemons that a test kills or freezes are its own (never the session's ``lab``);
nothing leaves 127.0.0.0/8, DNS included: an unresolvable name is only ever looked
up inside a network namespace that holds nothing but loopback (with its own
nsswitch.conf and resolv.conf), or by a resolver the test injects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sshd import daemons_fixture  # noqa: F401  (the fixture daemons)
from test_ssh_core import Recorder, close_nodes, node, remote_processes  # noqa: F401  (closes what node() opened)

from apssh import Run, SshJob, SshNode
from apssh.errors import (
    CommandTimeoutError,
    ConnectionLostError,
    HostUnknownError,
    KeyFileError,
)
from apssh.failures import classify, is_resolution_failure
from apssh.names import BadNameError
from asynciojobs import Job, Scheduler
from asynciojobs.loop import run_in_thread_loop

ROOT = os.geteuid() == 0


def needs_root(what: str) -> None:
    if not ROOT:
        pytest.skip(f"{what} needs root")


def wait_until(predicate, what: str, deadline: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# ----- 1. names are data
HOSTILE_HOSTS = ["$(touch {marker})", "`touch {marker}`", "a;touch {marker}",
                 "-oProxyCommand=touch {marker}", "a b", "x\ntouch {marker}"]
HOSTILE_USERS = ["$(touch {marker})", "-oProxyCommand=x", "a b", "root;touch {marker}"]


def hook_config(tmp_path: Path, marker: Path) -> Path:
    """An ssh config whose hooks would run a shell on the host name."""
    config = tmp_path / "config"
    config.write_text(f"Match exec \"touch {marker}; echo %h\"\n  Port 22\n"
                      f"Host *\n  ProxyCommand sh -c 'touch {marker}; exec nc %h %p'\n")
    return config


@pytest.mark.parametrize("hostile", HOSTILE_HOSTS)
def test_a_hostile_host_name_is_refused_at_construction(tmp_path, hostile):
    marker = tmp_path / "marker"
    name = hostile.format(marker=marker)
    with pytest.raises(BadNameError, match="bad host name"):
        SshNode(name, ssh_config=hook_config(tmp_path, marker))
    assert not marker.exists()


@pytest.mark.parametrize("hostile", HOSTILE_USERS)
def test_a_hostile_user_name_is_refused_at_construction(tmp_path, hostile):
    marker = tmp_path / "marker"
    with pytest.raises(BadNameError, match="bad user name"):
        SshNode("127.0.0.1", username=hostile.format(marker=marker),
                ssh_config=hook_config(tmp_path, marker))
    assert not marker.exists()


def test_a_hostile_gateway_is_refused_too(tmp_path):
    marker = tmp_path / "marker"
    with pytest.raises(BadNameError):
        SshNode(f"$(touch {marker})", username="root", ssh_config=None)
    with pytest.raises(BadNameError):
        SshNode("127.0.1.1", username=f"`touch {marker}`", ssh_config=None)
    assert not marker.exists()


def test_a_user_from_the_ssh_config_is_checked(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host evil\n  User $(reboot)\n")
    with pytest.raises(BadNameError, match="bad user name"):
        SshNode("evil", ssh_config=config)


def test_good_names_still_go_through_the_hooks(lab, tmp_path):
    """The same config with a good name: the hook runs (so the test above is real)."""
    marker = tmp_path / "marker"
    config = tmp_path / "config"
    config.write_text(f"Host *\n  ProxyCommand sh -c 'touch {marker}; exit 1' %h\n")
    n = node(lab, "127.0.0.1", ssh_config=config, timeout=1)
    job = SshJob(n, command=Run("true"), critical=False)
    Scheduler(job).run()
    assert marker.exists()


# ----- 2. an unresolvable name, on both event loops, never asked to a real resolver
RESOLVE = textwrap.dedent("""\
    import asyncio, sys
    from apssh import HostFormatter, SshNode
    from apssh.errors import ApsshError

    async def attempt():
        node = SshNode("nosuchhost.invalid", ssh_config=None, known_hosts=sys.argv[1],
                       keys=[], timeout=5, formatter=HostFormatter(verbose=False))
        try:
            await node.connect_lazy()
        except ApsshError as exc:
            return f"{type(asyncio.get_running_loop()).__module__}|{type(exc).__name__}|{exc}"
        return "connected?"

    print(asyncio.run(attempt()))
    import uvloop
    print(uvloop.run(attempt()))
""")


@pytest.mark.parametrize("resolver", ["dns", "files"])
def test_an_unresolvable_name_reads_the_same_on_both_loops(tmp_path, resolver):
    """In a network namespace with loopback only: the name is looked up by the
    namespace's resolver (no route out: a DNS failure) or in /etc/hosts alone (an
    nsswitch.conf bound over the real one: 'not known')."""
    needs_root("a network namespace")
    pytest.importorskip("uvloop")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("unshare (util-linux) and ip (iproute2) are needed: ./dev test installs them")
    script = tmp_path / "resolve.py"
    script.write_text(RESOLVE)
    # nss-resolve or nscd answer over unix sockets, which a network namespace does not
    # cut: the hosts line names files (and dns) alone, and the one name server is on
    # loopback, where nothing listens (refused at once)
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files dns\n" if resolver == "dns" else "hosts: files\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    setup = (f"ip link set lo up && mount --bind {nsswitch} /etc/nsswitch.conf"
             f" && mount --bind {resolv} /etc/resolv.conf")
    done = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c",
         f'{setup} && exec "$0" "$1" "$2"', sys.executable, str(script),
         str(tmp_path / "known_hosts")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("|", 1)[0] for line in lines] == ["asyncio.unix_events", "uvloop"]
    for line in lines:
        assert line.split("|", 1)[1] == \
            "HostUnknownError|root@nosuchhost.invalid: cannot resolve host name"


async def test_an_unresolvable_name_with_an_injected_resolver(tmp_path, monkeypatch):
    """Without root: the loop's resolver is replaced by one that knows no name (asyncio's
    event loop resolves through ``loop.getaddrinfo``); nothing is asked to a real one."""
    import socket

    asked: list[str] = []

    async def no_such_name(host, *args, **kwds):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    known = tmp_path / "known_hosts"
    known.write_text("")
    n = SshNode("nosuchhost.invalid", ssh_config=None, known_hosts=known, keys=[], timeout=5)
    with pytest.raises(HostUnknownError) as info:
        await n.connect_lazy()
    assert str(info.value) == "root@nosuchhost.invalid: cannot resolve host name"
    assert asked == ["nosuchhost.invalid"]


@pytest.mark.parametrize("exc", [
    OSError(-2, "Name or service not known"),        # glibc's EAI_NONAME as a plain OSError
    OSError(-3008, "unknown node or service"),       # libuv's UV_EAI_NONAME
    OSError(-3001, "temporary failure"),             # libuv's UV_EAI_AGAIN
])
def test_resolution_failures_in_any_form_are_host_unknown(exc):
    assert is_resolution_failure(exc)
    found = classify(exc, "root@x", 5)
    assert isinstance(found, HostUnknownError) and str(found) == "root@x: cannot resolve host name"
    assert not is_resolution_failure(ConnectionRefusedError(111, "refused"))


# ----- 3. keys given explicitly: all usable, or refused
def test_unusable_key_files_are_refused_naming_the_file(tmp_path):
    missing = tmp_path / "missing"
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)],
                   check=True)
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    for path, reason in [(missing, "no such file"), (locked, "encrypted"),
                         (garbage, "not a usable private key"), (tmp_path, "")]:
        with pytest.raises(KeyFileError) as info:
            SshNode("127.0.0.1", keys=[path], ssh_config=None)
        message = str(info.value)
        assert message.startswith(f"key {path}: {reason}") and "\n" not in message
        assert info.value.path == str(path)


def test_load_key_files_for_the_cli(lab, tmp_path):
    from apssh.keys import load_key_files

    assert len(load_key_files([lab.keys.client_key])) == 1
    with pytest.raises(KeyFileError, match="nope: no such file"):
        load_key_files([lab.keys.client_key, tmp_path / "nope"])


def test_an_unusable_key_never_falls_back_to_the_defaults(lab, tmp_path, monkeypatch):
    """With ~/.ssh/id_ed25519 being a key the server accepts, a missing key file
    given explicitly still fails: asyncssh would read [] as 'the defaults'."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(lab.keys.client_key, home / ".ssh" / "id_ed25519")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(KeyFileError):
        node(lab, keys=[tmp_path / "missing"])
    fine = node(lab, keys=None)  # nothing given: the defaults, as documented
    assert Scheduler(SshJob(fine, command=Run("true"))).run() is True


# ----- 4. closing nodes behind a gateway is a normal close
@pytest.mark.parametrize("how", ["close_all_jobs", "abort"])
@pytest.mark.parametrize("gateway_first", [True, False])
def test_closing_at_the_end_of_a_run_is_not_a_failure(lab, capsys, gateway_first, how):
    """Leaf jobs are closed concurrently (the gateway's job may come first); a
    console script drops every connection at exit (the gateway may come first)."""
    from apssh import HostFormatter

    verbose = HostFormatter(verbose=True)
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port, formatter=verbose)
    nodes = [node(lab, f"127.0.0.{i}", gateway=gateway, formatter=verbose) for i in (10, 11)]
    jobs = [SshJob(n, command=Run("echo through")) for n in nodes]
    on_gateway = SshJob(gateway, command=Run("echo gateway"))
    ordered = [on_gateway, *jobs] if gateway_first else [*jobs, on_gateway]
    scheduler = Scheduler(*ordered)
    assert scheduler.run() is True
    if how == "close_all_jobs":
        scheduler.close_all_jobs()
    else:
        async def drop() -> None:
            order = (gateway, *nodes) if gateway_first else (*nodes, gateway)
            conns = [each._st.conn for each in order if each._st is not None]
            assert len(conns) == 3
            for each in order:
                each.abort()
            # connection_lost has been called once each connection is closed
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in conns)), 10)

        run_in_thread_loop(drop())
    assert not gateway.is_connected() and not any(n.is_connected() for n in nodes)
    err = capsys.readouterr().err
    assert "Connection failed" not in err, err
    if how == "close_all_jobs":
        for host in ("127.0.1.1", "127.0.0.10", "127.0.0.11"):
            assert f"Connection closed to root@{host}" in err


def test_closing_a_gateway_closes_the_nodes_behind_it_first(lab):
    rec = Recorder()
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port, formatter=rec)
    behind = node(lab, "127.0.0.12", gateway=gateway, formatter=rec)
    deeper = node(lab, "127.0.0.13", gateway=behind, formatter=rec)

    async def scenario() -> None:
        assert await deeper.run("true") == 0
        await gateway.close()

    asyncio.run(scenario())
    closes = [(kind, host) for kind, host in rec.events if kind in ("closed", "lost")]
    assert closes == [("closed", "127.0.0.13"), ("closed", "127.0.0.12"),
                      ("closed", "127.0.1.1")]
    assert not behind.is_connected() and not deeper.is_connected()


# ----- 6. daemons that die or freeze under running commands
_tokens = iter(range(1, 10_000))


def token() -> str:
    """A sleep duration no other test uses, to find its process."""
    return f"41.{os.getpid() % 1000}{next(_tokens):03d}"


async def when_running(pattern: str, count: int = 1, deadline: float = 10.0) -> None:
    """Wait until ``count`` processes match ``pattern`` (polled, with a deadline)."""
    end = time.monotonic() + deadline
    while len(remote_processes(pattern)) < count:
        if time.monotonic() > end:
            raise TimeoutError(f"{pattern} never started")
        await asyncio.sleep(0.02)


def test_sshd_killed_mid_command(lab, daemons):
    daemon, known = daemons("killed", "127.0.2.1")
    pause = token()
    doomed = node(lab, "127.0.2.1", port=daemon.port, known_hosts=known)
    rec = Recorder()
    sleeper = SshJob(doomed, command=Run(f"sleep {pause}"), critical=False)
    other = SshJob(node(lab, "127.0.0.7", formatter=rec), command=Run("echo kept"),
                   critical=False)

    async def kill_when_running() -> None:
        await when_running(f"^sleep {pause}")
        await asyncio.to_thread(daemon.kill_all)

    killer = Job(kill_when_running(), critical=True)
    assert Scheduler(sleeper, other, killer, timeout=30).run() is True
    exc = sleeper.raised_exception()
    assert isinstance(exc, ConnectionLostError), exc
    assert str(exc) == "root@127.0.2.1: connection lost"
    assert other.result() == 0 and rec.out == [("127.0.0.7", "kept\n")]


def test_sshd_frozen_mid_command(lab, daemons):
    daemon, known = daemons("frozen", "127.0.2.2")
    pause = token()
    rec = Recorder()
    stuck = node(lab, "127.0.2.2", port=daemon.port, known_hosts=known, timeout=3,
                 formatter=rec)
    sleeper = SshJob(stuck, command=Run(f"sleep {pause}", timeout=3), critical=False)

    async def freeze_when_running() -> None:
        await when_running(f"^sleep {pause}")
        daemon.signal_sessions(signal.SIGSTOP)

    freezer = Job(freeze_when_running(), critical=True)
    assert Scheduler(sleeper, freezer, timeout=30).run() is True
    exc = sleeper.raised_exception()
    assert isinstance(exc, CommandTimeoutError), exc
    assert str(exc) == f"root@127.0.2.2: command timed out after 3s: sleep {pause}"
    assert ("stderr", "could not stop a command: no answer within 3.0s\n") in rec.events


def test_gateway_killed_under_running_nodes(lab, daemons):
    daemon, known = daemons("gateway", "127.0.2.3")
    pause = token()
    rec = Recorder()
    gateway = node(lab, "127.0.2.3", port=daemon.port, known_hosts=known, formatter=rec)
    behind = [node(lab, f"127.0.0.{i}", gateway=gateway, known_hosts=known, formatter=rec)
              for i in (8, 9)]
    jobs = [SshJob(n, command=Run(f"sleep {pause}"), critical=False) for n in behind]

    async def kill_when_running() -> None:
        await when_running(f"^sleep {pause}", count=2)
        await asyncio.to_thread(daemon.kill_all)

    killer = Job(kill_when_running(), critical=True)
    try:
        assert Scheduler(*jobs, killer, timeout=30).run() is True
        # documented (docs/ssh-failures.md): nothing reaches those nodes any more, so
        # their commands run on until they end (or their sshd notices the dead client)
        assert len(remote_processes(f"^sleep {pause}")) == 2
    finally:  # this test's own sleeps, by pid
        for line in remote_processes(f"^sleep {pause}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
    for n, job in zip(behind, jobs, strict=True):
        exc = job.raised_exception()
        assert isinstance(exc, ConnectionLostError), exc
        assert str(exc) == f"root@{n.hostname}: connection lost: gateway root@127.0.2.3 lost"
    assert ("lost", "127.0.2.3") in rec.events
