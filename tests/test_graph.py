"""Graph utilities: ordering, checks, closures and the ways to cut a scenario."""

from __future__ import annotations

import itertools

import pytest
from conftest import value

from asynciojobs import AbstractJob, Job, PrintJob, PureScheduler, Scheduler


def diamond():
    """a -> (b, c) -> d -> e, plus a lone job f."""
    a = Job(value, "a", label="a")
    b = Job(value, "b", label="b", required=a)
    c = Job(value, "c", label="c", required=a)
    d = Job(value, "d", label="d", required=(b, c))
    e = Job(value, "e", label="e", required=d)
    f = Job(value, "f", label="f")
    return Scheduler(e, d, c, b, a, f), (a, b, c, d, e, f)


def test_topological_order_follows_requirements_then_insertion():
    s, (a, b, c, d, e, f) = diamond()
    assert list(s.topological_order()) == [a, f, c, b, d, e]


def test_entry_and_exit_jobs():
    s, (a, b, c, d, e, f) = diamond()
    assert list(s.entry_jobs()) == [a, f]
    assert list(s.exit_jobs()) == [e, f]
    server = Job(value, "s", forever=True)
    s.add(server)
    assert server not in set(s.exit_jobs())
    assert server in set(s.exit_jobs(discard_forever=False))


def test_neighbours_and_closures():
    s, (a, b, c, d, e, f) = diamond()
    assert set(s.predecessors(d)) == {b, c}
    assert set(s.successors(a)) == {b, c}
    assert set(s.successors(a, compute_backlinks=False)) == {b, c}
    assert set(s.predecessors_upstream(e)) == {a, b, c, d}
    assert set(s.successors_downstream(b)) == {d, e}
    assert set(s.successors_downstream(f)) == set()


def test_keep_only_between():
    s, (a, b, c, d, e, f) = diamond()
    s.keep_only_between(starts=[b], ends=[e])
    assert list(s.jobs) == [e, d, b]
    assert list(d.required) == [b]  # c is gone: sanitized
    s2, (a, b, c, d, e, f) = diamond()
    s2.keep_only_between(starts=[a], keep_starts=False)
    assert set(s2.jobs) == {b, c, d, e}
    s3, (a, b, c, d, e, f) = diamond()
    s3.keep_only_between(ends=[d], keep_ends=False)
    assert set(s3.jobs) == {a, b, c}


def test_keep_only():
    s, (a, b, c, d, e, f) = diamond()
    s.keep_only([a, c, d])
    assert list(s.jobs) == [d, c, a]
    assert list(d.required) == [c]
    assert s.run() is True


def test_bypass_and_remove():
    s, (a, b, c, d, e, f) = diamond()
    s.bypass_and_remove(d)
    assert d not in s.jobs
    assert set(e.required) == {b, c}
    with pytest.raises(ValueError, match="not in this scheduler"):
        s.bypass_and_remove(d)
    assert s.run() is True


def test_sanitize_is_recursive_and_reports_correctly(capsys):
    outside = Job(value, "x", label="outside")
    clean_nested = Scheduler(Job(value, 1))
    s = Scheduler(clean_nested, Job(value, 2), label="top")
    assert s.sanitize() is True  # 0.21 said False here
    dirty = Job(value, 3, label="dirty", required=outside)
    nested = Scheduler(dirty, label="inner")
    s2 = Scheduler(nested, label="top")
    assert s2.sanitize(verbose=True) is False
    assert list(dirty.required) == []
    assert "had 1 requirements removed" in capsys.readouterr().out
    assert s2.sanitize() is True
    outside.close()


def test_check_cycles_is_recursive():
    s, jobs = diamond()
    assert s.check_cycles() is True
    x = Job(value, 1)
    y = Job(value, 2, required=x)
    x.requires(y)
    s.add(Scheduler(x, y))
    assert s.check_cycles() is False
    assert PureScheduler(x, y).check_cycles() is False


def test_iterate_jobs():
    leaf1, leaf2, leaf3 = Job(value, 1), Job(value, 2), Job(value, 3)
    inner = Scheduler(leaf2, label="inner")
    middle = Scheduler(inner, leaf3, label="middle")
    top = Scheduler(leaf1, middle)
    assert list(top.iterate_jobs()) == [leaf1, leaf2, leaf3]
    assert list(top.iterate_jobs(scan_schedulers=True)) == [
        top, leaf1, middle, inner, leaf2, leaf3,
    ]


class NoClose(AbstractJob):
    """A job that lacks close() altogether, like 0.21 custom jobs."""

    close = None  # type: ignore[assignment]

    async def co_run(self):
        return 1


class AsyncClose(AbstractJob):
    closed = False

    async def co_run(self):
        return 1

    async def close(self):  # type: ignore[override]
        AsyncClose.closed = True


def test_close_idle_and_all_jobs_with_any_kind_of_job():
    ran = Job(value, 1)
    idle = Job(value(2), required=Job(value, 0))  # requires a job outside: never runs
    printer = PrintJob("x")
    s = Scheduler(ran, printer, NoClose(), AsyncClose(), Scheduler(idle))
    s.close_idle_jobs()
    assert AsyncClose.closed is True  # a legacy async close() is awaited, not dropped
    s.close_all_jobs()


def test_graph_utilities_on_a_long_reversed_chain():
    # 0.21 needed one sweep per job here (quadratic); this is one pass
    jobs = [Job(value, i) for i in range(3000)]
    for later, earlier in itertools.pairwise(jobs):
        later.requires(earlier)
    s = Scheduler(*jobs)
    assert list(s.topological_order()) == jobs[::-1]
    assert len(s.successors_downstream(jobs[-1])) == 2999
    assert s.check_cycles() is True
