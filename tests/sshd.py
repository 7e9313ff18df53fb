"""A real OpenSSH sshd on loopback for the tests: throwaway keys, its own config.

One daemon listens on up to 16 addresses 127.0.0.x (distinct hosts for the
client) on a free port. Host and client keys are generated here; a known_hosts
file and an ssh_config snippet are written so that clients keep host-key checking
on. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SFTP_SERVER_CANDIDATES = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                          "/usr/libexec/sftp-server")
PLAIN_USER = "nepitest"
#: a user whose login shell writes on stderr before it runs anything (as an rc file may)
NOISY_USER = "nepinoisy"
NOISY_LINE = "rc: hello from the login shell"


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def sshd_version(sshd: str) -> tuple[int, int]:
    out = subprocess.run([sshd, "-V"], capture_output=True, text=True, check=False)
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def ensure_plain_user() -> str | None:
    """A non-root user with /bin/sh, created when running as root; None otherwise."""
    try:
        pwd.getpwnam(PLAIN_USER)
        return PLAIN_USER
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return None
    # a "*" password: no password login, but not a locked account (sshd refuses those)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", PLAIN_USER], check=True)
    return PLAIN_USER


def ensure_noisy_user() -> str | None:
    """A non-root user whose login shell prints ``NOISY_LINE`` on stderr, then runs
    /bin/sh; created when running as root, None otherwise."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return None
    home = Path("/home") / NOISY_USER
    shell = home / "noisy-shell"
    try:
        pwd.getpwnam(NOISY_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-d", str(home), "-s", str(shell), "-p", "*",
                        NOISY_USER], check=True)
    home.chmod(0o755)
    shell.write_text(f'#!/bin/sh\necho "{NOISY_LINE}" >&2\nexec /bin/sh "$@"\n')
    shell.chmod(0o755)
    return NOISY_USER


@dataclass
class Keys:
    """The throwaway keys shared by every daemon of a test session."""

    workdir: Path
    host_key: Path = field(init=False)
    host_pub: str = field(init=False)
    client_key: Path = field(init=False)
    client_pub: str = field(init=False)
    authorized_keys: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self.host_key = self.workdir / "host_ed25519"
        self.host_pub = keygen(self.host_key, "nepi-ng test host")
        self.client_key = self.workdir / "client_ed25519"
        self.client_pub = keygen(self.client_key, "nepi-ng test client")
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text(self.client_pub + "\n")
        self.authorized_keys.chmod(0o644)


class Sshd:
    """One sshd process listening on ``addresses`` at ``port``."""

    def __init__(self, keys: Keys, name: str, addresses: list[str], *,
                 max_sessions: int = 10, max_startups: str = "10:30:100",
                 port: int | None = None) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            raise RuntimeError("sshd not found: install openssh-server")
        self.keys = keys
        self.name = name
        self.addresses = addresses
        self.port = port or free_port(addresses[0])
        self.dir = keys.workdir / name
        self.dir.mkdir(exist_ok=True)
        self.dir.chmod(0o755)
        sftp = next((p for p in SFTP_SERVER_CANDIDATES if Path(p).exists()), "internal-sftp")
        lines = [f"Port {self.port}"]
        lines += [f"ListenAddress {address}" for address in addresses]
        lines += [
            f"HostKey {keys.host_key}",
            f"PidFile {self.dir}/sshd.pid",
            f"AuthorizedKeysFile {keys.authorized_keys}",
            "PermitRootLogin yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "StrictModes no",
            "UsePAM no",
            "AllowTcpForwarding yes",
            "SetEnv SHLVL=1",  # keeps Debian's bash from sourcing heavy rc files
            f"Subsystem sftp {sftp}",
            f"MaxSessions {max_sessions}",
            f"MaxStartups {max_startups}",
            "LogLevel INFO",
        ]
        if sshd_version(sshd) >= (9, 8):
            lines.append("PerSourcePenalties no")
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join(lines) + "\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.log: list[str] = []
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(self.config)],
                                     stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        listening: set[str] = set()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                found = re.search(r"Server listening on (\S+) port", line)
                if found:
                    listening.add(found.group(1))
                    if listening >= set(addresses):
                        ready.set()
            ready.set()  # sshd died: let the waiter see it

        self.drainer = threading.Thread(target=drain, daemon=True)
        self.drainer.start()
        if not ready.wait(20) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"sshd {name} did not start: {self.log[-5:]}")

    def known_hosts_lines(self) -> list[str]:
        key = " ".join(self.keys.host_pub.split()[:2])
        if self.port == 22:  # how OpenSSH records (and looks up) the default port
            return [f"{address} {key}" for address in self.addresses]
        return [f"[{address}]:{self.port} {key}" for address in self.addresses]

    def descendants(self) -> list[int]:
        """The pids of every process this daemon started (sessions, commands), deepest last."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(0), []):
                found.append(child)
                todo.append(child)
        return found

    def sessions(self) -> list[int]:
        """The per-connection sshd processes (not the listener, not the commands)."""
        found = []
        for pid in self.descendants():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip().startswith("sshd"):
                    found.append(pid)
            except OSError:
                continue
        return found

    def signal_sessions(self, sig: int) -> None:
        """Send ``sig`` to every per-connection sshd process (SIGSTOP freezes them)."""
        for pid in self.sessions():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill_all(self) -> None:
        """SIGKILL the daemon and everything it started: a machine that goes away."""
        for pid in [self.proc.pid, *self.descendants()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped process dies only once continued
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.stop()

    def stop(self) -> None:
        # the per-connection children hold the log pipe open: stop them too
        subprocess.run(["pkill", "-TERM", "-P", str(self.proc.pid)], check=False)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.drainer.join(10)
        if self.proc.stderr is not None and not self.drainer.is_alive():
            self.proc.stderr.close()


@dataclass
class Lab:
    """What the tests need: the daemons, the client key, known_hosts and ssh_config."""

    keys: Keys
    main: Sshd
    gateway: Sshd
    known_hosts: Path
    ssh_config: Path
    plain_user: str | None

    @property
    def port(self) -> int:
        return self.main.port

    @property
    def hosts(self) -> list[str]:
        return self.main.addresses

    def stop(self) -> None:
        self.main.stop()
        self.gateway.stop()


def dedicated_sshd(lab: Lab, name: str, address: str, known_hosts: Path) -> Sshd:
    """A daemon of its own for a test that kills or freezes it (never a lab daemon),
    on ``address`` with the lab's keys; ``known_hosts`` gets the lab's lines and its."""
    daemon = Sshd(lab.keys, name, [address])
    known_hosts.write_text(lab.known_hosts.read_text()
                           + "\n".join(daemon.known_hosts_lines()) + "\n")
    return daemon


def start_lab(workdir: Path) -> Lab:
    keys = Keys(workdir)
    main = Sshd(keys, "main", [f"127.0.0.{i}" for i in range(1, 17)])
    gateway = Sshd(keys, "gateway", ["127.0.1.1"])
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("\n".join(main.known_hosts_lines() + gateway.known_hosts_lines())
                           + "\n")
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        f"Host node*\n  HostName 127.0.0.1\n  Port {main.port}\n  User root\n"
        f"  IdentityFile {keys.client_key}\n  UserKnownHostsFile {known_hosts}\n"
    )
    return Lab(keys, main, gateway, known_hosts, ssh_config, ensure_plain_user())


# ----- fixtures for the fault tests (imported by their modules)
@pytest.fixture(name="daemons")
def daemons_fixture(lab: Lab, tmp_path: Path) -> Iterator[Callable[[str, str], tuple[Sshd, Path]]]:
    """Start dedicated daemons (``daemons(name, address) -> (sshd, known_hosts)``);
    thawed and killed after the test, with what they ran."""
    started: list[Sshd] = []

    def start(name: str, address: str) -> tuple[Sshd, Path]:
        known = tmp_path / f"known_hosts.{name}"
        daemon = dedicated_sshd(lab, f"{name}-{os.getpid()}", address, known)
        started.append(daemon)
        return daemon, known

    yield start
    for daemon in started:
        daemon.kill_all()


@pytest.fixture(name="small_mount")
def small_mount_fixture(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount(options) -> directory``: a 1 MB tmpfs (unmounted after the test)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,{options}", "tmpfs",
                        str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def freeze_sftp(daemon: Sshd) -> None:
    """SIGSTOP the SFTP servers ``daemon`` runs (thawed by ``kill_all``)."""
    for pid in daemon.descendants():
        with contextlib.suppress(OSError):
            if "sftp" in Path(f"/proc/{pid}/comm").read_text():
                os.kill(pid, signal.SIGSTOP)
