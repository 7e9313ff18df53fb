"""apssh.names: which host and user names are usable, and paths that stay in their directory."""

from __future__ import annotations

import os
import pwd
import warnings

import pytest
from sshd import ensure_plain_user

from apssh.formatters import SubdirFormatter
from apssh.names import (
    BadNameError,
    check_hostname,
    check_username,
    hostname_problem,
    local_user,
    path_in,
    username_problem,
)
from apssh.pernode import expand_path

GOOD_HOSTS = ["fit01", "faraday.inria.fr", "faraday.inria.fr.", "node_1", "a-b", "127.0.0.1",
              "::1", "fe80::1%eth0", "2001:db8::7", "x" * 63, ".".join(["a" * 63] * 3)]
BAD_HOSTS = [
    ("", "empty host name"),
    ("$(touch /tmp/x)", "hostname contains invalid characters"),
    ("`id`", "hostname contains invalid characters"),
    ("a;b", "hostname contains invalid characters"),
    ("a b", "hostname contains invalid characters"),
    ("-oProxyCommand=x", "hostname contains invalid characters"),
    ("../../x", "hostname contains invalid characters"),
    ("/abs", "hostname contains invalid characters"),
    ("..", "hostname contains invalid characters"),
    ("a/b", "hostname contains invalid characters"),
    ("a..b", "hostname contains invalid characters"),
    ("a\nb", "hostname contains invalid characters"),
    ("a%b", "hostname contains invalid characters"),
    ("-----BEGIN", "hostname contains invalid characters"),
    ("x" * 64, "a label is longer than 63 characters"),
    (".".join(["a" * 63] * 4), "longer than 253 characters"),
]


@pytest.mark.parametrize("name", GOOD_HOSTS)
def test_usable_host_names(name):
    assert hostname_problem(name) is None
    assert check_hostname(name) == name


@pytest.mark.parametrize(("name", "reason"), BAD_HOSTS)
def test_unusable_host_names(name, reason):
    assert hostname_problem(name) == reason
    with pytest.raises(BadNameError, match="bad host name"):
        check_hostname(name)


@pytest.mark.parametrize("name", ["root", "inria_r2lab.tutorial", "a-b", "_svc", "machine$"])
def test_usable_user_names(name):
    assert username_problem(name) is None
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a b", "$(id)", "a;b", "a/b", "x$y", "u@h"])
def test_unusable_user_names(name):
    assert username_problem(name) is not None
    with pytest.raises(BadNameError, match="bad user name"):
        check_username(name)


@pytest.mark.parametrize("part", ["", ".", "..", "../x", "a/b", "/abs", "a\0b", "a\\b"])
def test_path_in_refuses_what_would_leave(tmp_path, part):
    with pytest.raises(BadNameError, match="would leave"):
        path_in(tmp_path, part)


def test_path_in_and_templates(tmp_path):
    assert path_in(tmp_path, "fit01", "fit01.err") == tmp_path / "fit01" / "fit01.err"
    values = {"host": "fit01", "user": "root@"}
    assert expand_path("out/{host}/{user}f {x}", values) == "out/fit01/root@f {x}"
    with pytest.raises(BadNameError):
        expand_path("out/{host}", {"host": ".."})


def test_per_host_files_stay_in_their_directory(tmp_path):
    formatter = SubdirFormatter(tmp_path / "run", verbose=False)
    assert formatter.out("fit01", stderr=True) == tmp_path / "run" / "fit01.err"
    for name in ("../escape", "/abs", ".."):
        with pytest.raises(BadNameError):
            formatter.out(name)


# ----- the local user, as OpenSSH finds it: the real uid's name
def test_local_user_is_the_uids_name_whatever_the_environment_says(monkeypatch):
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "someone-else")
    assert local_user() == pwd.getpwuid(os.getuid()).pw_name


def test_local_user_without_a_name_is_the_uid(monkeypatch):
    def unknown(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", unknown)
    assert local_user() == str(os.getuid())


def test_local_user_of_a_plain_user_with_roots_environment():
    """In a child that became the plain user (its environment still saying root),
    the local user is the plain user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    plain = ensure_plain_user()
    assert plain is not None
    entry = pwd.getpwnam(plain)
    reader, writer = os.pipe()
    with warnings.catch_warnings():  # forking a process with threads: the child only
        warnings.simplefilter("ignore", DeprecationWarning)  # calls local_user()
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(reader)
            os.environ.update(LOGNAME="root", USER="root")
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.write(writer, local_user().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        said = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert said == plain
