"""The OpenSSH options of the ``ssh`` apssh runs on nodes: one source for both.

Two modes run OpenSSH's ``ssh`` rather than asyncssh: a chain's nodes
(``apssh.chain``: each node's ``ssh`` to the next) and TakTuk's connector
(``apssh.taktukline``: the ``ssh`` its relays run). Both build their command
lines from here, so that they agree on:

- the host-key policy: ours (``verify``, ``accept-new``, ``off``, and ``no``,
  the ssh config's ``StrictHostKeyChecking no``) as OpenSSH's
  ``StrictHostKeyChecking`` (``STRICT_HOST_KEY_CHECKING``; ``hostkeys.CONFIG_POLICIES``
  reads it back), ``off`` also reading and writing no known_hosts file at all;
- the algorithms: ours first (AES-GCM with AES-NI, curve25519: what
  ``sshoptions`` gives asyncssh), OpenSSH's own defaults still allowed after them
  (``^``, OpenSSH 8.2 and later);
- batch mode (no prompt), quiet logs and the connection timeout.
"""

from __future__ import annotations

from collections.abc import Sequence

from .sshoptions import ENCRYPTION_ALGS, KEX_ALGS

__all__ = ["STRICT_HOST_KEY_CHECKING", "algorithm_options", "batch_options",
           "host_key_options", "strict_host_key_checking"]

#: each of our host-key policies -> OpenSSH's ``StrictHostKeyChecking``
STRICT_HOST_KEY_CHECKING = {"verify": "yes", "accept-new": "accept-new", "no": "no",
                            "off": "no"}


def strict_host_key_checking(policy: str) -> str:
    """OpenSSH's ``StrictHostKeyChecking`` for our ``policy``; ``ValueError`` for a
    policy we do not have."""
    try:
        return STRICT_HOST_KEY_CHECKING[policy]
    except KeyError:
        raise ValueError(f"host key policy: expected one of "
                         f"{', '.join(STRICT_HOST_KEY_CHECKING)}, got {policy!r}") from None


def host_key_options(policy: str | None, known_hosts: Sequence[str] = ()) -> list[str]:
    """``-o`` options for the host-key ``policy`` (None: the ssh config's) and the
    ``known_hosts`` files (none: ssh's own). ``off`` checks and records nothing:
    no known_hosts file, the user's or the system's, is read or written."""
    options = []
    if policy is not None:
        options += ["-o", f"StrictHostKeyChecking={strict_host_key_checking(policy)}"]
    if policy == "off":
        options += ["-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null"]
    elif known_hosts:
        options += ["-o", f"UserKnownHostsFile={' '.join(known_hosts)}",
                    "-o", "GlobalKnownHostsFile=/dev/null"]
    return options


def algorithm_options() -> list[str]:
    """``-o`` options putting our key exchange and ciphers first, OpenSSH's own
    defaults after them."""
    return ["-o", f"KexAlgorithms={KEX_ALGS}", "-o", f"Ciphers={ENCRYPTION_ALGS}"]


def batch_options(timeout: float) -> list[str]:
    """``-o`` options for an ``ssh`` nobody watches: no prompt, errors only in its
    log, a connection given up after ``timeout`` seconds (at least one)."""
    return ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={max(1, round(timeout))}"]
