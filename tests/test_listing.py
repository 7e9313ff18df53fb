"""list(), list_safe(), debrief(), stats and entries/exits, in asynciojobs 0.21's formats."""

from __future__ import annotations

import io
import itertools
import sys

from conftest import boom, never, value

from asynciojobs import Job, PrintJob, Scheduler, symbols


def nested_example():
    """The reference's README example: a critical nested scheduler between two jobs."""
    start = Job(value, 0, label="main-start")
    subj1 = Job(value, 1, label="subj1")
    subj2 = Job(value, 2, label="subj2", required=subj1)
    subj3 = Job(value, 3, label="subj3", required=subj1)
    subj4 = Job(value, 4, label="subj4", required=(subj2, subj3))
    nested = Scheduler(subj1, subj2, subj3, subj4, label="critical nested", required=start)
    end = Job(value, 5, label="main-end", required=nested)
    return Scheduler(start, nested, end, label="top"), nested


def out(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_list_of_the_reference_example(capsys):
    top, _ = nested_example()
    top.list()
    assert out(capsys) == [
        "1 ⚠   ⚐   <Job `main-start`> [not done] ",
        "2 ⚠   ⚐   <Scheduler `critical nested`> [not done] requires={1} -> entries={3}",
        "3 ⚠   ⚐   > <Job `subj1`> [not done] ",
        "4 ⚠   ⚐   > <Job `subj2`> [not done] requires={3}",
        "5 ⚠   ⚐   > <Job `subj3`> [not done] requires={3}",
        "6 ⚠   ⚐   > <Job `subj4`> [not done] requires={4, 5}",
        "2 --end-- < <Scheduler `critical nested`> exits={6}",
        "7 ⚠   ⚐   <Job `main-end`> [not done] requires={2}",
    ]


def test_ids_are_padded_to_the_total_count(capsys):
    jobs = [Job(value, i, label=f"j{i}") for i in range(10)]
    for prev, nxt in itertools.pairwise(jobs):
        nxt.requires(prev)
    Scheduler(*reversed(jobs)).list()
    lines = out(capsys)
    assert lines[0] == "01 ⚠   ⚐   <Job `j0`> [not done] "
    assert lines[-1] == "10 ⚠   ⚐   <Job `j9`> [not done] requires={09}"


def test_doubly_nested_listing(capsys):
    leaf = Job(value, 1, label="leaf")
    inner = Scheduler(leaf, label="inner")
    middle = Scheduler(inner, label="middle")
    Scheduler(middle).list()
    assert out(capsys) == [
        "1 ⚠   ⚐   <Scheduler `middle`> [not done]  -> entries={2}",
        "2 ⚠   ⚐   > <Scheduler `inner`> [not done]  -> entries={3}",
        "3 ⚠   ⚐   >> <Job `leaf`> [not done] ",
        "2 --end-- << <Scheduler `inner`> exits={3}",
        "1 --end-- < <Scheduler `middle`> exits={2}",
    ]


def test_list_after_a_run_details_and_silence(capsys):
    ok = Job(value, 1, label="ok")
    soft = Job(boom, "soft!", label="soft", critical=False, required=ok)
    printer = PrintJob("hello", "there", label="printer", required=ok)
    s = Scheduler(ok, soft, printer)
    assert s.run() is True
    capsys.readouterr()
    s.list(details=True)
    assert out(capsys) == [
        "1 ⚠ ☉ ☓   <Job `ok`> [[ -> 1]] ",
        "2   ★ ☓   <Job `soft`> !! exception => ValueError:soft!!! requires={1}",
        "3 ⚠ ☉ ☓   <PrintJob `printer`> [[ -> None]] requires={1}",
        "msg= hello...",
    ]
    s.list(silence_done_jobs=True)
    assert out(capsys) == []


def test_ascii_fallback(capsys, monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    assert symbols.legend() is symbols.ASCII
    job = Job(value, 1, label="a")
    forever = Job(value, 2, label="f", forever=True, critical=False)
    idle = Job(value, 3, label="i")
    s = Scheduler(job, forever, Job(boom, label="b", critical=False))
    s.run()
    Scheduler(idle)
    assert job.repr_short() == "! :) x  "
    assert forever.repr_short() == "  :) x 8"
    assert idle.repr_short() == "!    >  "
    monkeypatch.undo()
    assert symbols.legend() is symbols.UNICODE


def test_list_safe_works_with_cycles(capsys):
    a = Job(value, 1, label="a")
    b = Job(value, 2, label="b", required=a)
    a.requires(b)
    inner = Scheduler(Job(value, 3, label="c"), label="nested", required=a)
    s = Scheduler(a, b, inner)
    s.list_safe()
    assert out(capsys) == [
        "⚠   ⚐   .1 <Job `a`> requires={.2}",
        "⚠   ⚐   .2 <Job `b`> requires={.1}",
        "⚠   ⚐   .3 <Scheduler `nested`> requires={.1}",
        "⚠   ⚐   3.1 <Job `c`> ",
        "--end-- .3",
    ]
    for job in (a, b):
        job.close()


def test_stats_entries_exits_and_repr():
    a = Job(value, 1)
    b = Job(value, 2, required=a)
    f = Job(never, forever=True)
    s = Scheduler(a, b, f, timeout=1)
    assert s.repr_entries() == "entries={1, 2}"
    assert s.repr_exits() == "exits={3}"
    assert s.stats() == "0D + 0R + 3I = 3"
    s.run()
    assert repr(s) == "Scheduler with 2 done + 1 ongoing + 0 idle = 3 job(s)"


def test_debrief_reports_every_exception_and_a_summary(capsys):
    ok = Job(value, 1, label="ok")
    soft = Job(boom, "soft!", label="soft", critical=False, required=ok)
    hard = Job(boom, "hard!", label="hard", required=soft)
    never = Job(value, 2, label="never", required=hard)
    s = Scheduler(ok, soft, hard, never, critical=False, verbose=True)
    assert s.run() is False
    capsys.readouterr()
    s.debrief()
    lines = out(capsys)
    assert lines[0] == "----- a CRITICAL job has raised an exception"
    assert lines[1:5] == [
        "1 ⚠ ☉ ☓   <Job `ok`> [[ -> 1]] ",
        "2   ★ ☓   <Job `soft`> !! exception => ValueError:soft!!! requires={1}",
        "3 ⚠ ★ ☓   <Job `hard`> !! CRIT. EXC. => ValueError:hard!!! requires={2}",
        "4 ⚠   ⚐   <Job `never`> [not done] requires={3}",
    ]
    assert lines[5] == "===== 2 job(s) with an exception, including 1 critical"
    assert lines[6] == "    ********************"
    assert lines[7] == ("    ******************** BEG stack for CRITICAL JOB "
                        "3 ⚠ ★ ☓   <Job `hard`>")
    assert "    ValueError: hard!" in lines
    # 0.21 forgot non-critical exceptions in verbose mode
    assert "non-critical: soft: exception soft!" in lines
    assert lines[-1] == ("===== 4 jobs: 1 done, 2 failed, 0 cancelled, 1 never ran"
                         " - a CRITICAL job has raised an exception")


def test_debrief_of_a_nested_timeout_names_the_scheduler(capsys):
    async def slow():
        import asyncio
        await asyncio.Event().wait()

    nested = Scheduler(Job(slow, label="slow"), timeout=0.01, label="nested")
    s = Scheduler(nested, critical=False)
    assert s.run() is False
    capsys.readouterr()
    s.debrief()
    lines = out(capsys)
    assert "===== 1 job(s) with an exception, including 1 critical" in lines
    assert any("BEG stack for CRITICAL JOB 1" in line for line in lines)
    assert lines[-1].startswith("===== 1 jobs: 0 done, 0 failed, 1 cancelled, 0 never ran")
