"""Scripts, file transfers, capture and deferred commands, LocalNode, formatters."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_ssh_core import (  # noqa: F401 - close_nodes is the fixture
    Recorder,
    close_nodes,
    node,
    remote_processes,
)

from apssh import (
    Capture,
    CaptureFormatter,
    Deferred,
    HostFormatter,
    LocalNode,
    Pull,
    Push,
    RawFormatter,
    Run,
    RunScript,
    RunString,
    Service,
    SshJob,
    SshJobCollector,
    SshJobScript,
    SubdirFormatter,
    TimeHostFormatter,
    Variables,
    close_ssh_in_scheduler,
    topology_dot,
)
from apssh.formatters import (
    ColonFormatter,
    TimeColonFormatter,
)
from asynciojobs import Scheduler, Sequence


def leftovers() -> list[str]:
    """What uploaded scripts left in root's remote work directory (sshd runs here)."""
    workdir = Path("/root/.apssh-remote")
    return sorted(p.name for p in workdir.iterdir()) if workdir.exists() else []


# ----- scripts
def test_run_string_with_args_and_remote_name(lab):
    rec = Recorder()
    script = "#!/bin/sh\n# a comment\necho \"args: $*\"\necho \"me: $(basename $0)\"\n"
    command = RunString(script, "a", "b c", remote_name="/some/where/probe.sh")
    assert command.label_line() == 'RunString: echo "args: $*"... a b c'
    job = SshJob(node(lab, formatter=rec), command=command)
    before = leftovers()
    assert Scheduler(job).run() is True
    assert rec.out == [("127.0.0.1", "args: a b c\n"), ("127.0.0.1", "me: probe.sh\n")]
    assert leftovers() == before  # the uploaded script is removed after it ran


def test_run_script_with_includes(lab, tmp_path):
    include = tmp_path / "lib.sh"
    include.write_text("greet() { echo \"hello $1\"; }\n")
    script = tmp_path / "main.sh"
    script.write_text("#!/bin/bash\nsource $(dirname $0)/lib.sh\ngreet \"$1\"\nexit 2\n")
    script.chmod(0o644)  # made executable on the node
    rec = Recorder()
    command = RunScript(script, "world", includes=[include], allowed_exits=[2])
    assert command.label_line() == "RunScript: main.sh world"
    assert Scheduler(SshJob(node(lab, formatter=rec), command=command)).run() is True
    assert rec.out == [("127.0.0.1", "hello world\n")]


def test_run_script_is_built_before_its_file_exists(tmp_path):
    # as in 0.27: read when it runs (see the tests at the end of this file)
    assert RunScript(tmp_path / "nope.sh").label_line() == "RunScript: nope.sh"


def test_two_jobs_running_the_same_script_at_once_do_not_collide(lab):
    script = "#!/bin/sh\nsleep 0.2\necho done\n"
    rec = Recorder()
    n = node(lab, formatter=rec)
    jobs = [SshJob(n, command=RunString(script, remote_name="same")) for _ in range(3)]
    assert Scheduler(*jobs).run() is True
    assert [line for _, line in rec.out] == ["done\n"] * 3


# ----- file transfers
def test_push_and_pull_files_and_directories(lab, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "b.txt").write_text("B")
    remote = f"/tmp/nepi-ng-push-{tmp_path.name}"
    back = tmp_path / "back"
    back.mkdir()
    n = node(lab)
    push = Push(localpaths=[str(tree)], remotepath=remote, recurse=True)
    assert push.label_line() == f"Push: {tree} onto {remote}"
    s = Scheduler(Sequence(
        SshJob(n, commands=[Run(f"mkdir -p {remote}"), push]),
        SshJob(n, command=Pull(remotepaths=f"{remote}/tree", localpath=str(back), recurse=True,
                               preserve=True)),
        SshJob(n, command=Run(f"rm -rf {remote}")),
    ))
    assert s.run() is True
    assert (back / "tree" / "sub" / "b.txt").read_text() == "B"
    assert (back / "tree" / "a.txt").read_text() == "A"


def test_pull_of_a_missing_file_fails_the_job(lab, tmp_path):
    job = SshJob(node(lab), command=Pull("/no/such/file", str(tmp_path)), critical=False)
    Scheduler(job).run()
    assert job.raised_exception() is not None


# ----- capture and deferred
def test_capture_feeds_a_deferred_command(lab):
    env = Variables()
    rec = Recorder()
    n = node(lab, formatter=rec)
    first = SshJob(n, command=Run("echo x", capture=Capture("run1", env)))
    second = SshJob(n, command=Run(Deferred("echo {{run1}}-{{run1}}", env),
                                   capture=Capture("final", env)), required=first)
    third = SshJob(n, command=Run(Deferred("echo {{final}} {{unknown}}", env)), required=second)
    assert Scheduler(first, second, third).run() is True
    assert env.run1 == "x" and env["final"] == "x-x"
    assert rec.out == [("127.0.0.1", "x-x {{ unknown }}\n")]  # captured lines are not shown
    assert env.missing == ""


def test_deferred_helpers():
    env = Variables(a=1)
    d = Deferred("echo {{a}}", env)
    assert str(d) == "echo 1"
    assert str(d.replace("echo", "print")) == "print 1"
    assert str(d.dup_from_string("x{{a}}")) == "x1"
    env.a = 2
    assert str(d) == "echo 2"


# ----- LocalNode
def test_local_node_runs_everything(tmp_path):
    rec = Recorder()
    local = LocalNode(formatter=rec)
    source = tmp_path / "in.txt"
    source.write_text("data")
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho script $1\n")
    job = SshJob(local, commands=[
        Run("echo hello; echo err >&2"),
        RunString("#!/bin/sh\necho string $1\n", "arg"),
        RunScript(script, "x"),
        Push(str(source), str(tmp_path / "pushed.txt")),
        Pull(str(tmp_path / "pushed.txt"), str(tmp_path / "pulled.txt")),
    ])
    assert Scheduler(job).run() is True
    assert [line for _, line in rec.out] == ["hello\n", "string arg\n", "script x\n"]
    assert rec.err == [("LOCALNODE", "err\n")]
    assert (tmp_path / "pulled.txt").read_text() == "data"


def test_local_node_timeout_kills_the_process_group():
    token = f"27.{os.getpid()}"
    job = SshJob(LocalNode(formatter=Recorder()), command=Run(f"sleep {token}", timeout=0.3),
                 critical=False)
    Scheduler(job).run()
    assert job.raised_exception() is not None
    assert remote_processes(f"sleep {token}") == []  # none left


@pytest.mark.parametrize("turns", range(8))
async def test_local_node_cancelled_while_starting_leaves_nothing(turns):
    # cancelled after 0 to 7 turns of the loop: before, during and after the shell starts
    token = f"28.{os.getpid()}{turns}"
    task = asyncio.create_task(LocalNode(formatter=Recorder()).run(f"sleep {token}"))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert remote_processes(f"sleep {token}") == []


# ----- formatters
def test_formatters_print_host_and_time(lab, capsys):
    n = node(lab, "127.0.0.7", formatter=HostFormatter(verbose=False))
    Scheduler(SshJob(n, command=Run("echo one; echo two >&2"))).run()
    out, err = capsys.readouterr()
    assert out == "127.0.0.7:one\n"  # as 0.27: no user on output lines
    assert err == "127.0.0.7:two\n"
    n = node(lab, "127.0.0.7", formatter=TimeHostFormatter(verbose=False))
    Scheduler(SshJob(n, command=Run("echo one"))).run()
    out = capsys.readouterr().out
    assert out.endswith(":127.0.0.7:one\n") and out[2] == "-" and out[5] == "-"
    n = node(lab, "127.0.0.7", formatter=RawFormatter(verbose=False))
    Scheduler(SshJob(n, command=Run("echo raw"))).run()
    assert capsys.readouterr().out == "raw\n"
    assert ColonFormatter is HostFormatter and TimeColonFormatter is TimeHostFormatter


def test_verbose_events_are_printed_as_0_27_prints_them(lab, capsys, tmp_path):
    """The ``==========`` marker on every event; the user on connection events only."""
    local = tmp_path / "f"
    local.write_text("x")
    n = node(lab, "127.0.0.8", formatter=HostFormatter(verbose=True))
    scheduler = Scheduler(SshJob(n, commands=[Run("echo hi"), Push(str(local), "/tmp/")]))
    assert scheduler.run() is True
    close_ssh_in_scheduler(scheduler)
    out, err = capsys.readouterr()
    assert out == "127.0.0.8:hi\n"
    assert err == (
        "root@127.0.0.8:========== Connecting (direct) to root@127.0.0.8\n"
        "root@127.0.0.8:========== Authorization OK root@127.0.0.8\n"
        "127.0.0.8:========== Session started for echo hi\n"
        "127.0.0.8:========== Session ended for echo hi\n"
        "127.0.0.8:========== SFTP subsystem started\n"
        "127.0.0.8:========== SFTP subsystem stopped\n"
        "root@127.0.0.8:========== Connection closed to root@127.0.0.8\n")


def test_subdir_formatter_writes_one_file_per_host(lab, tmp_path):
    formatter = SubdirFormatter(tmp_path / "run", verbose=False)
    n = node(lab, "127.0.0.9", formatter=formatter)
    Scheduler(SshJob(n, command=Run("echo out; echo err >&2"))).run()
    assert (tmp_path / "run" / "127.0.0.9").read_text() == "out\n"
    assert (tmp_path / "run" / "127.0.0.9.err").read_text() == "err\n"


def test_capture_formatter_keeps_stdout():
    formatter = CaptureFormatter()
    formatter.start_capture()
    formatter.line("a\n", None, "h")
    assert formatter.get_capture() == "a\n"


# ----- service, topology, seed names
def test_service_commands():
    service = Service("tcpdump -i eth0", service_id="tcpdump")
    start = service.start_command().command()
    assert "systemd-run" in start and "--unit=tcpdump" in start
    assert start.startswith("systemctl is-active tcpdump")
    assert service.stop_command().command() == "systemctl stop tcpdump"
    assert service.status_command(output="/tmp/s").command() == \
        "systemctl status tcpdump > /tmp/s"
    assert service.journal_command(since="1 hour ago").command() == \
        "journalctl --unit tcpdump --since '1 hour ago'"


def test_topology_dot(lab):
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port)
    behind = node(lab, "127.0.0.10", gateway=gateway)
    s = Scheduler(SshJob(behind, command=Run("true")))
    text = topology_dot(s)
    assert '1 [label="root@127.0.0.10",shape=box]' in text
    assert "2 -> 1" in text and "0 -> 2" in text


def test_seed_job_names(lab, tmp_path):
    script = tmp_path / "seed.sh"
    script.write_text("#!/bin/sh\necho seed\n")
    rec = Recorder()
    n = node(lab, formatter=rec)
    remote = f"/tmp/nepi-ng-seed-{tmp_path.name}"
    s = Scheduler(Sequence(
        SshJobScript(n, str(script)),
        SshJob(n, command=Run(f"echo collected > {remote}")),
        SshJobCollector(n, remote, str(tmp_path / "got")),
    ))
    assert s.run() is True
    assert (tmp_path / "got").read_text() == "collected\n"
    assert ("127.0.0.1", "seed\n") in rec.out


# ----- the example, and Ctrl-C
def test_ssh_hello_example(lab):
    import sys

    example = Path(__file__).resolve().parent.parent / "examples" / "ssh_hello.py"
    done = subprocess.run(
        [sys.executable, str(example), "127.0.0.1", "127.0.0.2", "--port", str(lab.port),
         "--key", str(lab.keys.client_key), "--known-hosts", str(lab.known_hosts)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    name = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert f"127.0.0.2:I am {name}, known as 127.0.0.2" in done.stdout
    assert "files back: ['back-0.txt', 'back-1.txt']" in done.stdout


CTRL_C = """
import sys
from apssh import SshNode, SshJob, Run
from asynciojobs import Scheduler
port, key, known, token = sys.argv[1:5]
node = SshNode("127.0.0.15", port=int(port), keys=[key], known_hosts=known, ssh_config=None)
try:
    Scheduler(SshJob(node, command=Run(f"echo started; sleep {token}"))).run()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_leaves_nothing_running_on_the_node(lab, tmp_path):
    import signal
    import sys

    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    token = "26.5151"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(lab.port), str(lab.keys.client_key),
         str(lab.known_hosts), token], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # no formatter given: 0.27's one-time warning, then the output
    assert proc.stdout.readline() == "WARNING: no formatter specified for root@127.0.0.15\n"
    assert proc.stdout.readline().endswith("started\n")  # the remote command runs: Ctrl-C
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "interrupted" in out and proc.returncode == 130
    assert remote_processes(f"sleep {token}") == []  # nothing left on the node


def test_script_names_are_never_interpreted_by_a_shell(lab, tmp_path):
    marker = tmp_path / "injected"
    rec = Recorder()
    command = RunString("#!/bin/sh\necho safe\n", remote_name=f"x; touch {marker}")
    assert Scheduler(SshJob(node(lab, formatter=rec), command=command)).run() is True
    assert rec.out == [("127.0.0.1", "safe\n")]
    assert not marker.exists()
    odd = tmp_path / "my script; touch nepi-ng-injected"
    odd.write_text("#!/bin/sh\necho odd\n")
    local = Recorder()
    assert Scheduler(SshJob(LocalNode(formatter=local), command=RunScript(odd))).run() is True
    assert local.out == [("LOCALNODE", "odd\n")]
    assert not Path("nepi-ng-injected").exists()


def test_ignore_outputs_and_topology_files(lab, tmp_path):
    from apssh import topology_as_dotfile, topology_as_pngfile

    rec = Recorder()
    n = node(lab, formatter=rec)
    s = Scheduler(SshJob(n, command=Run("echo hidden", ignore_outputs=True)))
    assert s.run() is True
    assert rec.out == []
    assert "(Over)wrote" in topology_as_dotfile(s, tmp_path / "topo.dot")
    if shutil.which("dot"):
        assert topology_as_pngfile(s, tmp_path / "topo").endswith("topo.png")
        assert (tmp_path / "topo.png").read_bytes()[:4] == b"\x89PNG"


def test_run_plus_text_appends_to_the_command():
    longer = Run("ls", "-l", allowed_exits=[2]) + "/tmp"
    assert longer.command() == "ls -l /tmp" and longer.allowed_exits == {2}
    with pytest.raises(TypeError):
        Push("a", "b", "extra")  # 0.27 forwarded stray positional arguments to asyncssh


# ----- input, copy errors
def test_run_stdin_on_a_node_and_locally(lab):
    rec = Recorder()
    jobs = [SshJob(node(lab, formatter=rec), commands=[
        Run("wc -l", stdin=b"a\nb\nc\n"),
        Run("cat; echo read-nothing", stdin=b""),  # an empty input: no wait
    ])]
    local = LocalNode(formatter=rec)
    jobs.append(SshJob(local, command=Run("tr a-z A-Z", stdin=b"local\n")))
    assert Scheduler(*jobs, timeout=30).run() is True
    lines = sorted(line for _, line in rec.out)
    assert lines == ["3\n", "LOCAL\n", "read-nothing\n"]


def test_copy_error_names_the_file(lab, tmp_path):
    from apssh import CopyError

    job = SshJob(node(lab), command=Pull("no-such-file-here", str(tmp_path)), critical=False)
    Scheduler(job).run()
    exc = job.raised_exception()
    assert isinstance(exc, CopyError)
    assert exc.copy == f"Pull: no-such-file-here into {tmp_path}"
    assert "No such file" in exc.reason


# ----- scripts read when they run, not when they are built
def _missing_file_job(job_node, command):
    """Run ``command`` (whose file is missing) in a non-critical job; its exception."""
    from apssh import MissingFileError

    job = SshJob(job_node, command=command, critical=False)
    assert Scheduler(job, timeout=30).run() is True
    exc = job.raised_exception()
    assert isinstance(exc, MissingFileError) and isinstance(exc, FileNotFoundError)
    return exc


def test_run_script_reads_its_file_when_it_runs(lab, tmp_path):
    script = tmp_path / "later.sh"
    rec = Recorder()
    command = RunScript(script, "x")  # built before the file exists
    script.write_text("#!/bin/sh\necho \"late $1\"\n")
    assert Scheduler(SshJob(node(lab, formatter=rec), command=command)).run() is True
    assert rec.out == [("127.0.0.1", "late x\n")]


def test_a_missing_script_fails_its_command_with_one_line(lab, tmp_path):
    before = leftovers()
    exc = _missing_file_job(node(lab), RunScript(tmp_path / "gone.sh"))
    assert exc.reason == f"script {tmp_path / 'gone.sh'}: no such file"
    assert exc.filename == str(tmp_path / "gone.sh")
    assert str(exc).count("\n") == 0 and "RunScript: gone.sh" in str(exc)
    assert leftovers() == before  # nothing was made on the node


def test_a_missing_include_fails_its_command(lab, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    exc = _missing_file_job(node(lab), RunScript(script, includes=[tmp_path / "lib.sh"]))
    assert exc.reason == f"include {tmp_path / 'lib.sh'}: no such file"
    exc = _missing_file_job(node(lab), RunString("#!/bin/sh\ntrue\n",
                                                 includes=[tmp_path / "lib.sh"]))
    assert exc.reason == f"include {tmp_path / 'lib.sh'}: no such file"


def test_local_node_reads_scripts_when_they_run(tmp_path):
    script = tmp_path / "here.sh"
    rec = Recorder()
    command = RunScript(script)
    exc = _missing_file_job(LocalNode(formatter=rec), command)
    assert exc.reason == f"script {script}: no such file"
    exc = _missing_file_job(LocalNode(formatter=rec), RunString(
        "#!/bin/sh\ntrue\n", includes=[tmp_path / "nope"]))
    assert exc.reason == f"include {tmp_path / 'nope'}: no such file"
    script.write_text("#!/bin/sh\necho now\n")
    assert Scheduler(SshJob(LocalNode(formatter=rec), command=command)).run() is True
    assert rec.out == [("LOCALNODE", "now\n")]
