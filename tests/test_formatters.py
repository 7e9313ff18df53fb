"""Formatters print as apssh 0.27 does: host-only output lines, ``{user}`` on
connection events, columns of a shared formatter, the ``==========`` marker, and
what a node built without a formatter gets (no ssh here, but a local node)."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest

from apssh import (
    CaptureFormatter,
    HostFormatter,
    LocalNode,
    RawFormatter,
    Run,
    SshJob,
    TimeHostFormatter,
)
from apssh.formatters import (
    EXTENDED_DATA_STDERR,
    ColonFormatter,
    TerminalFormatter,
    TimeColonFormatter,
)
from asynciojobs import Scheduler


def fake_node(hostname: str, username: str) -> SimpleNamespace:
    """What a formatter looks at in a node."""
    return SimpleNamespace(hostname=hostname, username=username)


def test_a_shared_formatter_pads_columns_as_0_27(capsys):
    """Host and user centred to the widest of the nodes that share the formatter
    (an odd padding leaves the extra space on the right); no user on output lines."""
    shared = HostFormatter(verbose=True)
    for hostname, username in (("fit02", "root"), ("faraday.inria.fr", "r2lab-tutorial")):
        shared.adapt_to_proxy(fake_node(hostname, username))
    shared.data(b"hello\n", None, "fit02")
    shared.data(b"oops\n", EXTENDED_DATA_STDERR, "faraday.inria.fr")
    shared.connection_made("fit02", "root", True)
    shared.session_start("fit02", "hostname")
    shared.connection_lost("faraday.inria.fr", None, "r2lab-tutorial")
    out, err = capsys.readouterr()
    assert out == " fit02 :hello\n"
    assert err == ("faraday:oops\n"
                   "     root@      fit02 :========== Connecting (direct) to root@fit02\n"
                   " fit02 :========== Session started for hostname\n"
                   "r2lab-tutorial@faraday:========== Connection closed to "
                   "r2lab-tutorial@faraday.inria.fr\n")
    vm = HostFormatter(verbose=False)
    for hostname in ("vm", "localhost"):
        vm.adapt_to_proxy(fake_node(hostname, "root"))
    vm.data(b"hi\n", None, "vm")
    assert capsys.readouterr().out == "   vm    :hi\n"  # the reference's example


@pytest.mark.parametrize(("formatter", "expected"), [
    (HostFormatter(verbose=False), "fit01:hello\n"),
    (ColonFormatter(verbose=False), "fit01:hello\n"),
    (RawFormatter(verbose=False), "hello\n"),
    (TerminalFormatter("[{user}|{host}|{fqdn}] {line}{nl}", False),
     "[|fit01|fit01.r2lab] hello\n"),
])
def test_no_formatter_names_the_user_on_output_lines(formatter, expected, capsys):
    formatter.adapt_to_proxy(fake_node("fit01.r2lab", "root"))
    formatter.data(b"hello\n", None, "fit01.r2lab")
    assert capsys.readouterr().out == expected


def test_time_formatters_and_captures_carry_no_user(capsys):
    for timed in (TimeHostFormatter(verbose=True), TimeColonFormatter(verbose=True)):
        timed.adapt_to_proxy(fake_node("fit01", "root"))
        timed.data(b"hello\n", None, "fit01")
        timed.auth_completed("fit01", "root")
        out, err = capsys.readouterr()
        assert re.fullmatch(r"\d\d-\d\d-\d\d:fit01:hello\n", out)
        assert re.fullmatch(r"\d\d-\d\d-\d\d:fit01:========== Authorization OK root@fit01\n",
                            err)  # no {user} in this format
    capture = CaptureFormatter("{user}{host}:{linenl}", verbose=False)
    capture.adapt_to_proxy(fake_node("fit01", "root"))
    capture.data(b"a\nb\n", None, "fit01")
    assert capture.get_capture() == "fit01:a\nfit01:b\n"


YAML_NODES = """
nodes:
  - {id: fit01, hostname: fit01, formatter: TimeHostFormatter, ssh_config: null}
  - {id: fit02, hostname: fit02, formatter: TimeHostFormatter, ssh_config: null}
  - {id: faraday, hostname: faraday.inria.fr, username: r2lab-tutorial, ssh_config: null}
  - {id: fit03, hostname: fit03, ssh_config: null}
jobs:
  - {id: one, node: fit01, commands: [{type: Run, command: "true"}]}
"""


def test_yaml_nodes_have_a_formatter_each_as_in_0_27(tmp_path, capsys):
    from apssh import YamlLoader

    scenario = tmp_path / "nodes.yaml"
    scenario.write_text(YAML_NODES)
    nodes, _, _ = YamlLoader(scenario).load_with_maps()
    formatters = [node.formatter for node in nodes.values()]
    assert len({id(formatter) for formatter in formatters}) == 4
    for node_id in ("fit02", "fit03"):
        nodes[node_id].formatter.data(b"hello\n", None, node_id)
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d\d-\d\d-\d\d:fit02:hello", out[0])  # not padded to faraday
    assert out[1] == "fit03:hello"


def test_a_local_node_without_formatter_behaves_as_0_27(capsys):
    """A ``HostFormatter``, no warning, no event lines (0.27's LocalNode fired
    none): only its output lines, named ``LOCALNODE:``."""
    job = SshJob(LocalNode(), command=Run("echo hi; echo err >&2"))
    assert Scheduler(job).run() is True
    assert capsys.readouterr() == ("LOCALNODE:hi\n", "LOCALNODE:err\n")
    assert asyncio.run(LocalNode(verbose=False).run("echo quiet")) == 0
    assert capsys.readouterr() == ("LOCALNODE:quiet\n", "")


def test_a_local_node_fires_no_events_even_to_a_verbose_formatter(capsys):
    """As 0.27: a verbose formatter given to a LocalNode prints no session lines."""
    node = LocalNode(formatter=HostFormatter(verbose=True))
    assert asyncio.run(node.run("echo hi; echo oops >&2")) == 0
    assert capsys.readouterr() == ("LOCALNODE:hi\n", "LOCALNODE:oops\n")
