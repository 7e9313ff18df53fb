"""stdout=/stderr= on the Run family: a copy of the output, byte for byte, into files
named after the node or to a callable, besides the formatter; on the real sshd and
on a LocalNode."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import pytest
from test_ssh_core import (  # noqa: F401 - close_nodes is the fixture
    Recorder,
    close_nodes,
    node,
)

from apssh import LocalNode, Run, RunScript, RunString, SshJob
from apssh.formatters import EXTENDED_DATA_STDERR
from apssh.outputs import OutputFileError, expand_output_path, output_values, teeing
from asynciojobs import Scheduler

#: random bytes, newlines and invalid UTF-8 included, a long line too
PAYLOAD = os.urandom(200_000) + b"\n" * 3 + b"\xff" * 70_000 + b"no newline at the end"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["ssh", "local"])
def make_node(request):
    def make(formatter):
        if request.param == "local":
            return LocalNode(formatter=formatter)
        return node(request.getfixturevalue("lab"), formatter=formatter)
    return make


def test_both_streams_go_to_files_byte_for_byte_and_to_the_formatter(make_node, tmp_path):
    data = tmp_path / "payload.bin"
    data.write_bytes(PAYLOAD)
    rec = Recorder()
    target = make_node(rec)
    out = tmp_path / "out"
    job = SshJob(target, command=Run(f"cat {data}; cat {data} >&2; echo bye >&2",
                                     stdout=str(out / "{host}.out"),
                                     stderr=out / "{host}.err"))
    assert Scheduler(job).run() is True, job.repr_result()
    host = "LOCALNODE" if isinstance(target, LocalNode) else "127.0.0.1"
    assert sha((out / f"{host}.out").read_bytes()) == sha(PAYLOAD)
    assert sha((out / f"{host}.err").read_bytes()) == sha(PAYLOAD + b"bye\n")
    # the formatter still had its lines, both streams
    assert len(rec.out) > 3 and rec.err[-1][1].endswith("the endbye\n")


def test_a_callable_gets_the_chunks_with_host_and_stream(make_node, tmp_path):
    data = tmp_path / "payload.bin"
    data.write_bytes(PAYLOAD)
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    hosts = set()

    def keep(chunk: bytes, host: str, stream: str) -> None:
        hosts.add(host)
        chunks[stream].append(chunk)

    target = make_node(Recorder())
    job = SshJob(target, command=Run(f"cat {data}; echo oops >&2", stdout=keep, stderr=keep))
    assert Scheduler(job).run() is True
    assert hosts == {target.hostname}
    assert sha(b"".join(chunks["stdout"])) == sha(PAYLOAD)
    assert chunks["stderr"] == [b"oops\n"]


def test_scripts_take_them_too_and_a_file_is_made_anew_each_run(make_node, tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho \"hello $1\"\necho warn >&2\n")
    out = tmp_path / "out.txt"
    out.write_text("what a previous run left\n" * 100)
    both = tmp_path / "both.txt"
    target = make_node(Recorder())
    job = SshJob(target, commands=[
        RunScript(script, "script", stdout=str(out)),
        # one file for both streams: each line whole, in the order they came
        RunString("#!/bin/sh\necho one\necho two >&2\n", stdout=str(both), stderr=str(both)),
    ])
    assert Scheduler(job).run() is True, job.repr_result()
    assert out.read_text() == "hello script\n"
    assert sorted(both.read_text().splitlines()) == ["one", "two"]
    assert Scheduler(SshJob(target, command=Run("echo again", stdout=str(out)))).run()
    assert out.read_text() == "again\n"


def test_ignore_outputs_hides_the_output_from_the_formatter_not_from_the_file(tmp_path):
    rec = Recorder()
    out = tmp_path / "o"
    job = SshJob(LocalNode(formatter=rec),
                 command=Run("echo kept", ignore_outputs=True, stdout=str(out)))
    assert Scheduler(job).run() is True
    assert rec.out == [] and out.read_text() == "kept\n"


def test_names_in_the_path_the_label_and_the_rank(lab, tmp_path):
    ssh = node(lab, formatter=Recorder())
    values = output_values(ssh, "build")
    assert values == {"host": "127.0.0.1", "fqdn": "127.0.0.1", "user": ssh.username,
                      "port": str(lab.port), "label": "build"}
    template = str(tmp_path / "{label}/{user}@{host}:{port}.{{host}}")
    assert expand_output_path(template, values, "stdout") == \
        tmp_path / f"build/{ssh.username}@127.0.0.1:{lab.port}.{{host}}"
    # the job's label serves when the command has none; the command's wins
    jobs = [SshJob(ssh, label="job-label", commands=[
                Run("echo one", stdout=str(tmp_path / "{label}.out")),
                Run("echo two", label="mine", stdout=str(tmp_path / "{label}.out"))])]
    assert Scheduler(*jobs).run() is True, jobs[0].repr_result()
    assert (tmp_path / "job-label.out").read_text() == "one\n"
    assert (tmp_path / "mine.out").read_text() == "two\n"


@pytest.mark.parametrize(("label", "template", "message"), [
    (None, "{label}.out", r"no value for \{label\} here"),
    ("x", "{rank}.out", r"no value for \{rank\} here"),  # a node without a rank
    ("x", "{port}.out", r"no value for \{port\} here"),  # a LocalNode has no port
    ("../up", "out/{label}", r"\{label\} = '../up' would leave the directory"),
    ("a/b", "out/{label}", r"\{label\} = 'a/b' would leave the directory"),
])
def test_what_cannot_name_a_file_is_refused_before_the_command_runs(
        tmp_path, label, template, message):
    rec = Recorder()
    job = SshJob(LocalNode(formatter=rec), label=label, critical=False,
                 command=Run("echo ran", stdout=str(tmp_path / template)))
    Scheduler(job).run()
    error = job.raised_exception()
    assert isinstance(error, OutputFileError)
    assert str(error).startswith(f"stdout: {tmp_path / template}: ")
    assert re.search(message, str(error))
    assert rec.out == []  # the command did not run


def test_a_node_with_a_rank_gives_it(tmp_path):
    local = LocalNode(formatter=Recorder())
    local.rank = 7  # type: ignore[attr-defined]
    job = SshJob(local, command=Run("echo ranked", stdout=str(tmp_path / "{rank}.out")))
    assert Scheduler(job).run() is True
    assert (tmp_path / "7.out").read_text() == "ranked\n"


def test_two_commands_may_not_write_one_file_at_the_same_time(tmp_path):
    rec = Recorder()
    local = LocalNode(formatter=rec)
    path = tmp_path / "shared.out"
    first = teeing(rec, {"stdout": str(path)}, local, None)
    second = teeing(rec, {"stderr": str(path)}, local, None)
    with first, pytest.raises(OutputFileError, match="being written by another command"):
        second.__enter__()
    with teeing(rec, {"stdout": str(path)}, local, None):  # free again
        pass


def test_a_bad_target_is_refused_when_the_command_is_built():
    with pytest.raises(TypeError, match="stdout: expected a path template or a callable"):
        Run("true", stdout=3)
    more = Run("echo", stdout="a.out", stderr="a.err") + "more"
    assert (more.stdout, more.stderr) == ("a.out", "a.err")


def test_a_callable_that_raises_fails_the_command(make_node):
    def broken(chunk: bytes, host: str, stream: str) -> None:
        raise RuntimeError("disk full")

    job = SshJob(make_node(Recorder()), critical=False,
                 command=Run("echo x", stdout=broken))
    Scheduler(job).run()
    assert isinstance(job.raised_exception(), RuntimeError)


class FirstLine(Recorder):
    """A Recorder that says when the first stdout line came."""

    def __init__(self) -> None:
        super().__init__()
        self.came = asyncio.Event()

    def line(self, line, datatype, hostname):
        super().line(line, datatype, hostname)
        if datatype != EXTENDED_DATA_STDERR:
            self.came.set()


async def test_a_cancelled_command_closes_its_files(tmp_path):
    rec = FirstLine()
    local = LocalNode(formatter=rec)
    path = tmp_path / "long.out"
    task = asyncio.create_task(
        Run("echo started; exec sleep 600", stdout=str(path)).co_run(local))
    await rec.came.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert path.read_bytes() == b"started\n"
    assert await Run("echo reused", stdout=str(path)).co_run(local) == 0
    assert path.read_bytes() == b"reused\n"
