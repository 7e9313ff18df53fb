"""AbstractJob's contract, Job, PrintJob and Sequence."""

from __future__ import annotations

import asyncio

import pytest
from conftest import boom, never, value

from asynciojobs import (
    AbstractJob,
    Engine,
    Job,
    JobNotFinishedError,
    PrintJob,
    PureScheduler,
    Scheduler,
    Sequence,
)
from asynciojobs.dotstyle import DotStyle


class Custom(AbstractJob):
    def __init__(self, outcome: object = 1, **kwds):
        self.outcome = outcome
        self.shutdowns = 0
        super().__init__(**kwds)

    async def co_run(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    async def co_shutdown(self):
        self.shutdowns += 1

    def text_label(self):
        return f"custom {self.outcome}"

    def details(self):
        return "some details"


# ----- AbstractJob
def test_defaults():
    job = Custom()
    assert job.forever is False
    assert job.critical is None
    assert job.label is None
    assert list(job.required) == []
    assert job.scheduler is None
    assert job.is_idle() and not job.is_scheduled() and not job.is_running()
    assert not job.is_done()
    assert job.raised_exception() is False
    assert job.is_critical() is True  # no scheduler: critical, as 0.21
    with pytest.raises(JobNotFinishedError, match="job not finished"):
        job.result()
    with pytest.raises(ValueError):
        job.result()


def test_keyword_only():
    with pytest.raises(TypeError):
        AbstractJob(True)  # type: ignore[misc]


def test_states_after_success_and_failure():
    ok, ko = Custom(7), Custom(KeyError("k"), critical=False)
    assert PureScheduler(ok, ko).run() is True
    assert ok.is_done() and ok.is_running() and ok.is_scheduled() and not ok.is_idle()
    assert ok.result() == 7 and ok.raised_exception() is None
    assert ko.is_done()
    assert ko.result() is None
    assert isinstance(ko.raised_exception(), KeyError)


def test_requires_forms():
    a, b, c, d, e = (Custom(i) for i in range(5))
    seq = Sequence(b, c)
    assert a.requires(None, seq, [d, (e,)], remove=False) is a
    assert list(a.required) == [c, d, e]  # a sequence stands for its last job
    a.requires(a)  # requiring oneself is ignored
    assert a not in a.required
    a.requires(job for job in [b])  # generators work
    assert b in a.required
    a.requires(seq, remove=True)  # 0.21 added it instead
    assert c not in a.required
    with pytest.raises(KeyError):
        a.requires(c, remove=True)


def test_requires_at_creation_and_scheduler_keyword():
    a = Custom()
    s = Scheduler()
    b = Custom(required=a, scheduler=s)
    assert list(b.required) == [a]
    assert list(s.jobs) == [b]
    assert b.scheduler is s


@pytest.mark.parametrize("bad", ["a string", b"bytes", 42, 1.5, object()])
def test_requires_refuses_non_jobs(bad):
    with pytest.raises(TypeError, match=r"<Custom `custom 1`>\.requires\(\): expected a job"):
        Custom().requires(bad)


def test_requires_refuses_a_coroutine_with_a_hint():
    coro = value(1)
    with pytest.raises(TypeError, match=r"wrap it: Job\(\.\.\.\)"):
        Custom().requires(coro)


def test_labels():
    assert Custom().repr_main() == "<Custom `custom 1`>"
    assert Custom(label="mine").repr_main() == "<Custom `mine`>"
    assert PrintJob("x").repr_main() == "<PrintJob `NOLABEL`>"
    job = Job(value, 1)
    assert job.repr_main() == "<Job `Job[value (...)]`>"
    assert job._get_graph_label() == "??: Job[value (...)]"


def test_repr_formats():
    a = Custom(label="a")
    b = Custom(label="b", required=a)
    assert repr(b) == "⚠   ⚐   <Custom `b`> [not done] requires={??}"
    Scheduler(a, b).run()
    assert repr(a) == "⚠ ☉ ☓   <Custom `a`> [[ -> 1]] "
    assert repr(b) == "⚠ ☉ ☓   <Custom `b`> [[ -> 1]] requires={1}"
    c = Custom(ValueError("bad"), critical=False, label="c")
    d = Custom(ValueError("worse"), label="d", forever=True)
    PureScheduler(c).run()
    assert c.repr_result() == "!! exception => ValueError:bad!!"
    assert repr(c).startswith("  ★ ☓   <Custom `c`>")
    PureScheduler(d, timeout=1).run()
    assert d.repr_result() == "!! CRIT. EXC. => ValueError:worse!!"
    assert d.repr_short() == "⚠ ★ ☓ ∞"


def test_dot_style():
    style = Custom(label="x", forever=True).dot_style()
    assert isinstance(style, DotStyle)
    assert repr(style) == (
        'style="rounded,dashed",label="??: x",shape="box",color="red",penwidth="2"'
    )
    style = Custom(critical=False).dot_style()
    assert style["penwidth"] == 0.5 and "color" not in style
    assert Scheduler(label="s").dot_style()["style"] == []


def test_hooks_defaults():
    job = PrintJob("hello")
    assert job.text_label() is None and job.graph_label() is None
    job.close()  # every job can be closed
    assert Custom().details() == "some details"


def test_abstract_co_run_raises():
    with pytest.raises(NotImplementedError):
        asyncio.run(AbstractJob().co_run())


def test_standalone_run():
    assert Custom(42).standalone_run() == 42
    assert Job(value, "x").standalone_run() == "x"


# ----- Job
def test_job_from_coroutine_object_runs_once():
    job = Job(value(3))
    assert Scheduler(job).run() is True
    assert job.result() == 3


def test_job_from_function_runs_again_with_fresh_coroutine():
    calls = []

    async def count(x):
        calls.append(x)
        return len(calls)

    job = Job(count, "a")
    s = Scheduler(job)
    assert s.run() and job.result() == 1
    assert s.run() and job.result() == 2
    assert calls == ["a", "a"]


def test_job_positional_args_with_a_coroutine_object_is_an_error():
    with pytest.raises(TypeError, match="coroutine function"):
        Job(value(1), 2)


def test_job_rejects_non_callables():
    with pytest.raises(TypeError, match="expected a coroutine"):
        Job(42)  # type: ignore[arg-type]


def test_job_with_a_plain_function_fails_clearly():
    job = Job(lambda: 3, critical=False)
    assert PureScheduler(job).run() is True
    assert isinstance(job.raised_exception(), TypeError)
    assert "async def" in str(job.raised_exception())


def test_job_corun_keyword_and_coshutdown():
    done = []

    async def down():
        done.append(1)
        return "down"

    job = Job(corun=value(1), coshutdown=down)
    assert Scheduler(job).run()
    assert done == [1]
    assert asyncio.run(job.co_shutdown()) == "down"


def test_job_close_prevents_never_awaited_warnings():
    job = Job(never())
    job.close()


def test_job_unknown_keyword():
    with pytest.raises(TypeError):
        Job(value, 1, colour="red")


# ----- PrintJob
def test_printjob(capsys):
    job = PrintJob("hello", "world", banner="==>", label="p")
    assert Scheduler(job).run()
    assert capsys.readouterr().out == "==> hello world\n"
    assert job.details() == "msg= hello..."
    sleeper = PrintJob("zz", sleep=0.01)
    assert sleeper.details() == "[+ sleep 0.01s] msg= zz"
    Scheduler(sleeper).run()
    assert capsys.readouterr().out == "zz\nSleeping for 0.01s\n"


# ----- Sequence
def test_sequence_chains_and_flattens():
    a, b, c, d = (Custom(i, label=str(i)) for i in range(4))
    pre = Custom(label="pre")
    s = Scheduler()
    seq = Sequence(a, Sequence(b, None, c), required=pre, scheduler=s)
    assert seq.jobs == [a, b, c]
    assert list(a.required) == [pre] and list(b.required) == [a] and list(c.required) == [b]
    seq.append(d)
    assert list(d.required) == [c]
    assert list(s.jobs) == [a, b, c, d]
    e = Custom(required=seq)
    assert list(e.required) == [d]
    seq.requires(e, remove=False)
    assert e in a.required
    seq.requires(e, remove=True)
    assert e not in a.required


def test_sequence_refuses_non_jobs():
    with pytest.raises(TypeError, match="Sequence"):
        Sequence(Custom(), "oops")


def test_sequence_in_scheduler_constructor_and_close_idle():
    seq = Sequence(Job(value(1)), Job(value(2)))
    s = Scheduler(seq)
    assert len(s) == 2
    seq.close_idle_jobs()
    Sequence().requires(Custom())  # empty: no-op


def test_engine_resolves_criticality():
    job, crit = Custom(), Custom(critical=True)
    Engine(job, crit)
    assert job.is_critical() is False and crit.is_critical() is True
    other = Custom()
    Engine(other, critical=True)
    assert other.is_critical() is True
    third = Custom()
    Scheduler(third)
    assert third.is_critical() is True


def test_failing_job_helper_is_used():
    # keep the shared helper honest
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(boom())
