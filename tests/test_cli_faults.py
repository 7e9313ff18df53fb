"""The command-line tools as a new user and as an attacker try them, on the real sshd:
the first call with no -l, hostile names, paths that would escape, run directories,
bad options, a closed stdout, signals, marks that cannot be written."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_hangup
from sshd import Lab
from test_ssh_core import remote_processes

from apssh.cli import Appull, Appush, Apssh
from asynciojobs.record import new_run_dir as make_run_dir

H = "127.0.0"


def reach(lab: Lab, *more: str) -> list[str]:
    """What a call needs to reach the test daemon, host keys checked, and no -l."""
    return ["-p", str(lab.port), "-k", str(lab.keys.client_key),
            "--known-hosts", str(lab.known_hosts), "-F", "none", *more]


def run(capsys, tool, *argv: str) -> tuple[int, str, str]:
    code = tool().main(*argv)
    out, err = capsys.readouterr()
    return code, out, err


def deadline_wait(predicate, seconds: float = 20.0) -> None:
    """Poll ``predicate`` until true, or fail after ``seconds``."""
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            pytest.fail("condition not met in time")
        time.sleep(0.05)  # polling, with a deadline: not a stand-in for a signal


# ----- the first call a user makes: no -l, no user@, no User in a config
def test_apssh_without_any_user_is_the_local_user(lab, capsys):
    code, out, err = run(capsys, Apssh, *reach(lab), "-t", f"{H}.1,{H}.2", "id -un")
    assert code == 0, err
    assert sorted(out.splitlines()) == [f"{H}.1:{getpass.getuser()}",
                                        f"{H}.2:{getpass.getuser()}"]


def test_appush_and_appull_without_any_user(lab, capsys, tmp_path):
    source = tmp_path / "up.txt"
    source.write_text("pushed\n")
    remote = f"nepi-ng-nouser-{os.getpid()}.txt"
    code, out, err = run(capsys, Appush, *reach(lab), "-t", f"{H}.1", str(source), f"@:{remote}")
    assert code == 0, err
    code, out, err = run(capsys, Appull, *reach(lab), "-t", f"{H}.1", f"@:{remote}",
                         str(tmp_path / "down-{host}.txt"))
    assert code == 0, err
    assert (tmp_path / f"down-{H}.1.txt").read_text() == "pushed\n"
    (Path.home() / remote).unlink()


# ----- names are data
HOSTILE = [
    ("$(touch {marker})", "hostname contains invalid characters"),
    ("`touch {marker}`", "hostname contains invalid characters"),
    ("a;touch {marker}", "hostname contains invalid characters"),
    ("-oProxyCommand=touch {marker}", "hostname contains invalid characters"),
    ("../../escape", "hostname contains invalid characters"),
    ("x|touch {marker}", "hostname contains invalid characters"),
    ("$(id)@127.0.0.1", "user name contains invalid characters"),
    ("$(touch {marker})@127.0.0.1", "contains invalid characters"),
    ("127.0.0.1->$(touch {marker})", "hostname contains invalid characters"),
    ("$(touch {marker})->127.0.0.1", "hostname contains invalid characters"),
]


@pytest.mark.parametrize(("target", "reason"), HOSTILE)
def test_hostile_names_are_refused_before_anything_runs(lab, capsys, tmp_path, target, reason):
    marker = tmp_path / "ran"
    config = tmp_path / "ssh_config"
    # were %h ever given to a shell, the marker would appear
    config.write_text(f"Host *\n  ProxyCommand sh -c 'touch {marker}; echo %h >> {marker}'\n")
    item = target.format(marker=marker)
    args = reach(lab, f"--target={item}", "touch", str(marker))
    args[args.index("-F") + 1] = str(config)
    code, out, err = run(capsys, Apssh, *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and reason in err, err
    assert not marker.exists()


def test_hostile_login_is_refused(lab, capsys, tmp_path):
    code, out, err = run(capsys, Apssh, *reach(lab, "--login=-oProxyCommand=x"),
                         "-t", f"{H}.1", "true")
    assert (code, out) == (2, "")
    assert "user name contains invalid characters" in err and len(err.splitlines()) == 1


def test_a_key_given_as_target_file_is_refused_whole(lab, capsys):
    # its first word (-----BEGIN) is no host name: no word of it is looked up
    code, out, err = run(capsys, Apssh, *reach(lab), "-t", str(lab.keys.client_key), "true")
    assert (code, out) == (2, "")
    assert err.startswith(f"apssh: {lab.keys.client_key}:1: bad target '-----BEGIN'")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("target", ["../../x", "/abs", "../x", "a/b"])
def test_output_paths_never_leave_their_directory(lab, capsys, tmp_path, monkeypatch, target):
    here = tmp_path / "a" / "b" / "c"  # relative names resolve in this test's own tree
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    out_dir = here / "out"
    for tool, argv in ((Apssh, ["-o", str(out_dir), "-m", "echo hi"]),
                       (Appull, ["@:.profile", str(out_dir / "{host}")])):
        code, out, err = run(capsys, tool, *reach(lab), "-t", target, *argv)
        assert code == 2, err
        assert "hostname contains invalid characters" in err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == \
        ["a", "a/b", "a/b/c"]
    assert not Path("/abs").exists()


def test_pulled_files_land_under_the_template(lab, capsys, tmp_path):
    code, out, err = run(capsys, Appull, *reach(lab), "-t", f"{H}.[1-2]", "@:/etc/hostname",
                         str(tmp_path / "pulled" / "{host}") + "/")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "pulled").iterdir()) == [f"{H}.1", f"{H}.2"]


# ----- -d: a directory of its own for every run
def test_run_directories_are_never_reused(tmp_path):
    made = [make_run_dir(tmp_path) for _ in range(12)]  # the same second, mostly
    assert len(set(made)) == 12
    for path in made:
        assert path.is_dir() and ":" not in path.name
    assert sorted(made) == made  # names sort by time, .010 after .009 included


def test_bad_input_leaves_no_run_directory(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["-d", "-L"], ["-d", "-t", "root@h1,alice@h1"], ["-d", "-t", "h2,h2.err"],
                 ["-o", "new", "-x", "h1"],
                 ["-d", "-k", str(tmp_path / "missing_key")]):
        code, out, err = run(capsys, Apssh, *reach(lab, "-t", "h1"), *argv, "true")
        assert code in (0, 2), err
    code, out, err = run(capsys, Appush, *reach(lab, "-t", "h1"), "-d", "missing", "@:x")
    assert code == 2 and "missing: no such local file" in err
    assert list(tmp_path.iterdir()) == []


def test_two_runs_with_d_keep_both_outputs(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dirs = []
    for word in ("first", "second"):
        code, out, err = run(capsys, Apssh, *reach(lab), "-d", "-t", f"{H}.1", f"echo {word}")
        assert code == 0, err
        dirs.append(tmp_path / out.strip())
    assert dirs[0] != dirs[1]
    assert [(d / f"{H}.1").read_text() for d in dirs] == ["first\n", "second\n"]


# ----- bad options: one line naming the option, exit 2
@pytest.mark.parametrize(("option", "value"), [
    ("-c", "-1"), ("-c", "0"), ("--connect-timeout", "soon"), ("--command-timeout", "-5"),
    ("--command-timeout", "nan"),
])
def test_bad_timeouts_are_usage_errors(lab, capsys, option, value):
    code, out, err = run(capsys, Apssh, *reach(lab), option, value, "-t", f"{H}.1", "true")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert {"-c": "-c/--connect-timeout", "--connect-timeout": "-c/--connect-timeout",
            "--command-timeout": "--command-timeout"}[option] in err


@pytest.mark.parametrize("content", [b"not a key\n", b"", b"\x00\xff" * 50])
def test_an_unusable_key_is_refused_not_replaced(lab, capsys, tmp_path, content):
    key = tmp_path / "bad_key"
    key.write_bytes(content)
    args = reach(lab, "-t", f"{H}.1", "true")
    args[args.index("-k") + 1] = str(key)
    code, out, err = run(capsys, Apssh, *args)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and str(key) in err, err


# ----- results kept when the marks cannot be written
def test_marks_that_cannot_be_written_keep_the_summary(lab, capsys, tmp_path):
    (tmp_path / "0ok").write_text("in the way\n")  # a file where the directory goes
    code, out, err = run(capsys, Apssh, *reach(lab), "-o", str(tmp_path), "-m",
                         "-t", f"{H}.1", "echo kept")
    assert code == 1
    assert "apssh: 1 ok, 0 failed" in err
    assert "0ok" in err.splitlines()[-1]
    assert (tmp_path / f"{H}.1").read_text() == "kept\n"


# ----- stopping leaves nothing behind
def on_nodes(pattern: str) -> list[str]:
    """The remote processes matching ``pattern`` (not the local apssh naming it)."""
    return [line for line in remote_processes(pattern) if "apssh.cli" not in line]


def _apssh(lab: Lab, *argv: str, **kwds) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "apssh.cli", *reach(lab), *argv],
                            preexec_fn=default_hangup, **kwds)


def test_a_closed_stdout_stops_the_commands(lab):
    marker = f"closed-stdout-{os.getpid()}"
    reader, writer = os.pipe()
    proc = _apssh(lab, "-t", f"{H}.[1-3]", f"while :; do echo {marker}; sleep 0.1; done",
                  stdout=writer, stderr=subprocess.PIPE)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:  # `| head -2`, once every host prints
        assert pipe.readline() and pipe.readline()
        deadline_wait(lambda: len(on_nodes(f"echo {marker}")) == 3)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 141, err
    text = err.decode()
    assert text.count("standard output closed") == 1
    assert "no exit status" not in text and "Traceback" not in text
    deadline_wait(lambda: on_nodes(f"echo {marker}") == [])


def test_stdout_and_stderr_closed_together_stop_the_commands(lab):
    marker = f"closed-both-{os.getpid()}"
    reader, writer = os.pipe()
    proc = _apssh(lab, "-t", f"{H}.[1-3]",  # `2>&1 | head -2`
                  f"while :; do echo {marker}; echo {marker} >&2; sleep 0.1; done",
                  stdout=writer, stderr=writer)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        assert pipe.readline() and pipe.readline()
        deadline_wait(lambda: len(on_nodes(f"echo {marker}")) == 3)
    assert proc.wait(timeout=30) == 141
    deadline_wait(lambda: on_nodes(f"echo {marker}") == [])


@pytest.mark.parametrize("option", ["-n", "-L"])
def test_listing_into_a_closed_pipe_is_quiet(lab, option):
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads
    proc = _apssh(lab, "-t", f"{H}.[1-200]", option, stdout=writer, stderr=subprocess.PIPE)
    os.close(writer)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 141
    assert b"Traceback" not in err


def test_nepi_ng_run_stops_when_stdout_closes(tmp_path):
    marker = f"nepi-closed-{os.getpid()}"
    scenario = tmp_path / "loop.yaml"
    scenario.write_text(
        "nodes:\n  - id: here\n    localnode: true\n"
        "jobs:\n  - id: talk\n    node: here\n"
        f"    command: 'while :; do echo {marker}; sleep 0.1; done'\n")
    reader, writer = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "apssh.cli.nepi", "run", str(scenario)],
                            stdout=writer, stderr=subprocess.PIPE, preexec_fn=default_hangup)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        assert marker.encode() in pipe.readline()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 141, err
    assert err.decode().count("standard output closed") == 1
    deadline_wait(lambda: on_nodes(f"echo {marker}") == [])


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_the_commands_and_reports(lab, tmp_path, signum, code):
    marker = f"sleep 419.{signum}{os.getpid() % 1000}"
    script = tmp_path / "long.sh"
    script.write_text(f"#!/bin/sh\necho started\n{marker}\n")
    proc = _apssh(lab, "-s", "-t", f"{H}.[1-3]", str(script),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):
        assert "started" in proc.stdout.readline()
    deadline_wait(lambda: len(remote_processes(marker)) == 3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert err.splitlines()[-1] == f"apssh: 0 ok, 0 failed, 3 interrupted: {H}.[1-3]"
    assert "Traceback" not in err
    assert remote_processes(marker) == []
    # the uploaded scripts' directories are gone too
    assert list((Path.home() / ".apssh-remote").glob(f"*/{script.name}")) == []
