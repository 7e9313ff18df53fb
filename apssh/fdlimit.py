"""Open files: each direct ssh connection holds one file descriptor.

A process starts with a soft limit on open files (often 1,024) below its hard
limit; a process that may open thousands of connections raises it to the hard
limit: the command-line tools at start, the library at the first connection of a
process (once). A run that cannot fit even then is refused before it starts
(``check_room``), with what to do, instead of failing hosts one by one with "too
many open files".
"""

from __future__ import annotations

import contextlib

#: descriptors kept for everything but connections: standard streams, the event
#: loop, key and known_hosts files, output files being written, a few sshd probes
FDS_MARGIN = 64

_raised = False


def raise_soft_limit() -> float:
    """Raise the soft limit on open files to the hard limit (when the system lets
    us); the soft limit now (``math.inf`` when there is none)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        # some systems cap the soft limit below an infinite hard one: then it stays
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return float("inf") if soft == resource.RLIM_INFINITY else float(soft)


def raise_once() -> None:
    """``raise_soft_limit()`` the first time it is called in this process (the
    first connection); nothing afterwards."""
    global _raised
    if not _raised:
        _raised = True
        raise_soft_limit()


def check_room(connections: int) -> str | None:
    """None when ``connections`` open at once fit under this process's limit on open
    files (raised to the hard limit first); else one line saying what to do."""
    soft = raise_soft_limit()
    needed = connections + FDS_MARGIN
    if needed <= soft:
        return None
    room = max(1, int(soft) - FDS_MARGIN)
    return (f"{connections} connections at once need about {needed} open files, and this "
            f"process may open {int(soft)}: use -w {room} (at most {room} hosts at once), "
            f"or raise the limit (ulimit -n {needed}, as root)")
