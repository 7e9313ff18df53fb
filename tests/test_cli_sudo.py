"""``apssh --sudo [USER]`` against the real sshd: the command (or the ``-s`` script)
runs through ``sudo -n``; a sudo that would ask for a password fails the host with
sudo's own line and a non-zero exit."""

from __future__ import annotations

import pytest
from conftest import sudo_works
from test_cli import H, base, run

from apssh.cli import Apssh

needs_sudo = pytest.mark.skipif(not sudo_works(), reason="needs root, sudo and nepitest")


@needs_sudo
def test_sudo_user_runs_the_command_as_that_user(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "--sudo", "nepitest",
                         "-t", f"{H}.1", "id", "-un")
    assert (code, out) == (0, f"{H}.1:nepitest\n")


@needs_sudo
def test_sudo_alone_is_root_and_serves_scripts_too(lab, capsys, tmp_path):
    script = tmp_path / "who.sh"
    script.write_text("#!/bin/sh\necho \"$(id -un) $1\"\n")
    code, out, _ = run(capsys, Apssh, *base(lab, "-l", "nepitest"), "--sudo=root",
                       "-t", f"{H}.1", "-s", str(script), "x")
    assert code != 0  # nepitest may not use sudo: not silently run as nepitest
    code, out, err = run(capsys, Apssh, *base(lab), "--sudo", "-t", f"{H}.1",
                         "-s", str(script), "arg")
    assert (code, out) == (0, f"{H}.1:root arg\n")
    code, out, _ = run(capsys, Apssh, *base(lab), "--sudo", "-t", f"{H}.1",
                       "-s", "#!/bin/sh\nid -un")
    assert (code, out) == (0, f"{H}.1:root\n")


@needs_sudo
def test_sudo_that_asks_for_a_password_fails_with_one_line(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab, "-l", "nepitest"), "--sudo",
                         "-t", f"{H}.1", "--", "id", "-un")
    assert code != 0
    assert out == ""
    lines = [line for line in err.splitlines() if "sudo -n -u root:" in line]
    assert len(lines) == 1, err
    assert "password is required" in lines[0] and lines[0].startswith("apssh: nepitest@")
    assert lines[0].endswith(": id -un")


def test_sudo_without_user_before_the_command_takes_no_word(capsys):
    """``--sudo`` followed by the command would take its first word as the user:
    ``--sudo=USER``, or ``--`` before the command, says which is which."""
    args = Apssh().parser().parse_args(["--sudo", "-t", "h", "--", "id"])
    assert args.sudo is True
    assert Apssh().parser().parse_args(["--sudo=www-data", "-t", "h", "id"]).sudo == "www-data"
    assert Apssh().parser().parse_args(["-t", "h", "id"]).sudo is None
