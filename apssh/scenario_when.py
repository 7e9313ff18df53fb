"""``required:`` in a YAML scenario, with readiness: ``{job: NAME, when: REGEX}``.

An entry of a job's ``required:`` is a job id (the job starts when that one ends)
or a mapping ``{job: NAME, when: REGEX, timeout: N, stream: stdout|stderr|both}``:
the job starts as soon as a line of NAME's output matches REGEX (see
``SshJob.when``), and the regex's named groups become names its commands (and
those of the jobs requiring it) use as ``{{ name }}``. Checked before anything
runs, each mistake a ``Problem`` (one line ``file:line: what``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .scenario_checks import Marked, MarkedList, Problem, check_fields

#: the keys of a ``required:`` mapping and their kinds (see ``scenario_checks.KINDS``)
WHEN = {"job": "name", "when": "text", "timeout": "seconds", "stream": "stream"}


@dataclass
class Requirement:
    """One entry of a job's ``required:``, at ``line``."""

    job: str
    line: int
    #: the regex of a readiness (``when:``), else None: the job's end
    when: str | None = None
    timeout: float | None = None
    stream: str = "stdout"
    #: the line of ``when:`` (for a regex that does not compile)
    when_line: int = 0


def requirements(entry: Marked, what: str) -> list[Requirement]:
    """The entries of ``entry``'s ``required:`` (a job id, a mapping, or a list of
    those), their keys and kinds checked (``check_fields`` has checked the rest)."""
    if "required" not in entry or entry["required"] is None:
        return []
    raw = entry["required"]
    line = entry.line_of("required")
    items = raw if isinstance(raw, list) else [raw]
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):  # a job id: the line of required:, as ever
            found.append(Requirement(str(item), line))
            continue
        here = raw.line_of(index) if isinstance(raw, MarkedList) else line
        found.append(_mapping(item, item.line if isinstance(item, Marked) else here, what))
    return found


def _mapping(item: dict[str, Any], line: int, what: str) -> Requirement:
    where = f"{what}: required"
    marked = item if isinstance(item, Marked) else None
    if marked is not None:
        check_fields(marked, WHEN, where)

    def line_of(key: str) -> int:
        return marked.line_of(key) if marked is not None else line

    if "job" not in item:
        raise Problem(line, f"{where}: missing 'job:' in {{job: ..., when: ...}}")
    if "when" not in item:
        for key in ("timeout", "stream"):
            if key in item:
                raise Problem(line_of(key), f"{where}: {key}: needs when: (a regex)")
    return Requirement(str(item["job"]), line_of("job"), item.get("when"),
                       item.get("timeout"), item.get("stream", "stdout"), line_of("when"))


def resolve(job_id: str, found: list[Requirement], jobs: dict[str, Any],
            variables: dict[str, Any]) -> tuple[list[Any], dict[str, list[str]]]:
    """What ``jobs[job_id].requires()`` takes (jobs and readinesses), and the names
    each readiness's regex captures, by required job id. Refuses an unknown job, a
    job requiring itself, ``when:`` on a job that is not an SshJob and a regex that
    does not compile."""
    from .sshjob import SshJob

    what = f"job {job_id}"
    required: list[Any] = []
    groups: dict[str, list[str]] = {}
    for req in found:
        if req.job == job_id:
            raise Problem(req.line, f"{what}: requires itself")
        if req.job not in jobs:
            raise Problem(req.line, f"{what}: unknown job id {req.job!r} in required")
        job = jobs[req.job]
        if req.when is None:
            required.append(job)
            groups.pop(req.job, None)  # one edge per pair: the later one wins
            continue
        if not isinstance(job, SshJob):
            raise Problem(req.when_line, f"{what}: required: when: job {req.job} is not "
                                         "an SshJob (only their output is watched)")
        try:
            regex = re.compile(req.when)
        except re.error as exc:
            raise Problem(req.when_line,
                          f"{what}: required: when: bad regex {req.when!r}: {exc}") from None
        required.append(job.when(req.when, timeout=req.timeout, stream=req.stream,
                                 variables=variables))
        groups[req.job] = list(regex.groupindex)
    return required, groups
