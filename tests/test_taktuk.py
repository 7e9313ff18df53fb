"""apssh --taktuk and appush --taktuk against the real sshd: TakTuk's tree reaches
the lab's hosts; outcomes, output, exit codes as in the direct mode."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import Lab, Sshd

from apssh.cli import Appull, Appush, Apssh
from apssh.errors import ApsshError
from apssh.formatters import Formatter
from apssh.taktuk import (
    SshSettings,
    TaktukGroup,
    TaktukHost,
    TaktukRun,
    connector,
    exit_result,
    parse_line,
)

pytestmark = pytest.mark.skipif(shutil.which("taktuk") is None and os.environ.get("CI") != "true",
                                reason="taktuk is not installed (apt-get install taktuk)")

H = "127.0.0"
#: the second daemon's addresses: 16 lab hosts + 4 = 20 hosts
MORE = "127.0.2"


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory) -> Iterator[tuple[Sshd, Path]]:
    """A second daemon on 4 more addresses (another port), and a known_hosts for all."""
    daemon = Sshd(lab.keys, f"taktuk-{os.getpid()}", [f"{MORE}.{i}" for i in range(1, 5)])
    known = tmp_path_factory.mktemp("taktuk") / "known_hosts"
    known.write_text(lab.known_hosts.read_text() + "\n".join(daemon.known_hosts_lines()) + "\n")
    yield daemon, known
    daemon.stop()


def base(lab: Lab, known: Path, *more: str) -> list[str]:
    return ["--taktuk", "-p", str(lab.port), "-k", str(lab.keys.client_key),
            "--known-hosts", str(known), "-F", "none", "-l", "root", *more]


def twenty(daemon: Sshd) -> str:
    return f"{H}.[1-16] " + " ".join(f"{a}:{daemon.port}" for a in daemon.addresses)


def run(capsys, tool, *argv: str) -> tuple[int, str, str]:
    code = tool().main(*argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----- pieces
def test_connector_has_our_algorithms_and_policy(tmp_path):
    line = connector(SshSettings(keys=("/k",), known_hosts=("/kh",), policy="verify",
                                 config="none", timeout=7), 2222)
    for part in ("-F none", "BatchMode=yes", "KexAlgorithms=^curve25519-sha256",
                 "Ciphers=^aes128-gcm@openssh.com", "StrictHostKeyChecking=yes",
                 "UserKnownHostsFile=/kh", "-i /k", "-p 2222", "ConnectTimeout=7"):
        assert part in line
    assert "StrictHostKeyChecking=accept-new" in connector(SshSettings(policy="accept-new"))
    assert "UserKnownHostsFile=/dev/null" in connector(SshSettings(policy="off"))
    assert "StrictHostKeyChecking" not in connector(SshSettings(policy=None))


#: the options a chain's hops and TakTuk's connector must agree on
SHARED = ("StrictHostKeyChecking", "UserKnownHostsFile", "GlobalKnownHostsFile", "Ciphers",
          "KexAlgorithms", "BatchMode", "LogLevel", "ConnectTimeout")


def _options(words: list[str]) -> dict[str, str]:
    pairs = (words[i + 1].split("=", 1) for i, word in enumerate(words[:-1]) if word == "-o")
    return {name: value for name, value in pairs if name in SHARED}


@pytest.mark.parametrize("policy", ["verify", "accept-new", "off"])
def test_chain_and_taktuk_give_ssh_the_same_options(policy):
    """One source (apssh.opensshargs): a chain's hops and TakTuk's connector get the
    same host-key and algorithm options, which hostkeys reads back as the policy."""
    from apssh.chain import hop_options
    from apssh.hostkeys import policy_from_config

    hop = _options(hop_options(policy, timeout=30))
    taktuk = _options(shlex.split(connector(SshSettings(policy=policy, timeout=30))))
    assert hop == taktuk
    assert set(hop) == set(SHARED) - ({"UserKnownHostsFile", "GlobalKnownHostsFile"}
                                      if policy != "off" else set())
    assert hop["Ciphers"].startswith("^") and hop["KexAlgorithms"].startswith("^")
    assert policy_from_config(hop["StrictHostKeyChecking"]) == (
        "no" if policy == "off" else policy)


def test_group_needs_hosts_and_one_thing_to_do():
    with pytest.raises(ValueError, match="no hosts"):
        TaktukGroup([], command="true", taktuk="taktuk")
    for wrong in ({}, {"command": "true", "put": [("a", "b")]},
                  {"put": [("a", "b")], "get": ["c"], "into": ["d"]}):
        with pytest.raises(ValueError, match=r"either a command, files to put or files "
                           r"to get \(one of them\)"):
            TaktukGroup([TaktukHost("a")], taktuk="taktuk", **wrong)


async def test_run_without_hosts_ends_its_input():
    """No host will say it is done: TakTuk's standard input ends at once."""
    said: list[str] = []
    run = TaktukRun(["cat"], 0, script=b"hello\n", diagnostics=lambda _, line: said.append(line))
    assert await asyncio.wait_for(run.wait(), 30) == 0
    assert said == ["hello"]


@pytest.mark.parametrize(("name", "why"), [("missing", "No such file or directory"),
                                           ("not-executable", "Permission denied")])
async def test_taktuk_that_does_not_start_ends_every_job(tmp_path, name, why):
    program = tmp_path / name
    if name == "not-executable":
        program.write_text("#!/bin/sh\n")
    hosts = [TaktukHost("a"), TaktukHost("b")]
    group = TaktukGroup(hosts, command="true", taktuk=str(program))
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(job.co_run() for job in group.jobs()), return_exceptions=True), 30)
    for outcome in outcomes:
        assert isinstance(outcome, ApsshError)
        assert str(outcome).endswith(f"taktuk failed: {program}: {why}")
    with pytest.raises(OSError, match=why):  # the library's run says it too
        await asyncio.wait_for(TaktukGroup(hosts, command="true", taktuk=str(program))
                               .co_run(), 30)


async def test_run_cancelled_before_it_started_ends_its_jobs():
    group = TaktukGroup([TaktukHost("a")], command="true", taktuk="taktuk")
    group.taktuk_run.start().cancel()
    (job,) = group.jobs()
    with pytest.raises(ApsshError, match="taktuk was stopped"):
        await asyncio.wait_for(job.co_run(), 30)


@pytest.mark.parametrize(("raw", "kind", "index", "data"), [
    (b"o 3 n 6869\n", "stdout", 2, b"hi\n"),
    (b"o 3 - 00ff\n", "stdout", 2, b"\x00\xff"),
    (b"o 1 n\n", "stdout", 0, b"\n"),
    (b"e 12 - 6572\n", "stderr", 11, b"er"),
    (b"s 4 256\n", "status", 3, 256),
    (b"c 7 7373683a\n", "connector", 6, b"ssh:"),
    (b"S 3 5 \n", "failed", 4, b""),
    (b"S 15 2 -\n", "received", 1, b""),
])
def test_template_lines_parse(raw, kind, index, data):
    line = parse_line(raw)
    assert line is not None and (line.kind, line.index, line.data) == (kind, index, data)


@pytest.mark.parametrize("raw", [b"", b"hello world\n", b"o x n zz\n", b"S 99 1\n"])
def test_other_lines_are_not_ours(raw):
    assert parse_line(raw) is None


def test_lost_node_takes_what_it_deployed():
    line = parse_line(b"S 5 2 " + b"h3:3 h4:4".hex().encode() + b"\n")
    assert line is not None and (line.kind, line.index, line.more) == ("lost", 1, (2, 3))


@pytest.mark.parametrize(("status", "result"), [(0, 0), (256, 1), (768, 3), (15, "TERM"),
                                                (9, "KILL")])
def test_wait_status(status, result):
    assert exit_result(status) == result


def test_missing_taktuk_is_one_line(lab, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "-t", f"{H}.1", "true")
    assert code == 2
    assert err == "apssh: taktuk is not installed (apt-get install taktuk), needed by --taktuk\n"


def test_what_the_mode_does_not_do_is_one_line(lab, capsys):
    for extra in (["--sudo"], ["--command-timeout", "3"], ["-I"]):
        code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), *extra,
                             "-t", f"{H}.1", "true")
        assert code == 2 and len(err.splitlines()) == 1 and "--taktuk" in err
    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "-t", f"{H}.1",
                         "echo {host}")
    assert code == 2 and "{host} is per host" in err


# ----- against the lab
def test_twenty_hosts_each_on_its_own_address(lab, fleet, capsys):
    daemon, known = fleet
    code, out, err = run(capsys, Apssh, *base(lab, known), "-t", twenty(daemon),
                         "echo $SSH_CONNECTION")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 20
    for line in lines:  # each host answered on its own address
        host, text = line.split(":", 1)
        assert text.split()[2] == host.strip()
    assert err.splitlines()[-1] == "apssh: 20 ok, 0 failed"


def test_one_failing_host_gives_its_code(lab, fleet, capsys):
    daemon, known = fleet
    code, out, err = run(capsys, Apssh, *base(lab, known), "-t", twenty(daemon),
                         f"echo $SSH_CONNECTION | grep -q ' {H}.3 ' && exit 7; echo ok")
    assert code == 7, err
    assert f"apssh: root@{H}.3:{lab.port}: exit 7" in err.splitlines()
    assert err.splitlines()[-1] == f"apssh: 19 ok, 1 failed: {H}.3"
    assert len(out.splitlines()) == 19


def test_unreachable_host_gives_255_and_keeps_the_others(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "-t", f"{H}.1 {H}.2:1",
                         "echo alive")
    assert code == 255
    assert out == f"{H}.1:alive\n"
    assert f"apssh: root@{H}.2:1: connection refused" in err.splitlines()
    assert err.splitlines()[-1] == f"apssh: 1 ok, 1 failed: {H}.2"


def test_unknown_host_key_is_refused(lab, capsys, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    code, out, err = run(capsys, Apssh, *base(lab, empty), "-t", f"{H}.1", "echo in")
    assert code == 255 and out == ""
    assert f"apssh: root@{H}.1:{lab.port}: host key unknown" in err


def test_signal_is_reported(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "-t", f"{H}.1",
                         "kill -TERM $$")
    assert code == 128 + 15
    assert f"apssh: root@{H}.1:{lab.port}: killed by signal TERM" in err


def test_gathered_output(lab, fleet, capsys):
    daemon, known = fleet
    odd = f"if echo $SSH_CONNECTION | grep -q ' {H}.5 '; then echo odd; fi"
    code, out, err = run(capsys, Apssh, *base(lab, known), "-b", "-t", twenty(daemon),
                         f"echo same; {odd}")
    assert code == 0
    assert out.count("same") == 2
    header = f"{H}.[1-4,6-16],{MORE}.[1-4] (19)"
    assert header in out.splitlines()
    assert f"{H}.5 (1)" in out.splitlines()


def test_bytes_and_streams_apart_in_files(lab, capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "-o", str(out_dir),
                         "-m", "-t", f"{H}.[1-3]",
                         r"printf 'a\000b\377\nlast'; printf 'e1\ne2' >&2")
    assert code == 0, err
    for i in (1, 2, 3):
        assert (out_dir / f"{H}.{i}").read_bytes() == b"a\x00b\xff\nlast"
        assert (out_dir / f"{H}.{i}.err").read_bytes() == b"e1\ne2"
        assert (out_dir / "0ok" / f"{H}.{i}").read_text() == "0\n"


def test_record_keeps_each_host(lab, capsys, tmp_path):
    import json

    code, out, err = run(capsys, Apssh, *base(lab, lab.known_hosts), "--record",
                         str(tmp_path), "-t", f"{H}.[1-2] {H}.3:1", "echo recorded")
    assert code == 255
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    data = json.loads((run_dir / "run.json").read_text())
    commands = {job["node"]: job["commands"][0] for job in data["jobs"]}
    assert [commands[f"{H}.{i}"]["status"] for i in (1, 2)] == [0, 0]
    assert commands[f"{H}.3"]["outcome"] == "failed"
    assert data["nodes"][f"{H}.3"]["failed"] == "connection refused"
    for i in (1, 2):
        assert (run_dir / "output" / f"{H}.{i}.stdout").read_bytes() == b"recorded\n"


def test_library_group(lab, tmp_path):
    hosts = [TaktukHost(f"{H}.{i}", "root", lab.port) for i in (1, 2)] + [
        TaktukHost(f"{H}.3", "root", 1)]
    settings = SshSettings(keys=(str(lab.keys.client_key),),
                           known_hosts=(str(lab.known_hosts),), config="none")
    results = TaktukGroup(hosts, command="echo out; echo err >&2; exit 4",
                          settings=settings).run()
    assert [(r.stdout, r.stderr, r.status) for r in results[:2]] == [(b"out\n", b"err\n", 4)] * 2
    assert results[2].unreachable and results[2].reason == "connection refused"


class _Shown(Formatter):
    """A formatter keeping what it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.shown = bytearray()

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        self.shown += raw


async def test_jobs_say_why_as_ssh_jobs_and_keep_output_without_formatter(lab):
    """CommandEnded says ``exit N`` (the signal's name for a signal), as an SshJob's;
    a job whose output a formatter shows keeps none of it."""
    from asynciojobs import Scheduler
    from asynciojobs.events import CommandEnded

    hosts = [TaktukHost(f"{H}.{i}", "root", lab.port) for i in (1, 2, 3)]
    settings = SshSettings(keys=(str(lab.keys.client_key),),
                           known_hosts=(str(lab.known_hosts),), config="none")
    group = TaktukGroup(hosts, settings=settings, command=(
        f"echo $SSH_CONNECTION | grep -q ' {H}.1 ' && kill -TERM $$; echo out; exit 4"))
    shown = _Shown()
    jobs = group.jobs(lambda index, host: shown if index == 1 else None)
    scheduler = Scheduler(*jobs)
    ended: list[CommandEnded] = []
    scheduler.subscribe(lambda event: isinstance(event, CommandEnded) and ended.append(event))
    await asyncio.wait_for(scheduler.co_run(), 60)
    assert await asyncio.wait_for(group.taktuk_run.wait(), 30) == 0  # every host told
    assert sorted((e.node, e.status, e.reason) for e in ended) == [
        (f"{H}.1", "TERM", "TERM"), (f"{H}.2", 4, "exit 4"), (f"{H}.3", 4, "exit 4")]
    assert bytes(shown.shown) == b"out\n" and jobs[1].result_data.stdout == b""
    assert jobs[2].result_data.stdout == b"out\n"


# ----- appush --taktuk
USERS = [f"nepitk{i}" for i in range(10)]


@pytest.fixture(scope="module")
def users() -> list[str]:
    """Ten plain users, each its own home: ten hosts that are one machine still get
    one copy each."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create users")
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", user], check=True)
    return USERS


def test_appush_to_ten_hosts(lab, users, capsys, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(300_000) + b"end")
    for user in users:
        Path(pwd.getpwnam(user).pw_dir, "payload.bin").unlink(missing_ok=True)
    targets = " ".join(f"{user}@{H}.{i + 1}" for i, user in enumerate(users))
    code, out, err = run(capsys, Appush, *base(lab, lab.known_hosts), "-t", targets,
                         str(payload), "@:")
    assert code == 0, err
    assert err.splitlines()[-1] == "appush: 10 ok, 0 failed"
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    for user in users:
        copy = Path(pwd.getpwnam(user).pw_dir, "payload.bin")
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest


def test_appush_failure_is_one_line_per_host(lab, users, capsys, tmp_path):
    payload = tmp_path / "small"
    payload.write_text("x")
    code, out, err = run(capsys, Appush, *base(lab, lab.known_hosts), "-t",
                         f"{users[0]}@{H}.1 {H}.2:1", str(payload), "@:/nonexistent/dir/x")
    assert code == 255
    lines = err.splitlines()
    assert any(line.startswith(f"appush: {users[0]}@{H}.1:{lab.port}: file reception failed")
               for line in lines)
    assert f"appush: root@{H}.2:1: connection refused" in lines


@pytest.mark.parametrize(("lines", "reason"), [
    (["ssh: connect to host h port 1: Connection refused"], "connection refused"),
    (["No ED25519 host key is known for h", "Host key verification failed."],
     "host key unknown"),
    (["root@h: Permission denied (publickey)."], "authentication failed"),
    (["timeouted"], "connection timed out (TakTuk's deployment, see -c)"),
    (["something else", ""], "something else"),
    ([], "connection failed"),
])
def test_unreachable_reasons(lines, reason):
    from apssh.taktukline import unreachable_reason

    assert unreachable_reason(lines) == reason


def test_ctrl_c_stops_the_commands_on_every_node(lab):
    from test_cli import assert_ctrl_c_stops_everything

    assert_ctrl_c_stops_everything(base(lab, lab.known_hosts), "419.25")


@pytest.fixture(scope="module")
def hundred(lab: Lab, tmp_path_factory) -> Iterator[tuple[list[str], Path]]:
    """100 hosts: 7 daemons (sshd listens on 16 addresses at most) on 127.0.3-9.x,
    MaxStartups raised for the tree's bursts; the targets, and a known_hosts for all."""
    addresses = [f"127.0.{3 + i // 16}.{1 + i % 16}" for i in range(100)]
    daemons = [Sshd(lab.keys, f"taktuk100-{os.getpid()}-{n}", addresses[n:n + 16],
                    max_startups="100:30:200") for n in range(0, 100, 16)]
    known = tmp_path_factory.mktemp("taktuk100") / "known_hosts"
    known.write_text(lab.known_hosts.read_text() + "".join(
        "\n".join(daemon.known_hosts_lines()) + "\n" for daemon in daemons))
    targets = [f"{address}:{daemon.port}" for daemon in daemons for address in daemon.addresses]
    yield targets, known
    for daemon in daemons:
        daemon.stop()


def test_a_hundred_hosts_one_failing(lab, hundred, capsys):
    """The issue's lab test: 100 hosts through the tree, one exits 3; every other host's
    line is there, the failing one's code is the run's, and the summary names it."""
    targets, known = hundred
    argv = ["--taktuk", "-k", str(lab.keys.client_key), "--known-hosts", str(known),
            "-F", "none", "-l", "root", "-c", "120"]
    code, out, err = run(capsys, Apssh, *argv, "-t", " ".join(targets),
                         "set -- $SSH_CONNECTION; echo $3; [ $3 != 127.0.5.7 ] || exit 3")
    assert code == 3, err
    answers = sorted(line.split(":", 1)[1] for line in out.splitlines())
    assert answers == sorted(target.split(":")[0] for target in targets)
    assert err.splitlines()[-1] == "apssh: 99 ok, 1 failed: 127.0.5.7"


# ----- -w, appull --taktuk
def test_window_is_taktuks(lab, fleet, capsys):
    """-w N: each node (the root, every relay) deploys at most N nodes at once."""
    daemon, known = fleet
    code, out, err = run(capsys, Apssh, *base(lab, known), "-w", "2", "-t", twenty(daemon),
                         "echo ok")
    assert code == 0, err
    assert err.splitlines()[-1] == "apssh: 20 ok, 0 failed"


def _homes(users: list[str]) -> list[Path]:
    return [Path(pwd.getpwnam(user).pw_dir) for user in users]


def test_appull_from_ten_hosts_one_missing(lab, users, capsys, tmp_path):
    """Each host's own file, into a path made of its name; the host without the
    file fails alone (exit 1, as appull), the others' copies are byte for byte."""
    digests = {}
    for i, home in enumerate(_homes(users)):
        remote = home / "pulled.bin"
        remote.unlink(missing_ok=True)
        if i == 3:
            continue
        remote.write_bytes(os.urandom(200_000 + i))
        digests[f"{H}.{i + 1}"] = hashlib.sha256(remote.read_bytes()).hexdigest()
    targets = " ".join(f"{user}@{H}.{i + 1}" for i, user in enumerate(users))
    out_dir = tmp_path / "pulled"
    code, out, err = run(capsys, Appull, *base(lab, lab.known_hosts), "-t", targets,
                         "@:pulled.bin", f"{out_dir}/{{host}}/copy.bin")
    assert code == 1, err
    lines = err.splitlines()
    assert lines[-1] == f"appull: 9 ok, 1 failed: {H}.4"
    assert f"appull: {users[3]}@{H}.4:{lab.port}: file reception failed: No such file " \
        "or directory" in lines
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(digests)
    for host, digest in digests.items():
        copy = out_dir / host / "copy.bin"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    assert [p.name for p in out_dir.parent.iterdir() if p.name.startswith(".appull")] == []


def test_appull_several_files_by_rank(lab, users, capsys, tmp_path):
    """Several remote files: each host's go into a directory, here named by rank."""
    for i, home in enumerate(_homes(users[:3])):
        (home / "a.txt").write_text(f"a{i}")
        (home / "b.txt").write_text(f"b{i}")
    targets = " ".join(f"{user}@{H}.{i + 1}" for i, user in enumerate(users[:3]))
    code, out, err = run(capsys, Appull, *base(lab, lab.known_hosts), "-t", targets,
                         "@:a.txt", "@:b.txt", f"{tmp_path}/r{{rank}}")
    assert code == 0, err
    for i in range(3):
        assert (tmp_path / f"r{i}" / "a.txt").read_text() == f"a{i}"
        assert (tmp_path / f"r{i}" / "b.txt").read_text() == f"b{i}"


def test_appull_unreachable_host_and_bad_paths(lab, users, capsys, tmp_path):
    (_homes(users)[0] / "one.txt").write_text("one")
    code, out, err = run(capsys, Appull, *base(lab, lab.known_hosts), "-t",
                         f"{users[0]}@{H}.1 {H}.2:1", "@:one.txt", f"{tmp_path}/{{host}}")
    assert code == 255
    assert (tmp_path / f"{H}.1").read_text() == "one"
    assert f"appull: root@{H}.2:1: connection refused" in err.splitlines()
    for remote in ("@:a b", "@:{host}.txt", "@:x$HOME"):
        code, out, err = run(capsys, Appull, *base(lab, lab.known_hosts), "-t", f"{H}.1",
                             remote, str(tmp_path / "x"))
        assert code == 2 and len(err.splitlines()) == 1, err
    assert not list(tmp_path.glob("**/.appull-taktuk-*"))
