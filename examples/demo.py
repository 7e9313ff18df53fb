"""The demo: an r2lab-style experiment on the embedded lab, over real SSH.

    ./dev demo                  # or: .venv/bin/python examples/demo.py [output-dir]

A lab of three nodes behind a gateway starts on loopback. The experiment then
prepares the nodes in parallel, picks a port on fit01 (its value is captured),
starts a server there (a forever job) and, as soon as the server says it
listens (a readiness, ``server.when(...)``: no retry loop in the client), a
client on fit02 that talks to it on the port the server printed; it then pulls
the client's results back, and prints the listing of the run, with where its
graph (svg) and results are. The run is kept in a record (``<output-dir>/records``:
run.json, every command's output, the graph and a timeline; ``nepi-ng report`` reads
it).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from apssh import Capture, Deferred, Pull, Run, RunString, SshJob, Variables
from apssh.formatters import TimeHostFormatter
from apssh.lab import Lab
from asynciojobs import Scheduler, Sequence
from asynciojobs.record import Record

PREPARE = """#!/bin/sh
# what an image load and a driver setup would be on real nodes
mkdir -p results
echo "$1 prepared with $(python3 --version)"
"""

SERVER = """
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("server listening on", sys.argv[1], flush=True)
while True:
    conn, _ = sock.accept()
    with conn:
        data = conn.recv(1024)
        conn.sendall(b"pong " + data)
"""

CLIENT = """#!/bin/sh
# ping the server (started only once it listens: no retry needed)
python3 - "$1" <<'EOF' > results/measures.txt
import socket, sys, time
for done in range(5):
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
        start = time.perf_counter()
        s.sendall(f"ping {done}".encode())
        reply = s.recv(1024).decode()
        print(f"{reply} in {1e6 * (time.perf_counter() - start):.0f} us")
EOF
echo "client done: $(wc -l < results/measures.txt) measures"
"""

PICK_PORT = ("python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0));"
             " print(s.getsockname()[1])'")


def experiment(lab: Lab, outdir: Path) -> Scheduler:
    """The scenario, as one would write it for R2lab."""
    formatter = TimeHostFormatter(verbose=False)
    gateway = lab.ssh_node("gateway", formatter=formatter)
    fit01, fit02, fit03 = (lab.ssh_node(name, gateway=gateway, formatter=formatter)
                           for name in ("fit01", "fit02", "fit03"))
    env = Variables()
    scheduler = Scheduler(label="demo", timeout=30, critical=False)
    prepare = Scheduler(
        *(SshJob(node, command=RunString(PREPARE, node.hostname, remote_name="prepare.sh"),
                 label=f"prepare {node.hostname}")
          for node in (fit01, fit02, fit03)),
        label="prepare nodes", scheduler=scheduler)
    port = SshJob(fit01, command=Run(PICK_PORT, capture=Capture("port", env)),
                  label="pick a port", required=prepare, scheduler=scheduler)
    server = SshJob(fit01, command=RunString(Deferred("#!/usr/bin/env python3\n" + SERVER, env),
                                             Deferred("{{port}}", env), remote_name="server.py"),
                    label="server on fit01", forever=True, required=port, scheduler=scheduler)
    # the client starts when the server prints its line, with the port it printed
    ready = server.when(r"server listening on (?P<server_port>\d+)", timeout=30, variables=env)
    Sequence(
        SshJob(fit02, command=RunString(CLIENT, Deferred("{{server_port}}", env)),
               label="client on fit02"),
        SshJob(fit02, command=Pull("results/measures.txt", str(outdir / "measures.txt")),
               label="pull results"),
        required=ready, scheduler=scheduler)
    return scheduler


async def main(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    async with Lab(nodes=3, gateway=True) as lab:
        print(f"lab: 3 nodes behind a gateway, in {lab.workdir} (ssh -F {lab.ssh_config} fit01)")
        scheduler = experiment(lab, outdir)
        print("---------- the scenario")
        scheduler.list()
        print("---------- running it")
        record = Record(outdir / "records")
        ok = await scheduler.co_orchestrate(record=record)
        print(f"---------- after the run: {scheduler.why()}")
        scheduler.list()
        for job in scheduler.iterate_jobs():
            await job.node.close()  # type: ignore[attr-defined]
    dotfile = outdir / "demo.dot"
    scheduler.export_as_dotfile(dotfile, show_outcome=True)
    if shutil.which("dot"):
        print(f"graph:   {scheduler.export_as_svgfile(outdir / 'demo', show_outcome=True)}")
    else:
        print(f"graph:   {dotfile} (install graphviz - apt-get install graphviz - for the svg)")
    print(f"results: {outdir / 'measures.txt'}")
    print(f"record:  {record.path} (nepi-ng report {record.path}; "
          f"timeline: {record.drawings.get('timeline')})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))))
