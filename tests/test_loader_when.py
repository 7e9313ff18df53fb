"""YAML ``required:`` with readiness: ``{job: NAME, when: REGEX, ...}`` starts a job
when NAME prints a matching line, with the regex's named groups as ``{{ names }}``;
every mistake is refused before anything runs, one line ``file:line: what``."""

from __future__ import annotations

from pathlib import Path

import pytest

from apssh import ScenarioError, YamlLoader

HERE = "nodes:\n  - id: here\n    localnode: true\njobs:\n"
SERVER = ("  - id: server\n    node: here\n    forever: true\n"
          "    commands: [\"sh -c 'echo listening on port 5000; sleep 60'\"]\n")
CLIENT = ("  - id: client\n    node: here\n"
          "    required: {job: server, when: 'listening on port (?P<port>\\d+)', timeout: 30}\n"
          "    commands:\n      - type: Run\n        command: echo got {{port}}\n"
          "        capture: answer\n")


def write(tmp_path: Path, text: str, name: str = "when.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_client_starts_when_the_server_listens_with_its_port(tmp_path):
    loader = YamlLoader(write(tmp_path, HERE + SERVER + CLIENT))
    _, jobs, scheduler = loader.load_with_maps()
    assert "when 'listening on port" in jobs["client"].repr_requires()
    assert scheduler.run(timeout=30) is True  # ends with the client; the server is cancelled
    assert loader.variables["port"] == "5000"
    assert loader.variables["answer"] == "got 5000"


def test_the_late_name_reaches_the_jobs_after(tmp_path):
    after = ("  - id: after\n    node: here\n    required: [client]\n"
             "    commands: ['echo again {{port}}']\n")
    listed = ("  - id: client\n    node: here\n"
              "    required:\n      - job: server\n        when: 'port (?P<port>\\d+)'\n"
              "        stream: stdout\n"
              "    commands: ['echo got {{port}}']\n")
    loader = YamlLoader(write(tmp_path, HERE + SERVER + listed + after))
    assert loader.load().run(timeout=30) is True
    assert loader.variables["port"] == "5000"


def test_a_timeout_fails_the_waiting_job(tmp_path):
    late = CLIENT.replace("timeout: 30", "timeout: 0.5").replace("port (?P", "nowhere (?P")
    scheduler = YamlLoader(write(tmp_path, HERE + SERVER + late)).load()
    scheduler.critical = False
    assert scheduler.run(timeout=30) is False


#: (case id, text, the line named, the message after ``file:line: ``)
BAD = [
    ("bad stream", HERE + SERVER + CLIENT.replace("timeout: 30", "stream: out"), 11,
     "job client: required: stream: must be one of stdout, stderr, both, got 'out'"),
    ("bad regex", HERE + SERVER + CLIENT.replace("(?P<port>", "(?P<port"), 11,
     "job client: required: when: bad regex"),
    ("unknown job", HERE + SERVER + CLIENT.replace("job: server", "job: srv"), 11,
     "job client: unknown job id 'srv' in required"),
    ("itself", HERE + SERVER + CLIENT.replace("job: server", "job: client"), 11,
     "job client: requires itself"),
    ("unknown key", HERE + SERVER + CLIENT.replace("timeout: 30", "within: 30"), 11,
     "job client: required: unknown key 'within'"),
    ("no job", HERE + SERVER + CLIENT.replace("job: server, ", ""), 11,
     "job client: required: missing 'job:'"),
    ("timeout without when", HERE + SERVER + CLIENT.replace(
        "when: 'listening on port (?P<port>\\d+)', ", ""), 11,
     "job client: required: timeout: needs when: (a regex)"),
    ("a name no group captures", HERE + SERVER + CLIENT.replace("{{port}}", "{{host}}"), 13,
     "job client: {{ host }} is neither given nor captured"),
    ("a group used by the server itself", HERE + SERVER.replace("sleep 60", "sleep {{port}}")
     + CLIENT, 8, "job server: {{ port }} is captured by job server (a when: group)"),
]


@pytest.mark.parametrize(("text", "line", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_requirements_are_refused(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        YamlLoader(path).load()
    assert str(info.value).startswith(f"{path}:{line}: {message}"), str(info.value)
    assert "\n" not in str(info.value)


def test_when_on_a_job_that_is_not_an_sshjob_is_refused():
    from apssh.scenario_checks import Problem
    from apssh.scenario_when import Requirement, resolve
    from asynciojobs import Job

    async def nothing() -> None:
        return None

    with pytest.raises(Problem) as info:
        resolve("client", [Requirement("server", 3, "x", when_line=4)],
                {"server": Job(nothing), "client": Job(nothing)}, {})
    assert info.value.line == 4
    assert "job client: required: when: job server is not an SshJob" in info.value.message
