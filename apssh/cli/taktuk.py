"""``apssh --taktuk``, ``appush --taktuk`` and ``appull --taktuk``: the run goes
through TakTuk's tree.

One ``taktuk`` process reaches every host (``apssh.taktuk``); each host still has
its own job in a scheduler, so that its output goes through the same formatters
(``-o``, ``-b``, ``--diff``, ``-r``...), its outcome line, the summary, the exit
code, ``--mark``, ``--record`` and ``--monitor`` are those of the direct mode.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..taktuk import (
    NodeName,
    TaktukGroup,
    TaktukHost,
    find_taktuk,
    settings_from_files,
)
from .errors import BAD_INPUT, PIPE_CLOSED, UsageError, bad_input, stop_code
from .targets import Target
from .tools import Invocation

#: options of the direct mode that --taktuk does not do (yet), as their users wrote them
_NOT_WITH_TAKTUK = (("stdin", "-I/--stdin"), ("script", "-s/--script"), ("sudo", "--sudo"),
                    ("args_file", "--args"), ("command_timeout", "--command-timeout"))


def taktuk_main(tool: Any, args: argparse.Namespace, targets: list[Target]) -> int:
    """Run ``tool`` (``Apssh``, ``Appush`` or ``Appull``) on ``targets`` through TakTuk; the exit
    code. Bad input (an option the mode does not take, taktuk missing) is one line
    and exit 2, before anything runs."""
    try:
        prepared = _prepare(tool, args, targets)
    except BrokenPipeError:
        raise
    except BAD_INPUT as exc:
        return bad_input(tool.prog, exc)
    if prepared is None:  # --list-targets
        for target in targets:
            print(target)
        return 0
    return _execute(tool, args, prepared)


@dataclass
class _Prepared:
    """What ``_execute`` runs: the TakTuk group, the invocation (options, targets,
    pipe, progress, output directory) and each target's formatter."""

    group: TaktukGroup
    invocation: Invocation
    formatters: dict[Target, Any]


def _host(args: argparse.Namespace, target: Target) -> TaktukHost:
    """``target`` as TakTuk reaches it: behind its gateways, if any (TakTuk deploys
    it from the last one; the client never connects to it)."""
    gateway = _host(args, target.gateway) if target.gateway is not None else None
    return TaktukHost(target.host, target.user or args.login, target.port or args.port,
                      gateway)


def _hosts(args: argparse.Namespace, targets: list[Target]) -> list[TaktukHost]:
    return [_host(args, target) for target in targets]


def _command(tool: Any, args: argparse.Namespace, targets: list[Target]) -> str:
    """The command line every host runs: the same for all (no per-host values)."""
    from ..pernode import NodeValues, expand_command, uses

    template = " ".join(args.commands)
    first = NodeValues(targets[0].host, targets[0].user or "", targets[0].port, 0).as_dict()
    for name in (*first, "port"):
        if uses(template, name):
            raise UsageError(f"--taktuk: {{{name}}} is per host, which the TakTuk mode "
                             "does not fill (use $TAKTUK_HOSTNAME, $TAKTUK_RANK)")
    return expand_command(template, first)


def _copies(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``appush --taktuk``: (local source, remote destination) for each source."""
    from .copies import remote_path

    *sources, destination = args.paths
    for path in args.paths:
        if "{" in path:
            raise UsageError(f"--taktuk: {path}: per-host paths are not filled in "
                             "the TakTuk mode")
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such local file")
    remote = remote_path(destination)
    return [(str(Path(s).resolve()), remote) for s in sources]


def _gets(tool: Any, args: argparse.Namespace, targets: list[Target],
          hosts: list[TaktukHost]) -> tuple[list[str], list[str]]:
    """``appull --taktuk``: the remote sources (the same for every host), and each
    host's local destination, filled as without TakTuk (``{host}``, ``{rank}``...,
    each value a checked name: ``Appull.command``)."""
    from ..pernode import NodeValues

    for path in args.paths[:-1]:
        if "{" in path:
            raise UsageError(f"--taktuk: {path}: the remote files are the same on every "
                             "host in the TakTuk mode")
    pulls = [tool.command(args, target, NodeValues(target.host, host.user or "", host.port,
                                                   rank))
             for rank, (target, host) in enumerate(zip(targets, hosts, strict=True))]
    return list(pulls[0].sources), [str(pull.destination) for pull in pulls]


def _group(tool: Any, args: argparse.Namespace, targets: list[Target],
           hosts: list[TaktukHost], **common: Any) -> TaktukGroup:
    """The TakTuk group that does what ``tool`` does."""
    if tool.prog == "appull":
        sources, into = _gets(tool, args, targets, hosts)
        return TaktukGroup(hosts, get=sources, into=into, **common)
    if tool.copies:
        return TaktukGroup(hosts, put=_copies(args), **common)
    return TaktukGroup(hosts, command=_command(tool, args, targets), **common)


def _prepare(tool: Any, args: argparse.Namespace, targets: list[Target]) -> _Prepared | None:
    """Check the options, make the group and each target's formatter; None for
    ``--list-targets`` (nothing to run)."""
    if tool.prog not in ("apssh", "appush", "appull"):
        raise UsageError(f"{tool.prog} --taktuk: only apssh, appush and appull go "
                         "through TakTuk")
    for name, option in _NOT_WITH_TAKTUK:
        if getattr(args, name, None):
            raise UsageError(f"--taktuk does not go with {option}")
    hosts = _hosts(args, targets)
    taktuk = find_taktuk()
    if args.list_targets:
        return None
    tool.prepare(args)
    settings = settings_from_files(args.keys, [args.known_hosts] if args.known_hosts else [],
                                   policy=args.host_key_policy, config=args.ssh_config,
                                   timeout=args.timeout)
    verbose = args.verbose or args.debug
    group = _group(tool, args, targets, hosts, settings=settings, taktuk=taktuk,
                   window=args.window or None,
                   diagnostics=_diagnostics(tool.prog) if verbose else None)
    invocation = tool.invocation(args, targets)
    try:
        live = tool.live_formatter(invocation)
        formatters = {}
        for target, host in zip(targets, hosts, strict=True):
            formatter = tool.formatter_for(args, target, live)
            formatter.adapt_to_proxy(NodeName(host.host, host.user))
            formatters[target] = formatter
    except BaseException:
        invocation.forget_run_dir()
        group.cleanup()
        raise
    return _Prepared(group, invocation, formatters)


def _diagnostics(prog: str) -> Any:
    def show(index: int | None, line: str) -> None:
        print(f"{prog}: taktuk: {line}", file=sys.stderr)
    return show


def _execute(tool: Any, args: argparse.Namespace, prepared: _Prepared) -> int:
    """The scheduler of the hosts' jobs, then what the direct mode reports."""
    from asynciojobs import Scheduler
    from asynciojobs.loop import run_in_thread_loop

    from .report import outcome_of

    group, run, formatters = prepared.group, prepared.invocation, prepared.formatters
    jobs = dict(zip(run.targets, group.jobs(lambda index, host: formatters[run.targets[index]],
                                            progress=run.progress), strict=True))
    scheduler = Scheduler(*jobs.values())
    keeper = tool.watchers(scheduler, args)

    async def everything() -> None:
        run.pipe.watch(asyncio.current_task())
        ended = False
        try:
            await scheduler.co_orchestrate(record=keeper)
            ended = True
        finally:  # every host told its end: TakTuk quits by itself; else stop it
            if not ended:  # its commands too, on every node (waited for below)
                group.taktuk_run.interrupt()
            elif group.taktuk_run.task is not None:
                await asyncio.gather(group.taktuk_run.task, return_exceptions=True)

    stopped: int | None = None
    try:
        run_in_thread_loop(everything())
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError) as exc:
        stopped = PIPE_CLOSED if run.pipe.is_closed else stop_code(exc)
        # the same loop (run_in_thread_loop keeps the thread's), where TakTuk's task
        # still is: a second run, after the interrupted one, stops its commands on
        # every node and waits for it
        run_in_thread_loop(group.taktuk_run.stop())
    finally:  # appull: what was not moved in place
        group.cleanup()
    return tool.conclude(run, [outcome_of(target, job) for target, job in jobs.items()],
                         stopped)
