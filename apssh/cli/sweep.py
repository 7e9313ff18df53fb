"""``nepi-ng sweep``: a scenario run once per combination of parameters, resumably.

    nepi-ng sweep scenario.yaml.j2 -P rate=10,20 -P proto=olsr,batman --repeat 3 \\
        --store DIR [--resume]

The combinations (the cartesian product of the ``-P`` lists, ``--repeat`` times)
are kept in ``DIR/sweep.sqlite`` (``asynciojobs.sweep.Sweeper``): each is claimed,
run, then marked done or failed, so that an interrupted sweep goes on where it
stopped (``--resume``) and several processes can share one sweep. Each
combination's run is a record under ``DIR/runs`` (its parameters among its
variables). The scenario is rendered with ``-D`` values and the combination's;
nodes written the same way in every rendering are built once, so their
connections are kept across the whole sweep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import FAILED, OK, USAGE, stop_code
from .options import count, seconds

__all__ = ["add_sweep_parser", "sweep_main"]


def add_sweep_parser(commands: Any) -> None:
    """The ``sweep`` subcommand's options."""
    sweep = commands.add_parser("sweep", help="run a scenario for every combination of "
                                "parameters, resumably")
    sweep.add_argument("scenario", help="the scenario file (.yaml.j2: Jinja2)")
    sweep.add_argument("-P", "--parameter", action="append", default=[],
                       metavar="NAME=V1,V2", help="a parameter and its values (repeatable)")
    sweep.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                       help="a Jinja2 variable, the same for every combination")
    sweep.add_argument("--repeat", type=count, default=1, help="run each combination N times")
    sweep.add_argument("--store", required=True, metavar="DIR",
                       help="where the sweep's state and records are kept")
    sweep.add_argument("--resume", action="store_true",
                       help="go on with the sweep DIR holds (-P adds combinations)")
    sweep.add_argument("--timeout", type=seconds, help="bound each run, in seconds")


def sweep_main(args: argparse.Namespace, defines: dict[str, str]) -> int:
    """Run the sweep: 0 when every combination is done, 1 when some failed, 2 for
    bad input (one line), 128+N after a signal (the running combination goes back
    to todo)."""
    from asynciojobs.sweep import Sweeper, parse_parameters

    store = Path(args.store)
    try:
        parameters = parse_parameters(args.parameter) if args.parameter else None
    except ValueError as exc:
        print(f"nepi-ng sweep: {exc}", file=sys.stderr)
        return USAGE
    held = (store / "sweep.sqlite").exists()
    if held and not args.resume:
        print(f"nepi-ng sweep: {store} holds a sweep already: --resume to go on with it",
              file=sys.stderr)
        return USAGE
    if parameters is None and not held:
        print("nepi-ng sweep: no -P NAME=V1,V2 and no sweep to resume", file=sys.stderr)
        return USAGE
    try:
        sweeper = Sweeper(store, parameters, repeat=args.repeat)
    except ValueError as exc:
        print(f"nepi-ng sweep: {exc}", file=sys.stderr)
        return USAGE
    with sweeper:
        return _drain(sweeper, args, defines, store)


def _drain(sweeper: Any, args: argparse.Namespace, defines: dict[str, str],
           store: Path) -> int:
    from asynciojobs.loop import run_in_thread_loop
    from asynciojobs.record import Record

    from ..loader import ScenarioError, YamlLoader

    cache: dict[str, Any] = {}
    try:
        for combination in sweeper:
            shown = " ".join(f"{name}={value}" for name, value in combination.items())
            loader = YamlLoader(args.scenario)
            loader.node_cache = cache
            try:
                scheduler = loader.load({**defines, **combination})
                loader.check()
            except ScenarioError as exc:  # the same for every combination: stop
                print(exc, file=sys.stderr)
                sweeper.cancel(combination)  # still to do, once the scenario is fixed
                return USAGE
            with sweeper.running(combination, on_error="failed"):
                scheduler.timeout = args.timeout
                scheduler.critical = False
                record = Record(store / "runs", scenario=loader.rendered,
                                scenario_name="scenario.yaml", variables=loader.variables,
                                argv=args.argv)
                ok = run_in_thread_loop(scheduler.co_orchestrate(record=record))
                counts = sweeper.stats()
                print(f"nepi-ng sweep: [{counts['done'] + counts['failed'] + 1}/"
                      f"{sum(counts.values())}] {shown}: {'ok' if ok else 'FAILED'} "
                      f"({record.path})", file=sys.stderr)
                if not ok:  # marks it failed, with this reason
                    raise RuntimeError(f"run failed: {scheduler.why()} ({record.path})")
    except (KeyboardInterrupt, SystemExit) as exc:
        print("nepi-ng sweep: interrupted: --resume goes on from here", file=sys.stderr)
        return stop_code(exc)
    finally:
        _close(cache)
    counts = sweeper.stats()
    print(f"nepi-ng sweep: {counts['done']} done, {counts['failed']} failed, "
          f"{counts['todo'] + counts['in progress']} left", file=sys.stderr)
    return FAILED if counts["failed"] else OK


def _close(cache: dict[str, Any]) -> None:
    """Close the nodes the sweep kept open (nodes behind gateways first)."""
    from asynciojobs.loop import run_in_thread_loop

    async def close_all() -> None:
        for node in reversed(list(cache.values())):
            await node.close()

    run_in_thread_loop(close_all())
