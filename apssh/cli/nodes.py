"""SshProxy objects for a list of targets: one per target, gateways shared.

A gateway named by several targets (``gw->a``, ``gw->b``, or ``-g gw``) is one
node, hence one connection carrying all the tunnels, at any depth. As with
OpenSSH, the user is the target's (``user@host``, ``-l``), else the ssh
config's, else the local user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..formatters import Formatter
from ..sshproxy import DEFAULT, SshProxy
from .targets import Target


def build_proxies(targets: list[Target], *, formatter_for: Callable[[Target], Formatter],
                  gateway_formatter: Formatter, **options: Any) -> dict[Target, SshProxy]:
    """``{target: node}``; ``options`` go to every ``SshProxy`` (keys, timeout...);
    gateways get ``gateway_formatter``."""
    made: dict[Target, SshProxy] = {}

    def node(target: Target, formatter: Formatter) -> SshProxy:
        if target not in made:
            gateway = (node(target.gateway, gateway_formatter)
                       if target.gateway is not None else None)
            made[target] = SshProxy(target.host, username=target.user, gateway=gateway,
                                     port=target.port if target.port is not None else DEFAULT,
                                     formatter=formatter, **options)
        return made[target]

    return {target: node(target, formatter_for(target)) for target in targets}


def describe(proxy: SshProxy) -> str:
    """``user@host``, ``:port`` when not 22, behind its gateways: ``u@gw->root@h:2222``."""
    return str(_as_target(proxy))


def _as_target(proxy: SshProxy) -> Target:
    """The target ``proxy`` reaches, its user and port resolved (22 left implicit)."""
    return Target(proxy.hostname, proxy.username,
                  proxy.port if proxy.port != 22 else None,
                  _as_target(proxy.gateway) if proxy.gateway is not None else None)
