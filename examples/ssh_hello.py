"""Hello, nodes: a small ssh scenario, runnable against any sshd you can reach.

    .venv/bin/python examples/ssh_hello.py HOST [HOST...] --port 22 --key ~/.ssh/id_ed25519 \\
        --known-hosts ~/.ssh/known_hosts

Each host reports its name (captured), then a deferred command uses it, then a
small file is pushed and pulled back; the listing of the run is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from apssh import (
    Capture,
    Deferred,
    HostFormatter,
    Pull,
    Push,
    Run,
    SshJob,
    SshNode,
    Variables,
    close_ssh_in_scheduler,
)
from asynciojobs import Scheduler, Sequence


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hosts", nargs="+")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--key", action="append", default=None)
    parser.add_argument("--known-hosts", default=None)
    args = parser.parse_args()
    formatter = HostFormatter(verbose=False)
    extra = {"known_hosts": args.known_hosts} if args.known_hosts else {}
    scheduler = Scheduler(critical=False)
    workdir = Path(tempfile.mkdtemp(prefix="ssh-hello-"))
    payload = workdir / "payload.txt"
    payload.write_text("hello from the client\n")
    for index, host in enumerate(args.hosts):
        node = SshNode(host, port=args.port, keys=args.key, formatter=formatter, **extra)
        env = Variables()
        remote = f"/tmp/ssh-hello-{workdir.name}-{index}.txt"
        Sequence(
            SshJob(node, command=Run("hostname", capture=Capture("name", env)),
                   label=f"name of {host}"),
            SshJob(node, command=Run(Deferred("echo I am {{name}}, known as " + host, env)),
                   label="deferred"),
            SshJob(node, commands=[Push(str(payload), remote),
                                   Pull(remote, str(workdir / f"back-{index}.txt")),
                                   Run(f"rm -f {remote}")], label="round trip"),
            scheduler=scheduler,
        )
    ok = scheduler.run()
    scheduler.list()
    close_ssh_in_scheduler(scheduler)
    back = sorted(p.name for p in workdir.glob("back-*.txt"))
    print(f"files back: {back}")
    return 0 if ok and len(back) == len(args.hosts) else 1


if __name__ == "__main__":
    sys.exit(main())
