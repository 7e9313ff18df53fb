"""The ``apssh``, ``appush`` and ``appull`` commands: one command or copy on many hosts."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asynciojobs._version import __version__

from ..fdlimit import check_room
from .errors import (
    BAD_INPUT,
    FAILED,
    PIPE_CLOSED,
    UsageError,
    bad_input,
    error_line,
    stop_code,
)
from .options import Parser, add_common_options, seconds
from .pipe import PipeWatch, drop_stream
from .targets import Target, excluded, expand, parse_gateway


@dataclass
class Invocation:
    """One invocation's run: its options and targets, and what is made for them."""

    args: argparse.Namespace
    targets: list[Target]
    #: what a closed standard output stops
    pipe: PipeWatch
    progress: Any = None
    proxies: dict[Target, Any] = field(default_factory=dict)
    commands: dict[Target, Any] = field(default_factory=dict)
    #: the output directory (-o, -d), and whether this invocation made it
    run_dir: Path | None = None
    made_run_dir: bool = False

    def forget_run_dir(self) -> None:
        """Remove the output directory this invocation made, while still empty."""
        if self.made_run_dir and self.run_dir is not None:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()


#: how many hosts make the progress line worth showing (on a terminal)
PROGRESS_FROM = 10


def connections_at_once(proxies: Any, window: int | None) -> int:
    """How many connections (one file descriptor each) may be open at once: a host
    reached directly holds one while its job runs (``window`` of them at most),
    a gateway one until the end; a host behind a gateway rides on its gateway's."""
    proxies = list(proxies)
    gateways = set()
    for proxy in proxies:
        while proxy.gateway is not None and proxy.gateway not in gateways:
            proxy = proxy.gateway
            gateways.add(proxy)
    direct = sum(1 for p in proxies if p.gateway is None and p not in gateways)
    return (min(direct, window) if window else direct) + len(gateways)


def _shared_files(targets: list[Target]) -> tuple[Target, Target] | None:
    """Two targets whose per-host files (``<host>``, ``<host>.err``) would be the same
    file: one host with two users or ports, or hosts ``a`` and ``a.err``."""
    owners: dict[str, Target] = {}
    for target in targets:
        for name in (target.host, f"{target.host}.err"):
            if name in owners and owners[name] is not target:
                return owners[name], target
            owners[name] = target
    return None


class Tool:
    """What the three commands share: options, targets, nodes, the run and the report."""

    prog = "apssh"
    #: copies fail with 1, commands with their exit code
    copies = False
    #: set by the console scripts: the process ends with the run, so the connections
    #: (whose commands are over) are dropped by the exit instead of closed one by one
    exit_after = False

    def __init__(self) -> None:
        #: the nodes made for the targets by the last ``main()``, in target order
        #: (``SshProxy``: ``hostname``, ``username``, ``port``, ``gateway``), as in
        #: 0.27; empty until they are made (and with ``-n``, which makes none)
        self.proxies: list[Any] = []

    def parser(self) -> argparse.ArgumentParser:
        """The command's argparse parser (each tool adds its own options)."""
        parser = Parser(prog=self.prog, description=self.description())
        add_common_options(parser)
        parser.add_argument("-V", "--version", action="version",
                            version=f"{self.prog} version {__version__}")
        return parser

    def description(self) -> str:
        """What ``--help`` says first: the class docstring, without reST quotes."""
        return (self.__doc__ or "").strip().replace("``", "")

    # ----- the entry point
    def main(self, *argv: str) -> int:
        """Run with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

        Bad input (options, targets, names, keys, local files) is found before
        anything runs: one line, exit 2. Then each host's outcome is reported,
        and the exit code follows the table in ``errors.py``. Standard output or
        error closed (``| head``) ends it quietly with 141.
        """
        self.argv = [self.prog, *(argv or sys.argv[1:])]
        try:
            return self._main(self.argv[1:])
        except BrokenPipeError:  # what is left to say has nowhere to go
            drop_stream(1)
            drop_stream(2)
            return PIPE_CLOSED

    def _main(self, args_list: list[str]) -> int:
        self.proxies = []
        try:
            args = self.parser().parse_args(args_list)
        except SystemExit as exc:  # --help, --version, or argparse's own errors
            return int(exc.code or 0)
        try:
            self.check(args)
            targets, excludes, dropped = self.targets(args)
            if args.dry_run:
                return self.dry_run(targets, excludes, dropped)
            if not targets:
                raise UsageError("no target left: nothing to do")
            if args.taktuk:  # TakTuk's tree instead of our own connections
                from .taktuk import taktuk_main
                return taktuk_main(self, args, targets)
            run = self.prepare_run(args, targets)
            self.proxies = [run.proxies[target] for target in targets]
        except BrokenPipeError:  # an OSError, but no bad input: see main()
            raise
        except BAD_INPUT as exc:
            return bad_input(self.prog, exc)
        if args.list_targets:
            from .nodes import describe

            for target in targets:
                print(describe(run.proxies[target]))
            return 0
        return self.execute(run)

    def check(self, args: argparse.Namespace) -> None:
        """Reject what cannot work before touching the network."""
        if not args.targets:
            raise UsageError("it makes no sense to run without any target (-t)")
        if args.mark and not (args.out_dir or args.date_time):
            raise UsageError("-m/--mark needs -o/--out-dir or -d/--date-time")
        if args.port is not None and not 0 < args.port < 65536:
            raise UsageError(f"-p/--port {args.port} is not a port number")
        for key in args.keys:
            if not Path(key).expanduser().is_file():
                raise UsageError(f"-k {key}: no such file")
        if args.ssh_config and args.ssh_config != "none" and not Path(
                args.ssh_config).expanduser().is_file():
            raise UsageError(f"-F {args.ssh_config}: no such file")

    def targets(self, args: argparse.Namespace) -> tuple[list[Target], list[Target], int]:
        """The selected targets, the exclusions (as given), how many they left out."""
        gateway = (parse_gateway(args.gateway, user=args.login, port=args.port)
                   if args.gateway else None)
        targets = expand(args.targets, user=args.login, port=args.port, gateway=gateway)
        excludes = expand(args.excludes)
        if args.debug:
            for target in targets:
                print(f"{self.prog}: using target {target}", file=sys.stderr)
        selected = [t for t in targets if not excluded(t, excludes)]
        return selected, excludes, len(targets) - len(selected)

    def dry_run(self, targets: list[Target], excludes: list[Target], dropped: int) -> int:
        """``-n``: print the exclusions and the selected targets, as 0.27 does."""
        print(f"========== {len(excludes)} excludes found:")
        for target in excludes:
            print(target)
        print(f"========== {len(targets)} hostnames selected ({dropped} excluded):")
        for target in targets:
            print(target)
        return 0

    # ----- per tool
    def command(self, args: argparse.Namespace, target: Target, node: Any) -> Any:
        """The command to run on ``target``; ``node``: its per-node values
        (``apssh.pernode.NodeValues``: host, user, port, rank)."""
        raise NotImplementedError

    def prepare(self, args: argparse.Namespace) -> None:
        """Read what the commands need once (stdin, scripts...); may raise UsageError."""

    # ----- the run
    def invocation(self, args: argparse.Namespace, targets: list[Target]) -> Invocation:
        """A run of ``targets``: its closed-pipe watch, and a progress line when
        there are many hosts and stderr is a terminal (not with ``-v``)."""
        from .output import Progress

        progress = (Progress(len(targets), sys.stderr)
                    if len(targets) >= PROGRESS_FROM and sys.stderr.isatty()
                    and not args.verbose else None)
        return Invocation(args, targets, PipeWatch(self.prog), progress)

    def prepare_run(self, args: argparse.Namespace, targets: list[Target]) -> Invocation:
        """Everything the run needs, made before it starts: keys, nodes, each host's
        command, the output directory. Raises on bad input; nothing has run."""
        self.prepare(args)
        from ..sshproxy import DEFAULT
        from .nodes import build_proxies

        keys = self.keys(args)
        run = self.invocation(args, targets)
        try:
            live = self.live_formatter(run)
            run.proxies = build_proxies(
                targets, formatter_for=lambda target: self.formatter_for(args, target, live),
                gateway_formatter=live, keys=keys, known_hosts=args.known_hosts or DEFAULT,
                host_key_policy=args.host_key_policy,
                ssh_config=None if args.ssh_config == "none" else args.ssh_config or DEFAULT,
                timeout=args.timeout)
            if args.list_targets:
                run.forget_run_dir()
                return run
            too_many = check_room(connections_at_once(run.proxies.values(), args.window))
            if too_many:
                raise UsageError(too_many)
            keyless = [t for t in targets if not run.proxies[t].keys]
            if keyless and not args.ok_if_no_key:
                raise UsageError(f"could not find any usable key for {keyless[0]} "
                                 "(see -k, or -K to go ahead)")
            from ..pernode import NodeValues

            run.commands = {target: self.command(args, target, NodeValues(
                target.host, run.proxies[target].username or "", run.proxies[target].port,
                rank)) for rank, target in enumerate(targets)}
        except BaseException:  # bad input: nothing ran, nothing is left
            run.forget_run_dir()
            raise
        return run

    def keys(self, args: argparse.Namespace) -> list[Any] | None:
        """The -k keys, else the agent's and the default ones; None when there are
        none (then each node looks at its ssh config's IdentityFile)."""
        from ..keys import load_private_keys

        return load_private_keys(args.keys or None, args.verbose or args.debug) or None

    def live_formatter(self, run: Invocation) -> Any:
        """The formatter the nodes share: per-host files, or lines on the terminal."""
        from .output import LiveFormatter, OutDirFormatter

        args, progress = run.args, run.progress
        if args.out_dir or args.date_time:
            if args.out_dir:
                run.run_dir = Path(args.out_dir)
                run.made_run_dir = not run.run_dir.exists()
            else:
                from asynciojobs.record import new_run_dir
                run.run_dir, run.made_run_dir = new_run_dir(), True
            shared = _shared_files(run.targets)
            if shared:
                raise UsageError(f"-o/-d: {shared[0]} and {shared[1]} would write "
                                 "into the same files")
            return OutDirFormatter(run.run_dir, verbose=args.verbose)
        live = {"progress": progress, "verbose": args.verbose, "on_stdout_closed": run.pipe.closed}
        if args.raw_format:
            return LiveFormatter("{linenl}", **live)
        if args.time_colon_format:
            return LiveFormatter("{time}:{host}:{linenl}", **live)
        if args.format:
            return LiveFormatter(args.format, **live)
        return LiveFormatter(**live)

    def formatter_for(self, args: argparse.Namespace, target: Target, live: Any) -> Any:
        """The formatter of one target's node (the shared one, unless gathering)."""
        return live

    def watchers(self, scheduler: Any, args: argparse.Namespace) -> Any:
        """Subscribe ``--monitor`` (on stderr: stdout carries the output); the Record
        of ``--record`` (None without it)."""
        if args.monitor:
            from asynciojobs.monitor import Monitor
            scheduler.subscribe(Monitor(sys.stderr), output=True)
        if not args.record:
            return None
        from asynciojobs.record import Record
        keeper = Record(args.record, scenario=shlex.join(self.argv) + "\n",
                        scenario_name="command.txt", argv=self.argv)
        print(f"{self.prog}: record in {keeper.path}", file=sys.stderr)
        return keeper

    def execute(self, run: Invocation) -> int:
        """Run every host's job; report; the exit code."""
        import asyncio

        from asynciojobs import Scheduler
        from asynciojobs.loop import run_in_thread_loop

        from ..topology import co_close_ssh_in_scheduler
        from .hostjob import HostJob
        from .report import outcome_of

        args = run.args
        gateways = {proxy.gateway for proxy in run.proxies.values()}
        jobs = {target: HostJob(run.proxies[target], critical=False,
                                verbose=args.verbose or args.debug,
                                command=run.commands[target], progress=run.progress,
                                close_when_done=run.proxies[target] not in gateways)
                for target in run.targets}
        # the scheduler's verbose lines would go to stdout, mixed with the output
        scheduler = Scheduler(*jobs.values(), jobs_window=args.window or None)
        keeper = self.watchers(scheduler, args)

        async def everything() -> None:
            run.pipe.watch(asyncio.current_task())
            try:
                await scheduler.co_orchestrate(record=keeper)
            finally:
                if self.exit_after:
                    for proxy in run.proxies.values():  # the nodes, then their gateways
                        while proxy is not None:
                            proxy.abort()
                            proxy = proxy.gateway
                else:
                    await co_close_ssh_in_scheduler(scheduler)

        stopped: int | None = None
        try:
            run_in_thread_loop(everything())
        except (KeyboardInterrupt, SystemExit, asyncio.CancelledError) as exc:
            stopped = PIPE_CLOSED if run.pipe.is_closed else stop_code(exc)
        return self.conclude(run, [outcome_of(target, job) for target, job in jobs.items()],
                             stopped)

    def conclude(self, run: Invocation, outcomes: list[Any], stopped: int | None) -> int:
        """After the hosts' jobs (direct or TakTuk mode): clear the progress line, the
        gathered view, each host's outcome and the summary, the ``-m`` marks and
        the run's directory; the exit code (``stopped``'s when the run was)."""
        from .report import exit_code, report, write_marks

        if run.progress is not None:
            run.progress.clear()
        self.finish(run.args, outcomes)
        try:
            report(self.prog, outcomes)
        except BrokenPipeError:  # stderr closed: the marks are still written
            drop_stream(2)
            stopped = stopped or PIPE_CLOSED
        code = stopped if stopped is not None else exit_code(outcomes, copies=self.copies)
        if run.run_dir is not None:
            if run.args.mark:
                try:
                    write_marks(run.run_dir, outcomes)
                except OSError as exc:
                    error_line(self.prog, exc)
                    code = code or FAILED
            try:
                print(run.run_dir, flush=True)
            except BrokenPipeError:
                drop_stream()
        return code

    def finish(self, args: argparse.Namespace, outcomes: list[Any]) -> None:
        """Print what is printed at the end (the gathered view)."""


class Apssh(Tool):
    """Run a command on many hosts at once, over ssh."""

    prog = "apssh"

    def parser(self) -> argparse.ArgumentParser:
        parser = super().parser()
        add = parser.add_argument
        add("-b", "--gather", action="store_true",
            help="gathered output: each distinct output once, under its hosts (like clush -b)")
        add("--diff", action="store_true",
            help="each host's output against the most common one, as a unified diff "
                 "(like clush --diff)")
        add("--args", dest="args_file", metavar="FILE",
            help="each host's own arguments: its line 'host: words', else the rank-th "
                 "line; appended to the command, or where it says {args}")
        add("--command-timeout", type=seconds, metavar="SECONDS",
            help="stop the command (killed on the host) after this long")
        add("--sudo", nargs="?", const=True, default=None, metavar="USER",
            help="run the command through sudo -n (as root, or as USER); a sudo that "
                 "would ask for a password fails the host with one line")
        add("-I", "--stdin", action="store_true",
            help="read standard input once and feed it to the command on every host")
        add("-s", "--script", action="store_true",
            help="the first word is a local script (or a script body) to upload and run")
        add("-i", "--includes", action="append", default=[],
            help="with -s: files copied next to the script; repeatable")
        add("commands", nargs=argparse.REMAINDER, help="the command to run remotely")
        return parser

    def check(self, args: argparse.Namespace) -> None:
        super().check(args)
        if args.commands[:1] == ["--"]:  # '--sudo -- cmd': the command after '--'
            args.commands = args.commands[1:]
        if not args.commands and not (args.dry_run or args.list_targets):
            raise UsageError("no command to run")
        if args.includes and not args.script:
            raise UsageError("-i/--includes only makes sense with -s/--script")
        missing = [p for p in args.includes if not Path(p).is_file()]
        if missing:
            raise UsageError(f"-i {missing[0]}: no such file")
        if args.args_file and not Path(args.args_file).is_file():
            raise UsageError(f"--args {args.args_file}: no such file")

    def prepare(self, args: argparse.Namespace) -> None:
        from .perhost import read_args

        self.stdin = sys.stdin.buffer.read() if args.stdin else b""
        self.gathered: dict[Target, Any] = {}
        self.args_file = read_args(args.args_file)

    def formatter_for(self, args: argparse.Namespace, target: Target, live: Any) -> Any:
        if not (args.gather or args.diff):
            return live
        from .output import GatherFormatter, OutDirFormatter

        files = live if isinstance(live, OutDirFormatter) else None
        formatter = self.gathered[target] = GatherFormatter(live, files=files)
        return formatter

    def command(self, args: argparse.Namespace, target: Target, node: Any) -> Any:
        from .perhost import host_command

        return host_command(args, node, self.args_file, stdin=self.stdin)

    def finish(self, args: argparse.Namespace, outcomes: list[Any]) -> None:
        if args.gather or args.diff:
            from .output import print_gathered
            from .perhost import print_diff

            outputs = [(o.target, "".join(self.gathered[o.target].chunks))
                       for o in outcomes if o.target in self.gathered and not o.unreachable]
            if args.gather:
                print_gathered(outputs)
            if args.diff:
                print_diff(outputs)


def run_console(tool: Tool) -> None:
    """Run ``tool`` as a console script: its exit code is the process's."""
    tool.exit_after = True
    sys.exit(tool.main())


def apssh_main() -> None:
    """The ``apssh`` console script."""
    run_console(Apssh())
