"""YAML scenarios: loading, running on the lab, and every bad input named before running."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import sudo_works
from test_ssh_core import Recorder  # noqa: F401 - keeps the ssh helpers importable

import apssh.retry
from apssh import Run, RunScript, ScenarioError, SshJob, YamlLoader
from apssh.lab import Lab

SCENARIO = """\
nodes:
  - id: gw
    hostname: gateway
    ssh_config: {{ config }}
    formatter: TimeColonFormatter
{% for name in names %}
  - id: {{ name }}
    hostname: {{ name }}
    ssh_config: {{ config }}
{% endfor %}
jobs:
  - id: prepare
    node: node1
    label: >
      prepare
      node1
    commands:
      - type: Run
        command: "echo 'a    b'"
        capture: spaced
      - type: RunString
        script_body: |
          #!/bin/sh
          echo "got $1"
        args: epilogue
  - id: use
    node: node2
    required: prepare
    commands:
      - type: Run
        command: "echo {{ '{{spaced}}' }}"
        capture: final
  - id: local
    node: here
    required: [use]
    commands:
      - echo local {{ '{{final}}' }}
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml.j2") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def test_a_scenario_runs_on_the_lab(tmp_path, capsys):
    text = SCENARIO.replace("nodes:\n", "nodes:\n  - id: here\n    localnode: true\n", 1)
    async with Lab(nodes=2, gateway=False) as lab:
        path = write(tmp_path, text.replace("hostname: gateway", "hostname: node1"))
        loader = YamlLoader(path)
        nodes, jobs, scheduler = loader.load_with_maps(
            {"names": ["node1", "node2"], "config": str(lab.ssh_config)},
            save_intermediate=True)
        assert set(jobs) == {"prepare", "use", "local"}
        assert jobs["prepare"].label == "prepare node1"
        assert await scheduler.co_run() is True
        assert loader.variables["spaced"] == "a    b"  # command: keeps its spacing
        assert loader.variables["final"] == "a b"
        out = capsys.readouterr().out
        assert "got epilogue" in out  # a string args: is one argument
        assert "local a b" in out
        assert (tmp_path / "scenario.yaml").read_text().startswith("# WARNING")
        for node in nodes.values():
            await node.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes: [\n", "scenario.yaml:2: YAML syntax"),
        ("nodes: []\njobs: []\nextra: 1\n", "scenario.yaml:3: the top level: unknown key 'extra'"),
        ("nodes:\n  - id: a\n    hostname: h\n    colour: red\njobs: []\n",
         "scenario.yaml:4: node a: unknown key 'colour'"),
        ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j\n    node: b\n"
         "    commands: ['true']\n", "scenario.yaml:6: job j: unknown node id 'b'"),
        ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j\n    node: a\n"
         "    required: nope\n    commands: ['true']\n",
         "scenario.yaml:7: job j: unknown job id 'nope' in required"),
        ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j\n    node: a\n"
         "    commands:\n      - type: Run\n        command: echo {{x}}\n",
         "scenario.yaml:8: job j: {{ x }} is neither given nor captured"),
        ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j\n    node: a\n"
         "    commands:\n      - type: Teleport\n",
         "scenario.yaml:8: job j: unknown command type 'Teleport'"),
        ("nodes:\n  - id: a\n    hostname: h\n    formatter: NoSuch\njobs: []\n",
         "scenario.yaml:4: node a: unknown formatter 'NoSuch'"),
        ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j1\n    node: a\n"
         "    required: j2\n    commands: ['true']\n  - id: j2\n    node: a\n    required: j1\n"
         "    commands: ['true']\n", "jobs form a cycle: j"),
    ],
)
def test_bad_scenarios_are_named_before_running(tmp_path, text, message):
    path = write(tmp_path, text, "scenario.yaml")
    with pytest.raises(ScenarioError) as info:
        YamlLoader(path).load()
    assert message in str(info.value)
    assert str(info.value).count("\n") == 0  # one line


def test_rendered_lines_are_said_when_jinja_moved_them(tmp_path):
    text = "{% for i in [1, 2] %}\n# line {{i}}\n{% endfor %}\nnodes: []\njobs: []\nbad: 1\n"
    with pytest.raises(ScenarioError, match=r"\(rendered line \d+\): the top level"):
        YamlLoader(write(tmp_path, text)).load({})


def test_commands_are_built_like_0_27(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\n")
    text = ("nodes:\n  - id: a\n    hostname: h\n    verbose: true\njobs:\n  - id: j\n"
            "    node: a\n    verbose: true\n    commands:\n      - type: RunScript\n"
            "        command: s.sh x y\n      - type: Run\n        argv: [ls, '-l']\n"
            "      - type: Service\n        command: tcpdump\n        service_id: dump\n"
            "      - type: Push\n        localpaths: [a, b]\n        remotepath: /tmp\n")
    _, jobs, _ = YamlLoader(write(tmp_path, text, "scenario.yaml")).load_with_maps()
    job = jobs["j"]
    assert isinstance(job, SshJob) and job.node.formatter.verbose is True
    assert isinstance(job.commands[0], RunScript) and job.commands[0].args == ("x", "y")
    assert isinstance(job.commands[1], Run) and job.commands[1].command() == "ls -l"
    assert "--unit=dump" in job.commands[2].command()
    assert all(cmd.verbose for cmd in job.commands)  # job verbose reaches its commands


def test_nepi_ng_run_command(tmp_path, capsys):
    from apssh.cli.nepi import main

    good = write(tmp_path, "nodes:\n  - id: here\n    localnode: true\njobs:\n"
                           "  - id: hello\n    node: here\n    commands: ['echo {{ who }}']\n"
                           "  - id: after\n    node: here\n    required: hello\n"
                           "    commands: ['true']\n", "good.yaml.j2")
    assert main(["run", str(good), "--list", "-D", "who=world"]) == 0
    out = capsys.readouterr().out
    assert "<SshJob `hello`>" in out and "requires={1}" in out
    assert main(["run", str(good), "-D", "who=world", "--timeout", "30"]) == 0
    assert "world" in capsys.readouterr().out
    failing = write(tmp_path, "nodes:\n  - id: here\n    localnode: true\njobs:\n"
                              "  - id: bad\n    node: here\n    commands: ['false']\n", "f.yaml")
    assert main(["run", str(failing)]) == 1
    assert "===== 1 jobs: 0 done, 1 failed" in capsys.readouterr().out
    broken = write(tmp_path, "nodes: []\njobs: []\noops: 1\n", "broken.yaml")
    assert main(["run", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{broken}:3: ") and err.count("\n") == 1  # file:line: what


# ----- local files: loaded as 0.27 does, refused by check() (and nepi-ng run)
MISSING = ("nodes:\n  - id: a\n    hostname: h\njobs:\n  - id: j\n    node: a\n"
           "    commands:\n      - type: RunScript\n        local_script: missing.sh\n"
           "        includes: [lib.sh]\n")


def test_a_scenario_loads_before_its_scripts_exist(tmp_path):
    path = write(tmp_path, MISSING, "scenario.yaml")
    loader = YamlLoader(path)
    _, jobs, scheduler = loader.load_with_maps()
    command = jobs["j"].commands[0]
    assert isinstance(command, RunScript) and command.local_script == tmp_path / "missing.sh"
    assert len(list(scheduler.iterate_jobs())) == 1
    with pytest.raises(ScenarioError) as info:
        loader.check()
    assert str(info.value) == \
        f"{path}:9: job j: script not found: {tmp_path / 'missing.sh'}"
    (tmp_path / "missing.sh").write_text("#!/bin/sh\n")
    with pytest.raises(ScenarioError) as info:
        loader.check()
    assert str(info.value) == \
        f"{path}:10: job j, RunScript: include not found: {tmp_path / 'lib.sh'}"
    (tmp_path / "lib.sh").write_text("")
    loader.check()  # every file is there now


def test_check_loads_when_not_loaded_yet(tmp_path):
    path = write(tmp_path, MISSING, "scenario.yaml")
    with pytest.raises(ScenarioError, match=r"scenario.yaml:9: job j: script not found"):
        YamlLoader(path).check()
    with pytest.raises(ScenarioError, match=r":3: the top level: unknown key"):
        YamlLoader(write(tmp_path, "nodes: []\njobs: []\nextra: 1\n", "bad.yaml")).check()


def test_nepi_ng_run_checks_the_files_list_does_not(tmp_path, capsys):
    from apssh.cli.nepi import main

    marker = tmp_path / "ran"
    text = ("nodes:\n  - id: here\n    localnode: true\njobs:\n  - id: first\n"
            f"    node: here\n    commands: ['touch {marker}']\n  - id: script\n"
            "    node: here\n    required: first\n    commands:\n"
            "      - type: RunScript\n        local_script: later.sh\n")
    path = write(tmp_path, text, "scenario.yaml")
    assert main(["run", str(path), "--list"]) == 0
    assert "<SshJob `script`>" in capsys.readouterr().out
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not marker.exists()  # nothing ran
    assert err == f"{path}:13: job script: script not found: {tmp_path / 'later.sh'}\n"
    (tmp_path / "later.sh").write_text("#!/bin/sh\necho from the script\n")
    assert main(["run", str(path)]) == 0
    assert "from the script" in capsys.readouterr().out and marker.exists()




def test_env_sudo_retries_and_timeout_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(apssh.retry, "BACKOFF", (0.0,))
    count = tmp_path / "count"
    as_root = sudo_works()
    sudo = ("      - {command: 'id -un', sudo: nepitest}\n" if as_root else "")
    path = write(tmp_path, f"""\
nodes:
  - id: here
    localnode: true
    env: {{A: node-a, B: node-b}}
jobs:
  - id: j
    node: here
    timeout: 20
    retries: 1
    retry_on_exit: true
    commands:
      - type: Run
        command: 'echo "$A|$B"'
        env: {{B: "it's b"}}
      - command: 'n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}; [ $n -ge 1 ]'
        retries: 2
        retry_on_exit: true
{sudo}""", name="scenario.yaml")
    nodes, jobs, scheduler = YamlLoader(path).load_with_maps()
    job = jobs["j"]
    assert (job.timeout, job.retries, job.retry_on_exit) == (20, 1, True)
    assert nodes["here"].env == {"A": "node-a", "B": "node-b"}
    assert job.commands[0].env == {"B": "it's b"}
    assert job.commands[1].retries == 2
    assert scheduler.run() is True
    out = capsys.readouterr().out
    assert "node-a|it's b" in out
    assert job.repr_result() == "OK - [1] attempt 2/3"
    if as_root:
        assert job.commands[2].sudo == "nepitest"
        assert out.rstrip().endswith("nepitest")
