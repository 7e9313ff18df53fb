"""The options the three commands share, parsed by argparse with errors on one line."""

from __future__ import annotations

import argparse
from typing import NoReturn


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, not {text!r}")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, not {text!r}")
    return int(text)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``apssh``, ``appush`` and ``appull``: targets, users, keys, output."""
    add = parser.add_argument
    add("-t", "--target", dest="targets", action="append", default=[],
        help="hosts: a file, a directory (e.g. --mark output) or a list; "
             "[[gwuser@]gw->][user@]host[:port], ranges fit[01-37], exclusions fit[01-09]!fit05;"
             " repeatable")
    add("-x", "--exclude", dest="excludes", action="append", default=[],
        help="hosts to leave out, same syntax as -t; repeatable")
    add("-l", "--login", help="remote user when a target names none "
        "(default: the ssh config's, else the local user)")
    add("-g", "--gateway", help="[user@]host[:port] (or a chain a->b) to go through, "
        "for targets that name no gateway")
    add("-p", "--port", type=int, help="remote port when a target names none (default 22)")
    add("-F", dest="ssh_config", metavar="FILE",
        help="ssh config file, or 'none' (default: ~/.ssh/config)")
    add("--known-hosts", metavar="FILE", help="known_hosts file (default: the ssh config's "
        "UserKnownHostsFile, else ~/.ssh/known_hosts)")
    add("--host-key-policy", choices=("verify", "accept-new", "off"), default=None,
        help="how host keys are checked (default: the ssh config's StrictHostKeyChecking, "
             "else verify)")
    add("-k", "--key", dest="keys", action="append", default=[],
        help="private key file; repeatable; replaces the agent and default keys")
    add("-K", "--ok-if-no-key", action="store_true",
        help="go ahead even when no key is found")
    add("-w", "--window", type=count, default=0,
        help="at most this many hosts at a time (default 0: no cap; handshakes are paced)")
    add("--taktuk", action="store_true",
        help="go through TakTuk's self-deploying tree of relays (apt-get install taktuk): "
             "the client's cost stays flat with many hosts (docs/taktuk.md)")
    add("-c", "--connect-timeout", dest="timeout", type=seconds, default=30.0,
        help="connection timeout in seconds (default 30)")
    add("-L", "--list-targets", action="store_true", help="list the targets and exit")
    add("-n", "--dry-run", action="store_true", help="show the selected hosts and exit")
    add("-r", "--raw-format", action="store_true", help="lines as they are, no host prefix")
    add("-tc", "--time-colon-format", action="store_true",
        help="prefix lines with time:host:")
    add("-f", "--format", help="line format, with {host} {fqdn} {user} {time} {line} {linenl}")
    add("-o", "--out-dir", help="each host's output in OUT_DIR/<host> (stderr in <host>.err)")
    add("-d", "--date-time", action="store_true", help="like -o, in a directory named by date")
    add("-m", "--mark", action="store_true",
        help="with -o/-d: write 0ok/<host> and 1failed/<host>, usable as targets")
    add("--record", metavar="DIR", help="keep this run in a new directory under DIR "
        "(run.json, each host's output, timeline; read it with nepi-ng report)")
    add("--monitor", action="store_true",
        help="a live view of the hosts on stderr (stdout carries the output; plain "
             "lines when stderr is not a terminal)")
    add("-v", "--verbose", action="store_true", help="report connections and steps")
    add("-D", "--debug", action="store_true", help="more details")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


