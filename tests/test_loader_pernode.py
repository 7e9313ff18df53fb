"""Per-node values in YAML scenarios (``{host}``, ``{fqdn}``, ``{user}``, ``{port}``,
``{rank}``, and ``{args}`` from a node's ``args:``): built on local nodes, then run on
two ssh nodes of the real sshd."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from apssh import YamlLoader
from apssh.loader import ScenarioError


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LOCAL = """\
nodes:
  - id: first
    localnode: true
  - id: second
    localnode: true
    args: -x 'two words'
jobs:
  - id: a
    node: second
    commands:
      - echo {host} {fqdn} {user} {rank} {port} {args}
      - type: Run
        argv: [echo, "{rank}"]
      - type: RunString
        script_body: "#!/bin/sh\\necho {rank} \\"$@\\""
        args: ["{args}", "r{rank}"]
      - "awk '{print $1}' ${HOME} {nope} {{ '{host}' }}"
      - type: Push
        localpaths: ["out-{rank}.txt"]
        remotepath: /tmp/{host}-{rank}/
  - id: b
    node: first
    commands:
      - type: Pull
        remotepaths: ["/tmp/{user}/x"]
        localpath: "here-{rank}"
"""


def test_values_filled_when_built(tmp_path):
    _, jobs, _ = YamlLoader(write(tmp_path, LOCAL)).load_with_maps()
    user = getpass.getuser()
    run, argv, script, literal, push = jobs["a"].commands
    # values shell-quoted; a local node has no {port}: it stays as written
    assert run.command() == f"echo localhost localhost {user} 1 {{port}} -x 'two words'"
    assert argv.command() == "echo 1"
    assert [str(a) for a in script.args] == ["-x 'two words'", "r1"]
    assert "echo 1 " in str(script.script_body)
    # other braces stay; a quoted Jinja2 literal is rendered when the command runs
    assert str(literal.command()) == "awk '{print $1}' ${HOME} {nope} {host}"
    assert (push.sources, push.destination) == (["out-1.txt"], "/tmp/localhost-1/")
    pull = jobs["b"].commands[0]
    assert (pull.sources, pull.destination) == ([f"/tmp/{user}/x"], "here-0")


def test_local_run_gets_the_values_and_args(tmp_path, capsys):
    path = write(tmp_path, """\
nodes:
  - id: n0
    localnode: true
    args: [one, "it's $(two)"]
jobs:
  - id: j
    node: n0
    commands:
      - printf '%s|' {rank} {args}
""")
    assert YamlLoader(path).load().run() is True
    assert "0|one|it's $(two)|" in capsys.readouterr().out


def test_double_braces_stay_for_captures(tmp_path, capsys):
    """``{{port}}`` is a late name (a capture), as before: not the per-node {port}."""
    path = write(tmp_path, """\
nodes:
  - {id: here, localnode: true}
jobs:
  - id: j
    node: here
    commands:
      - {command: echo 8080, capture: port}
      - echo got {{port}} at {rank}
""")
    assert YamlLoader(path).load().run() is True
    assert "got 8080 at 0" in capsys.readouterr().out


def test_jinja2_renders_first(tmp_path):
    """In a rendered file, ``{host}`` goes through Jinja2 untouched; ``{{ host }}`` is
    Jinja2's own variable (given with -D host=...)."""
    path = write(tmp_path, """\
nodes:
{% for i in range(3) %}
  - {id: n{{i}}, localnode: true, args: "a{{i}}"}
{% endfor %}
jobs:
{% for i in range(3) %}
  - {id: j{{i}}, node: n{{i}}, commands: ["echo {rank} {args} {{ host }}"]}
{% endfor %}
""", name="s.yaml.j2")
    _, jobs, _ = YamlLoader(path).load_with_maps({"host": "given"})
    assert [jobs[f"j{i}"].commands[0].command() for i in range(3)] == [
        f"echo {i} a{i} given" for i in range(3)]


@pytest.mark.parametrize(("body", "message"), [
    ("    commands:\n      - type: Push\n        localpaths: [x]\n        remotepath: /t/{args}\n",
     "scenario.yaml:9: job j, Push: bad path component '../..'"),
    ("    commands: [echo]\n", None),
])
def test_a_value_that_would_leave_a_path_is_refused(tmp_path, body, message):
    path = write(tmp_path, "nodes:\n  - id: n\n    localnode: true\n    args: ../..\n"
                           "jobs:\n  - id: j\n    node: n\n" + body)
    if message is None:
        YamlLoader(path).load()
        return
    with pytest.raises(ScenarioError) as caught:
        YamlLoader(path).load()
    assert message in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    ("{a: b}", "node n: args: must be a string or a list of strings, got a mapping"),
    ("\"'open\"", "node n: args: No closing quotation"),
])
def test_bad_node_args(tmp_path, args, message):
    path = write(tmp_path, f"nodes:\n  - id: n\n    hostname: h\n    args: {args}\n"
                           "jobs:\n  - {id: j, node: n, commands: [echo]}\n")
    with pytest.raises(ScenarioError, match=f"scenario.yaml:4: {message}"):
        YamlLoader(path).load()


def test_two_ssh_nodes_on_the_real_sshd(lab, tmp_path, capsys):
    nodes = "".join(f"""\
  - id: node{i}
    hostname: 127.0.0.{i}
    username: root
    port: {lab.port}
    keys: [{lab.keys.client_key}]
    known_hosts: {lab.known_hosts}
    ssh_config: null
    args: "--id {i}"
""" for i in (1, 2))
    jobs = "".join(f"""\
  - id: job{i}
    node: node{i}
    commands:
      - mkdir -p {tmp_path}/{{host}}
      - echo {{rank}} {{user}} {{port}} {{args}} > {tmp_path}/{{host}}/v
      - type: Pull
        remotepaths: {tmp_path}/{{host}}/v
        localpath: {tmp_path}/pulled-{{rank}}
""" for i in (1, 2))
    path = write(tmp_path, f"nodes:\n{nodes}jobs:\n{jobs}")
    assert YamlLoader(path).load().run() is True
    for rank in (0, 1):
        assert (tmp_path / f"pulled-{rank}").read_text() == (
            f"{rank} root {lab.port} --id {rank + 1}\n")


def test_a_literal_in_a_rendered_file(tmp_path):
    """In a .j2 file the literal is protected from the load-time rendering by raw."""
    path = write(tmp_path, """\
nodes:
  - {id: n, localnode: true}
jobs:
  - id: j
    node: n
    commands:
      - "echo {% raw %}{{ '{host}' }}{% endraw %} {host}"
""", name="s.yaml.j2")
    _, jobs, _ = YamlLoader(path).load_with_maps()
    assert str(jobs["j"].commands[0].command()) == "echo {host} localhost"
