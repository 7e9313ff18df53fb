"""Output arrives whole and unchanged: binary bytes, huge lines, LocalNode's lines
and timeouts, against the real sshd.

Bytes are checked by length and sha256; "no quadratic time" is checked by the
memory a partial line may hold (tracemalloc's peak) and by the size and count of
the pieces handed over, never by timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from sshd import Lab
from test_cli import base
from test_ssh_core import close_nodes, node, remote_processes  # noqa: F401 (autouse)

from apssh import Capture, CommandTimeoutError, LocalNode, Run, SshJob, Variables
from apssh.cli import Apssh
from apssh.formatters import (
    EXTENDED_DATA_STDERR,
    CaptureFormatter,
    Formatter,
    HostFormatter,
    RawFormatter,
    SubdirFormatter,
    write_to,
)
from apssh.lines import LINE_LIMIT, LineSplitter
from apssh.names import BadNameError
from asynciojobs import Scheduler

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    """1,000,000 random bytes (newlines, invalid UTF-8, no final newline)."""
    path = tmp_path / "random.bin"
    data = random.Random(417).randbytes(1_000_000)
    path.write_bytes(data if not data.endswith(b"\n") else data + b"z")
    return path


class Pieces(Formatter):
    """Keeps what ``data()`` receives, per stream, and the largest piece."""

    def __init__(self) -> None:
        super().__init__()
        self.out = hashlib.sha256()
        self.err = bytearray()
        self.sizes: list[int] = []

    def data(self, raw: bytes, datatype: int | None, hostname: str) -> None:
        if datatype == EXTENDED_DATA_STDERR:
            self.err += raw
        else:
            self.out.update(raw)
            self.sizes.append(len(raw))


class Lines(Formatter):
    """A formatter of the old kind: it overrides ``line()`` only."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int | None, str]] = []

    def line(self, line: str, datatype: int | None, hostname: str) -> None:
        self.lines.append((datatype, line))


# ----- the splitter alone
def runs_of(data: bytes, sizes: list[int], limit: int) -> list[bytes]:
    runs: list[bytes] = []
    splitter = LineSplitter(runs.append, limit)
    start = 0
    for size in sizes:
        splitter.feed(data[start:start + size])
        start += size
        assert splitter.pending <= limit
    splitter.feed(data[start:])
    splitter.close()
    return runs


def shown(runs: list[bytes]) -> list[bytes]:
    """The lines a person sees: each run cut at its newlines."""
    return [piece for run in runs for piece in run.splitlines(keepends=True)
            if piece]


@pytest.mark.parametrize("seed", range(6))
def test_splitter_gives_back_the_stream_cut_the_same_way_whatever_the_packets(seed):
    rng = random.Random(seed)
    words = [b"\n", b"ab", "é€😀".encode(), b"\xff\xfe", b"x" * 300, b"y" * 1500]
    data = b"".join(rng.choice(words) for _ in range(3000))
    limit = 1000
    one_go = runs_of(data, [], limit)
    packets = runs_of(data, [rng.randint(1, 700) for _ in range(400)], limit)
    bytewise = runs_of(data, [1] * 5000, limit)
    for runs in (one_go, packets, bytewise):
        assert b"".join(runs) == data
        assert shown(runs) == shown(one_go)
        for run in runs:  # a run ends at a line end, or is a piece of a long line
            assert run.endswith(b"\n") or len(run) <= limit or run is runs[-1]
    for piece in shown(one_go):  # long lines come in pieces of whole characters
        assert len(piece.rstrip(b"\n")) <= limit
        if b"\xff" not in piece:
            piece.decode()


def test_splitter_holds_a_bounded_partial_line():
    """A 50 MB line without newline, in ssh-sized packets: the splitter never holds
    more than its limit, so each packet costs the same (no copy of the whole line)."""
    packet = b"x" * 32768
    digest = hashlib.sha256()
    count = 0

    def emit(raw: bytes) -> None:
        nonlocal count
        digest.update(raw)
        count += 1
        assert len(raw) <= LINE_LIMIT

    splitter = LineSplitter(emit)
    tracemalloc.start()
    try:
        for _ in range(50_000_000 // len(packet)):
            splitter.feed(packet)
            assert splitter.pending <= LINE_LIMIT
        splitter.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = 50_000_000 // len(packet) * len(packet)
    assert digest.hexdigest() == sha(b"x" * total)
    assert count == -(-total // LINE_LIMIT)
    assert peak < 4 * LINE_LIMIT


# ----- binary output through the CLI
def test_raw_output_is_byte_for_byte(lab: Lab, binary: Path):
    """``apssh -r`` as users run it: stdout and stderr carry the bytes unchanged."""
    done = subprocess.run(
        [sys.executable, "-m", "apssh.cli", *base(lab), "-r", "-t", HOST,
         f"cat {binary}; cat {binary} >&2"], capture_output=True, cwd=REPO, timeout=120)
    assert done.returncode == 0
    expected = binary.read_bytes()
    assert len(done.stdout) == len(expected) and sha(done.stdout) == sha(expected)
    summary = b"apssh: 1 ok, 0 failed\n"
    assert done.stderr.endswith(summary)
    assert sha(done.stderr[:-len(summary)]) == sha(expected)


def test_raw_output_in_process(lab: Lab, binary: Path, capsysbinary):
    assert Apssh().main(*base(lab), "-r", "-t", HOST, f"cat {binary}") == 0
    assert sha(capsysbinary.readouterr().out) == sha(binary.read_bytes())


def test_out_dir_files_are_byte_for_byte(lab: Lab, binary: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = Apssh().main(*base(lab), "-o", str(out), "-t", f"{HOST},127.0.0.2",
                        f"cat {binary}; cat {binary} >&2")
    assert code == 0
    expected = sha(binary.read_bytes())
    for host in (HOST, "127.0.0.2"):
        assert sha((out / host).read_bytes()) == expected
        assert sha((out / f"{host}.err").read_bytes()) == expected
    assert capsys.readouterr().out == f"{out}\n"


def test_prefixed_lines_are_text_for_a_person(lab: Lab, capsys):
    code = Apssh().main(*base(lab), "-t", HOST, r"printf 'caf\303\251\n\377\nlast'")
    assert code == 0
    assert capsys.readouterr().out == f"{HOST}:café\n{HOST}:\ufffd\n{HOST}:last\n"


# ----- binary output through the library
def test_subdir_formatter_is_byte_for_byte(lab: Lab, binary: Path, tmp_path: Path):
    formatter = SubdirFormatter(tmp_path / "run", verbose=False)
    job = SshJob(node(lab, "127.0.0.3", formatter=formatter),
                 command=Run(f"cat {binary}; cat {binary} >&2"))
    assert Scheduler(job).run() is True
    expected = sha(binary.read_bytes())
    assert sha(formatter.out("127.0.0.3").read_bytes()) == expected
    assert sha(formatter.out("127.0.0.3", stderr=True).read_bytes()) == expected


def test_capture_formatter_keeps_bytes_on_request(lab: Lab, binary: Path):
    formatter = CaptureFormatter(verbose=False)
    job = SshJob(node(lab, "127.0.0.4", formatter=formatter), command=Run(f"cat {binary}"))
    assert Scheduler(job).run() is True
    expected = binary.read_bytes()
    assert sha(formatter.get_capture_bytes()) == sha(expected)
    assert formatter.get_capture() == expected.decode("utf-8", errors="replace")


def test_a_binary_capture_keeps_the_bytes(lab: Lab, binary: Path):
    variables = Variables()
    job = SshJob(node(lab, "127.0.0.4"),
                 commands=[Run(f"cat {binary}", capture=Capture("raw", variables, binary=True)),
                           Run("printf 'text\\n'", capture=Capture("text", variables))])
    assert Scheduler(job).run() is True
    assert sha(variables["raw"]) == sha(binary.read_bytes())
    assert variables["text"] == "text"


def test_raw_formatter_writes_bytes_and_old_subclasses_still_get_lines(lab: Lab, binary: Path,
                                                                       capsysbinary):
    job = SshJob(node(lab, "127.0.0.5", formatter=RawFormatter(verbose=False)),
                 command=Run(f"cat {binary}"))
    assert Scheduler(job).run() is True
    assert sha(capsysbinary.readouterr().out) == sha(binary.read_bytes())

    class Upper(RawFormatter):  # overrides line(): it keeps receiving text lines
        def line(self, line, datatype, hostname):
            sys.stdout.write(line.upper())

    job = SshJob(node(lab, "127.0.0.5", formatter=Upper(verbose=False)),
                 command=Run(r"printf 'a\nb\377'"))
    assert Scheduler(job).run() is True
    assert capsysbinary.readouterr().out == "A\nB\ufffd\n".encode()


# ----- a line without newline
def test_a_50MB_line_arrives_whole_in_bounded_pieces(lab: Lab):
    size = 50_000_000
    pieces = Pieces()
    job = SshJob(node(lab, "127.0.0.6", formatter=pieces),
                 command=Run(f"head -c {size} /dev/zero | tr '\\0' x"))
    tracemalloc.start()
    try:
        assert Scheduler(job).run() is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(pieces.sizes) == size
    assert pieces.out.hexdigest() == sha(b"x" * size)
    assert max(pieces.sizes) <= LINE_LIMIT
    assert len(pieces.sizes) == -(-size // LINE_LIMIT)
    # the line is never held whole (50 MB): only the ssh window and one piece
    assert peak < size // 5


def test_a_long_line_shows_in_pieces_each_ending_with_a_newline(lab: Lab, capsys):
    size = 3 * LINE_LIMIT + 10
    job = SshJob(node(lab, "127.0.0.7", formatter=HostFormatter(verbose=False)),
                 command=Run(f"head -c {size} /dev/zero | tr '\\0' x; echo; printf end"))
    assert Scheduler(job).run() is True
    lines = capsys.readouterr().out.split("\n")
    prefix = "127.0.0.7:"
    assert lines == [prefix + "x" * LINE_LIMIT] * 3 + [prefix + "x" * 10, prefix + "end", ""]


# ----- LocalNode
def test_local_node_a_200KiB_line_and_binary(binary: Path):
    size = 200 * 1024
    pieces, lines = Pieces(), Lines()
    command = f"head -c {size} /dev/zero | tr '\\0' y; echo; echo after; echo oops >&2"
    assert asyncio.run(LocalNode(formatter=pieces).run(command)) == 0
    assert pieces.out.hexdigest() == sha(b"y" * size + b"\nafter\n")
    assert bytes(pieces.err) == b"oops\n"
    assert asyncio.run(LocalNode(formatter=lines).run(command)) == 0
    assert [len(text) for _, text in lines.lines[:4]] == [LINE_LIMIT + 1] * 3 + [8 * 1024 + 1]
    assert lines.lines[4:] == [(None, "after\n"), (EXTENDED_DATA_STDERR, "oops\n")]
    capture = CaptureFormatter(verbose=False)
    assert asyncio.run(LocalNode(formatter=capture).run(f"cat {binary}")) == 0
    assert sha(capture.get_capture_bytes()) == sha(binary.read_bytes())


def test_local_node_timeout_raises_command_timeout_error():
    """The command prints, then sleeps far beyond the timeout; the timeout leaves a
    loaded machine seconds to deliver the line, and the line that came is kept."""
    local = LocalNode(formatter=Lines())
    token = f"sleep 417.{os.getpid()}"
    with pytest.raises(CommandTimeoutError) as raised:
        asyncio.run(local.run(f"echo started; {token}", timeout=3.0))
    assert isinstance(raised.value, TimeoutError)
    assert (raised.value.node, raised.value.command, raised.value.timeout) == \
        (str(local), f"echo started; {token}", 3.0)
    assert local.formatter.lines == [(None, "started\n")]  # type: ignore[attr-defined]
    assert remote_processes(token) == []


# ----- the rule for old subclasses, per-node files
def test_subclasses_overriding_line_get_text_lines(tmp_path: Path):
    class UpperFiles(SubdirFormatter):
        def line(self, line, datatype, hostname):
            super().line(line.upper(), datatype, hostname)

    class UpperCapture(CaptureFormatter):
        def line(self, line, datatype, hostname):
            super().line(line.upper(), datatype, hostname)

    upper = UpperFiles(tmp_path / "upper", verbose=False)
    upper.data(b"a\nb\xff", None, "h")
    assert upper.out("h").read_bytes() == "A\nB\ufffd\n".encode()
    plain = SubdirFormatter(tmp_path / "plain", verbose=False)
    plain.data(b"a\nb\xff", None, "h")
    assert plain.out("h").read_bytes() == b"a\nb\xff"
    capture = UpperCapture(verbose=False)
    capture.data(b"x\n", None, "h")
    assert capture.get_capture() == "X\n"


def test_subdir_formatter_named_files_and_lazy_directory(tmp_path: Path):
    directory = tmp_path / "out"
    with pytest.raises(BadNameError):
        SubdirFormatter(directory, file_name="..", lazy=True)
    named = SubdirFormatter(directory, verbose=False, file_name="node1", lazy=True)
    named.connection_made("h", "root", True)
    assert not directory.exists()  # nothing before output
    named.data(b"out\n", None, "h")
    named.data(b"err\n", EXTENDED_DATA_STDERR, "h")
    named.data(b"more\n", None, "other")  # one formatter per node: the host does not matter
    assert sorted(p.name for p in directory.iterdir()) == ["node1", "node1.err"]
    assert (directory / "node1").read_bytes() == b"out\nmore\n"
    assert (directory / "node1.err").read_bytes() == b"err\n"
    # by host, directory made at once; each file emptied on its first write only
    (tmp_path / "eager").mkdir()
    (tmp_path / "eager" / "h.err").write_bytes(b"an earlier run\n")
    eager = SubdirFormatter(tmp_path / "eager", verbose=False)
    eager.connection_made("h", "root", True)
    assert eager.out("h").read_bytes() == b""
    eager.data(b"x\n", None, "h")
    eager.data(b"e\n", EXTENDED_DATA_STDERR, "h")
    eager.connection_made("h", "root", True)  # connected again: nothing is lost
    assert eager.out("h").read_bytes() == b"x\n"
    assert eager.out("h", stderr=True).read_bytes() == b"e\n"


# ----- a closed stdout, text it cannot encode
class ClosedPipe(io.TextIOBase):
    """A stdout whose reader went away (text and binary writes)."""

    def __init__(self) -> None:
        self.buffer = self

    def write(self, data):  # type: ignore[override]
        raise BrokenPipeError(32, "Broken pipe")


class Counting(HostFormatter):
    closed = 0

    def stdout_closed(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("fmt", ["{linenl}", "{host}:{linenl}"])
def test_a_closed_stdout_is_reported_once_and_stderr_goes_on(monkeypatch, capsys, fmt):
    formatter = Counting(fmt, verbose=False)
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    for _ in range(3):
        formatter.data(b"out\n", None, "h")
    formatter.data(b"err\n", EXTENDED_DATA_STDERR, "h")
    formatter.stderr_line("message", "h")
    assert formatter.closed == 1
    prefix = "" if fmt == "{linenl}" else "h:"
    assert capsys.readouterr().err.endswith(f"{prefix}err\n{prefix}message\n")


def test_other_errors_are_not_a_closed_stdout(monkeypatch):
    formatter = Counting(verbose=False)
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    with pytest.raises(ValueError, match="closed file"):
        formatter.data(b"out\n", None, "h")
    assert formatter.closed == 0
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    write_to(ascii_out, "caf\u00e9 \u20ac\n", flush=True)
    assert ascii_out.buffer.getvalue() == b"caf? ?\n"  # type: ignore[attr-defined]


def closed_stdout_run(*argv: str, **kwds) -> subprocess.CompletedProcess:
    """``python argv...`` whose standard output is a pipe nobody reads any more."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run([sys.executable, *argv], stdout=writer, stderr=subprocess.PIPE,
                              text=True, cwd=REPO, timeout=120, **kwds)
    finally:
        os.close(writer)


LIBRARY_SCRIPT = """
import json, os, sys
from apssh import Run, SshJob, SshNode
from apssh.formatters import HostFormatter, RawFormatter
from asynciojobs import Scheduler

port, key, known_hosts, kind = sys.argv[1:]
class Counting({"raw": RawFormatter, "host": HostFormatter}[kind]):
    def __init__(self):
        super().__init__(verbose=False)
        self.closed, self.connections, self.lost = 0, 0, []
    def stdout_closed(self):
        self.closed += 1
    def connection_made(self, hostname, username, direct):
        self.connections += 1
    def connection_lost(self, hostname, exc, username):
        if exc is not None:
            self.lost.append(repr(exc))
formatter = Counting()
node = SshNode("127.0.0.1", port=int(port), keys=[key], known_hosts=known_hosts,
               ssh_config=None, formatter=formatter, timeout=10)
first = SshJob(node, command=Run("seq 1 200000; echo oops >&2; exit 3"), critical=False)
second = SshJob(node, command=Run("seq 1 1000; exit 4"), critical=False, required=first)
ok = Scheduler(first, second).run()
print(json.dumps({"ok": ok, "results": [first.result(), second.result()],
                  "closed": formatter.closed, "connections": formatter.connections,
                  "lost": formatter.lost}), file=sys.stderr)
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)  # the script's choice: what Python still buffers for the pipe goes nowhere
"""


@pytest.mark.parametrize("kind", ["raw", "host"])
def test_library_output_to_a_closed_pipe_is_dropped_and_the_run_goes_on(lab: Lab, kind):
    done = closed_stdout_run("-c", LIBRARY_SCRIPT, str(lab.port), str(lab.keys.client_key),
                             str(lab.known_hosts), kind)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    assert "oops" in done.stderr  # stderr goes on
    report = json.loads(done.stderr.splitlines()[-1])
    # both jobs ran to their exit status, on the one connection, never torn down
    assert report == {"ok": True, "results": [3, 4], "closed": 1, "connections": 1, "lost": []}


WATCH_SCRIPT = """
import asyncio, sys
from apssh import SshNode
from apssh.cli.output import LiveFormatter
from apssh.cli.pipe import PipeWatch

port, key, known_hosts, marker = sys.argv[1:]
watch = PipeWatch("tool")
node = SshNode("127.0.0.1", port=int(port), keys=[key], known_hosts=known_hosts,
               ssh_config=None, formatter=LiveFormatter(on_stdout_closed=watch.closed),
               timeout=10)

async def main():
    task = asyncio.create_task(node.run(f"yes {marker}"))
    watch.watch(task)
    try:
        await task
    except asyncio.CancelledError:
        print("cancelled", file=sys.stderr)
    print("closed" if watch.is_closed else "open", file=sys.stderr)
    await node.close()

asyncio.run(main())
print("after the run")  # to /dev/null now: no error
"""


def test_pipe_watch_stops_the_run_once(lab: Lab):
    marker = f"pipe-watch-{os.getpid()}"
    done = closed_stdout_run("-c", WATCH_SCRIPT, str(lab.port), str(lab.keys.client_key),
                             str(lab.known_hosts), marker)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "tool: standard output closed: stopping the commands", "cancelled", "closed"]
    assert remote_processes(f"yes {marker}") == []


@pytest.mark.parametrize("gather", [False, True])
def test_text_stdout_cannot_encode_is_not_a_closed_pipe(lab: Lab, gather):
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    done = subprocess.run(
        [sys.executable, "-m", "apssh.cli", *base(lab), *(["-b"] if gather else []),
         "-t", HOST, r"printf 'caf\303\251 \342\202\254\n'"],
        capture_output=True, cwd=REPO, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"caf? ?\n")
    assert b"standard output closed" not in done.stderr


def test_the_gathered_view_on_a_closed_stdout(lab: Lab):
    done = closed_stdout_run("-m", "apssh.cli", *base(lab), "-b", "-t", HOST, "seq 1 20000")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    assert done.stderr.endswith("apssh: 1 ok, 0 failed\n")
