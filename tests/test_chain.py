"""Big files in a chain (apssh.chain): the client sends each file once, each node
forwards it to the next with its own ``ssh``, on the real sshd (127.0.0.x, all on
this machine: each node gets a directory of its own) and on the embedded lab."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from sshd import Lab, daemons_fixture  # noqa: F401 (a fixture)
from test_group import closed
from test_ssh_core import node

from apssh.chain import Chain
from apssh.groupcopy import Put

HOSTS = [f"127.0.0.{index}" for index in range(1, 6)]
#: nothing listens there: a node nobody reaches (refused at once, loopback only)
NOWHERE = "127.0.3.1"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def agent(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ssh-agent of the test's own holding the lab's client key: the client's
    agent, which the chain forwards from node to node."""
    sock = tmp_path / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True,
                         text=True, check=True).stdout
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", out).group(1))
    env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
    try:
        subprocess.run(["ssh-add", "-q", str(lab.keys.client_key)], env=env, check=True,
                       capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        os.kill(pid, 15)


def hop_options(lab: Lab, known_hosts: Path | None = None) -> list[str]:
    """What the nodes' ssh needs here: no ssh config of root's, the lab's host keys."""
    return ["-F", "none", "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null"]


def destinations(tmp_path: Path, count: int) -> list[Path]:
    """One directory per node (they all write on this machine)."""
    made = []
    for rank in range(count):
        where = tmp_path / f"node{rank}"
        where.mkdir()
        made.append(where)
    return made


def leftovers(where: list[Path]) -> list[str]:
    return [str(path) for each in where if each.exists() for path in each.iterdir()
            if "apssh-chain" in path.name]


async def test_chain_to_five_nodes_sends_the_file_once(lab, agent, tmp_path):
    source = random_file(tmp_path / "big.bin", 3 * 1024 * 1024 + 17)
    nodes = [node(lab, host) for host in HOSTS]
    where = destinations(tmp_path, 5)
    chain = Chain(nodes, source, [str(each) for each in where],
                  ssh_options=hop_options(lab))
    outcomes = await chain.run()
    await closed(nodes)
    assert outcomes == [None] * 5
    for each in where:
        assert sha(each / "big.bin") == sha(source)
    assert chain.bytes_sent == source.stat().st_size  # 1x, not 5x
    assert leftovers(where) == []


async def test_put_chain_skips_an_unreachable_node_and_a_failing_one(lab, agent, tmp_path):
    source = random_file(tmp_path / "data.bin", 2 * 1024 * 1024)
    hosts = ["127.0.0.1", "127.0.0.2", NOWHERE, "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    nodes = [node(lab, host) for host in hosts]
    where = destinations(tmp_path, len(hosts))
    where[4].rmdir()  # the node of rank 4 cannot store it, but still forwards it
    put = Put(nodes, source, str(tmp_path / "node{rank}" / "copy.bin"),
              chain={"ssh_options": hop_options(lab)})
    results = await put.run(timeout=60)
    await closed(nodes)
    assert [result.state for result in results] == ["ok", "ok", "failed", "ok", "failed", "ok"]
    lost, failed = results[2].reason or "", results[4].reason or ""
    assert "\n" not in lost and "\n" not in failed
    assert "not reached from 127.0.0.2" in lost and "refused" in lost.lower(), lost
    assert "copy.bin" in failed and "No such file or directory" in failed, failed
    for rank in (0, 1, 3, 5):
        assert sha(where[rank] / "copy.bin") == sha(source)
    assert put.chain is not None and put.chain.bytes_sent == source.stat().st_size
    assert put.summary().startswith("4 ok, 2 failed")
    assert leftovers(where) == []


async def test_chain_whose_first_node_is_unreachable_starts_at_the_next(lab, agent, tmp_path):
    source = random_file(tmp_path / "f.bin", 300 * 1024)
    nodes = [node(lab, host, timeout=5) for host in [NOWHERE, *HOSTS[:3]]]
    where = destinations(tmp_path, 4)
    chain = Chain(nodes, source, [str(each) for each in where], ssh_options=hop_options(lab))
    outcomes = await chain.run()
    await closed(nodes)
    assert outcomes[1:] == [None] * 3
    assert outcomes[0] is not None and "refused" in outcomes[0].lower()
    assert chain.bytes_sent == source.stat().st_size  # refused before any byte


async def chain_killing_halfway(lab, known, doomed, nodes, source, where):
    """Run a chain of ``source`` to ``nodes``, killing the ``doomed`` daemon (and what
    it runs) once half of the file is sent; the chain, its outcomes, and the byte
    count at which the kill happened."""
    killed: list[int] = []

    def progress(sent: int) -> None:  # half of it sent: the node goes away
        if sent >= source.stat().st_size // 2 and not killed:
            killed.append(sent)
            doomed.kill_all()

    chain = Chain(nodes, source, [str(each) for each in where],
                  ssh_options=hop_options(lab, known), progress=progress)
    outcomes = await chain.run()
    await closed(nodes)
    return chain, outcomes, killed


async def test_chain_survives_a_node_killed_mid_stream(lab, agent, daemons, tmp_path):
    doomed, known = daemons("chain", "127.0.2.7")
    source = random_file(tmp_path / "big.bin", 20 * 1024 * 1024)
    nodes = [node(lab, "127.0.0.1"), node(lab, "127.0.2.7", port=doomed.port,
                                          known_hosts=known),
             node(lab, "127.0.0.2"), node(lab, "127.0.0.3")]
    where = destinations(tmp_path, 4)
    chain, outcomes, killed = await chain_killing_halfway(lab, known, doomed, nodes, source,
                                                          where)
    assert killed
    assert [outcome is None for outcome in outcomes] == [True, False, True, True], outcomes
    assert "not reached from 127.0.0.1" in (outcomes[1] or ""), outcomes
    for rank in (0, 2, 3):
        assert sha(where[rank] / "big.bin") == sha(source)
    assert chain.bytes_sent == source.stat().st_size


async def test_chain_on_the_embedded_lab_with_the_nodes_own_key(tmp_path):
    from apssh.lab import Lab as EmbeddedLab

    source = random_file(tmp_path / "f.bin", 200 * 1024)
    async with EmbeddedLab(nodes=4) as lab:
        nodes = [lab.ssh_node(f"node{i}") for i in range(1, 5)]
        chain = Chain(nodes, source, "received.bin", agent_forwarding=False,
                      ssh_options=["-F", str(lab.ssh_config), "-i", str(lab.client_key)])
        outcomes = await chain.run()
        for each in nodes:
            await each.close()
        assert outcomes == [None] * 4
        for i in range(1, 5):
            assert sha(lab.workdir / "nodes" / f"node{i}" / "received.bin") == sha(source)
    assert chain.bytes_sent == source.stat().st_size


def test_appush_chain(lab, agent, tmp_path, capsys):
    from apssh.cli.copies import Appush

    source = random_file(tmp_path / "cli.bin", 512 * 1024)
    where = destinations(tmp_path, 3)
    for rank, each in enumerate(where):  # {rank}: each node's own directory
        each.rename(tmp_path / f"at{rank}")
    code = Appush().main(
        "-t", "127.0.0.1 127.0.0.2 127.0.0.3", "-p", str(lab.port), "-l", "root",
        "-k", str(lab.keys.client_key), "--known-hosts", str(lab.known_hosts), "-F", "none",
        "--chain", *[f"--hop-option={word}" for word in hop_options(lab)],
        str(source), f"@:{tmp_path}/at{{rank}}/")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for rank in range(3):
        assert sha(tmp_path / f"at{rank}" / "cli.bin") == sha(source)
    assert "3 ok, 0 failed" in captured.err


def test_appush_chain_reports_the_host_it_could_not_reach_in_one_line(lab, agent, tmp_path,
                                                                      capsys):
    from apssh.cli.copies import Appush

    source = random_file(tmp_path / "cli.bin", 256 * 1024)
    for rank in range(3):
        (tmp_path / f"at{rank}").mkdir()
    code = Appush().main(
        "-t", f"127.0.0.1 {NOWHERE} 127.0.0.2", "-p", str(lab.port), "-l", "root",
        "-k", str(lab.keys.client_key), "--known-hosts", str(lab.known_hosts), "-F", "none",
        "--chain", *[f"--hop-option={word}" for word in hop_options(lab)],
        "-o", str(tmp_path / "out"), "-m", str(source), f"@:{tmp_path}/at{{rank}}/")
    err = capsys.readouterr().err
    assert code == 1, err
    assert sorted(p.name for p in (tmp_path / "out" / "0ok").iterdir()) == ["127.0.0.1",
                                                                           "127.0.0.2"]
    assert [p.name for p in (tmp_path / "out" / "1failed").iterdir()] == [NOWHERE]
    assert sha(tmp_path / "at2" / "cli.bin") == sha(source)
    lines = [line for line in err.splitlines() if line.startswith(f"appush: root@{NOWHERE}")]
    assert len(lines) == 1 and re.match(
        rf"appush: root@{NOWHERE}:{lab.port}: .*cli.bin: not reached from 127.0.0.1: "
        ".*refused", lines[0], re.IGNORECASE), err
    assert err.splitlines()[-1] == f"appush: 2 ok, 1 failed: {NOWHERE}"


@pytest.mark.parametrize(("policy", "strict"), [
    ("verify", "StrictHostKeyChecking=yes"),
    ("accept-new", "StrictHostKeyChecking=accept-new"),
    ("no", "StrictHostKeyChecking=no"),
    ("off", "StrictHostKeyChecking=no"),
])
def test_hops_check_host_keys_as_the_client_does(policy, strict):
    from apssh.chain import hop_options as options

    words = options(policy, extra=["-oStrictHostKeyChecking=accept-new"])
    assert words[0] == "-oStrictHostKeyChecking=accept-new"  # given first: it wins in ssh
    assert strict in words and "BatchMode=yes" in words
    assert ("UserKnownHostsFile=/dev/null" in words) == (policy == "off")
    assert ("GlobalKnownHostsFile=/dev/null" in words) == (policy == "off")
    # our fast algorithms first, OpenSSH's own still allowed after them
    assert "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com" in words
    assert "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org" in words


def test_appush_chain_refuses_a_directory(tmp_path, capsys):
    from apssh.cli.copies import Appush

    code = Appush().main("-t", "127.0.0.1", "--chain", str(tmp_path), "@:dest/")
    assert code == 2
    assert "--chain" in capsys.readouterr().err


async def test_killing_a_chained_put_leaves_no_file_in_place(lab, agent, tmp_path):
    import asyncio

    source = random_file(tmp_path / "big.bin", 20 * 1024 * 1024)
    nodes = [node(lab, host) for host in HOSTS[:3]]
    where = destinations(tmp_path, 3)
    quarter = asyncio.Event()
    put = Put(nodes, source, str(tmp_path / "node{rank}") + "/",
              chain={"ssh_options": hop_options(lab),
                     "progress": lambda sent: sent >= source.stat().st_size // 4
                     and quarter.set()})
    await put.start()
    await quarter.wait()
    results = await put.kill()
    await closed(nodes)
    assert [result.state for result in results] == ["killed"] * 3
    assert put.chain.bytes_sent < source.stat().st_size
    # a file is renamed into place only once verified: none is
    assert not any((each / "big.bin").exists() for each in where)


@pytest.mark.parametrize("openssl", [True, False])
def test_the_relay_alone_checks_what_it_stored(tmp_path, openssl):
    """The relay as the last node of a chain, run here: verified, it renames the file
    into place; a short stream is refused and removed. Without openssl, sha256sum."""
    from apssh.chain import RELAY

    tools = tmp_path / "bin"
    tools.mkdir()
    for directory in ("/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if (openssl or tool.name != "openssl") and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    data = os.urandom(100_000)
    digest = hashlib.sha256(data).hexdigest()
    env = dict(os.environ, PATH=str(tools))

    def relay(given: bytes) -> str:
        return subprocess.run(
            ["sh", "-c", RELAY, "apssh-chain", RELAY, "7", str(len(data)), digest,
             str(tmp_path), "data.bin", "0"], input=given, capture_output=True, env=env,
            check=False).stdout.decode()

    assert relay(data[:5000]) == f"apssh-chain 7 starved received 5000 of {len(data)} bytes\n"
    assert not (tmp_path / "data.bin").exists()
    assert relay(data) == f"apssh-chain 7 ok {digest}\n"
    assert (tmp_path / "data.bin").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if "apssh-chain" in p.name] == []


async def test_a_file_changed_while_sent_is_refused_everywhere(lab, agent, tmp_path):
    source = random_file(tmp_path / "moving.bin", 2 * 1024 * 1024)
    nodes = [node(lab, host) for host in HOSTS[:3]]
    where = destinations(tmp_path, 3)

    def progress(sent: int) -> None:  # half of it sent: its end changes
        if sent >= source.stat().st_size // 2:
            with open(source, "r+b") as file:
                file.seek(-10, os.SEEK_END)
                file.write(b"0123456789")

    chain = Chain(nodes, source, [str(each) for each in where], ssh_options=hop_options(lab),
                  progress=progress)
    outcomes = await chain.run()
    await closed(nodes)
    assert all(outcome is not None and outcome.endswith(
        "moving.bin: the local file changed while it was sent") for outcome in outcomes), outcomes
    assert not any((each / "moving.bin").exists() for each in where)
    assert chain.bytes_sent == source.stat().st_size  # not sent again


async def test_chain_behind_a_gateway_forwards_the_agent_through_it(lab, agent, tmp_path):
    source = random_file(tmp_path / "f.bin", 1024 * 1024)
    gateway = node(lab, "127.0.1.1", port=lab.gateway.port)
    nodes = [node(lab, host, gateway=gateway) for host in HOSTS[:3]]
    where = destinations(tmp_path, 3)
    chain = Chain(nodes, source, [str(each) for each in where], ssh_options=hop_options(lab))
    outcomes = await chain.run()
    await closed([*nodes, gateway])
    assert outcomes == [None] * 3
    assert all(sha(each / "f.bin") == sha(source) for each in where)


async def test_a_first_node_killed_mid_stream_makes_the_client_start_again(lab, agent, daemons,
                                                                          tmp_path):
    doomed, known = daemons("chainhead", "127.0.2.8")
    source = random_file(tmp_path / "big.bin", 20 * 1024 * 1024)
    size = source.stat().st_size
    nodes = [node(lab, "127.0.2.8", port=doomed.port, known_hosts=known),
             *[node(lab, host) for host in HOSTS[:3]]]
    where = destinations(tmp_path, 4)
    chain, outcomes, killed = await chain_killing_halfway(lab, known, doomed, nodes, source,
                                                          where)
    assert outcomes[0] is not None and outcomes[1:] == [None] * 3, outcomes
    assert outcomes[0].endswith("big.bin: connection lost while sending")
    for rank in (1, 2, 3):
        assert sha(where[rank] / "big.bin") == sha(source)
    # what went to the dead node, then the file once more: the only case sent twice
    assert size < chain.bytes_sent < 2 * size
