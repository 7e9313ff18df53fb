"""TakTuk's command line as apssh.taktukline builds it: deployment groups per login
and port, the root's arity (how many nodes it deploys itself), checked against
the lab's real sshd."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from apssh.taktuk import SshSettings, TaktukHost, command_line

pytestmark = pytest.mark.skipif(shutil.which("taktuk") is None and os.environ.get("CI") != "true",
                                reason="taktuk is not installed (apt-get install taktuk)")


def test_command_line_changes_login_and_connector_only_when_needed():
    hosts = [TaktukHost("a", "u", 1), TaktukHost("b", "u", 1), TaktukHost("c", "v", 2)]
    argv = command_line("taktuk", hosts, SshSettings(), [["broadcast", "exec", "[", "x", "]"]])
    assert argv.count("-l") == 2 and argv.count("-c") == 2
    assert argv.count("-b") == argv.count("-e") == 2  # one group per login and port
    single = command_line("taktuk", hosts[:2], SshSettings(), [])
    assert "-b" not in single and single.count("-c") == 1
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-m"] == ["a", "b", "c"]
    assert argv[-7:] == ["broadcast", "exec", "[", "x", "]", ";", "quit"]
    assert "-w" not in argv
    windowed = command_line("taktuk", hosts, SshSettings(), [], window=3)
    assert windowed[windowed.index("-w") + 1] == "3"


@pytest.mark.parametrize("window", [None, 2])
def test_root_deploys_at_most_its_arity(lab, window):
    """The root's own connections (TakTuk's state 4 told by position 0) are bounded
    by the arity: its children deploy the others; every host still runs. Not with
    several deployment groups (two ports), where TakTuk's -d may hang."""
    hosts = [TaktukHost(address, "root", lab.port) for address in lab.hosts]
    settings = SshSettings(keys=(str(lab.keys.client_key),),
                           known_hosts=(str(lab.known_hosts),), config="none")
    argv = command_line("taktuk", hosts, settings, [["broadcast", "exec", "[", "true", "]"]],
                        arity=2, window=window)
    assert argv[argv.index("-d") - 1:argv.index("-d") + 2] == ["-M", "-d", "2"]
    state = argv.index(next(word for word in argv if word.startswith("state=")))
    argv[state] = 'state=$line==4?"init $position\\n":undef'
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    told = done.stdout.split("\n")
    assert sum(line == "init 0" for line in told) == 2
    assert sum(line.startswith("init ") for line in told) == len(hosts)
    assert sum(line.startswith("s ") for line in told) == len(hosts)
    assert "-d" not in command_line("taktuk", hosts, settings, [], arity=None)
    two = [*hosts, TaktukHost(lab.hosts[0], "root", 1)]  # another port: another group
    assert "-d" not in command_line("taktuk", two, settings, [], arity=2)
