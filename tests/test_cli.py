"""apssh, appush and appull against the real sshd: options, outcomes, exit codes."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys

import pytest
from sshd import Lab, keygen
from test_ssh_core import remote_processes

from apssh.cli import Appull, Appush, Apssh

H = "127.0.0"


def base(lab: Lab, *more: str) -> list[str]:
    """What every call needs to reach the test daemon, host keys checked."""
    return ["-p", str(lab.port), "-k", str(lab.keys.client_key),
            "--known-hosts", str(lab.known_hosts), "-F", "none", "-l", "root", *more]


def gateway(lab: Lab) -> str:
    return f"127.0.1.1:{lab.gateway.port}"


def run(capsys, tool, *argv: str) -> tuple[int, str, str]:
    code = tool().main(*argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----- running a command
def test_hostname_on_three_hosts(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-3]",
                         "echo", "$SSH_CONNECTION")
    assert code == 0
    assert sorted(line.split(":")[0] for line in out.splitlines()) == \
        [f"{H}.1", f"{H}.2", f"{H}.3"]
    for line in out.splitlines():  # each host answered on its own address
        host, text = line.split(":", 1)
        assert text.split()[2] == host
    assert err.splitlines()[-1] == "apssh: 3 ok, 0 failed"


def test_stdout_and_stderr_apart_lines_never_glued(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1,{H}.2",
                         "printf out; printf err >&2")
    assert code == 0
    assert sorted(out.splitlines()) == [f"{H}.1:out", f"{H}.2:out"]
    assert sorted(err.splitlines()[:2]) == [f"{H}.1:err", f"{H}.2:err"]


def test_largest_exit_code_and_one_line_per_failure(lab, capsys):
    # each host exits with the last number of its address
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-3,5]",
                         "exit $(echo $SSH_CONNECTION | cut -d' ' -f3 | cut -d. -f4)")
    assert code == 5
    lines = err.splitlines()
    for i in (1, 2, 3, 5):
        assert f"apssh: root@{H}.{i}:{lab.port}: exit {i}" in lines
    assert lines[-1] == f"apssh: 0 ok, 4 failed: {H}.[1-3,5]"


def test_unreachable_host_gives_255_and_keeps_the_others(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1 {H}.2:1", "echo alive")
    assert code == 255
    assert out == f"{H}.1:alive\n"
    assert f"apssh: root@{H}.2:1: connection refused" in err.splitlines()
    assert err.splitlines()[-1] == f"apssh: 1 ok, 1 failed: {H}.2"


def test_signal_is_reported(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "kill -TERM $$")
    assert code == 128 + 15
    assert f"apssh: root@{H}.1:{lab.port}: killed by signal TERM" in err


def test_command_timeout_kills_the_command(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1,{H}.2",
                         "--command-timeout", "0.5", "echo go; sleep 417.5")
    assert code == 124
    assert f"apssh: root@{H}.1:{lab.port}: timed out after 0.5s" in err
    assert sorted(out.splitlines()) == [f"{H}.1:go", f"{H}.2:go"]
    assert remote_processes("sleep 417.5") == []


def test_authentication_failure(lab, capsys, tmp_path):
    keygen(tmp_path / "stranger", "not authorized")
    code, out, err = run(capsys, Apssh, *base(lab), "-k", str(tmp_path / "stranger"),
                         "-t", f"nepitest@{H}.1", "true")
    # -k given twice: both keys are offered, and the good one is accepted
    assert code == 0
    code, out, err = run(capsys, Apssh, "-p", str(lab.port), "-F", "none",
                         "--known-hosts", str(lab.known_hosts),
                         "-k", str(tmp_path / "stranger"), "-t", f"root@{H}.1", "true")
    assert code == 255
    assert f"apssh: root@{H}.1:{lab.port}: authentication failed" in err


def test_host_key_mismatch_and_unknown(lab, capsys, tmp_path):
    keygen(tmp_path / "other", "another host key")
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{H}.1]:{lab.port} {other}\n")
    args = ["-p", str(lab.port), "-F", "none", "-k", str(lab.keys.client_key), "-l", "root"]
    code, out, err = run(capsys, Apssh, *args, "--known-hosts", str(wrong),
                         "-t", f"{H}.1,{H}.2", "true")
    assert code == 255
    assert f"apssh: root@{H}.1:{lab.port}: host key mismatch" in err
    assert f"apssh: root@{H}.2:{lab.port}: host key unknown" in err
    # accept-new records the unknown host, still refuses the changed one
    code, out, err = run(capsys, Apssh, *args, "--known-hosts", str(wrong),
                         "--host-key-policy", "accept-new", "-t", f"{H}.1,{H}.2", "true")
    assert code == 255
    assert "host key mismatch" in err
    assert f"[{H}.2]:{lab.port}" in wrong.read_text()
    code, out, err = run(capsys, Apssh, *args, "--known-hosts", str(wrong),
                         "--host-key-policy", "off", "-t", f"{H}.1", "true")
    assert code == 0


def test_gateway_down(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-g", f"{H}.9:1", "-t", f"{H}.[1-2]",
                         "true")
    assert code == 255
    assert f"apssh: root@{H}.9:1->root@{H}.1:{lab.port}: gateway root@{H}.9 unreachable " \
           "(connection refused)" in err.splitlines()


def test_gateways_shared_and_chained(lab, capsys):
    gw = gateway(lab)
    code, out, err = run(capsys, Apssh, *base(lab), "-v", "-t", f"{gw}->{H}.[1-3]",
                         "-t", f"{gw}->{H}.4->{H}.5", "echo hop")
    assert code == 0
    assert sorted(out.splitlines()) == [f"{H}.{i}:hop" for i in (1, 2, 3, 5)]
    assert err.count("Connecting (direct) to root@127.0.1.1") == 1
    assert err.count("Connecting (tunnelled)") == 5  # 1, 2, 3, 4 and 5
    code, out, err = run(capsys, Apssh, *base(lab), "-L", "-t", f"u@{gw}->{H}.4->{H}.5")
    assert out == f"u@{gw}->root@{H}.4:{lab.port}->root@{H}.5:{lab.port}\n"


def test_window_with_unreachable_hosts_does_not_hang(lab, capsys):
    """0.27 hung: a failed host kept its window slot."""
    code, out, err = run(capsys, Apssh, *base(lab), "-w", "1",
                         "-t", f"{H}.1:1 {H}.2:1 {H}.3 {H}.4", "echo ok")
    assert code == 255
    assert sorted(out.splitlines()) == [f"{H}.3:ok", f"{H}.4:ok"]


def test_window_bounds_open_connections(lab, capsys):
    """0.27 kept every connection open until the end, whatever -w."""
    code, out, err = run(capsys, Apssh, *base(lab), "-v", "-w", "2", "-t", f"{H}.[1-6]",
                         "true")
    assert code == 0
    open_now = highest = 0
    for line in err.splitlines():
        if "Connecting (direct)" in line:
            open_now += 1
        elif "Connection closed to" in line:
            open_now -= 1
        highest = max(highest, open_now)
    assert highest == 2
    assert open_now == 0


def test_connect_timeout(lab, capsys):
    with socket.socket() as silent:  # accepts TCP, never speaks SSH
        silent.bind((f"{H}.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        code, out, err = run(capsys, Apssh, *base(lab), "-c", "0.5", "-t", f"{H}.1:{port}",
                             "true")
    assert code == 255
    assert f"apssh: root@{H}.1:{port}: timed out after 0.5s" in err


def test_no_key_then_ok_if_no_key(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    args = ["-p", str(lab.port), "-F", "none", "--known-hosts", str(lab.known_hosts),
            "-l", "root", "-t", f"{H}.1"]
    for tool, more in ((Apssh, ["true"]), (Appush, [str(lab.known_hosts), "@:"]),
                       (Appull, ["@:x", str(tmp_path)])):
        code, out, err = run(capsys, tool, *args, *more)
        assert code == 2
        assert err == (f"{tool.prog}: could not find any usable key for root@{H}.1:{lab.port}"
                       " (see -k, or -K to go ahead)\n")
        code, out, err = run(capsys, tool, *args, "-K", *more)  # 0.27's appush crashed here
        assert code == 255
        assert "authentication failed" in err


def test_debug_names_the_targets(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-D", "-t", f"{H}.[1-2]", "true")
    assert code == 0
    assert f"apssh: using target root@{H}.1:{lab.port}" in err.splitlines()


# ----- output modes
def test_gathered_output(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-b", "-t", f"{H}.[1-6]",
                         "echo same; [ $(echo $SSH_CONNECTION | cut -d' ' -f3) = {H}.5 ] "
                         "&& echo different; true".replace("{H}", H))
    assert code == 0
    first, second = f"{H}.[1-4,6] (5)", f"{H}.5 (1)"
    rule1, rule2 = "-" * len(first), "-" * 15  # as long as the header, 15 at least
    assert out == (f"{rule1}\n{first}\n{rule1}\nsame\n"
                   f"{rule2}\n{second}\n{rule2}\nsame\ndifferent\n")


def test_formats(lab, capsys):
    code, out, _ = run(capsys, Apssh, *base(lab), "-r", "-t", f"{H}.1", "echo raw")
    assert out == "raw\n"
    code, out, _ = run(capsys, Apssh, *base(lab), "-tc", "-t", f"{H}.1", "echo t")
    assert out.endswith(f":{H}.1:t\n") and out[2] == "-"
    code, out, _ = run(capsys, Apssh, *base(lab), "-f", "[{fqdn}|{user}] {line}{nl}",
                       "-t", f"{H}.1", "echo f")
    assert out == f"[{H}.1|] f\n"  # as 0.27: {user} only on connection events


def test_out_dir_and_marks_fed_back(lab, capsys, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, Apssh, *base(lab), "-o", str(run_dir), "-m",
                         "-t", f"{H}.1 {H}.2 {H}.3:1", "echo hi; echo oops >&2")
    assert code == 255
    assert out == f"{run_dir}\n"
    assert (run_dir / f"{H}.1").read_text() == "hi\n"
    assert (run_dir / f"{H}.2.err").read_text() == "oops\n"
    assert (run_dir / "0ok" / f"{H}.1").read_text() == "0\n"
    assert (run_dir / "1failed" / f"{H}.3").read_text() == "None\n"
    code, out, err = run(capsys, Apssh, *base(lab), "-n", "-t", str(run_dir / "0ok"))
    assert out.splitlines() == ["========== 0 excludes found:",
                                "========== 2 hostnames selected (0 excluded):",
                                f"root@{H}.1:{lab.port}", f"root@{H}.2:{lab.port}"]


def test_date_time_dir(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, Apssh, *base(lab), "-d", "-t", f"{H}.1", "echo d")
    assert code == 0
    assert (tmp_path / out.strip() / f"{H}.1").read_text() == "d\n"


def test_no_progress_line_when_piped(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-12]", "true")
    assert code == 0
    assert "running" not in err and "\x1b" not in err


def test_progress_line_on_a_terminal(lab):
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "apssh.cli", *base(lab),
                             "-t", f"{H}.[1-12]", "true"],
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(30) == 0
    text = b"".join(chunks).decode()
    assert "12 done, 0 failed, 0 running / 12" in text
    assert text.endswith("\r\x1b[Kapssh: 12 ok, 0 failed\r\n")


# ----- input
def test_stdin_broadcast(lab, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"line 1\nline 2\n")))
    code, out, err = run(capsys, Apssh, *base(lab), "-I", "-t", f"{H}.[1-2]", "wc -l")
    assert code == 0
    assert sorted(out.splitlines()) == [f"{H}.1:2", f"{H}.2:2"]


def test_stdin_broadcast_to_a_script(lab, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"to the script\n")))
    code, out, err = run(capsys, Apssh, *base(lab), "-I", "-s", "-t", f"{H}.1",
                         "#!/bin/sh\nread line; echo \"got: $line\"")
    assert (code, out) == (0, f"{H}.1:got: to the script\n")


def test_without_stdin_the_command_reads_end_of_file(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "cat; echo done")
    assert (code, out) == (0, f"{H}.1:done\n")


def test_script_file_with_includes(lab, capsys, tmp_path):
    script = tmp_path / "probe.sh"
    script.write_text('#!/bin/sh\necho "args:$*"; cat "$(dirname "$0")/data.txt"\n')
    data = tmp_path / "data.txt"
    data.write_text("included\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "-s", "-i", str(data),
                         str(script), "a", "b")
    assert (code, out) == (0, f"{H}.1:args:a b\n{H}.1:included\n")


def test_script_body(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "-s",
                         "#!/bin/sh\necho body:$1", "x")
    assert (code, out) == (0, f"{H}.1:body:x\n")


def test_duplicates_and_excludes(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1 {H}.1,{H}.[1-3]",
                         "-x", f"{H}.3", "echo x")
    assert sorted(out.splitlines()) == [f"{H}.1:x", f"{H}.2:x"]


def test_hosts_file_with_comments(lab, capsys, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# lab\n{H}.1  # first\n{gateway(lab)}->{H}.2 # behind\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", str(hosts), "echo f")
    assert code == 0
    assert sorted(out.splitlines()) == [f"{H}.1:f", f"{H}.2:f"]


def test_ssh_config_alias(lab, capsys):
    code, out, err = run(capsys, Apssh, "-F", str(lab.ssh_config), "-t", "node1",
                         "echo via-alias")
    assert (code, out) == (0, "node1:via-alias\n")


# ----- copies
def test_appush_to_bare_home_and_templates(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in (1, 2):
        (tmp_path / f"local-{H}.{i}").write_text(f"for {i}\n")
    code, out, err = run(capsys, Appush, *base(lab), "-t", f"{H}.[1-2]",
                         "local-{host}", "@:")
    assert code == 0, err
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-2]",
                         "cat local-$(echo $SSH_CONNECTION | cut -d' ' -f3)")
    assert sorted(out.splitlines()) == [f"{H}.1:for 1", f"{H}.2:for 2"]


def test_appull_into_new_per_host_dirs(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-2]", "hostname > pulled-name")
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.[1-2]", "@:pulled-name",
                         "got/{host}/")
    assert code == 0, err
    assert (tmp_path / "got" / f"{H}.1" / "pulled-name").exists()
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.1", "@:no-such-file",
                         "got/{host}/")
    assert code == 1
    assert f"appull: root@{H}.1:{lab.port}: Pull: no-such-file into " in err
    assert code == 1


def test_copy_exit_code_is_255_when_unreachable(lab, capsys, tmp_path):
    source = tmp_path / "f"
    source.write_text("x")
    code, out, err = run(capsys, Appush, *base(lab), "-t", f"{H}.1:1", str(source), "@:")
    assert code == 255


@pytest.mark.parametrize("tool", [Apssh, Appush, Appull])
def test_version(tool, capsys):
    code, out, err = run(capsys, tool, "-V")
    assert code == 0
    assert out.startswith(f"{tool.prog} version ")


# ----- bad input: one line, non-zero
@pytest.mark.parametrize(("tool", "argv", "culprit"), [
    (Apssh, ["--bogus", "-t", "h", "true"], "--bogus"),
    (Apssh, ["-t", "", "true"], "empty target"),
    (Apssh, ["true"], "without any target"),
    (Apssh, ["-t", "fit[3-1]", "true"], "'fit[3-1]'"),
    (Apssh, ["-t", "h:99999", "true"], "'h:99999'"),
    (Apssh, ["-t", "h"], "no command"),
    (Apssh, ["-t", "h", "-m", "true"], "-m/--mark"),
    (Apssh, ["-t", "h", "-i", "x", "true"], "-i/--includes"),
    (Apssh, ["-t", "h", "-w", "-1", "true"], "-w/--window"),
    (Apssh, ["-t", "h", "-p", "0", "true"], "-p/--port"),
    (Apssh, ["-t", "h", "-F", "/no/such/config", "true"], "-F /no/such/config"),
    (Apssh, ["-t", "h", "-x", "a->", "true"], "'a->'"),
    (Apssh, ["-t", "h", "-k", "/no/such/key", "true"], "/no/such/key"),
    (Appush, ["-t", "h", "f", "/tmp"], "/tmp is not remote"),
    (Appush, ["-t", "h", "@:"], "expected local files"),
    (Appull, ["-t", "h", "f", "here"], "f is not remote"),
    (Appull, ["-t", "h", "@:f", "@:g"], "@:g is remote"),
])
def test_bad_input(tool, argv, culprit, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no default key to find
    code = tool().main(*argv)
    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert culprit in err
    assert err.startswith(f"{tool.prog}: ")


def test_unreadable_hosts_file(capsys, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"\xff\xfe\x00")
    code, out, err = run(capsys, Apssh, "-t", str(hosts), "true")
    assert code == 2
    assert err == f"apssh: bad target '{hosts}': cannot read hosts file: not a text file\n"


def test_missing_local_file_for_appush(lab, capsys, tmp_path):
    code, out, err = run(capsys, Appush, *base(lab), "-t", f"{H}.1",
                         str(tmp_path / "absent"), "@:")
    assert code == 2
    assert err == f"appush: {tmp_path / 'absent'}: no such local file\n"


# ----- process-level behaviour
def test_startup_imports_neither_asyncssh_nor_asyncio():
    code = ("import sys; from apssh.cli import Apssh; rc = Apssh().main('--version'); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('asyncssh', 'asyncio', 'ClusterShell')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "0 []"


def test_open_file_limit_is_raised():
    code = ("import resource as r; from apssh.fdlimit import raise_soft_limit as f; "
            "soft, hard = r.getrlimit(r.RLIMIT_NOFILE); "
            "r.setrlimit(r.RLIMIT_NOFILE, (256, hard)); "
            "f(); print(r.getrlimit(r.RLIMIT_NOFILE)[0] == hard)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def assert_ctrl_c_stops_everything(options: list[str], sleep: str) -> None:
    """``apssh OPTIONS -t 3 hosts 'echo started; sleep SLEEP'``, Ctrl-C once every host
    started: exit 130, the three reported interrupted, no sleep left running."""
    proc = subprocess.Popen([sys.executable, "-m", "apssh.cli", *options,
                             "-t", f"{H}.[1-3]", f"echo started; sleep {sleep}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # every host has started
        assert "started" in proc.stdout.readline()
    proc.send_signal(2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == f"apssh: 0 ok, 0 failed, 3 interrupted: {H}.[1-3]"
    assert remote_processes(f"sleep {sleep}") == []


def test_ctrl_c_stops_everything_and_reports(lab):
    assert_ctrl_c_stops_everything(base(lab), "419.5")


def test_ctrl_c_still_prints_the_gathered_output(lab):
    proc = subprocess.Popen([sys.executable, "-m", "apssh.cli", *base(lab), "-b",
                             "-t", f"{H}.[1-3]", "echo collected; echo started >&2; sleep 419.7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for _ in range(3):  # stderr lines are shown live, even when gathering
        assert proc.stderr.readline().endswith(":started\n")
    proc.send_signal(2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    header = f"{H}.[1-3] (3)"
    assert out.splitlines() == ["-" * len(header), header, "-" * len(header), "collected"]
    assert remote_processes("sleep 419.7") == []
