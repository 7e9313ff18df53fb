"""``forward:`` in a YAML scenario: a job that is a port forward (``apssh.ForwardJob``).

    - id: tunnel
      node: gw
      forward: {listen: 0, to: "127.0.0.1:5432", capture: db_port, close: dependents}

``listen`` (default 0: any free port) is a port or ``HOST:PORT`` here, or on the
node with ``reverse: true``; ``to`` is ``HOST:PORT`` (or a port on 127.0.0.1) as
seen from the node, or from here with ``reverse``. ``capture`` names the variable
that gets the port listened on, for the ``{{ name }}`` of the jobs that require
the forward. ``close: end`` (the default) closes it when the scenario ends,
``close: dependents`` as soon as the jobs that require it are done. Checked
before anything runs, each mistake a ``Problem`` (one line ``file:line: what``).
"""

from __future__ import annotations

from typing import Any

from asynciojobs import AbstractJob, Scheduler

from .deferred import Capture, Variables
from .forward import ForwardJob
from .scenario_checks import Marked, Problem, check_fields

#: the keys of ``forward:`` and their kinds (see ``scenario_checks.KINDS``)
FORWARD = {"listen": "listen", "to": "endpoint", "reverse": "bool",
           "capture": "identifier", "close": "close"}
#: the keys a job with ``forward:`` takes
FORWARD_JOB = ("id", "node", "forward", "required", "critical", "label")


def forward_job(job_id: str, entry: Marked, node: Any, variables: Variables,
                captures: dict[str, list[tuple[int, str]]]) -> ForwardJob:
    """The ``ForwardJob`` of job ``job_id`` (``entry`` has ``forward:``, and its
    keys have been checked against ``scenario_checks.JOB``); its capture, if
    any, is recorded in ``captures`` for the checks of ``{{ names }}``."""
    what = f"job {job_id}"
    for key in entry:
        if key not in FORWARD_JOB:
            raise Problem(entry.line_of(key), f"{what}: {key}: not for a forward job (one "
                                              f"with forward:), which takes "
                                              f"{', '.join(FORWARD_JOB[1:])}")
    spec = entry["forward"]
    where = f"{what}, forward"
    check_fields(spec, FORWARD, where)
    if "to" not in spec:
        raise Problem(spec.line, f"{where}: missing 'to:'")
    name = spec.get("capture")
    if name is not None:
        captures.setdefault(job_id, []).append((0, name))
    label = entry.get("label")
    try:
        return ForwardJob(node, listen=spec.get("listen", 0), to=spec["to"],
                          reverse=spec.get("reverse", False),
                          capture=Capture(name, variables) if name is not None else None,
                          label=" ".join(str(label).split()) if label else job_id,
                          critical=entry.get("critical", True))
    except ValueError as exc:
        if "SshNode" in str(exc):
            raise Problem(entry.line_of("node"), f"{what}: node {entry['node']} is a local "
                                                 "node: a forward goes through ssh") from None
        raise Problem(spec.line, f"{where}: {exc}") from None


def close_forwards(entries: list[tuple[str, Marked]], jobs: dict[str, Any],
                   requires: dict[str, list[str]], scheduler: Scheduler) -> None:
    """Add to ``scheduler`` the closing job of each forward with ``close:
    dependents``: it runs once the jobs requiring the forward are done."""
    for job_id, entry in entries:
        spec = entry.get("forward")
        if not isinstance(spec, Marked) or spec.get("close", "end") != "dependents":
            continue
        dependents: list[AbstractJob] = [jobs[other] for other, reqs in requires.items()
                                         if job_id in reqs]
        if not dependents:
            raise Problem(spec.line_of("close"), f"job {job_id}, forward: close: dependents, "
                                                 f"but no job requires {job_id}")
        forward = jobs[job_id]
        assert isinstance(forward, ForwardJob)
        closer = forward.close_after(*dependents, label=f"close {job_id}")
        if closer not in scheduler.jobs:
            scheduler.add(closer)
