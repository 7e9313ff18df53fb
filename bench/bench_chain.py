#!/usr/bin/env python3
"""One big file to N hosts: the chain (``appush --chain``) against the star
(``appush``), parallel ``scp`` and TakTuk's broadcast, in one run.

    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_chain.py            # 200 MiB
    flock /tmp/nepi-bench.lock .venv/bin/python bench/bench_chain.py --mib 50 --hosts 5

The hosts are sshd daemons on loopback (16 addresses each, port 22, 127.0.150.x and
127.0.151.x), all on this machine: each host writes into a directory of its own.
For each contender and N: the wall time, and the bytes the client sent over TCP
(ssh framing included), counted by the kernel: every TCP socket towards the hosts
is sampled (``ss -tnp``, every 50 ms) to know whether a process of the client's
tree owns it (the client, the ``ssh``/``scp`` it runs, TakTuk's root and its
connectors) or a process the hosts' sshd started (the chain's hops, TakTuk's
relays); its byte count is read when it is destroyed (``ss -tinE``). TakTuk runs
its documented equivalent of ``broadcast put`` (``broadcast exec [ cat > ... ]``,
``broadcast input file``, ``broadcast input close``), so that each host writes its
own directory ($TAKTUK_RANK); it is skipped, with a line, when not installed.
On one machine the hosts' CPU is the client's CPU too: the wall times say how the
contenders share two cores, not how they would run on a network; the bytes are
what the client's uplink would carry.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _timing import tree  # noqa: E402
from sshd import Keys, Sshd  # noqa: E402

BIN = REPO / ".venv" / "bin"
MiB = 1024 * 1024


class Counter:
    """Bytes the client's tree sent to ``addresses`` port 22, counted by the kernel."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = set(addresses)
        self.owned: set[tuple[str, str]] = set()   # (local, peer) of the client's sockets
        self.final: dict[tuple[str, str], int] = {}
        self.marker = socket.socket()
        self.marker.bind(("127.0.0.1", 0))
        self.marker.listen()
        self.marker_seen = threading.Event()
        self.events = subprocess.Popen(["stdbuf", "-oL", "ss", "-tinHE"],
                                       stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.events.stdout is not None
        header: list[str] | None = None
        marker = f"127.0.0.1:{self.marker.getsockname()[1]}"
        for line in self.events.stdout:
            if not line[:1].isspace():
                header = line.split()
                continue
            if header is None or len(header) < 5:
                continue
            local, peer = header[3], header[4]
            if marker in (local, peer):
                self.marker_seen.set()
            acked = re.search(r"bytes_acked:(\d+)", line)
            if acked and peer.rsplit(":", 1)[0] in self.addresses:
                self.final[(local, peer)] = int(acked.group(1))
            header = None

    def watch(self, pid: int, done: threading.Event) -> None:
        """Until ``done``: note the sockets towards the hosts owned by ``pid``'s tree."""
        while not done.wait(0.05):
            pids = set(tree(pid))
            out = subprocess.run(["ss", "-tnpH", "dport", "=", ":22"], capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                words = line.split()
                if len(words) < 6 or words[4].rsplit(":", 1)[0] not in self.addresses:
                    continue
                owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
                if owners & pids:
                    self.owned.add((words[3], words[4]))

    def flush(self) -> None:
        """Wait until the kernel reported every socket closed so far (one of ours,
        closed last, came through)."""
        self.marker_seen.clear()
        with socket.create_connection(self.marker.getsockname()):
            conn, _ = self.marker.accept()
            conn.close()
        if not self.marker_seen.wait(10):
            print("ss -E reported nothing within 10 s: the bytes may be short", flush=True)

    def sent(self) -> int:
        return sum(self.final.get(key, 0) for key in self.owned)

    def reset(self) -> None:
        self.owned.clear()
        self.final.clear()

    def stop(self) -> None:
        self.events.terminate()
        self.events.wait()
        self.marker.close()


def measure(counter: Counter, command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, client bytes, and stderr's last line of ``command``."""
    counter.reset()
    done = threading.Event()
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        watcher = threading.Thread(target=counter.watch, args=(proc.pid, done), daemon=True)
        watcher.start()
        proc.wait()
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        counter.flush()
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    status = f"exit {proc.returncode}" + (f": {lines[-1]}" if lines and proc.returncode else "")
    return wall, counter.sent(), status


def check(dest: Path, hosts: int, name: str, size: int, digest: str, first: int) -> str:
    """'' when every host has the file (size), and the last one its sha256."""
    copies = [dest / str(rank + first) / name for rank in range(hosts)]
    missing = [str(c) for c in copies if not c.is_file() or c.stat().st_size != size]
    if missing:
        return f"{len(missing)} copies missing or short"
    with open(copies[-1], "rb") as file:
        if hashlib.file_digest(file, "sha256").hexdigest() != digest:
            return "sha256 differs"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="file size (default 200 MiB)")
    parser.add_argument("--hosts", type=int, action="append",
                        help="how many hosts (repeatable; default 1, 5, 10, 20)")
    args = parser.parse_args()
    counts = args.hosts or [1, 5, 10, 20]
    work = Path(tempfile.mkdtemp(prefix="nepi-ng-bench-chain-"))
    keys = Keys(work / "keys")
    needed = max(counts)
    daemons = [Sshd(keys, f"chain{d}", [f"127.0.{150 + d}.{i}" for i in range(1, 17)],
                    port=22) for d in range((needed + 15) // 16)]
    addresses = [a for d in daemons for a in d.addresses][:needed]
    known = work / "known_hosts"
    known.write_text("".join(f"{line}\n" for d in daemons for line in d.known_hosts_lines()))
    agent_sock = work / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(agent_sock)], capture_output=True,
                         text=True, check=True).stdout
    agent_pid = int(re.search(r"SSH_AGENT_PID=(\d+)", out).group(1))  # type: ignore[union-attr]
    env = dict(os.environ, SSH_AUTH_SOCK=str(agent_sock))
    subprocess.run(["ssh-add", "-q", str(keys.client_key)], env=env, check=True)
    counter = Counter(addresses)
    source = work / "big.bin"
    with open(source, "wb") as file:
        for _ in range(args.mib):
            file.write(os.urandom(MiB))
    size = source.stat().st_size
    with open(source, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    ssh_opts = ["-F", "none", "-o", f"UserKnownHostsFile={known}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "Ciphers=aes128-gcm@openssh.com", "-o", "KexAlgorithms=curve25519-sha256"]
    taktuk = shutil.which("taktuk")
    if taktuk is None:
        print("taktuk is not installed (apt-get install taktuk): its column is skipped",
              flush=True)
    print(f"{args.mib} MiB to N hosts ({len(daemons)} sshd on loopback, one 2-core machine)",
          flush=True)
    print("| N | contender | client MiB sent | x file | wall s | check |")
    print("|---|---|---|---|---|---|")
    try:
        for hosts in counts:
            targets = addresses[:hosts]
            dest = work / "dest"
            common = [str(BIN / "appush"), "-F", "none", "--known-hosts", str(known),
                      "-k", str(keys.client_key), "-l", "root", "-t", " ".join(targets)]
            scp = " & ".join(
                shlex.join(["scp", "-q", *ssh_opts, "-i", str(keys.client_key), str(source),
                            f"root@{host}:{dest}/{rank}/"])
                for rank, host in enumerate(targets)) + " & wait"
            rows: dict[str, tuple[list[str], int]] = {
                "chain": ([*common, "--chain",
                           *[f"--hop-option={word}" for word in ssh_opts[:6]],
                           str(source), f"@:{dest}/{{rank}}/"], 0),
                "appush (star)": ([*common, str(source), f"@:{dest}/{{rank}}/"], 0),
                "parallel scp": (["sh", "-c", scp], 0),
            }
            if taktuk is not None:
                connector = shlex.join(["ssh", *ssh_opts, "-i", str(keys.client_key)])
                machines = [word for host in targets for word in ("-m", host)]
                rows["taktuk broadcast"] = ([
                    taktuk, "-l", "root", "-c", connector, *machines,
                    "broadcast", "exec", "[", f"cat > {dest}/$TAKTUK_RANK/{source.name}", "]",
                    ";", "broadcast", "input", "file", "[", str(source), "]",
                    ";", "broadcast", "input", "close"], 1)
            for name, (command, first) in rows.items():
                shutil.rmtree(dest, ignore_errors=True)
                for rank in range(hosts + 1):
                    (dest / str(rank)).mkdir(parents=True)
                wall, sent, status = measure(counter, command, env)
                verdict = check(dest, hosts, source.name, size, digest, first) or (
                    "ok" if status == "exit 0" else status)
                print(f"| {hosts} | {name} | {sent / MiB:.0f} | {sent / size:.2f} "
                      f"| {wall:.1f} | {verdict} |", flush=True)
    finally:
        counter.stop()
        os.kill(agent_pid, 15)
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
