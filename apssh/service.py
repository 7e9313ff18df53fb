"""Service: commands that drive a systemd transient unit on a node."""

from __future__ import annotations

import shlex
from typing import Any

from .commands import Run
from .deferred import Deferred


class Service:
    """A long-running command run as the systemd unit ``service_id`` on the node."""

    def __init__(self, command: str | Deferred, *, service_id: str, tty: bool = False,
                 systemd_type: str = "simple", environ: dict[str, str] | None = None,
                 stop_if_running: bool = True, verbose: bool = False) -> None:
        self.command = command
        self.service_id = service_id
        self.tty = tty
        self.systemd_type = systemd_type
        self.environ = environ or {}
        self.stop_if_running = stop_if_running
        self.verbose = verbose

    def _start(self, command: str) -> str:
        unit = self.service_id
        setenv = " ".join(f"--setenv {k}={shlex.quote(v)}" for k, v in self.environ.items())
        pty = "--pty" if self.tty else ""
        run = f"systemd-run {pty} {setenv} --unit={unit} --service-type={self.systemd_type} " \
              f"{command}"
        if not self.stop_if_running:
            return run
        return (f"systemctl is-active {unit} >& /dev/null && systemctl stop {unit} ; "
                f"systemctl reset-failed {unit} >& /dev/null ; {run}")

    def start_command(self, label: str | None = None, **kwds: Any) -> Run:
        """The command that (re)starts the service."""
        if isinstance(self.command, Deferred):
            command: Any = self.command.dup_from_string(self._start(self.command.template))
        else:
            command = self._start(self.command)
        if label is None:
            label = f"Service: start {self.service_id}"
        return Run(command, label=label, **kwds)

    def stop_command(self, label: str | None = None, **kwds: Any) -> Run:
        """The command that stops it."""
        return Run(f"systemctl stop {self.service_id}",
                   label=label or f"Service: stop {self.service_id}", **kwds)

    def status_command(self, output: str | None = None, label: str | None = None,
                       **kwds: Any) -> Run:
        """``systemctl status``, into ``output`` if given."""
        redirect = f" > {shlex.quote(output)}" if output else ""
        return Run(f"systemctl status {self.service_id}{redirect}",
                   label=label or f"Service: status {self.service_id}", **kwds)

    def journal_command(self, since: str | None = None, label: str | None = None,
                        **kwds: Any) -> Run:
        """``journalctl`` of the unit, since ``since`` if given."""
        extra = f" --since {shlex.quote(since)}" if since else ""
        return Run(f"journalctl --unit {self.service_id}{extra}",
                   label=label or f"Service: journal {self.service_id}", **kwds)
