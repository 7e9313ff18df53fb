"""Per-node values in the CLI (``{host}``, ``{user}``, ``{port}``, ``{rank}``, ``--args``),
``--diff``, ``-b`` with ``-o``, ``@group`` targets and ``nepi-ng run --list --graph``:
``apssh.pernode`` alone, then the tools against the real sshd."""

from __future__ import annotations

import shutil

import pytest
from test_cli import H, base, run

from apssh.cli import Appull, Apssh
from apssh.names import BadNameError
from apssh.pernode import ArgsFile, NodeValues, PerNodeError, expand_command, expand_path

VALUES = NodeValues("fit01.r2lab", "root", 22, 3, ("a b", "$(touch x)")).as_dict()


# ----- the library module
@pytest.mark.parametrize(("template", "expected"), [
    ("echo {host} {fqdn} {user} {port} {rank}", "echo fit01 fit01.r2lab root 22 3"),
    ("run {args}", "run 'a b' '$(touch x)'"),
    ("echo {{host}} {{rank}}", "echo {host} {rank}"),
    ("awk '{print $1}' ${HOME} {} {nope} {host", "awk '{print $1}' ${HOME} {} {nope} {host"),
    ("{host}{host}", "fit01fit01"),
])
def test_expand_command(template, expected):
    assert expand_command(template, VALUES) == expected


def test_values_are_shell_quoted_and_filled_once():
    values = {**VALUES, "user": "{host}; rm -rf /", "args": ("{rank}",)}
    assert expand_command("echo {user} {args}", values) == "echo '{host}; rm -rf /' '{rank}'"


def test_paths_refuse_values_that_would_leave_the_directory():
    assert expand_path("out/{host}-{rank}/{{host}}", VALUES) == "out/fit01-3/{host}"
    with pytest.raises(BadNameError):
        expand_path("out/{user}", {**VALUES, "user": ".."})


def test_args_file_by_host_then_by_rank():
    found = ArgsFile.parse("# comment\nfit02: -x 'two words'\n\nfirst:line\n--second\n")
    assert found.for_node("fit02.r2lab", 0) == ("-x", "two words")  # short name
    assert found.for_node("fit01", 0) == ("first:line",)  # no blank after ':': a rank line
    assert found.for_node("fit03", 3) == ("--second",)  # rank % count
    with pytest.raises(PerNodeError, match="no line for fit09"):
        ArgsFile.parse("fit01: x").for_node("fit09", 0)
    with pytest.raises(PerNodeError, match="f:1: No closing quotation"):
        ArgsFile.parse("'open", "f")


# ----- the tools against the real sshd
def _lines(out: str) -> list[str]:
    return sorted(out.splitlines())


def test_per_host_values_on_ten_hosts(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-10]",
                         "echo {host} {user} {port} {rank} {{host}}")
    assert code == 0, err
    # prefixes are padded to the longest host name
    assert sorted((prefix.rstrip(), text) for prefix, _, text in
                  (line.partition(":") for line in out.splitlines())) == \
        sorted((f"{H}.{i}", f"{H}.{i} root {lab.port} {i - 1} {{host}}") for i in range(1, 11))


def test_other_braces_reach_the_shell_as_written(lab, capsys):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1",
                         "echo one two | awk '{print $2}'; echo ${HOME+set} {nope}")
    assert code == 0, err
    assert out.splitlines() == [f"{H}.1:two", f"{H}.1:set {{nope}}"]


def test_args_by_host_and_by_rank(lab, capsys, tmp_path):
    args = tmp_path / "args"
    args.write_text(f"{H}.2: 'for two' 2\nrank-a\nrank-b\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-4]", "--args", str(args),
                         "printf '[%s]' {rank}")
    assert code == 0, err
    # ranks 0, 2, 3 take rank lines 0, 2 % 2, 3 % 2; host .2 its own line
    assert _lines(out) == [f"{H}.1:[0][rank-a]", f"{H}.2:[1][for two][2]",
                           f"{H}.3:[2][rank-a]", f"{H}.4:[3][rank-b]"]
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.3", "--args", str(args),
                         "echo {args} is mine")
    assert out == f"{H}.3:rank-a is mine\n"


def test_a_hostile_argument_never_reaches_the_shell(lab, capsys, tmp_path):
    marker = tmp_path / "marker"
    args = tmp_path / "args"
    args.write_text(f"{H}.1: $(touch {marker}) ';touch {marker}' `touch {marker}`\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "--args", str(args),
                         "printf '%s\\n'")
    assert code == 0, err
    assert out.splitlines() == [f"{H}.1:$(touch", f"{H}.1:{marker})",
                                f"{H}.1:;touch {marker}", f"{H}.1:`touch", f"{H}.1:{marker}`"]
    assert not marker.exists()


@pytest.mark.parametrize(("content", "message"), [
    (None, "--args {path}: no such file"),
    ("'open\n", "--args {path}:1: No closing quotation"),
    ("127.0.0.9: x\n", "--args {path}: no line for 127.0.0.1 (nor lines by rank)"),
])
def test_bad_args_files_are_bad_input(lab, capsys, tmp_path, content, message):
    path = tmp_path / "args"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.1", "--args", str(path), "true")
    assert (code, out) == (2, "")
    assert err == f"apssh: {message.format(path=path)}\n"


def test_diff_against_the_most_common_output(lab, capsys, tmp_path):
    args = tmp_path / "args"
    args.write_text(f"{H}.3: other\nsame\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-4]", "--diff",
                         "--args", str(args), "echo header; echo")
    assert code == 0, err
    assert out == (f"--- {H}.[1-2,4] (3)\n+++ {H}.3 (1)\n@@ -1,2 +1,2 @@\n"
                   " header\n-same\n+other\n")
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-4]", "--diff", "echo same")
    assert (code, out) == (0, "")  # all alike: nothing to show


def test_gather_with_out_dir(lab, capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, Apssh, *base(lab), "-t", f"{H}.[1-3]", "-b", "-o",
                         str(out_dir), "echo same; echo oops >&2; echo r{rank}")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1] == str(out_dir)
    assert f"{H}.1 (1)" in lines and "r0" in lines and "r2" in lines
    assert out.count("same\n") == 3  # one block per distinct output
    for i in range(1, 4):
        assert (out_dir / f"{H}.{i}").read_bytes() == f"same\nr{i - 1}\n".encode()
        assert (out_dir / f"{H}.{i}.err").read_bytes() == b"oops\n"
    assert "oops" not in err  # stderr went to the files


@pytest.fixture
def groups(tmp_path, monkeypatch):
    """A ClusterShell groups.conf of our own ($CLUSTERSHELL_CFGDIR): never /etc's."""
    conf = tmp_path / "clustershell"
    (conf / "groups.d").mkdir(parents=True)
    (conf / "groups.conf").write_text(f"[Main]\ndefault: lab\nautodir: {conf / 'groups.d'}\n")
    (conf / "groups.d" / "lab.yaml").write_text(
        f"lab:\n  web: '{H}.[1-3]'\n  db: '{H}.2,{H}.5'\n")
    monkeypatch.setenv("CLUSTERSHELL_CFGDIR", str(conf))
    return conf


def test_group_targets(lab, capsys, groups):
    code, out, err = run(capsys, Apssh, *base(lab), "-t", "@web,@lab:db", "-x", f"{H}.1",
                         "echo {rank}")
    assert code == 0, err
    assert _lines(out) == [f"{H}.2:0", f"{H}.3:1", f"{H}.5:2"]
    code, out, err = run(capsys, Apssh, *base(lab), "-t", "@nosuch", "true")
    assert code == 2
    assert err.startswith("apssh: bad target '@nosuch': no host in this group")


def test_appull_with_rank_and_host(lab, capsys, tmp_path):
    code, out, err = run(capsys, Appull, *base(lab), "-t", f"{H}.[1-2]", "@:/etc/hostname",
                         str(tmp_path / "{rank}-{host}"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"0-{H}.1", f"1-{H}.2"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
def test_nepi_ng_run_list_writes_the_graph_without_running(tmp_path, capsys):
    from apssh.cli.nepi import main

    marker, graph = tmp_path / "ran", tmp_path / "plan.svg"
    scenario = tmp_path / "s.yaml"
    scenario.write_text("nodes:\n  - id: here\n    localnode: true\njobs:\n"
                        f"  - id: touch\n    node: here\n    commands: ['touch {marker}']\n")
    assert main(["run", str(scenario), "--list", "--graph", str(graph)]) == 0
    out = capsys.readouterr().out
    assert "<SshJob `touch`>" in out and out.splitlines()[-1] == str(graph)
    assert graph.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert not marker.exists()
