"""Watch: elapsed times from the monotonic clock, printed as 0.21 did."""

from __future__ import annotations

import re

from asynciojobs import Watch
from asynciojobs import watch as watch_module


def test_formats(capsys):
    w = Watch("hello")
    assert re.fullmatch(r"\d{3}\.\d{3}  hello\n", capsys.readouterr().out)
    assert re.fullmatch(r"\d{3}\.\d{3}", w.elapsed())
    w.print_elapsed()
    assert re.fullmatch(r"\d{3}\.\d{3}  ", capsys.readouterr().out)
    Watch.print_wall_clock()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} ", capsys.readouterr().out)
    Watch("both", show_wall_clock=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("  both") and re.match(r"\d\d:\d\d:\d\d\.\d{3} both", lines[1])


def test_elapsed_ignores_changes_of_the_system_clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(watch_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(watch_module.time, "time", lambda: 0.0)  # a clock set back
    w = Watch()
    now[0] += 2.5
    assert w.seconds() == 2.5
    assert w.elapsed() == "002.500"
    w.reset()
    assert w.seconds() == 0


def test_without_a_message_the_elapsed_time_is_printed_as_0_21(monkeypatch, capsys):
    monkeypatch.setattr(watch_module.time, "monotonic", lambda: 1000.0)
    Watch()
    assert capsys.readouterr().out == "000.000  \n"
    Watch(show_elapsed=False)
    assert capsys.readouterr().out == ""
    Watch(show_elapsed=False, show_wall_clock=True)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} \n", capsys.readouterr().out)
