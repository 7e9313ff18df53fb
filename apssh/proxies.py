"""SshProxy objects for a list of targets: one per target, gateways shared.

A gateway named by several targets (``gw->a``, ``gw->b``, or ``-g gw``) is one
node, hence one connection carrying all the tunnels, at any depth.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

from .formatters import Formatter
from .sshproxy import DEFAULT, SshProxy
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
    user = proxy.username or getpass.getuser()
    port = f":{proxy.port}" if proxy.port != 22 else ""
    host = f"[{proxy.hostname}]" if ":" in proxy.hostname and port else proxy.hostname
    here = f"{user}@{host}{port}"
    return f"{describe(proxy.gateway)}->{here}" if proxy.gateway is not None else here
