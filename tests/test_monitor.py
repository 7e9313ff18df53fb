"""The live view: plain lines without a terminal, an in-place view on one (a pty)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import textwrap

from asynciojobs import Job, PureScheduler
from asynciojobs.monitor import Monitor


async def value(x: object) -> object:
    return x


async def boom() -> None:
    raise ValueError("boom")


def test_without_a_terminal_one_plain_line_per_start_and_end() -> None:
    out = io.StringIO()
    sched = PureScheduler(Job(value(1), label="first"), Job(boom(), label="second",
                                                               critical=False))
    sched.subscribe(Monitor(out), output=True)
    assert sched.run()
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert set(lines[:-1]) == {"started  1 first", "ok       1 first", "started  2 second",
                               "failed   2 second: ValueError: boom"}
    assert lines[-1].startswith("run ok (1 done, 0 running, 1 failed, 0 waiting")


CHILD = textwrap.dedent("""
    import asyncio
    from asynciojobs import Job, PureScheduler, events
    from asynciojobs.events import Output
    from asynciojobs.monitor import Monitor

    async def talk(text):
        events.emit(Output(job=jobs[text], node="n", index=0, stream="stdout",
                           data=f"said {text}\\n".encode()))

    async def boom():
        raise ValueError("boom")

    jobs = {}
    for text in ("alpha", "beta"):
        jobs[text] = Job(talk, text, label=f"talker {text}")
    sched = PureScheduler(*jobs.values(), Job(boom, label="breaker", critical=False),
                          timeout=60)
    sched.subscribe(Monitor(), output=True)
    print("RESULT", sched.run())
""")


def run_in_pty(code: str) -> str:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="30")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave,
                             stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert child.wait(timeout=60) == 0
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_the_view_refreshes_in_place() -> None:
    screen = run_in_pty(CHILD)
    assert "RESULT True" in screen
    assert "\x1b[" in screen  # drawn with terminal control sequences, in place
    final = screen[screen.rindex("run ok"):]
    assert "2 done, 0 running, 1 failed, 0 waiting" in final
    assert "left" in final  # the scheduler's timeout
    assert "✘" in final and "✔" in final
    assert "talker alpha" in final and "said alpha" in final


def test_importing_and_plain_lines_import_neither_rich_nor_ipython() -> None:
    code = textwrap.dedent("""
        import io, sys
        from asynciojobs import Job, PureScheduler
        from asynciojobs.monitor import Monitor

        async def one():
            return 1

        sched = PureScheduler(Job(one))
        sched.subscribe(Monitor(io.StringIO()))
        assert sched.run()
        print(sorted(name for name in ("rich", "IPython") if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == "[]\n"
