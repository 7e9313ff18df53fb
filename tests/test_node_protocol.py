"""One node interface: a third kind of node, written here, runs every command
through an SshJob in a Scheduler, without anything in apssh knowing of it; 0.27's
``co_run_remote``/``co_run_local`` subclasses keep working."""

from __future__ import annotations

import shlex
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from conftest import sudo_works
from test_ssh_core import (  # noqa: F401 - close_nodes is the fixture
    Recorder,
    close_nodes,
    node,
)

from apssh import LocalNode, Pull, Push, Run, RunScript, RunString, SshJob
from apssh.commands import AbstractCommand
from apssh.formatters import Formatter
from apssh.node import Node, missing_members, scratch_directory
from apssh.process import Process, ProcessHandle
from asynciojobs import Scheduler


class SandboxNode:
    """A node that is a directory of this machine: its commands run there (a
    ``cd`` prefix, through a LocalNode it is made of), and its relative paths are
    inside it. Nothing in apssh knows of this class."""

    expands_user = True

    def __init__(self, root: Path, formatter: Formatter) -> None:
        self.root = root
        self.hostname = "sandbox"
        self.username = "sandboxer"
        self.formatter = formatter
        self.local = LocalNode(formatter=formatter)
        self.commands: list[str] = []

    def _in(self, path: Any) -> str:
        path = Path(path)
        return str(path if path.is_absolute() else self.root / path)

    def display_name(self) -> str:
        return f"sandbox:{self.root.name}"

    async def run(self, command: str, /, *, timeout: float | None = None,
                  formatter: Formatter | None = None, stdin: bytes | None = None,
                  x11_forwarding: bool = False) -> int | str | None:
        self.commands.append(command)
        return await self.local.run(f"cd {shlex.quote(str(self.root))} && {command}",
                                    timeout=timeout, stdin=stdin,
                                    formatter=formatter or self.formatter)

    def workdir(self, *, shared: bool = False) -> AbstractAsyncContextManager[str]:
        return scratch_directory(self, str(self.root / ".scratch"), shared=shared)

    def process(self, command: str, **kwds: Any) -> Process:
        return Process(self, f"cd {shlex.quote(str(self.root))} && {command}", **kwds)

    async def open_process(self, process: Process, /) -> ProcessHandle:
        return await self.local.open_process(process)

    async def mkdir(self, path: str, /) -> bool:
        return await self.local.mkdir(self._in(path))

    async def put_file_s(self, localpaths: Any, remotepath: Any, **kwds: Any) -> bool:
        return await self.local.put_file_s(localpaths, self._in(remotepath), **kwds)

    async def get_file_s(self, remotepaths: Any, localpath: Any, **kwds: Any) -> bool:
        sources = ([self._in(remotepaths)] if isinstance(remotepaths, str | Path)
                   else [self._in(p) for p in remotepaths])
        return await self.local.get_file_s(sources, localpath, **kwds)

    async def put_string_script(self, script_body: str, remotefile: str,
                                **kwds: Any) -> bool:
        return await self.local.put_string_script(script_body, self._in(remotefile))

    async def chmod(self, path: str, mode: int, /) -> None:
        await self.local.chmod(self._in(path), mode)

    async def remove_file(self, path: str, /) -> None:
        await self.local.remove_file(self._in(path))

    async def remove_tree(self, path: str, /) -> None:
        await self.local.remove_tree(self._in(path))

    async def connect_lazy(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""


def test_a_third_kind_of_node_is_a_node():
    sandbox = SandboxNode(Path("/nonexistent"), Recorder())
    assert isinstance(sandbox, Node)
    assert missing_members(sandbox) == []
    assert missing_members(LocalNode()) == []


def test_sshjob_refuses_what_is_not_a_node_naming_what_it_lacks():
    class Half:
        hostname = "half"

        async def run(self, command: str) -> int:
            return 0

    with pytest.raises(ValueError, match="SshJob: node is expected") as raised:
        SshJob(Half(), command=Run("true"))
    assert "workdir" in str(raised.value) and "formatter" in str(raised.value)


def test_every_command_runs_on_the_third_kind_through_a_scheduler(tmp_path):
    root = tmp_path / "box"
    root.mkdir()
    here = tmp_path / "here"
    here.mkdir()
    script = here / "script.sh"
    script.write_text('#!/bin/sh\necho "script $1 $(cat "$(dirname "$0")/data.txt")"\n')
    include = here / "data.txt"
    include.write_text("included\n")
    payload = here / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 40)
    rec = Recorder()
    sandbox = SandboxNode(root, rec)
    job = SshJob(sandbox, commands=[
        Run("pwd"),
        RunString("#!/bin/sh\necho \"string $1\"\n", "one"),
        RunScript(script, "two", includes=[include]),
        Push(str(payload), "pushed.bin"),
        Run("ls pushed.bin; cat pushed.bin | wc -c"),
        Pull("pushed.bin", str(here / "pulled.bin")),
    ], label="sandboxed")
    assert Scheduler(job).run() is True, job.repr_result()
    assert [line for _, line in rec.out] == [
        f"{root}\n", "string one\n", "script two included\n", "pushed.bin\n", "10240\n"]
    assert rec.err == []
    assert (here / "pulled.bin").read_bytes() == payload.read_bytes()
    # the scripts went into the node's own scratch directory, now removed
    assert any(str(root / ".scratch") in line for line in sandbox.commands)
    assert list((root / ".scratch").iterdir()) == []
    assert job.graph_label().splitlines()[0].endswith(": sandbox:box")


class OldStyle(AbstractCommand):
    """A command written for 0.27: ``co_run_remote`` only."""

    def label_line(self) -> str:
        return "old style"

    async def co_run_remote(self, node: Any) -> Any:
        return await node.run("echo old-remote", formatter=node.formatter)


class OldStyleBoth(OldStyle):
    """0.27 again, with ``co_run_local`` for a LocalNode."""

    async def co_run_local(self, node: Any) -> Any:
        return await node.run("echo old-local", formatter=node.formatter)


def test_a_027_command_with_co_run_remote_only_runs_on_an_ssh_node(lab):
    rec = Recorder()
    job = SshJob(node(lab, formatter=rec), commands=[OldStyle(), OldStyleBoth()])
    assert Scheduler(job).run() is True, job.repr_result()
    assert [line for _, line in rec.out] == ["old-remote\n", "old-remote\n"]


def test_a_027_command_on_a_local_node_takes_its_co_run_local():
    rec = Recorder()
    job = SshJob(LocalNode(formatter=rec), commands=[OldStyle(), OldStyleBoth()])
    assert Scheduler(job).run() is True, job.repr_result()
    assert [line for _, line in rec.out] == ["old-remote\n", "old-local\n"]


async def test_the_027_names_still_run_the_new_commands(tmp_path):
    rec = Recorder()
    local = LocalNode(formatter=rec)
    assert await Run("echo new").co_run_remote(local) == 0
    assert await Run("echo newer").co_run_local(local) == 0
    assert [line for _, line in rec.out] == ["new\n", "newer\n"]


async def test_a_command_that_defines_no_way_to_run_says_so():
    class Nothing(AbstractCommand):
        pass

    with pytest.raises(NotImplementedError, match="Nothing defines no co_run"):
        await Nothing().co_run(LocalNode())
    with pytest.raises(NotImplementedError, match="Nothing defines no co_run"):
        await Nothing().co_run_remote(LocalNode())


# ----- a script run as another user (sudo -u) must be readable by that user
needs_sudo = pytest.mark.skipif(not sudo_works(), reason="needs root, sudo and nepitest")

WHERE = ('#!/bin/sh\necho "$(id -un) $1 $(cat "$(dirname "$0")/inc.txt")"\n'
         'echo "dir $(dirname "$0")"\n'
         'ls "$(dirname "$0")/.." >/dev/null 2>&1 && echo listable || echo unlistable\n')


def _sudo_jobs(target: Any, tmp_path: Path) -> tuple[SshJob, Path]:
    script = tmp_path / "where.sh"
    script.write_text(WHERE)
    include = tmp_path / "inc.txt"
    include.write_text("included\n")
    include.chmod(0o600)  # private here: readable there all the same
    job = SshJob(target, commands=[
        RunScript(script, "script", includes=[include], sudo="nepitest"),
        RunString(WHERE, "string", includes=[include], sudo="nepitest"),
        RunString(WHERE, "root", includes=[include], sudo=True),
    ])
    return job, include


def _check_sudo_output(lines: list[str]) -> None:
    assert lines[0] == "nepitest script included\n"
    assert lines[3] == "nepitest string included\n"
    assert lines[6] == "root root included\n"
    # another user: a directory of its own under /tmp, that nepitest cannot list
    # (it is the login user's, 0711), removed once the command is over
    for dirline, listing in ((lines[1], lines[2]), (lines[4], lines[5])):
        directory = Path(dirline.split(maxsplit=1)[1].strip())
        assert directory.parent.name.startswith("apssh-"), dirline
        assert directory.parent.parent in (Path("/tmp"), Path(tempfile.gettempdir()))
        assert listing == "unlistable\n"
        assert not directory.parent.exists()


@needs_sudo
def test_sudo_to_another_user_runs_scripts_over_ssh(lab, tmp_path):
    """The login user (root here) keeps its scripts in a 0700 home: one run as
    nepitest through sudo is put where nepitest can read it."""
    rec = Recorder()
    job, _ = _sudo_jobs(node(lab, formatter=rec), tmp_path)
    assert Scheduler(job).run() is True, (job.repr_result(), rec.err)
    _check_sudo_output([line for _, line in rec.out])
    # root (sudo alone) reads anything: the private directory in the home, as before
    assert rec.out[7][1].startswith("dir .apssh-remote/apssh-")


@needs_sudo
def test_sudo_to_another_user_runs_scripts_on_a_local_node(tmp_path):
    rec = Recorder()
    job, _ = _sudo_jobs(LocalNode(formatter=rec), tmp_path)
    assert Scheduler(job).run() is True, (job.repr_result(), rec.err)
    _check_sudo_output([line for _, line in rec.out])
    assert rec.out[7][1].startswith(f"dir {tempfile.gettempdir()}/apssh-")
