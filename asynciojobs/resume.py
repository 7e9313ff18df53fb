"""Resume a recorded run: run again only what did not complete.

``scheduler.run(resume=DIR)`` reads ``DIR/run.json`` (a record, see
``record.py``) and matches the scheduler's jobs to the recorded ones by their id
and label (the same scenario gives the same ids: they follow a topological
order). A job recorded ``ok``, and all its commands ``ok`` (a job that is not
critical ends ``ok`` after a failed command), is completed without running (its
dependents start at once; its readinesses fire), except when a job that runs again waits for one of
its readinesses (a server its client needs: it runs again too). Forever jobs
always run again. A nested scheduler runs again when one of its jobs does, its
done jobs skipped. The run is then added to the same record (``runs`` in
``run.json``): the entries of skipped jobs are kept as they were.

What a job computed (a ``result``) is not restored: values that later jobs need
are kept as variables (apssh's ``Capture``), which the record holds and the caller
restores (``nepi-ng run --resume`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import graph
from .errors import SchedulerError
from .record import Record, RecordError, read_run

if TYPE_CHECKING:
    from .job import AbstractJob
    from .scheduler import PureScheduler

__all__ = ["ResumeError", "keeper", "prepare_resume"]


class ResumeError(SchedulerError, RecordError):
    """A record that cannot be resumed by these jobs; the message is one line."""


def _all_jobs(scheduler: PureScheduler) -> list[AbstractJob]:
    """The jobs in listing order, numbered as a run numbers them."""
    return graph.number_jobs(scheduler, graph.plan_tree(scheduler))


def done_jobs(scheduler: PureScheduler, run: dict[str, Any], where: Path
              ) -> frozenset[AbstractJob]:
    """The jobs of ``scheduler`` a resumed run skips (see the module's doc)."""
    jobs = _all_jobs(scheduler)
    recorded = [(entry["id"], entry["label"]) for entry in run["jobs"]]
    here = [(job.repr_id(), job._get_text_label()) for job in jobs]
    if here != recorded:
        differ = next((f"job {a[0]} {a[1]!r} here, {b[0]} {b[1]!r} in the record"
                       for a, b in zip(here, recorded, strict=False) if a != b),
                      f"{len(here)} jobs here, {len(recorded)} in the record")
        raise ResumeError(f"{where}: these jobs are not the recorded ones ({differ})")
    # a job that ended ok with a failed command (not critical: the failure was
    # ignored) did not complete: it runs again
    completed = {entry["id"] for entry in run["jobs"] if entry["outcome"] == "ok"
                 and all(command["outcome"] == "ok" for command in entry["commands"])}
    done = {job for job in jobs if job.repr_id() in completed and not job.forever}
    changed = True
    while changed:  # a readiness needed again needs its job again
        changed = False
        for job in jobs:
            if job in done:
                continue
            for source in job._conditions or ():
                if source in done:
                    done.discard(source)
                    changed = True
    for job in reversed(jobs):  # inner schedulers first
        if job.is_scheduler and job in done and any(
                inner not in done for inner in job.iterate_jobs(  # type: ignore[attr-defined]
                    scan_schedulers=True) if inner is not job):
            done.discard(job)
    return frozenset(done)


def prepare_resume(scheduler: PureScheduler, path: str | Path) -> Record:
    """Mark the jobs done in the record at ``path`` to be skipped by the next run of
    ``scheduler``; the ``Record`` that adds that run to the same directory."""
    where = Path(path)
    run = read_run(where)
    scheduler._skip = done_jobs(scheduler, run, where)
    return Record(where, previous=run, scenario_name=run.get("scenario") or "scenario.txt",
                  variables=run.get("variables"), argv=run.get("argv"))


def keeper(scheduler: PureScheduler, record: str | Path | Record | None,
           resume: str | Path | None) -> Record:
    """The Record of a run given ``record=`` (a directory for a new one, or a
    Record) or ``resume=`` (a record to go on with), not both."""
    if record is not None and resume is not None:
        raise ValueError("record= and resume= do not go together: a resumed run "
                         "is added to the record it resumes")
    if resume is not None:
        return prepare_resume(scheduler, resume)
    return record if isinstance(record, Record) else Record(record)  # type: ignore[arg-type]
