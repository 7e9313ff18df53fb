"""Big files in a chain: the client sends each file once, the nodes pass it on.

``Chain(nodes, localpaths, remotepath)`` (what ``Put(..., chain=True)`` and
``appush --chain`` use) streams each file over one ssh session to the first
node; that node stores it and, while it arrives, forwards it with its own
``ssh`` to the second node, which forwards it to the third, and so on. The
client's upload is one copy of the file, whatever the number of nodes; every
byte travels ssh-encrypted, node to node.

How a node relays (a POSIX shell script, ``RELAY``, given on the command line:
nothing is installed on the nodes): ``tee -p`` writes the file under a temporary
name and feeds ``ssh next-node <the same relay>``; once the stream ended, the node
checks the sha256 of what it wrote against the client's (computed before
sending) and renames it into place only if they are equal. Each node prints one
status line (``apssh-chain RANK ok|failed|starved|lost ...``); the lines travel
back up the chain to the client through the same sessions.

Failures, without breaking the chain for the others:

- a node whose own copy fails (a missing directory, a full disk) still forwards
  the stream (``tee -p`` goes on), and says why;
- a node the previous one cannot reach (down, refused, authentication), or that
  dies mid-stream: the previous node, once its own copy is verified, sends its
  file from disk to the node after the failed one, and the chain goes on from
  there (the previous node reports the failed one: ``lost``);
- the first node fails: the client starts the chain again at the next node
  (the only case where the client sends the file twice).

The nodes need to reach each other over ssh (``ssh``, ``sh``, ``tee`` and
``sha256sum`` from GNU coreutils; ``openssl`` hashes faster, when there), and to
authenticate to each other: by default the client's agent is forwarded along the
chain (the client needs an agent holding a key the nodes accept, ``ssh-add``),
else the nodes' own keys. Host keys
between nodes follow the first node's policy (``verify``: the nodes'
known_hosts must hold each other's keys). See docs/chain.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from ._asyncssh import asyncssh
from .errors import reason
from .opensshargs import algorithm_options, batch_options, host_key_options
from .sshproxy import SshProxy

__all__ = ["RELAY", "Chain", "hop_options"]

#: how much the client reads and sends at a time
CHUNK = 256 * 1024
#: the status lines' prefix
MARK = "apssh-chain"
#: why every node still waiting fails when the file changed under the client
CHANGED = "the local file changed while it was sent"

#: the relay, run on each node as ``sh -c RELAY apssh-chain RELAY RANK SIZE SHA256
#: DEST BASENAME NOPT OPT... [RANK USER HOST PORT DEST]...``: stores its input at DEST
#: (DEST/BASENAME when DEST is a directory) and forwards it to the next node,
#: which runs the same relay; exit 0: the nodes after it are served (or failed
#: for good), 1: they still need the file (the caller skips the next one)
RELAY = r"""trap '' PIPE
S=$1 me=$2 size=$3 sum=$4 dest0=$5 base=$6 nopt=$7
shift 7
q() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }
opts= i=0
while [ "$i" -lt "$nopt" ]; do opts="$opts $(q "$1")"; shift; i=$((i+1)); done
dest=$dest0
if [ -d "$dest" ]; then dest="${dest%/}/$base"; fi
tmp="$dest.apssh-chain.$$"
e="${TMPDIR:-/tmp}/apssh-chain.$$"
trap 'rm -f "$tmp" "$e.tee" "$e.hop" "$e.st"' EXIT
trap 'exit 1' HUP INT TERM
say() { echo "apssh-chain $*"; }
last() { if [ -s "$1" ]; then tail -n 1 "$1" | tr -d '\r'; else echo "$2"; fi; }
digest() {
  if command -v openssl > /dev/null; then openssl dgst -sha256 -r; else sha256sum; fi
}
check() {
  why=$(last "$e.tee" "")
  if [ -z "$why" ] && [ ! -f "$tmp" ]; then why="cannot write $tmp"; fi
  if [ -z "$why" ]; then
    have=$(digest < "$tmp"); have=${have%% *}
    if [ "$have" = "$sum" ]; then
      if mv -f "$tmp" "$dest" 2> "$e.tee"; then
        echo good > "$e.st"; say "$me" ok "$have"; return
      fi
      why=$(last "$e.tee" "cannot rename to $dest")
    else
      got=$(wc -c < "$tmp" | tr -dc 0-9)
      rm -f "$tmp"; echo starved > "$e.st"
      if [ "$got" != "$size" ]; then say "$me" starved "received $got of $size bytes"
      else say "$me" starved "sha256 $have instead of $sum"; fi
      return
    fi
  fi
  rm -f "$tmp"; echo failed > "$e.st"; say "$me" failed "$why"
}
hop() {
  r=$1 u=$2 h=$3 p=$4 d=$5; shift 5
  rest=; for w in "$@"; do rest="$rest $(q "$w")"; done
  cmd="sh -c $(q "$S") apssh-chain $(q "$S") $r $size $sum"
  cmd="$cmd $(q "$d") $(q "$base") $nopt$opts$rest"
  eval "ssh$opts -p $(q "$p") -l $(q "$u") -- $(q "$h") $(q "$cmd")" 2> "$e.hop"
}
exec 3>&1
if [ $# -gt 0 ]; then
  { tee -p "$tmp" 2> "$e.tee"; exec >&-; check >&3; } | hop "$@"
  s=$?
else
  tee -p "$tmp" 2> "$e.tee" > /dev/null
  check; s=0
fi
st=$(cat "$e.st" 2>/dev/null)
while [ "$s" -ne 0 ] && [ $# -gt 0 ]; do
  say "$1" lost "$me" "$(last "$e.hop" "exit status $s")"
  shift 5
  if [ "$st" != good ]; then exit 1; fi
  if [ $# -eq 0 ]; then break; fi
  hop "$@" < "$dest"; s=$?
done
if [ "$st" = starved ]; then exit 1; fi
exit 0
"""

def hop_options(policy: str = "verify", *, agent_forwarding: bool = True,
                timeout: float = 30, keepalive: int = 10,
                extra: Sequence[str] = ()) -> list[str]:
    """The options of the ``ssh`` each node runs to the next: ``extra`` first (the
    first value ssh reads wins), then no terminal, no prompt (``BatchMode``), the
    host-key ``policy`` (ours: ``verify``, ``accept-new``, ``off``, or the ssh
    config's ``no``), the agent forwarded on, a connect timeout, keep-alives (a
    frozen node is given up after 3 x ``keepalive`` seconds), our fast algorithms
    first: what ``apssh.opensshargs`` gives TakTuk's connector too."""
    return [*extra, "-T", "-x", *batch_options(timeout), *host_key_options(policy),
            "-o", f"ServerAliveInterval={keepalive}", "-o", "ServerAliveCountMax=3",
            *algorithm_options(),
            "-o", f"ForwardAgent={'yes' if agent_forwarding else 'no'}"]


class _HeadProxy(SshProxy):
    """The first node of a chain, on a connection of its own that forwards the
    client's agent (asyncssh's ``agent_forwarding``)."""

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "agent_forwarding": True}


def _head_proxy(node: SshProxy) -> SshProxy:
    """A connection to ``node`` like its own, with the agent forwarded."""
    policy = node.host_key_checker.policy
    return _HeadProxy(node.hostname, username=node.username, gateway=node.gateway,
                      keys=node.keys or None, known_hosts=node.known_hosts, port=node.port,
                      formatter=node.formatter, timeout=node.timeout,
                      host_key_policy=None if policy == "no" else policy,
                      ssh_config=node.ssh_config)


def _file_digest(path: str) -> tuple[str, int]:
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return digest, os.path.getsize(path)


class Chain:
    """Send ``localpaths`` (one file or several; regular files) to ``remotepath``
    (a directory, or a file name for a single file) on every node of ``nodes``
    (``SshProxy``/``SshNode``), the file leaving the client once (see the module's
    docstring); ``remotepath`` may also be a list: each node's own, by rank.

    ``ssh_options``: words given first to the nodes' ``ssh`` (``-i KEY``, ``-o
    UserKnownHostsFile=...``, ``-F none``...); ``agent_forwarding``: forward the
    client's agent along the chain (default), else the nodes use their own keys;
    ``keepalive``: seconds between the nodes' keep-alives; ``progress(bytes)``:
    called after each chunk the client sent. ``bytes_sent`` counts the client's
    bytes of file data; ``run()`` returns, for each node (by rank), None when it
    got every file, else why not (one line).
    """

    def __init__(self, nodes: Sequence[SshProxy], localpaths: str | os.PathLike[str]
                 | Sequence[str | os.PathLike[str]],
                 remotepath: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = ".",
                 *, ssh_options: Sequence[str] = (), agent_forwarding: bool = True,
                 keepalive: int = 10, progress: Callable[[int], None] | None = None) -> None:
        self.nodes = list(nodes)
        for node in self.nodes:
            if not isinstance(node, SshProxy):
                raise ValueError(f"chain: {node!r} is not an ssh node")
        paths = ([localpaths] if isinstance(localpaths, str | os.PathLike) else list(localpaths))
        self.localpaths = [os.fspath(path) for path in paths]
        for path in self.localpaths:
            if not os.path.isfile(path):
                raise ValueError(f"chain: {path}: not a regular file (a chain sends files)")
        #: each node's destination, by rank
        self.remotepaths = ([os.fspath(remotepath)] * len(self.nodes)
                            if isinstance(remotepath, str | os.PathLike)
                            else [os.fspath(path) for path in remotepath])
        if len(self.remotepaths) != len(self.nodes):
            raise ValueError(f"chain: {len(self.remotepaths)} remote paths for "
                             f"{len(self.nodes)} nodes")
        self.ssh_options = list(ssh_options)
        self.agent_forwarding = agent_forwarding
        self.keepalive = keepalive
        self.progress = progress
        #: bytes of file data the client sent (1x each file when no first node fails)
        self.bytes_sent = 0
        #: each node's outcome so far: None (got all files so far) or why not
        self.outcomes: dict[int, str | None] = {}
        self._futures: dict[int, asyncio.Future[str | None]] = {}
        self._task: asyncio.Task[list[str | None]] | None = None
        self._waiting = 0

    def __repr__(self) -> str:
        where = self.remotepaths[0] if self.remotepaths else "nowhere"
        return (f"<Chain {len(self.localpaths)} file(s) to {where} "
                f"on {len(self.nodes)} node(s)>")

    # ----- as one task, or one outcome per node (Put)
    def _future(self, rank: int) -> asyncio.Future[str | None]:
        if rank not in self._futures:
            self._futures[rank] = asyncio.get_running_loop().create_future()
        return self._futures[rank]

    async def run(self) -> list[str | None]:
        """Send every file along the chain; returns each node's outcome, by rank."""
        self.outcomes = dict.fromkeys(range(len(self.nodes)))
        try:
            for path in self.localpaths:
                await self._send(path)
        finally:
            for rank in range(len(self.nodes)):
                future = self._future(rank)
                if not future.done():
                    future.set_result(self.outcomes[rank])
        return [self.outcomes[rank] for rank in range(len(self.nodes))]

    async def outcome(self, rank: int) -> str | None:
        """The outcome of the node of index ``rank``, once known (a node is done as
        soon as it verified the last file); starts the chain at the first call.
        When every caller waiting here is cancelled, the chain is stopped."""
        future = self._future(rank)
        if self._task is None:
            self._task = asyncio.ensure_future(self.run())
            self._task.add_done_callback(lambda task: task.cancelled() or task.exception())
        task = self._task
        self._waiting += 1
        try:
            pending: list[asyncio.Future[Any]] = [future, task]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._waiting -= 1
            if self._waiting == 0 and not task.done():  # nobody waits: stop it
                task.cancel()
                await asyncio.wait([task])
            raise
        self._waiting -= 1
        if self._waiting == 0:  # the last one: the chain is closing its session
            await asyncio.wait([task])
        if future.done():
            return future.result()
        failure = None if task.cancelled() else task.exception()
        return reason(failure) if failure is not None else "stopped"

    # ----- one file
    def _options(self) -> list[str]:
        first = self.nodes[0] if self.nodes else None
        policy = first.host_key_checker.policy if first is not None else "verify"
        timeout = first.timeout if first is not None else 30
        return hop_options(policy, agent_forwarding=self.agent_forwarding, timeout=timeout,
                           keepalive=self.keepalive, extra=self.ssh_options)

    async def _send(self, path: str) -> None:
        sha, size = await asyncio.to_thread(_file_digest, path)
        name = os.path.basename(path)
        lines: dict[int, dict[str, str]] = {rank: {} for rank in range(len(self.nodes))}
        todo = [rank for rank in range(len(self.nodes)) if self.outcomes[rank] is None]
        while todo:
            head, rest = todo[0], todo[1:]
            why = await self._feed(head, rest, path, name, sha, size, lines)
            if why is None:  # the relay of the head served every node after it
                break
            if why == CHANGED:  # sending it again would not help
                for rank in todo:
                    lines[rank].setdefault("failed", CHANGED)
                break
            lines[head].setdefault("lost", why)
            # the nodes not served yet, but for those that failed for good
            todo = [rank for rank in rest if not {"ok", "failed"} & lines[rank].keys()]
        for rank, said in lines.items():
            if self.outcomes[rank] is not None:
                continue
            if "ok" in said:
                if said["ok"] != sha:
                    self._fail(rank, path, f"sha256 {said['ok']} instead of {sha}")
                continue
            why = (said.get("failed") or said.get("lost") or said.get("starved")
                   or "no news from the chain")
            self._fail(rank, path, why)

    def _fail(self, rank: int, path: str, why: str) -> None:
        self.outcomes[rank] = f"{path}: {why}"
        future = self._future(rank)
        if not future.done():
            future.set_result(self.outcomes[rank])

    def _heard(self, line: str, lines: dict[int, dict[str, str]], last: bool) -> None:
        """One status line from the chain: ``apssh-chain RANK WHAT DETAILS``."""
        words = line.split(" ", 3)
        if len(words) < 4 or words[0] != MARK or not words[1].isdigit():
            return
        rank, what, details = int(words[1]), words[2], words[3].strip()
        if rank not in lines:
            return
        if what == "lost":  # "SENDER_RANK why": the node SENDER could not serve it
            sender, _, why = details.partition(" ")
            who = self._name(int(sender)) if sender.isdigit() else sender
            details = f"not reached from {who}: {why}"
        lines[rank][what] = details
        if what == "ok" and last and self.outcomes[rank] is None:
            future = self._future(rank)
            if not future.done():
                future.set_result(None)

    def _name(self, rank: int) -> str:
        node = self.nodes[rank] if 0 <= rank < len(self.nodes) else None
        return node.hostname if node is not None else f"rank {rank}"

    def _command(self, head: int, rest: list[int], name: str, sha: str, size: int) -> str:
        options = self._options()
        words = [RELAY, str(head), str(size), sha, self.remotepaths[head], name,
                 str(len(options)), *options]
        for rank in rest:
            node = self.nodes[rank]
            words += [str(rank), node.username, node.hostname, str(node.port),
                      self.remotepaths[rank]]
        return f"sh -c {shlex.quote(RELAY)} {MARK} " + " ".join(map(shlex.quote, words))

    async def _feed(self, head: int, rest: list[int], path: str, name: str, sha: str,
                    size: int, lines: dict[int, dict[str, str]]) -> str | None:
        """Stream ``path`` into the relay on node ``head``; None when it served the
        nodes of ``rest``, else why the head failed (its own line says more)."""
        last = path == self.localpaths[-1]
        node = self.nodes[head]
        forward = self.agent_forwarding and bool(os.environ.get("SSH_AUTH_SOCK"))
        proxy = _head_proxy(node) if forward else node
        try:
            conn = await proxy.connect_lazy()
            process = await conn.create_process(self._command(head, rest, name, sha, size),
                                                encoding=None)
        except Exception as exc:  # ours (connect), asyncssh's (the session refused)
            await self._close(proxy, node)
            return reason(exc)

        async def listen() -> None:
            with contextlib.suppress(OSError, asyncssh.Error):  # lost: what came is kept
                while line := await process.stdout.readline():
                    self._heard(line.decode(errors="replace"), lines, last)

        async def errors_of() -> bytes:
            with contextlib.suppress(OSError, asyncssh.Error):
                return await process.stderr.read()
            return b""

        listener = asyncio.ensure_future(listen())
        errors = asyncio.ensure_future(errors_of())
        sent = hashlib.sha256()
        complete = False
        try:
            try:
                with open(path, "rb") as file:
                    while chunk := await asyncio.to_thread(file.read, CHUNK):
                        sent.update(chunk)
                        process.stdin.write(chunk)
                        self.bytes_sent += len(chunk)
                        await process.stdin.drain()
                        if self.progress is not None:
                            self.progress(self.bytes_sent)
                process.stdin.write_eof()
                complete = True
            except (OSError, asyncssh.Error) as exc:
                if isinstance(exc, OSError) and exc.filename == path:
                    raise  # the local file: no node can get it
                # the head went away mid-stream: its status says what it can
            with contextlib.suppress(OSError, asyncssh.Error):
                await process.wait_closed()
            await listener
            stderr = await errors
        finally:
            listener.cancel()
            errors.cancel()
            process.close()
            await self._close(proxy, node)
        if complete and sent.hexdigest() != sha and "ok" not in lines[head]:
            return CHANGED
        if process.exit_status == 0:
            return None
        if process.exit_status is None:
            return "connection lost while sending"
        text = stderr.decode(errors="replace").strip().splitlines()
        return text[-1] if text else f"exit status {process.exit_status}"

    @staticmethod
    async def _close(proxy: SshProxy, node: SshProxy) -> None:
        if proxy is not node:
            await proxy.close()
