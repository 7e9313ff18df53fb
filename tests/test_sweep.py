"""Sweeps (asynciojobs.sweep): combinations, the sqlite store, several processes, deaths."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from asynciojobs import Sweeper, combinations, parse_parameter
from asynciojobs.sweep import alive, key, parse_parameters, start_time

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sweeps.md"

# a process draining the sweep in sys.argv[1] (with the JSON parameters sys.argv[3],
# if given): says "ready", waits for a line on its stdin, opens the store, and appends
# "pid key" to the file sys.argv[2] for each combination it does
DRAIN = r"""
import json, os, sys
from asynciojobs.sweep import Sweeper, key
print("ready", flush=True)
sys.stdin.readline()
with Sweeper(sys.argv[1], json.loads(sys.argv[3]) if sys.argv[3:] else None) as sweeper:
    for combination in sweeper:
        with sweeper.running(combination):
            with open(sys.argv[2], "a") as log:
                log.write(f"{os.getpid()} {key(combination)}\n")
"""

# a process that claims one combination, prints its key, and waits for ever
CLAIM = r"""
import sys
from asynciojobs.sweep import Sweeper, key
sweeper = Sweeper(sys.argv[1])
print(key(sweeper.next()), flush=True)
sys.stdin.readline()
"""


def spawn(code: str, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


# ---------------------------------------------------------------- combinations

def test_order_is_the_product_first_parameter_slowest():
    assert combinations({"rate": [10, 20], "proto": ["olsr", "batman"]}) == [
        {"rate": 10, "proto": "olsr"}, {"rate": 10, "proto": "batman"},
        {"rate": 20, "proto": "olsr"}, {"rate": 20, "proto": "batman"}]
    assert combinations({"n": range(3)}) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_exclusions_by_partial_dicts_and_by_function():
    parameters = {"rate": [10, 20, 30], "proto": ["olsr", "batman"]}
    kept = combinations(parameters, exclude=[{"proto": "olsr", "rate": 30}, {"rate": 10}])
    assert kept == [{"rate": 20, "proto": "olsr"}, {"rate": 20, "proto": "batman"},
                    {"rate": 30, "proto": "batman"}]
    assert combinations(parameters, exclude=lambda c: c["rate"] > 10) == [
        {"rate": 10, "proto": "olsr"}, {"rate": 10, "proto": "batman"}]
    with pytest.raises(ValueError, match="no parameter named 'prot'"):
        combinations(parameters, exclude=[{"prot": "olsr"}])


def test_repeat_gives_the_whole_list_again_with_its_index():
    assert combinations({"x": ["a", "b"]}, repeat=3) == [
        {"x": "a", "repeat": 0}, {"x": "b", "repeat": 0},
        {"x": "a", "repeat": 1}, {"x": "b", "repeat": 1},
        {"x": "a", "repeat": 2}, {"x": "b", "repeat": 2}]
    assert combinations({"x": ["a"]}, repeat=1) == [{"x": "a"}]
    with pytest.raises(ValueError, match="repeat must be an integer >= 1"):
        combinations({"x": ["a"]}, repeat=0)
    with pytest.raises(ValueError, match="parameter 'repeat'"):
        combinations({"repeat": [1, 2]}, repeat=2)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"rate": [10], "proto": []}, "parameter 'proto' has no values"),
    ({"rate": "10,20"}, "parameter 'rate': its values must be a list, not str"),
    ({"rate": 10}, "parameter 'rate': its values must be a list, not int"),
    ({"rate": {10, 20}}, "parameter 'rate': its values must be a list, not set"),
    ({"rate": [10, 10]}, "parameter 'rate': value 10 appears twice"),
    ({"node": [object()]}, "parameter 'node': value <object .*> is not JSON"),
    ({"": [1]}, "parameter name '': must be a non-empty string"),
])
def test_bad_input_is_one_value_error_naming_the_parameter(tmp_path, parameters, message):
    with pytest.raises(ValueError, match=message):
        combinations(parameters)
    with pytest.raises(ValueError, match=message):
        Sweeper(tmp_path / "store", parameters)


def test_not_a_dict_of_lists(tmp_path):
    with pytest.raises(ValueError, match="parameters must be a dict"):
        combinations([("rate", [1])])
    with pytest.raises(ValueError, match=r"combination \('rate', 1\) is not a dict"):
        Sweeper(tmp_path, [("rate", 1)])
    with pytest.raises(ValueError, match=r"combination .* is not JSON"):
        Sweeper(tmp_path, [{"node": object()}])


def test_the_key_does_not_depend_on_the_order_of_the_names():
    assert key({"a": 1, "b": "x"}) == key({"b": "x", "a": 1}) == '{"a":1,"b":"x"}'
    assert key({"a": 1}) != key({"a": 1.0}) != key({"a": "1"})


def test_parse_parameter_guesses_int_float_str():
    assert parse_parameter("rate=10,20") == ("rate", [10, 20])
    assert parse_parameter(" proto = olsr, batman ") == ("proto", ["olsr", "batman"])
    assert parse_parameter("loss=0.5,1e-3,-2") == ("loss", [0.5, 0.001, -2])
    assert parse_parameter("id=007,7,inf,1.2.3") == ("id", ["007", 7, "inf", "1.2.3"])
    assert parse_parameters(["rate=1", "proto=olsr"]) == {"rate": [1], "proto": ["olsr"]}
    for bad, message in [("rate", "expected name=value1,value2"),
                         ("=10", "expected name=value1,value2"),
                         ("rate=", "parameter 'rate': empty value"),
                         ("rate=1,,2", "parameter 'rate': empty value")]:
        with pytest.raises(ValueError, match=message):
            parse_parameter(bad)
    with pytest.raises(ValueError, match="parameter 'rate' given twice"):
        parse_parameters(["rate=1", "rate=2"])


# ---------------------------------------------------------------- one process

def test_claim_mark_and_count(tmp_path):
    with Sweeper(tmp_path / "s", {"x": [1, 2, 3, 4, 5]}) as sweeper:
        assert sweeper.database == tmp_path / "s" / "sweep.sqlite"
        with sqlite3.connect(sweeper.database) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.close()
        assert len(sweeper) == 5 and sweeper.remaining == 5
        first, second, third, fourth = (sweeper.next() for _ in range(4))
        assert [first, second, third, fourth] == [{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}]
        assert sweeper.state(first) == "in progress"
        row = sweeper.rows("in progress")[0]
        assert (row.pid, row.host, row.attempts) == (os.getpid(), sweeper.host, 1)
        sweeper.done(first)
        sweeper.skip(second, "not on this hardware")
        sweeper.failed(third, "RuntimeError: boom")
        sweeper.cancel(fourth)
        assert sweeper.stats() == {"todo": 2, "in progress": 0, "done": 1, "skipped": 1,
                                   "failed": 1}
        assert sweeper.remaining == 2
        assert [r.reason for r in sweeper.rows("skipped", "failed")] == [
            "not on this hardware", "RuntimeError: boom"]
        assert sweeper.rows("done")[0].finished >= sweeper.rows("done")[0].claimed
        assert sweeper.next() == {"x": 4}       # cancelled: first in the order again
        assert sweeper.rows()[3].attempts == 2
        assert sweeper.next() == {"x": 5}
        assert sweeper.next() is None
        assert sweeper.reset("failed", "skipped") == 2
        assert [r.combination for r in sweeper.rows("todo")] == [{"x": 2}, {"x": 3}]
        with pytest.raises(ValueError, match="'in progress' is not one of"):
            sweeper.reset("in progress")
        with pytest.raises(KeyError, match="not a combination"):
            sweeper.done({"x": 6})
    # closing put back to todo what was claimed and not marked
    with Sweeper(tmp_path / "s") as again:
        assert again.stats()["todo"] == 4 and again.stats()["done"] == 1


def test_running_marks_done_or_back_to_todo_or_failed(tmp_path):
    with Sweeper(tmp_path, {"x": ["a", "b", "c", "d"]}) as sweeper:
        a = sweeper.next()
        with sweeper.running(a):
            pass
        b = sweeper.next()
        with pytest.raises(KeyboardInterrupt), sweeper.running(b):
            raise KeyboardInterrupt
        with pytest.raises(OSError), sweeper.running(b):
            raise OSError("no route to host")
        with sweeper.running(b, on_error="failed"):
            raise OSError("no route to host\nsecond line")
        c = sweeper.next()
        with sweeper.running(c, on_error="skipped"):
            raise ValueError("not relevant")
        with pytest.raises(ValueError, match="on_error: 'ignore' is not"), \
                sweeper.running(c, on_error="ignore"):
            pass
        assert [(r.state, r.reason) for r in sweeper.rows()] == [
            ("done", None), ("failed", "OSError: no route to host"),
            ("skipped", "ValueError: not relevant"), ("todo", None)]


def test_iteration_claims_until_none_is_left_and_wants_each_marked(tmp_path):
    with Sweeper(tmp_path, {"x": [1, 2, 3]}) as sweeper:
        seen = []
        for combination in sweeper:
            with sweeper.running(combination):
                seen.append(combination["x"])
        assert seen == [1, 2, 3] and sweeper.stats()["done"] == 3
        sweeper.reset("done")
        with pytest.raises(RuntimeError, match='"x":1} was not marked'):
            for _ in sweeper:
                pass


def test_reopening_with_a_new_value_adds_its_combinations(tmp_path):
    with Sweeper(tmp_path, {"rate": [10, 20], "proto": ["olsr"]}) as sweeper:
        for combination in sweeper:
            sweeper.done(combination)
    with Sweeper(tmp_path, {"rate": [10, 15, 20], "proto": ["olsr", "batman"]}) as sweeper:
        assert sweeper.stats() == {"todo": 4, "in progress": 0, "done": 2, "skipped": 0,
                                   "failed": 0}
        # the order is that of the new parameters
        assert [r.combination for r in sweeper.rows("todo")] == [
            {"rate": 10, "proto": "batman"}, {"rate": 15, "proto": "olsr"},
            {"rate": 15, "proto": "batman"}, {"rate": 20, "proto": "batman"}]
        assert sweeper.next() == {"rate": 10, "proto": "batman"}
    # a subset sees its own combinations only; None sees the whole store
    with Sweeper(tmp_path, {"rate": [10], "proto": ["olsr"]}) as subset:
        assert len(subset) == 1 and subset.stats()["done"] == 1
    with Sweeper(tmp_path) as everything:
        assert len(everything) == 6 and everything.stats()["todo"] == 4


def test_threads_share_one_sweeper(tmp_path):
    done: list[int] = []
    with Sweeper(tmp_path, {"x": list(range(100))}) as sweeper:
        def work() -> None:
            for combination in sweeper:
                with sweeper.running(combination):
                    done.append(combination["x"])
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(done) == list(range(100))
        assert sweeper.stats()["done"] == 100


# ---------------------------------------------------------------- processes

@pytest.mark.parametrize("new", [False, True], ids=["existing-store", "new-store"])
def test_processes_drain_one_sweep_each_combination_once(tmp_path, new):
    store, log = tmp_path / "store", tmp_path / "log"
    parameters = {"a": list(range(5)), "b": list(range(10)), "c": ["x", "y", "z", "t"]}
    expected = sorted(key(combination) for combination in combinations(parameters))
    if new:     # the four create the store at the same time
        args = [json.dumps(parameters)]
    else:
        Sweeper(store, parameters).close()
        args = []
    with contextlib.ExitStack() as stack:
        children = [stack.enter_context(spawn(DRAIN, store, log, *args)) for _ in range(4)]
        for child in children:       # all started: let them go together
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
        for child in children:
            assert child.wait(timeout=120) == 0
    lines = log.read_text().splitlines()
    assert sorted(line.split(" ", 1)[1] for line in lines) == expected   # once each
    pids = {int(line.split(" ", 1)[0]) for line in lines}
    assert pids <= {child.pid for child in children}
    with Sweeper(store) as sweeper:
        assert sweeper.stats()["done"] == len(expected) == 200
        assert {r.attempts for r in sweeper.rows()} == {1}


def test_a_killed_process_gives_its_combination_back(tmp_path):
    store = tmp_path / "store"
    Sweeper(store, {"x": [1, 2, 3]}).close()
    child = spawn(CLAIM, store)
    assert child.stdout is not None and child.stdin is not None
    claimed = child.stdout.readline().strip()
    child.stdout.close()
    assert claimed == key({"x": 1})
    with Sweeper(store) as sweeper:      # its owner is alive: it stays in progress
        (row,) = sweeper.rows("in progress")
        assert (row.combination, row.pid) == ({"x": 1}, child.pid)
        assert sweeper.next() == {"x": 2}
        sweeper.cancel({"x": 2})
    os.kill(child.pid, signal.SIGKILL)
    # a zombie (dead, not yet reaped by its parent) is dead
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not alive(child.pid, row_started(store, claimed))
    with Sweeper(store) as sweeper:
        assert sweeper.stats()["todo"] == 3
        assert sweeper.rows()[0].pid is None
    child.wait()
    child.stdin.close()
    log = tmp_path / "log"
    with spawn(DRAIN, store, log) as drain:
        drain.communicate("go\n", timeout=60)
    assert drain.returncode == 0
    assert sorted(line.split(" ", 1)[1] for line in log.read_text().splitlines()) == [
        key({"x": 1}), key({"x": 2}), key({"x": 3})]
    with Sweeper(store) as sweeper:
        assert [(r.state, r.attempts) for r in sweeper.rows()] == [
            ("done", 2), ("done", 2), ("done", 1)]


def row_started(store: Path, k: str) -> str:
    with sqlite3.connect(store / "sweep.sqlite") as db:
        return str(db.execute("SELECT started FROM combinations WHERE key = ?",
                              (k,)).fetchone()[0])


def test_a_reused_pid_is_not_the_owner_and_other_hosts_are_left_alone(tmp_path):
    store = tmp_path / "store"
    first = Sweeper(store, {"x": [1, 2]})
    assert first.next() == {"x": 1} and first.next() == {"x": 2}
    assert alive(os.getpid(), start_time(os.getpid()))
    with sqlite3.connect(store / "sweep.sqlite") as db:
        # x=1: same host and pid, but another process (started at another time)
        db.execute("UPDATE combinations SET started = 'another-boot/1' WHERE key = ?",
                   (key({"x": 1}),))
        # x=2: a process of another machine, whose life this host cannot see
        db.execute("UPDATE combinations SET host = 'elsewhere' WHERE key = ?",
                   (key({"x": 2}),))
    db.close()
    with Sweeper(store) as second:
        assert [r.state for r in second.rows()] == ["todo", "in progress"]
        assert second.rows()[1].host == "elsewhere"
    first.close()


# ---------------------------------------------------------------- the docs

def test_the_docs_snippet_is_interrupted_then_resumed(tmp_path):
    snippet = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert snippet is not None
    script = tmp_path / "sweep_demo.py"
    script.write_text(snippet.group(1))
    run = [sys.executable, str(script)]
    first = subprocess.run([*run, "--interrupt"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert first.returncode != 0 and "KeyboardInterrupt" in first.stderr
    assert first.stdout.count("->") == 4
    second = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("->") == 8            # 12 combinations, 4 done before
    assert "'done': 12" in second.stdout
    assert second.stdout.splitlines()[-1] in DOCS.read_text()
