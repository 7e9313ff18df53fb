"""env=, sudo=, SshJob(timeout=) and retries=, against the real sshd and LocalNode."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ssh_core import (  # noqa: F401 - close_nodes is the fixture
    Recorder,
    close_nodes,
    node,
    remote_processes,
)

import apssh.retry
from apssh import (
    CommandFailedError,
    ConnectRefusedError,
    JobTimeoutError,
    LocalNode,
    Run,
    RunString,
    SshJob,
    SudoError,
)
from apssh.shellwrap import check_env, sudo_problem, wrap
from asynciojobs import Scheduler

PRINT_AB = 'printf "%s|%s\\n" "$A" "$B"'
TRICKY = "it's $HOME `id` \"q\" ;|&"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retries without waiting (the schedule is not what these tests are about)."""
    monkeypatch.setattr(apssh.retry, "BACKOFF", (0.0,))


def counter(path: Path, succeed_at: int) -> str:
    """A command that fails until its ``succeed_at``-th run, counting in ``path``."""
    return (f"n=$(cat {path} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {path}; "
            f"echo run $n; [ $n -ge {succeed_at} ]")


def shared_dir(tmp_path: Path) -> Path:
    """A directory any user may write into (sudo -u tests)."""
    tmp_path.chmod(0o777)
    return tmp_path


# ----- env
def test_shell_wrapping_quotes_values_and_checks_names():
    assert wrap("cmd", env={"A": "x y"}) == "export A='x y'; cmd"
    assert wrap("cmd", sudo="bob") == "sudo -n -u bob -- sh -c cmd"
    assert wrap("cmd", sudo=True, env={"A": "1"}) == "sudo -n -- sh -c 'export A=1; cmd'"
    for bad in ("1A", "A-B", "A;rm -rf /", "", "A B"):
        with pytest.raises(ValueError, match="not a shell variable name"):
            check_env({bad: "x"})
    with pytest.raises(TypeError):
        check_env({"A": None})
    with pytest.raises(ValueError):
        Run("true", env={"$(reboot)": "x"})
    with pytest.raises(ValueError):
        Run("true", sudo="bad user")


def test_env_on_ssh_with_tricky_values(lab):
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), command=Run(PRINT_AB, env={"A": TRICKY, "B": 3}))
    assert Scheduler(job).run() is True
    assert rec.out == [("127.0.0.1", f"{TRICKY}|3\n")]


def test_node_env_is_merged_under_the_command_env(lab):
    rec = Recorder()
    ssh = node(lab, formatter=rec, env={"A": "node-a", "B": "node-b"})
    job = SshJob(ssh, commands=[Run(PRINT_AB, env={"B": "cmd-b"}), Run(PRINT_AB)])
    assert Scheduler(job).run() is True
    assert [line for _, line in rec.out] == ["node-a|cmd-b\n", "node-a|node-b\n"]
    assert job.text_label().startswith(PRINT_AB)  # the label is the command, not the wrapping


def test_env_on_a_script(lab):
    rec = Recorder()
    script = RunString("#!/bin/sh\necho \"$A\" \"$1\"\n", "arg", env={"A": "a b"})
    assert Scheduler(SshJob(node(lab, formatter=rec), command=script)).run() is True
    assert rec.out == [("127.0.0.1", "a b arg\n")]


def test_env_on_localnode():
    rec = Recorder()
    local = LocalNode(formatter=rec, env={"A": "node-a", "B": "node-b"})
    job = SshJob(local, commands=[Run(PRINT_AB, env={"B": TRICKY}),
                                  RunString("#!/bin/sh\necho \"$A\"\n", env={"A": "s"})])
    assert Scheduler(job).run() is True
    assert [line for _, line in rec.out] == [f"node-a|{TRICKY}\n", "s\n"]


# ----- sudo
def test_sudo_as_root_runs_as_another_user(lab):
    if lab.plain_user is None:
        pytest.skip("no plain user (not root)")
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), commands=[
        Run("id -un", sudo=lab.plain_user),
        Run('echo "$A" $(id -un)', sudo=True, env={"A": "x y"})])
    assert Scheduler(job).run() is True
    assert [line for _, line in rec.out] == [f"{lab.plain_user}\n", "x y root\n"]


def test_sudo_that_asks_for_a_password_fails_in_one_line(lab):
    if lab.plain_user is None:
        pytest.skip("no plain user (not root)")
    job = SshJob(node(lab, username=lab.plain_user), command=Run("id -un", sudo=True))
    assert Scheduler(job, critical=False).run() is False
    exc = job.raised_exception()
    assert isinstance(exc, SudoError)
    assert str(exc) == (f"{lab.plain_user}@127.0.0.1: sudo -n -u root: "
                        "a password is required: id -un")
    assert job.failure_lines(exc) == [f"SudoError: {exc}"]


def test_sudo_problem_reads_only_sudo_refusals():
    assert sudo_problem(1, ["sudo: a password is required"]) == "a password is required"
    assert sudo_problem(1, ["grep: a password is required"]) is None
    assert sudo_problem(2, ["sudo: a password is required"]) is None


# ----- job timeout
def test_job_timeout_stops_the_command_on_the_node(lab):
    job = SshJob(node(lab), commands=[Run("true"), Run("sleep 37.25")], timeout=1,
                 label="slow")
    assert Scheduler(job, critical=False).run() is False
    exc = job.raised_exception()
    assert isinstance(exc, JobTimeoutError) and isinstance(exc, TimeoutError)
    assert str(exc) == "root@127.0.0.1: job slow timed out after 1s"
    assert remote_processes("sleep 37.25") == []


def test_job_timeout_on_localnode():
    job = SshJob(LocalNode(formatter=Recorder()), command=Run("sleep 38.25"), timeout=0.5)
    assert Scheduler(job, critical=False).run() is False
    assert isinstance(job.raised_exception(), JobTimeoutError)
    assert "timed out after 0.5s" in str(job.raised_exception())
    assert remote_processes("sleep 38.25") == []


def test_job_timeout_must_be_positive():
    with pytest.raises(ValueError):
        SshJob(LocalNode(), command=Run("true"), timeout=0)


# ----- retries
def test_command_retried_on_exit_until_it_succeeds(lab, tmp_path):
    rec = Recorder()
    count = shared_dir(tmp_path) / "count"
    job = SshJob(node(lab, formatter=rec), verbose=True, command=Run(
        counter(count, 3), retries=2, retry_on_exit=True))
    assert Scheduler(job).run() is True
    assert count.read_text() == "3\n"
    assert job.repr_result() == "OK - [0] attempt 3/3"
    retries = [line for kind, line in rec.events if kind == "stderr" and "retry" in line]
    assert len(retries) == 2 and "attempt 2/3" in retries[0] and "returned 1" in retries[0]


def test_command_retries_exhausted_say_so(lab, tmp_path):
    count = shared_dir(tmp_path) / "count"
    job = SshJob(node(lab), command=Run(counter(count, 5), retries=1, retry_on_exit=True))
    assert Scheduler(job, critical=False).run() is False
    exc = job.raised_exception()
    assert isinstance(exc, CommandFailedError) and "(attempt 2/2)" in str(exc)
    assert "attempt 2/2" in job.repr_result()
    assert count.read_text() == "2\n"


def test_exit_not_retried_unless_asked(lab, tmp_path):
    count = shared_dir(tmp_path) / "count"
    job = SshJob(node(lab), critical=False, command=Run(counter(count, 2), retries=3))
    assert Scheduler(job).run() is True
    assert count.read_text() == "1\n" and job.result() == 1


def test_job_retried_as_a_whole(lab, tmp_path):
    count = shared_dir(tmp_path) / "count"
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), commands=[Run(counter(count, 2)), Run("echo done")],
                 retries=2, retry_on_exit=True)
    assert Scheduler(job).run() is True
    assert [line for _, line in rec.out] == ["run 1\n", "run 2\n", "done\n"]
    assert job.repr_result() == "OK - attempt 2/3"


def test_connection_failures_are_retried(lab):
    rec = Recorder()
    # nothing listens on port 1: refused at once, each attempt a fresh connect
    job = SshJob(node(lab, formatter=rec, port=1), verbose=True,
                 command=Run("true", retries=2))
    assert Scheduler(job, critical=False).run() is False
    assert isinstance(job.raised_exception(), ConnectRefusedError)
    assert rec.connects() == 3
    assert "attempt 3/3" in job.repr_result()
    assert sum(1 for kind, line in rec.events if kind == "stderr" and "retry" in line) == 2


def test_retries_on_localnode(tmp_path):
    rec = Recorder()
    count = tmp_path / "count"
    job = SshJob(LocalNode(formatter=rec),
                 command=Run(counter(count, 2), retries=1, retry_on_exit=True))
    assert Scheduler(job).run() is True
    assert job.repr_result() == "OK - [0] attempt 2/2"


def test_retries_must_be_a_count():
    with pytest.raises(ValueError):
        Run("true", retries=-1)
    with pytest.raises(ValueError):
        SshJob(LocalNode(), command=Run("true"), retries=True)
