"""Output arrives whole and unchanged: binary bytes, huge lines, LocalNode's lines
and timeouts, against the real sshd.

Bytes are checked by length and sha256; "no quadratic time" is checked by the
memory a partial line may hold (tracemalloc's peak) and by the size and count of
the pieces handed over, never by timing.
"""

from __future__ import annotations

import asyncio
import hashlib
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
)
from apssh.lines import LINE_LIMIT, LineSplitter
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
    prefix = "root@127.0.0.7:"
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
    local = LocalNode(formatter=Lines())
    token = f"sleep 417.{os.getpid()}"
    with pytest.raises(CommandTimeoutError) as raised:
        asyncio.run(local.run(f"echo started; {token}", timeout=0.3))
    assert isinstance(raised.value, TimeoutError)
    assert (raised.value.node, raised.value.command, raised.value.timeout) == \
        (str(local), f"echo started; {token}", 0.3)
    assert local.formatter.lines == [(None, "started\n")]  # type: ignore[attr-defined]
    assert remote_processes(token) == []
