"""The ``nepi-ng`` command: ``nepi-ng lab`` starts an embedded lab and says how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from .errors import USAGE
from .options import Parser, count, seconds


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nepi-ng``; returns the exit code."""
    from asynciojobs import __version__

    parser = Parser(prog="nepi-ng", description="nepi-ng tools")
    parser.add_argument("-V", "--version", action="version", version=f"nepi-ng {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="serve virtual nodes over SSH on loopback")
    lab.add_argument("--nodes", type=int, default=5, help="how many nodes (default 5)")
    lab.add_argument("--gateway", action="store_true",
                     help="nodes named fitNN, reachable only through the lab gateway")
    lab.add_argument("--workdir", help="where the lab keeps its files (default: a temp dir)")
    run = commands.add_parser("run", help="run a YAML scenario (Jinja2 allowed)")
    run.add_argument("scenario", help="the scenario file (.yaml or .yaml.j2)")
    run.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                     help="a Jinja2 variable (repeatable)")
    run.add_argument("--list", action="store_true", help="print the planned jobs and exit")
    run.add_argument("--graph", metavar="FILE.svg", help="write the graph of the scenario")
    run.add_argument("--timeout", type=seconds, help="bound the whole run, in seconds")
    run.add_argument("--window", type=count, help="at most this many jobs at once")
    run.add_argument("--verbose", action="store_true", help="report each job as it runs")
    kept = run.add_mutually_exclusive_group()
    kept.add_argument("--record", metavar="DIR",
                      help="keep this run in a new directory under DIR (run.json, "
                      "outputs, graph, timeline; see nepi-ng report)")
    kept.add_argument("--resume", metavar="RECORD",
                      help="run again what did not complete in RECORD, added to it")
    run.add_argument("--monitor", action="store_true",
                     help="a live view of the jobs (on a terminal; plain lines elsewhere)")
    report = commands.add_parser("report", help="print what a recorded run did")
    report.add_argument("record", help="a record (holding run.json), or a directory of "
                        "records (the latest is read)")
    shown = report.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true",
                       help="print run.json, with its event log folded in")
    shown.add_argument("--failed", action="store_true",
                       help="print the nodes where something failed, in a form -t accepts")
    shown.add_argument("--output", metavar="ID", help="print what job ID's commands printed")
    shown.add_argument("--draw", action="store_true",
                       help="draw graph.svg and timeline.svg (a record made without them)")
    report.add_argument("--stderr", action="store_true", help="with --output: their stderr")
    from .sweep import add_sweep_parser
    add_sweep_parser(commands)
    try:  # argparse reports bad input with SystemExit: an exit code here
        args = parser.parse_args(argv)
        args.argv = ["nepi-ng", *(sys.argv[1:] if argv is None else argv)]
        if args.command == "run":
            return run_scenario(args, parser)
        if args.command == "sweep":
            from .sweep import sweep_main
            return sweep_main(args, _defines(args, parser))
        if args.command == "report":
            if args.stderr and args.output is None:
                parser.error("report --stderr: goes with --output ID")
            from .records import report_main
            return report_main(args.record, as_json=args.json, failed=args.failed,
                               output=args.output, stderr=args.stderr, draw=args.draw)
        if args.nodes < 1:
            parser.error("--nodes: at least 1")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else USAGE
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a lab stops
        asyncio.run(serve_lab(args.nodes, args.gateway, args.workdir))
    return 0


def run_scenario(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``nepi-ng run``: 0 when the scenario succeeded, 1 when it failed, 2 for a bad
    scenario or a missing script (one line ``file:line: what``, nothing run), 130
    after Ctrl-C and 128+N after signal N (the jobs stopped, then the summary
    printed). ``--list`` reads no script: they may not exist yet."""
    from asynciojobs.loop import run_in_thread_loop

    from ..loader import ScenarioError, YamlLoader
    from .errors import FAILED, OK, PIPE_CLOSED, USAGE, stop_code
    from .pipe import PipeWatch

    env = _defines(args, parser)
    loader = YamlLoader(args.scenario)
    try:
        scheduler = loader.load(env)
        if not args.list:  # listing reads no script: they may not exist yet
            loader.check()
    except ScenarioError as exc:  # it names the file and the line, as compilers do
        print(exc, file=sys.stderr)
        return USAGE
    scheduler.timeout = args.timeout
    scheduler.jobs_window = args.window
    scheduler.verbose = args.verbose
    scheduler.critical = False
    if args.list:  # the plan, and its graph, without running anything
        scheduler.list()
        if args.graph:
            return _write_graph(scheduler, args.graph, show_outcome=False) or OK
        return OK
    watch = PipeWatch("nepi-ng")
    for formatter in _formatters(scheduler):
        formatter.on_stdout_closed = watch.closed

    keeper = None
    if args.record or args.resume:
        try:
            keeper = _record(scheduler, loader, args)
        except ValueError as exc:  # ResumeError: one line naming the record
            print(f"nepi-ng: --resume: {exc}", file=sys.stderr)
            return USAGE
        print(f"nepi-ng: record in {keeper.path}", file=sys.stderr)
    if args.monitor:
        from asynciojobs.monitor import Monitor
        scheduler.subscribe(Monitor(sys.stderr), output=True)  # stdout: the output

    async def run() -> bool:
        watch.watch(asyncio.current_task())
        return await scheduler.co_orchestrate(record=keeper)

    stopped: BaseException | None = None
    try:
        ok = run_in_thread_loop(run())
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError) as exc:
        ok, stopped = False, exc  # Ctrl-C, a signal (SignalExit), or stdout closed
    if args.graph:
        _write_graph(scheduler, args.graph, show_outcome=True)
    if stopped is not None and not watch.is_closed:
        print(f"nepi-ng: interrupted ({_why_stopped(stopped)}): the jobs were stopped",
              file=sys.stderr)
    if not ok:
        scheduler.debrief()
    if watch.is_closed:
        return PIPE_CLOSED
    if stopped is not None:
        return stop_code(stopped)
    return OK if ok else FAILED


def _defines(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, str]:
    """The ``-D NAME=VALUE`` variables (a bad one: argparse's one-line error)."""
    env = {}
    for definition in args.define:
        name, equal, value = definition.partition("=")
        if not equal or not name.isidentifier():
            parser.error(f"-D {definition}: expected NAME=VALUE")
        env[name] = value
    return env


def _record(scheduler: Any, loader: Any, args: argparse.Namespace) -> Any:
    """The Record of this run: a new one under ``--record``, or the one ``--resume``
    names (its captured variables restored first, so that later commands see them)."""
    from asynciojobs.record import Record
    from asynciojobs.resume import prepare_resume

    variables = loader.variables
    if args.resume:
        keeper = prepare_resume(scheduler, args.resume)
        previous = keeper.previous or {}
        for name, value in (previous.get("variables") or {}).items():
            variables.setdefault(name, value)
        keeper.variables = variables
        return keeper
    return Record(args.record, scenario=loader.rendered, scenario_name="scenario.yaml",
                  variables=variables, argv=args.argv)


def _write_graph(scheduler: Any, path: str, *, show_outcome: bool) -> int:
    """Write the scheduler's graph as svg at ``path`` and print its name: 0; or one
    line on stderr when it cannot be made (``dot`` missing...): 1."""
    from asynciojobs.dot import GraphvizError

    from .errors import FAILED

    try:
        print(scheduler.export_as_svgfile(path, show_outcome=show_outcome))
    except GraphvizError as exc:
        print(f"nepi-ng: --graph: {exc}", file=sys.stderr)
        return FAILED
    return 0


def _formatters(scheduler: Any) -> list[Any]:
    """The formatters of the scenario's nodes and their gateways, each once."""
    found: dict[int, Any] = {}
    for job in scheduler.iterate_jobs():
        node = getattr(job, "node", None)
        while node is not None:
            found.setdefault(id(node.formatter), node.formatter)
            node = getattr(node, "gateway", None)
    return list(found.values())


def _why_stopped(exc: BaseException) -> str:
    signum = getattr(exc, "signum", None)
    if signum is not None:
        return signal.Signals(signum).name
    return "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else f"exit {exc}"


async def serve_lab(nodes: int, gateway: bool, workdir: str | None) -> None:
    """Run a lab until interrupted, after printing how to reach each node."""
    from ..lab import Lab

    async with Lab(nodes=nodes, gateway=gateway, workdir=workdir) as lab:
        print(f"nepi-ng lab: {nodes} nodes{' behind a gateway' if gateway else ''}, "
              f"files in {lab.workdir}")
        print(f"  ssh_config:  {lab.ssh_config}\n  known_hosts: {lab.known_hosts}\n"
              f"  client key:  {lab.client_key}")
        for node in [*([lab.gateway] if lab.gateway else []), *lab.nodes]:
            print(f"  {node.name:8} ssh -F {lab.ssh_config} {node.name}")
        print("Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
