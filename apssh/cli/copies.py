"""The ``appush`` and ``appull`` commands: copies to and from many hosts (SFTP)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .targets import Target
from .tools import Invocation, Tool, run_console

if TYPE_CHECKING:
    from ..pernode import NodeValues


def _expand_path(template: str, node: NodeValues) -> str:
    """``template`` with the node's values filled (``apssh.pernode``); ``{user}`` is
    the user followed by ``@``, as in apssh 0.27. Each value is a checked name that
    cannot take the path out of the template's directory."""
    from ..pernode import expand_path

    values = node.as_dict()
    values["user"] = f"{node.user}@" if node.user else ""
    return expand_path(template, values)


def _remote(path: str) -> bool:
    return path.startswith("@:")


def remote_path(path: str) -> str:
    """``@:path`` -> ``path``; a bare ``@:`` is the remote home."""
    return path[2:] or "."


class _Copy(Tool):
    copies = True

    def parser(self) -> argparse.ArgumentParser:
        parser = super().parser()
        parser.add_argument("paths", nargs="*", help=self.paths_help)
        return parser

    paths_help = ""


class Appush(_Copy):
    """Copy local files onto many hosts at once (SFTP): ``appush -t HOSTS FILE... @:DEST``."""

    prog = "appush"
    paths_help = "local files, then the remote destination: @:path (a bare @: is the home)"

    def parser(self) -> argparse.ArgumentParser:
        parser = super().parser()
        parser.add_argument(
            "--chain", action="store_true",
            help="send each file once: the first host forwards it to the second, and so on "
                 "(files only; the hosts ssh to each other: docs/chain.md)")
        parser.add_argument(
            "--hop-option", dest="hop_options", action="append", default=[], metavar="WORD",
            help="with --chain: a word for the hosts' own ssh (--hop-option=-ikey); "
                 "repeatable")
        return parser

    def check(self, args: argparse.Namespace) -> None:
        super().check(args)
        if args.hop_options and not args.chain:
            raise UsageError("--hop-option only makes sense with --chain")
        if args.chain and getattr(args, "taktuk", False):
            raise UsageError("--chain and --taktuk are two ways to broadcast: choose one")
        if args.chain:  # one copy for all the hosts: per-host options have no meaning
            for option, given in (("--record", args.record), ("--monitor", args.monitor),
                                  ("-w", args.window)):
                if given:
                    raise UsageError(f"{option} does not go with --chain (one copy, "
                                     "forwarded from host to host)")
        if args.chain and args.paths:
            for source in args.paths[:-1]:
                if "{" in source:
                    raise UsageError(f"--chain sends the same files to every host: {source}")
                if os.path.isdir(source):
                    raise UsageError(f"--chain sends files, and {source} is a directory")
        if len(args.paths) < 2 and not (args.dry_run or args.list_targets):
            raise UsageError("expected local files, then a remote destination @:path")
        if args.paths:
            *sources, destination = args.paths
            if not _remote(destination):
                raise UsageError(f"{destination} is not remote - should start with @:")
            for source in sources:
                if _remote(source):
                    raise UsageError(f"{source} is remote - local files come first")

    def command(self, args: argparse.Namespace, target: Target, node: NodeValues) -> Any:
        from ..filecopy import Push

        *sources, destination = args.paths
        local = [_expand_path(s, node) for s in sources]
        missing = [p for p in local if not os.path.exists(p)]
        if missing:
            raise UsageError(f"{missing[0]}: no such local file")
        return Push(local, remote_path(_expand_path(destination, node)),
                    recurse=True)

    def execute(self, run: Invocation) -> int:
        """With ``--chain``: one chain over the hosts, in their order (``apssh.chain``)."""
        if not run.args.chain:
            return super().execute(run)
        from asynciojobs.loop import run_in_thread_loop

        from ..chain import Chain
        from .errors import FAILED, stop_code
        from .report import Outcome

        pushes = [run.commands[target] for target in run.targets]
        proxies = [run.proxies[target] for target in run.targets]
        chain = Chain(proxies, pushes[0].sources, [push.destination for push in pushes],
                      ssh_options=run.args.hop_options)

        async def everything() -> list[str | None]:
            try:
                return await chain.run()
            finally:
                for proxy in proxies:  # the nodes, then their gateways
                    while proxy is not None:
                        await proxy.close()
                        proxy = proxy.gateway

        try:
            outcomes = [Outcome(target, 0) if why is None else Outcome(target, FAILED, why)
                        for target, why in zip(run.targets, run_in_thread_loop(everything()),
                                               strict=True)]
        except (KeyboardInterrupt, SystemExit) as exc:
            print(f"{self.prog}: interrupted: the chain was stopped", file=sys.stderr)
            if run.progress is not None:
                run.progress.clear()
            return stop_code(exc)
        return self.conclude(run, outcomes, None)


class Appull(_Copy):
    """Copy files from many hosts at once (SFTP): ``appull -t HOSTS @:FILE... LOCAL``;
    use ``{host}`` in LOCAL to keep each host's copy apart."""

    prog = "appull"
    paths_help = "remote files (@:path), then the local destination (may use {host})"

    def check(self, args: argparse.Namespace) -> None:
        super().check(args)
        if len(args.paths) < 2 and not (args.dry_run or args.list_targets):
            raise UsageError("expected remote files @:path, then a local destination")
        if args.paths:
            *sources, destination = args.paths
            for source in sources:
                if not _remote(source):
                    raise UsageError(f"{source} is not remote - should start with @:")
            if _remote(destination):
                raise UsageError(f"{destination} is remote - the destination must be local")

    def command(self, args: argparse.Namespace, target: Target, node: NodeValues) -> Any:
        from ..filecopy import Pull

        *sources, destination = args.paths
        remote = [remote_path(_expand_path(s, node)) for s in sources]
        local = _expand_path(destination, node)
        # several files, or a name ending with '/': a directory; the Pull makes it
        # when it runs (else its parent), and removes it again if it fails
        if len(remote) > 1 and not local.endswith("/"):
            local += "/"
        return Pull(remote, local, recurse=True, mkdir=True)


def appush_main() -> None:
    """The ``appush`` console script."""
    run_console(Appush())


def appull_main() -> None:
    """The ``appull`` console script."""
    run_console(Appull())

