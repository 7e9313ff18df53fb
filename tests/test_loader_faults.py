"""Bad scenarios are refused before anything runs: ``nepi-ng run`` prints one line
``file:line: what``, exits 2, and no command ran (the marker a command would make
is absent). Ctrl-C (and SIGTERM, SIGHUP) stop the run, print the summary and exit
130 (128+N), leaving nothing running."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import default_hangup
from test_ssh_core import remote_processes

from apssh.cli.nepi import main

HERE = "nodes:\n  - id: here\n    localnode: true\n"
TOUCH = "  - id: touch\n    node: here\n    commands: ['touch @MARK@']\n"

#: (case id, scenario text, the line named, a fragment of the message); ``@MARK@`` is
#: the marker file a command would create, ``@DIR@`` the scenario's directory
BAD: list[tuple[str, str, int, str]] = [
    ("duplicate node id",
     HERE + "  - id: here\n    hostname: localhost\njobs:\n" + TOUCH,
     4, "node here: node id given twice (first at line 2)"),
    ("duplicate job id",
     HERE + "jobs:\n" + TOUCH + "  - id: touch\n    node: here\n    commands: ['true']\n",
     8, "job touch: job id given twice (first at line 5)"),
    ("duplicate key",
     HERE + "jobs:\n" + TOUCH + "    commands: ['true']\n",
     8, "key 'commands' given twice in one mapping (first at line 7)"),
    ("duplicate top-level key",
     HERE + "jobs:\n" + TOUCH + "nodes: []\n", 8, "key 'nodes' given twice"),
    ("requires itself",
     HERE + "jobs:\n" + TOUCH + "    required: touch\n", 8, "job touch: requires itself"),
    ("requires itself in a list",
     HERE + "jobs:\n" + TOUCH + "    required: [touch]\n", 8, "job touch: requires itself"),
    ("unknown requirement",
     HERE + "jobs:\n" + TOUCH + "    required: [nope]\n",
     8, "job touch: unknown job id 'nope' in required"),
    ("required: 5",
     HERE + "jobs:\n" + TOUCH + "    required: 5\n", 8, "job touch: unknown job id '5'"),
    ("required: true",
     HERE + "jobs:\n" + TOUCH + "    required: true\n",
     8, "job touch: required: must be a job id or a list of job ids, got True"),
    ("cycle",
     HERE + "jobs:\n" + TOUCH + "    required: b\n  - id: b\n    node: here\n"
     "    required: touch\n    commands: ['true']\n", 8, "jobs form a cycle: touch -> b -> touch"),
    ("commands: 42",
     HERE + "jobs:\n  - id: j\n    node: here\n    commands: 42\n" + TOUCH,
     7, "job j: commands: must be a list of commands, got 42"),
    ("a command that is a list",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n      - [a, b]\n",
     11, "job j: a command must be a string or a mapping, got a list"),
    ("keys: a string",
     HERE + "  - id: far\n    hostname: localhost\n    keys: id_rsa\njobs:\n" + TOUCH,
     6, "node far: keys: must be a list of file names, e.g. [a, b], got 'id_rsa'"),
    ("timeout: soon",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: Run\n        command: 'true'\n        timeout: soon\n",
     13, "job j, Run: timeout: must be a positive number of seconds, got 'soon'"),
    ("node timeout: soon",
     HERE + "  - id: far\n    hostname: localhost\n    timeout: soon\njobs:\n" + TOUCH,
     6, "node far: timeout: must be a positive number of seconds"),
    ("port: a string",
     HERE + "  - id: far\n    hostname: localhost\n    port: ssh\njobs:\n" + TOUCH,
     6, "node far: port: must be a port number (1-65535), got 'ssh'"),
    ("port: too big",
     HERE + "  - id: far\n    hostname: localhost\n    port: 70000\njobs:\n" + TOUCH,
     6, "port: must be a port number (1-65535), got 70000"),
    ("critical: a string",
     HERE + "jobs:\n" + TOUCH + "    critical: maybe\n",
     8, "job touch: critical: must be true or false, got 'maybe'"),
    ("host_key_policy",
     HERE + "  - id: far\n    hostname: localhost\n    host_key_policy: trust\njobs:\n" + TOUCH,
     6, "host_key_policy: must be one of verify, accept-new, off"),
    ("allowed_exits: 1",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: Run\n        command: 'false'\n        allowed_exits: 1\n",
     13, "allowed_exits: must be a list of exit codes or signal names"),
    ("capture: not a name",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: Run\n        command: 'true'\n        capture: my var\n",
     13, "capture: must be a variable name"),
    ("null hostname",
     HERE + "  - id: far\n    hostname:\njobs:\n" + TOUCH,
     5, "node far: hostname: must be a string, got nothing"),
    ("a node that is a string",
     HERE + "  - far\njobs:\n" + TOUCH, 4, "a node must be a mapping, got 'far'"),
    ("hostname undefined",
     HERE + "  - id: far\n    hostname: \"{{ undefined_host }}\"\njobs:\n" + TOUCH,
     5, "node far: hostname: {{ undefined_host }} is not given (it is needed before"),
    ("hostname undefined, unquoted",
     HERE + "  - id: far\n    hostname: {{ undefined_host }}\njobs:\n" + TOUCH,
     5, "{{ undefined_host }} is not given (YAML: found unhashable key; quote a value"),
    ("username undefined",
     HERE + "  - id: far\n    hostname: localhost\n    username: \"{{ who }}\"\njobs:\n" + TOUCH,
     6, "node far: username: {{ who }} is not given"),
    ("hostname filled by a capture",
     HERE + "  - id: far\n    hostname: \"{{ name }}\"\njobs:\n" + TOUCH
     + "  - id: j\n    node: here\n    commands:\n      - type: Run\n"
     "        command: hostname\n        capture: name\n",
     5, "hostname: {{ name }} is not given (it is needed before anything runs)"),
    ("a path undefined",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: Push\n        localpaths: ['{{ where }}/data']\n        remotepath: /tmp\n",
     12, "job j, Push: localpaths: {{ where }} is not given (a capture cannot fill a path)"),
    ("a script path undefined",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: RunScript\n        local_script: '{{ script }}'\n",
     12, "local_script: {{ script }} is not given"),
    ("a script missing (checked by run, not by load)",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    required: touch\n"
     "    commands:\n      - type: RunScript\n        local_script: nope.sh\n",
     13, "job j: script not found: @DIR@/nope.sh"),
    ("an include missing",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: RunString\n        script_body: 'true'\n        includes: [lib.sh]\n",
     13, "job j, RunString: include not found: @DIR@/lib.sh"),
    ("a label undefined",
     HERE + "jobs:\n" + TOUCH + "    label: 'run {{ what }}'\n",
     8, "job touch: label: {{ what }} is not given"),
    ("captured by a job not required",
     HERE + "jobs:\n" + TOUCH + "  - id: a\n    node: here\n    commands:\n      - type: Run\n"
     "        command: echo 1\n        capture: port\n  - id: b\n    node: here\n"
     "    commands: ['echo {{ port }}']\n",
     16, "job b: {{ port }} is captured by job a, not required before this job"),
    ("captured later in the same job",
     HERE + "jobs:\n" + TOUCH + "  - id: a\n    node: here\n    commands:\n"
     "      - echo {{ port }}\n      - type: Run\n        command: echo 1\n"
     "        capture: port\n",
     11, "job a: {{ port }} is captured by this command or a later one of this job"),
    ("never captured",
     HERE + "jobs:\n" + TOUCH + "  - id: a\n    node: here\n    commands:\n"
     "      - type: Run\n        argv: [echo, '{{ nowhere }}']\n",
     11, "job a: {{ nowhere }} is neither given nor captured"),
    ("hostile hostname",
     HERE + "  - id: far\n    hostname: \"$(touch @MARK@)\"\n    ssh_config: @DIR@/ssh_config\n"
     "jobs:\n" + TOUCH + "  - id: j\n    node: far\n    commands: ['touch @MARK@']\n",
     5, "node far: bad host name '$(touch "),
    ("hostile username",
     HERE + "  - id: far\n    hostname: localhost\n    username: 'root;touch @MARK@'\n"
     "    ssh_config: @DIR@/ssh_config\njobs:\n" + TOUCH,
     6, "node far: bad user name 'root;touch"),
    ("formatter: SubdirFormatter",
     "nodes:\n  - id: here\n    localnode: true\n    formatter: SubdirFormatter\njobs:\n" + TOUCH,
     4, "node here: SubdirFormatter needs a directory: write formatter: {type: SubdirFormatter"),
    ("formatter: Formatter",
     "nodes:\n  - id: here\n    localnode: true\n    formatter: Formatter\njobs:\n" + TOUCH,
     4, "unknown formatter 'Formatter' (known: ColonFormatter, HostFormatter, RawFormatter, "
        "SubdirFormatter (with dir:), TimeColonFormatter, TimeHostFormatter)"),
    ("formatter: VerboseFormatter",
     "nodes:\n  - id: here\n    localnode: true\n    formatter: VerboseFormatter\njobs:\n"
     + TOUCH, 4, "unknown formatter 'VerboseFormatter' (known: "),
    ("formatter mapping without dir",
     "nodes:\n  - id: here\n    localnode: true\n    formatter: {type: SubdirFormatter}\n"
     "jobs:\n" + TOUCH, 4, "SubdirFormatter needs a directory"),
    ("formatter mapping: dir for another",
     "nodes:\n  - id: here\n    localnode: true\n    formatter:\n      type: HostFormatter\n"
     "      dir: out\njobs:\n" + TOUCH, 4, "formatter: dir: is for SubdirFormatter only"),
    ("formatter mapping: unknown key",
     "nodes:\n  - id: here\n    localnode: true\n    formatter:\n      type: SubdirFormatter\n"
     "      directory: out\njobs:\n" + TOUCH, 6, "formatter: unknown key 'directory'"),
    ("per-node file that would leave its directory",
     "nodes:\n  - id: ..\n    localnode: true\n    formatter: {type: SubdirFormatter, dir: out}\n"
     "jobs:\n  - id: touch\n    node: ..\n    commands: ['touch @MARK@']\n",
     2, "node ..: as a file name: bad path component '..'"),
    ("a key file that is not there",
     HERE + "  - id: far\n    hostname: localhost\n    keys: [@DIR@/no-such-key]\njobs:\n"
     + TOUCH, 6, "node far: key @DIR@/no-such-key: no such file"),
    ("a local gateway",
     HERE + "  - id: far\n    hostname: localhost\n    gateway: here\njobs:\n" + TOUCH,
     6, "node far: gateway 'here' is a local node"),
    ("a later gateway",
     "nodes:\n  - id: far\n    hostname: localhost\n    gateway: gw\n"
     "  - id: gw\n    hostname: localhost\n  - id: here\n    localnode: true\njobs:\n" + TOUCH,
     4, "node far: unknown gateway 'gw' (a node given before)"),
    ("a local node with ssh keys",
     "nodes:\n  - id: here\n    localnode: true\n    hostname: localhost\njobs:\n" + TOUCH,
     4, "local node here: unknown key 'hostname'"),
    ("a command type that is a list",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: [Run]\n        command: ls\n",
     11, "job j: unknown command type ['Run'] (known: Pull, Push, Run, RunScript, RunString, "
         "Service)"),
    ("Run with command and argv",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - type: Run\n        command: ls\n        argv: [ls]\n",
     11, "job j, Run: needs 'command:' or 'argv:' (one of them)"),
    ("Jinja2 error",
     HERE + "jobs:\n" + TOUCH + "    label: '{{ 1 / 0 }}'\n", 8, "Jinja2: division by zero"),
    ("env: a bad variable name on a node",
     HERE + "    env: {'1A': x}\njobs:\n" + TOUCH,
     4, "local node here: env: '1A' is not a shell variable name"),
    ("env: a list",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - {command: 'true', env: [A]}\n",
     11, "job j, Run: env: must be a mapping of names to strings, got a list"),
    ("sudo: a list",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - {command: 'true', sudo: [root]}\n",
     11, "job j, Run: sudo: must be true, false or a user name, got a list"),
    ("sudo: a bad user name",
     HERE + "jobs:\n" + TOUCH + "  - id: j\n    node: here\n    commands:\n"
     "      - {command: 'true', sudo: 'a b'}\n",
     11, "job j, Run: sudo: bad user name 'a b'"),
    ("retries: -1",
     HERE + "jobs:\n" + TOUCH + "    retries: -1\n",
     8, "job touch: retries: must be a number >= 0, got -1"),
    ("job timeout: soon",
     HERE + "jobs:\n" + TOUCH + "    timeout: soon\n",
     8, "job touch: timeout: must be a positive number of seconds, got 'soon'"),
]


def scenario(tmp_path: Path, text: str, name: str = "bad.yaml.j2") -> tuple[Path, Path]:
    """The scenario file, and the marker its commands would create."""
    marker = tmp_path / "ran"
    (tmp_path / "ssh_config").write_text(f"Host *\n  ProxyCommand touch {marker}.proxy\n")
    path = tmp_path / name
    path.write_text(text.replace("@MARK@", str(marker)).replace("@DIR@", str(tmp_path)))
    return path, marker


def refused(capsys, path: Path, line: int, *argv: str) -> str:
    """Run ``nepi-ng run path``: exit 2, one line ``path:line: ...`` on stderr."""
    assert main(["run", str(path), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith(f"{path}:{line}: "), err
    return err


@pytest.mark.parametrize(("text", "line", "fragment"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_scenario_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch,
                                                        text, line, fragment):
    monkeypatch.chdir(tmp_path)
    path, marker = scenario(tmp_path, text)
    err = refused(capsys, path, line)
    assert fragment.replace("@DIR@", str(tmp_path)) in err
    assert "Traceback" not in err
    assert not marker.exists() and not Path(f"{marker}.proxy").exists()
    assert not (tmp_path / "out").exists()  # a formatter's directory is made on first use


def test_a_binary_file_is_refused(tmp_path, capsys):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"nodes: []\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not a text file (byte 0x89 is not UTF-8)" in refused(capsys, path, 2)
    path.write_bytes(b"nodes: []\njobs: []\n\x00\x00")
    assert "not a text file (a NUL byte)" in refused(capsys, path, 3)


def test_merge_keys_may_still_be_overridden(tmp_path, capsys):
    text = (HERE + "jobs:\n  - &base\n    id: base\n    node: here\n    commands: ['true']\n"
            "  - <<: *base\n    id: other\n")
    path, _ = scenario(tmp_path, text, "merge.yaml")
    assert main(["run", str(path), "--list"]) == 0
    assert "<SshJob `other`>" in capsys.readouterr().out


def test_a_capture_by_a_required_job_is_allowed(tmp_path, capsys):
    text = (HERE + "jobs:\n  - id: a\n    node: here\n    commands:\n      - type: Run\n"
            "        command: echo 41\n        capture: n\n      - echo {{ n }} in a\n"
            "  - id: b\n    node: here\n    required: a\n    commands:\n      - type: Run\n"
            "        argv: [echo, '{{ n }}', in, b]\n  - id: c\n    node: here\n"
            "    required: b\n    commands: ['echo {{ n }} in c']\n")
    path, _ = scenario(tmp_path, text, "late.yaml")
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "41 in a" in out and "41 in b" in out and "41 in c" in out


def test_per_node_output_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = ("nodes:\n  - id: here\n    localnode: true\n"
            "    formatter: {type: SubdirFormatter, dir: results/run1}\n"
            "jobs:\n  - id: j\n    node: here\n    commands: ['echo out; echo err >&2']\n")
    path, _ = scenario(tmp_path, text, "files.yaml")
    assert main(["run", str(path), "--list"]) == 0
    assert not (tmp_path / "results").exists()  # loading writes nothing
    assert main(["run", str(path)]) == 0
    assert "out" not in capsys.readouterr().out
    assert (tmp_path / "results/run1/here").read_text() == "out\n"
    assert (tmp_path / "results/run1/here.err").read_text() == "err\n"


@pytest.mark.parametrize(("signum", "code", "why"), [
    (signal.SIGINT, 130, "Ctrl-C"),
    (signal.SIGTERM, 143, "SIGTERM"),
    (signal.SIGHUP, 129, "SIGHUP"),
])
def test_an_interrupted_run_prints_its_summary(tmp_path, signum, code, why):
    duration = f"60.{secrets.randbelow(10**6):06d}"  # a unique command line to look for
    text = (HERE + "jobs:\n  - id: first\n    node: here\n    commands: ['echo first']\n"
            "  - id: long\n    node: here\n    required: first\n"
            f"    commands: ['echo started; sleep {duration}']\n"
            "  - id: after\n    node: here\n    required: long\n    commands: ['echo after']\n")
    path, _ = scenario(tmp_path, text, "long.yaml")
    lines: queue.Queue[str] = queue.Queue()
    out: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "apssh.cli.nepi", "run", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          preexec_fn=default_hangup) as process:

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                out.append(line)
                lines.put(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while not remote_processes(f"sleep {duration}"):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            # the sleep runs; its output reaching us means the node holds the process
            while "started" not in lines.get(timeout=max(0.1, deadline - time.monotonic())):
                pass
            process.send_signal(signum)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(timeout=10)
        assert process.stderr is not None
        err = process.stderr.read()
    assert process.returncode == code
    assert "Traceback" not in err
    assert err == f"nepi-ng: interrupted ({why}): the jobs were stopped\n"
    summary = "".join(out)
    assert "first" in summary and "<SshJob `long`>" in summary
    assert "===== 3 jobs: 1 done, 0 failed, 1 cancelled, 1 never ran" in summary
    assert remote_processes(f"sleep {duration}") == []
