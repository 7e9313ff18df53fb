"""The target grammar of apssh/appush/appull: one line per case."""

from __future__ import annotations

from pathlib import Path

import pytest

from apssh.cli.targets import (
    Target,
    TargetError,
    excluded,
    expand,
    parse_gateway,
    split_items,
)
from apssh.names import fold


def shown(specs: list[str], **defaults) -> list[str]:
    return [str(target) for target in expand(specs, **defaults)]


@pytest.mark.parametrize(("spec", "expected"), [
    ("h", ["h"]),
    ("u@h", ["u@h"]),
    ("a b\tc\nd", ["a", "b", "c", "d"]),
    ("a,b, c", ["a", "b", "c"]),
    ("h:2222", ["h:2222"]),
    ("u@h:2222", ["u@h:2222"]),
    ("[::1]:2222", ["[::1]:2222"]),
    ("[::1]", ["::1"]),
    ("::1", ["::1"]),
    ("fe80::1%eth0", ["fe80::1%eth0"]),
    ("gw->h", ["gw->h"]),
    ("gu@gw->u@h", ["gu@gw->u@h"]),
    ("gw→h", ["gw->h"]),
    ("a->b->c", ["a->b->c"]),
    ("a:22->b:2222->u@c", ["a:22->b:2222->u@c"]),
    ("fit[01-03]", ["fit01", "fit02", "fit03"]),
    ("node[1-3,7,10-12]", ["node1", "node2", "node3", "node7", "node10", "node11",
                           "node12"]),
    ("10.0.0.[1-3]", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("fit[01-05]!fit03", ["fit01", "fit02", "fit04", "fit05"]),
    ("fit[01-03]&fit[02-05]", ["fit02", "fit03"]),
    ("fit[1-2],fit[5,7]", ["fit1", "fit2", "fit5", "fit7"]),
    ("u@gw->root@fit[1-2]:2222", ["u@gw->root@fit1:2222", "u@gw->root@fit2:2222"]),
    ("h h u@h h", ["h", "u@h"]),
    ("fit[1-3] fit2", ["fit1", "fit2", "fit3"]),
])
def test_literal(spec, expected):
    assert shown([spec]) == expected


@pytest.mark.parametrize(("spec", "defaults", "expected"), [
    ("h", {"user": "root"}, ["root@h"]),
    ("u@h", {"user": "root"}, ["u@h"]),
    ("h", {"port": 2222}, ["h:2222"]),
    ("h:22", {"port": 2222}, ["h:22"]),
    ("h", {"gateway": Target("gw", "g")}, ["g@gw->h"]),
    ("None->h", {"gateway": Target("gw")}, ["h"]),
    ("other->h", {"gateway": Target("gw")}, ["other->h"]),
    ("gw->h", {"user": "root"}, ["root@gw->root@h"]),
    ("h u@h", {"user": "u"}, ["u@h"]),  # the same target once the defaults apply
])
def test_defaults(spec, defaults, expected):
    assert shown([spec], **defaults) == expected


@pytest.mark.parametrize(("spec", "fragment"), [
    ("fit[3-1]", "fit[3-1]"),
    ("fit[1-", "fit[1-"),
    ("fit]1[", "fit]1["),
    ("h:port", "h:port"),
    ("h:0", "h:0"),
    ("h:70000", "h:70000"),
    ("@h", "@h"),
    ("u@", "u@"),
    ("->h", "->h"),
    ("gw->", "gw->"),
    ("gw[1-2]->h", "gw[1-2]->h"),
    ("[::1]x", "[::1]x"),
    ("a&b", "a&b"),
    ("  ", "  "),
])
def test_bad(spec, fragment):
    with pytest.raises(TargetError) as info:
        expand([spec])
    assert info.value.fragment == fragment
    assert repr(fragment) in str(info.value)


def test_hosts_file(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# the R2lab nodes\nfit[01-02]  # two nodes\n"
                     "u@gw->fit03,fit04 # trailing\n\n   # indented comment\nfit01\n")
    assert shown([str(hosts)]) == ["fit01", "fit02", "u@gw->fit03", "fit04"]


def test_hosts_file_error_names_line(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("fit01\n\nfit[9-2]\n")
    with pytest.raises(TargetError, match=rf"^{hosts}:3: bad target 'fit\[9-2\]'"):
        expand([str(hosts)])


def test_unreadable_hosts_file(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"\xff\xfe\x00bin")
    with pytest.raises(TargetError, match="cannot read hosts file"):
        expand([str(hosts)])


def test_directory_of_marks(tmp_path: Path):
    marks = tmp_path / "0ok"
    marks.mkdir()
    for name in ("fit02", "fit01", ".hidden"):
        (marks / name).write_text("0\n")
    (marks / "subdir").mkdir()
    assert shown([str(marks)], user="root") == ["root@fit01", "root@fit02"]


def test_under_dot_apssh(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".apssh").mkdir()
    (tmp_path / ".apssh" / "r2lab").write_text("fit01 fit02\n")
    assert shown(["r2lab"]) == ["fit01", "fit02"]


def test_very_long_literal_list():
    hosts = [f"host{i}.example.org" for i in range(2000)]
    assert shown([",".join(hosts)]) == hosts


def test_several_specs_and_order():
    assert shown(["b a", "c,a"]) == ["b", "a", "c"]


def test_split_items_keeps_brackets():
    assert list(split_items("fit[1,2],x y")) == ["fit[1,2]", "x", "y"]


@pytest.mark.parametrize(("exclude", "target", "matches"), [
    ("h", "h", True),
    ("h", "u@h", True),
    ("u@h", "h", False),
    ("u@h", "u@h", True),
    ("h:22", "h:2222", False),
    ("h", "gw->h", True),
])
def test_excluded(exclude, target, matches):
    assert excluded(expand([target])[0], expand([exclude])) is matches


def test_gateway_chain():
    gateway = parse_gateway("a->u@b:2200", user="root")
    assert str(gateway) == "root@a->u@b:2200"
    assert gateway.depth() == 2
    with pytest.raises(TargetError, match="range"):
        parse_gateway("gw[1-2]")


@pytest.mark.parametrize(("names", "folded"), [
    (["fit01", "fit02", "fit03", "fit07"], "fit[01-03,07]"),
    (["127.0.0.1", "127.0.0.2"], "127.0.0.[1-2]"),
    (["h"], "h"),
    (["::1", "h"], "::1,h"),
])
def test_fold(names, folded):
    assert fold(names) == folded
