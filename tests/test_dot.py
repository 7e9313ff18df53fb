"""DOT output, pictures through graphviz's dot, and the outcome view."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import boom, never, value

from asynciojobs import Job, Scheduler
from asynciojobs.dot import OUTCOME_COLOURS, GraphvizError

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None and os.environ.get("CI") != "true",
    reason="graphviz's dot is not installed (CI installs it)",
)


def example():
    start = Job(value, 0, label="main-start")
    subj1 = Job(value, 1, label="subj1")
    subj2 = Job(value, 2, label="subj2", required=subj1)
    subj3 = Job(never, label="subj3", required=subj1, forever=True)
    subj4 = Job(value, 4, label='sub"j4', required=(subj2,), critical=False)
    nested = Scheduler(subj1, subj2, subj3, subj4, label="critical nested", required=start)
    end = Job(value, 5, label="main-end", required=nested)
    return Scheduler(start, nested, end, label="top")


def test_dot_format_matches_021():
    assert example().dot_format().splitlines() == [
        "digraph asynciojobs{",
        "compound=true;",
        "graph [];",
        '1 [style="rounded",label="1: main-start",shape="box",color="red",penwidth="2"]',
        "subgraph cluster_2{",
        "compound=true;",
        'graph [style="",label="2: critical nested",shape="box",color="red",penwidth="2"];',
        '3 [style="rounded",label="3: subj1",shape="box",color="red",penwidth="2"]',
        '4 [style="rounded",label="4: subj2",shape="box",color="red",penwidth="2"]',
        "3 -> 4;",
        '5 [style="rounded,dashed",label="5: subj3",shape="box",color="red",penwidth="2"]',
        "3 -> 5;",
        '6 [style="rounded",label="6: sub\\"j4",shape="box",penwidth="0.5"]',
        "4 -> 6;",
        "}",
        "1 -> 3 [lhead=cluster_2];",
        '7 [style="rounded",label="7: main-end",shape="box",color="red",penwidth="2"]',
        "6 -> 7 [ltail=cluster_2];",
        "}",
    ]


def test_edges_between_two_clusters_and_empty_clusters():
    first = Scheduler(Job(value, 1, label="a"), label="first")
    second = Scheduler(Job(value, 2, label="b"), label="second", required=first)
    text = Scheduler(first, second).dot_format()
    assert "2 -> 4 [ltail=cluster_1,lhead=cluster_3];" in text
    empty = Scheduler(label="empty")
    after = Job(value, 1, required=empty)
    with pytest.raises(ValueError, match="no exit found"):
        Scheduler(empty, after).dot_format()


def test_outcome_view_colours_each_job():
    ok = Job(value, 1, label="ok")
    bad = Job(boom, label="bad", critical=False)
    server = Job(never, label="server", forever=True)
    late = Job(value, 2, label="late", required=Job(value, 0))
    s = Scheduler(ok, bad, server, critical=False)
    s.run()
    s.add(late)
    late.required.clear()
    text = s.dot_format(show_outcome=True)
    line = {name: next(x for x in text.splitlines() if f": {name}" in x)
            for name in ("ok", "bad", "server", "late")}
    assert f'fillcolor="{OUTCOME_COLOURS["done"]}"' in line["ok"]
    assert f'fillcolor="{OUTCOME_COLOURS["failed"]}"' in line["bad"]
    assert f'fillcolor="{OUTCOME_COLOURS["cancelled"]}"' in line["server"]
    assert f'fillcolor="{OUTCOME_COLOURS["never ran"]}"' in line["late"]
    assert 'style="rounded,filled"' in line["ok"]
    assert "fillcolor" not in s.dot_format()


def test_export_as_dotfile_and_historical_names(tmp_path):
    s = example()
    target = tmp_path / "graph.dot"
    assert s.export_as_dotfile(target) == f"(Over)wrote {target}"
    assert target.read_text() == s.dot_format()
    s.save_as_dotfile(tmp_path / "seed.dot")
    s.store_as_dotfile(tmp_path / "old.dot")
    assert (tmp_path / "seed.dot").read_text() == (tmp_path / "old.dot").read_text()


@needs_dot
def test_export_pictures(tmp_path):
    s = example()
    base = tmp_path / "it's a; weird name"  # never given to a shell
    png = s.export_as_pngfile(base)
    assert png == f"{base}.png"
    assert (tmp_path / "it's a; weird name.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "it's a; weird name.dot").exists()
    svg = s.export_as_svgfile(tmp_path / "pic.svg")  # an explicit suffix is kept once
    assert svg == str(tmp_path / "pic.svg")
    assert "<svg" in (tmp_path / "pic.svg").read_text()
    assert s.export_as_graphic(tmp_path / "g", "pdf").endswith("g.pdf")


@needs_dot
def test_repr_svg_for_notebooks():
    s = example()
    assert "<svg" in s._repr_svg_()
    s.run()
    assert OUTCOME_COLOURS["done"] in s._repr_svg_()


@needs_dot
def test_dot_failure_is_a_clear_error(tmp_path):
    with pytest.raises(GraphvizError, match=r"dot -Tnosuchformat failed"):
        example().export_as_graphic(tmp_path / "x", "nosuchformat")


def test_missing_dot_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizError, match="'dot' program was not found"):
        example().export_as_svgfile(tmp_path / "x")
    assert example()._repr_svg_() is None


def test_graph_gives_a_graphviz_source():
    import graphviz  # a test dependency

    source = example().graph()
    assert isinstance(source, graphviz.Source)
    assert "digraph asynciojobs" in source.source
