"""apssh, appush and appull as a library, against the real sshd: ``main()`` returns
the exit code, ``proxies`` are the nodes it made, outcomes are computed from jobs."""

from __future__ import annotations

from test_cli import H, base, gateway

from apssh.cli import Appull, Appush, Apssh


def _hops(proxy) -> list[tuple[str, str, int]]:
    """(hostname, username, port) of ``proxy``, then of each gateway in front of it."""
    hops = []
    while proxy is not None:
        hops.append((proxy.hostname, proxy.username, proxy.port))
        proxy = proxy.gateway
    return hops


def test_apssh_main_exposes_the_proxies_in_target_order(lab, capsys):
    from apssh import SshProxy

    gw = gateway(lab)
    tool = Apssh()
    assert tool.proxies == []
    code = tool.main(*base(lab), "-t", f"{H}.2", "-t", f"{gw}->{H}.1", "-t", f"{H}.3",
                     "true")
    capsys.readouterr()
    assert code == 0
    assert all(isinstance(proxy, SshProxy) for proxy in tool.proxies)
    assert [_hops(p) for p in tool.proxies] == [
        [(f"{H}.2", "root", lab.port)],
        [(f"{H}.1", "root", lab.port), ("127.0.1.1", "root", lab.gateway.port)],
        [(f"{H}.3", "root", lab.port)]]
    assert tool.proxies[1].gateway.gateway is None
    code = tool.main(*base(lab), "-t", f"{H}.4", "exit 3")  # a new run, new proxies
    capsys.readouterr()
    assert code == 3 and [p.hostname for p in tool.proxies] == [f"{H}.4"]


def test_list_targets_sets_the_proxies_dry_run_makes_none(lab, capsys):
    tool = Apssh()
    assert tool.main(*base(lab), "-L", "-t", f"u@{gateway(lab)}->{H}.1,{H}.2") == 0
    capsys.readouterr()
    assert [_hops(p) for p in tool.proxies] == [
        [(f"{H}.1", "root", lab.port), ("127.0.1.1", "u", lab.gateway.port)],
        [(f"{H}.2", "root", lab.port)]]
    assert tool.main(*base(lab), "-n", "-t", f"{H}.1", "true") == 0
    capsys.readouterr()
    assert tool.proxies == []  # -n only names the targets: no node is made
    assert tool.main(*base(lab), "-t", "bad host!", "true") == 2  # bad input: none either
    capsys.readouterr()
    assert tool.proxies == []


def test_appush_and_appull_expose_their_proxies(lab, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sent").write_text("x\n")
    pusher = Appush()
    code = pusher.main(*base(lab), "-t", f"{gateway(lab)}->{H}.1", "-t", f"{H}.2",
                       "sent", "@:")
    assert code == 0, capsys.readouterr().err
    assert [_hops(p) for p in pusher.proxies] == [
        [(f"{H}.1", "root", lab.port), ("127.0.1.1", "root", lab.gateway.port)],
        [(f"{H}.2", "root", lab.port)]]
    puller = Appull()
    code = puller.main(*base(lab), "-t", f"{H}.2", "-t", f"{H}.1", "@:sent", "back/{host}/")
    assert code == 0, capsys.readouterr().err
    assert [p.hostname for p in puller.proxies] == [f"{H}.2", f"{H}.1"]
    assert (tmp_path / "back" / f"{H}.1" / "sent").read_text() == "x\n"


def test_a_missing_script_is_one_outcome_line(tmp_path):
    from apssh import LocalNode, RunScript, SshJob
    from apssh.cli.report import outcome_of
    from apssh.cli.targets import Target
    from asynciojobs import Scheduler

    job = SshJob(LocalNode(), command=RunScript(tmp_path / "gone.sh"), critical=False)
    assert Scheduler(job, timeout=30).run() is True
    outcome = outcome_of(Target("h"), job)
    assert (outcome.code, outcome.reason) == (1, f"script {tmp_path / 'gone.sh'}: no such file")
