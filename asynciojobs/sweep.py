"""Parameter sweeps that survive interruption (docs/sweeps.md).

``combinations()`` expands named parameter lists into an ordered list of dicts; a
``Sweeper`` keeps one sqlite row per combination, with its state and, while in
progress, its owner process. Nothing here knows about ssh: a combination is a dict.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

Combination: TypeAlias = dict[str, Any]
State: TypeAlias = Literal["todo", "in progress", "done", "skipped", "failed"]

STATES: tuple[State, ...] = ("todo", "in progress", "done", "skipped", "failed")
TODO, IN_PROGRESS, DONE, SKIPPED, FAILED = STATES

REPEAT = "repeat"          # the key of the repeat index in a combination, when repeat > 1
DATABASE = "sweep.sqlite"  # the file of a Sweeper, in its directory
_SCHEMA = 1


# ---------------------------------------------------------------- combinations

def key(combination: Mapping[str, Any]) -> str:
    """The stable key of a combination, whatever the order of its names: its JSON
    with sorted names, no spaces (a sweep opened again finds its rows by it)."""
    return json.dumps(combination, sort_keys=True, separators=(",", ":"))


def _check(parameters: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters must be a dict, not {type(parameters).__name__}")
    checked: dict[str, list[Any]] = {}
    for name, values in parameters.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"parameter name {name!r}: must be a non-empty string")
        if not isinstance(values, list | tuple | range):
            raise ValueError(f"parameter {name!r}: its values must be a list, "
                             f"not {type(values).__name__} {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"parameter {name!r} has no values")
        seen: set[str] = set()
        for value in values:
            try:
                text = json.dumps(value, sort_keys=True)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {name!r}: value {value!r} is not JSON "
                                 f"(str, int, float, bool, None, lists and dicts of them)"
                                 ) from None
            if text in seen:
                raise ValueError(f"parameter {name!r}: value {value!r} appears twice")
            seen.add(text)
        checked[name] = values
    return checked


def _combination(combination: Any) -> Combination:
    if not isinstance(combination, Mapping):
        raise ValueError(f"combination {combination!r} is not a dict of name: value")
    try:
        key(combination)
    except (TypeError, ValueError):
        raise ValueError(f"combination {combination!r} is not JSON") from None
    return dict(combination)


Exclude: TypeAlias = Callable[[Combination], bool] | Iterable[Mapping[str, Any]] | None


def _excluder(exclude: Exclude, names: Iterable[str]) -> Callable[[Combination], bool]:
    if exclude is None or callable(exclude):
        return exclude or (lambda combination: False)
    partials = list(exclude)
    for partial in partials:
        if not isinstance(partial, Mapping):
            raise ValueError(f"exclude: {partial!r} is not a dict of name: value")
        unknown = sorted(set(partial) - set(names))
        if unknown:
            raise ValueError(f"exclude {dict(partial)!r}: no parameter named "
                             f"{', '.join(map(repr, unknown))}")

    def excluded(combination: Combination) -> bool:
        return any(all(combination[name] == value for name, value in partial.items())
                   for partial in partials)
    return excluded


def combinations(parameters: Mapping[str, Sequence[Any]], exclude: Exclude = None,
                 repeat: int = 1) -> list[Combination]:
    """The combinations (dicts) of named lists of JSON values, in a fixed order.

    The first parameter varies slowest, the last fastest (``itertools.product``).
    ``exclude`` is a function (True drops the combination) or a list of partial
    dicts (one matching drops it). With ``repeat`` N > 1 the whole list comes N
    times, index ``"repeat"`` 0 to N-1: all run once before any runs twice. A
    parameter with no values, not a list, or not JSON, raises a ``ValueError``.
    """
    checked = _check(parameters)
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an integer >= 1, not {repeat!r}")
    if repeat > 1 and REPEAT in checked:
        raise ValueError(f"parameter {REPEAT!r}: the name is taken by the repeat index")
    excluded = _excluder(exclude, checked)
    names = list(checked)
    once = [combination for values in itertools.product(*checked.values())
            if not excluded(combination := dict(zip(names, values, strict=True)))]
    if repeat == 1:
        return once
    return [{**combination, REPEAT: index} for index in range(repeat) for combination in once]


def guess(text: str) -> int | float | str:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, anything else (``"olsr"``, ``"007"``) the string."""
    if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text):
        return int(text)
    if re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", text) and (
            not re.fullmatch(r"[-+]?0[0-9]+", text)):
        return float(text)
    return text


def parse_parameter(text: str) -> tuple[str, list[Any]]:
    """One ``-P`` option: ``"rate=10,20"`` -> ``("rate", [10, 20])``: values split
    on commas, stripped, each an int, else a float, else the string (``guess()``);
    ``ValueError`` without ``=``, name or value."""
    name, equal, values = text.partition("=")
    name = name.strip()
    if not equal or not name:
        raise ValueError(f"parameter {text!r}: expected name=value1,value2,...")
    items = [item.strip() for item in values.split(",")]
    if not values.strip() or not all(items):
        raise ValueError(f"parameter {name!r}: empty value in {text!r}")
    return name, [guess(item) for item in items]


def parse_parameters(texts: Iterable[str]) -> dict[str, list[Any]]:
    """Several ``-P`` options into the ``parameters`` of ``combinations()``; a name
    given twice raises ``ValueError``."""
    parameters: dict[str, list[Any]] = {}
    for text in texts:
        name, values = parse_parameter(text)
        if name in parameters:
            raise ValueError(f"parameter {name!r} given twice")
        parameters[name] = values
    return parameters


# ---------------------------------------------------------------- owners

def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a live pid on Linux;
    None if it does not exist; ("?", "") where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return fields[0], fields[19]
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?", ""


def start_time(pid: int) -> str:
    """What tells a process from a later one with the same pid: the boot id and its
    start time since boot ("" where /proc is not available)."""
    stat = _stat(pid)
    return f"{_boot_id()}/{stat[1]}" if stat and stat[1] else ""


def alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` of this host runs and is the one started at ``started``
    (a zombie is dead; a pid reused by another process is not it)."""
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return not started or not stat[1] or start_time(pid) == started


# ---------------------------------------------------------------- the store

@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One opener at a time: two switching a new database to WAL fail, not wait."""
    with path.open("a") as file:
        if sys.platform != "win32":
            import fcntl
            fcntl.flock(file, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class SweepRow:
    """One combination in the store (``Sweeper.rows()``); times as ``time.time()``."""

    combination: Combination
    state: State
    host: str | None
    pid: int | None
    created: float
    claimed: float | None
    finished: float | None
    attempts: int
    reason: str | None


_COLUMNS = "combination, state, host, pid, created, claimed, finished, attempts, reason"
_CREATE = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS combinations (
    key TEXT PRIMARY KEY, position INTEGER NOT NULL, combination TEXT NOT NULL,
    state TEXT NOT NULL, host TEXT, pid INTEGER, started TEXT, created REAL NOT NULL,
    claimed REAL, finished REAL, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT);
CREATE INDEX IF NOT EXISTS by_state ON combinations (state, position);
"""


class Sweeper:
    """A checkpointed sweep: one sqlite row per combination, in ``directory``.

    ``parameters`` is a dict of lists (given to ``combinations()`` with ``exclude``
    and ``repeat``), a list of combinations, or None for all those the store holds;
    new ones are added as todo, the others keep their state. ``next()`` claims one
    (atomically, across processes), ``done()``, ``skip()``, ``failed()`` and
    ``cancel()`` mark it; ``with sweeper.running(combination):`` marks it done, or
    back to todo on an exception. What a dead process of this host had in progress
    goes back to todo. One sweeper per process (its threads may share it);
    ``close()`` puts back to todo what it claimed and did not mark.
    """

    def __init__(self, directory: str | os.PathLike[str],
                 parameters: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]]
                 | None = None, *, exclude: Exclude = None, repeat: int = 1,
                 timeout: float = 60.0) -> None:
        self.directory = Path(directory)
        self.database = self.directory / DATABASE
        self.host = socket.gethostname()
        self._lock = threading.RLock()
        self._claimed: set[str] = set()
        self._owner: tuple[int, str] | None = None
        if parameters is None:
            wanted: list[Combination] | None = None
        elif isinstance(parameters, Mapping):
            wanted = combinations(parameters, exclude=exclude, repeat=repeat)
        else:
            wanted = [_combination(combination) for combination in parameters]
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.database, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        try:
            with _exclusive(self.directory / "sweep.lock"):
                self._open(wanted)
        except BaseException:
            self._db.close()
            raise

    def _open(self, wanted: list[Combination] | None) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._transaction():
            for statement in _CREATE.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
            elif row[0] != str(_SCHEMA):
                raise ValueError(f"{self.database}: sweep store of schema {row[0]}, "
                                 f"this version reads {_SCHEMA}")
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS mine "
                             "(key TEXT PRIMARY KEY, position INTEGER NOT NULL)")
            self._db.execute("DELETE FROM temp.mine")
            if wanted is None:
                self._db.execute("INSERT INTO temp.mine SELECT key, position FROM combinations")
            else:
                self._add(wanted)
            self._recover()

    def _add(self, wanted: list[Combination]) -> None:
        (last,) = self._db.execute("SELECT coalesce(max(position), -1) FROM combinations"
                                   ).fetchone()
        now = time.time()
        rows = [(key(combination), last + 1 + index, json.dumps(combination), TODO, now)
                for index, combination in enumerate(wanted)]
        self._db.executemany("INSERT OR IGNORE INTO combinations "
                             "(key, position, combination, state, created) "
                             "VALUES (?, ?, ?, ?, ?)", rows)
        self._db.executemany("INSERT OR IGNORE INTO temp.mine VALUES (?, ?)",
                             [(row[0], index) for index, row in enumerate(rows)])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction taking the write lock at once (waiting ``timeout``)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _recover(self) -> None:
        """Put back to todo the combinations in progress in dead processes of this host."""
        for pid, started in self._db.execute(
                "SELECT DISTINCT pid, started FROM combinations WHERE state = ? AND host = ?",
                (IN_PROGRESS, self.host)).fetchall():
            if not alive(pid, started):
                self._db.execute(
                    "UPDATE combinations SET state = ?, host = NULL, pid = NULL, "
                    "started = NULL WHERE state = ? AND host = ? AND pid = ? AND started = ?",
                    (TODO, IN_PROGRESS, self.host, pid, started))

    def _me(self) -> tuple[int, str]:
        pid = os.getpid()
        if self._owner is None or self._owner[0] != pid:
            self._owner = (pid, start_time(pid))
        return self._owner

    def next(self) -> Combination | None:
        """Claim the first todo combination for this process (atomically: two
        processes never get the same one), or None if none is left."""
        pid, started = self._me()
        with self._transaction():
            self._recover()
            row = self._db.execute(
                "SELECT c.key, c.combination FROM combinations c JOIN temp.mine m "
                "USING (key) WHERE c.state = ? ORDER BY m.position LIMIT 1",
                (TODO,)).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE combinations SET state = ?, host = ?, pid = ?, started = ?, "
                "claimed = ?, finished = NULL, reason = NULL, attempts = attempts + 1 "
                "WHERE key = ?", (IN_PROGRESS, self.host, pid, started, time.time(), row[0]))
            self._claimed.add(row[0])
        combination: Combination = json.loads(row[1])
        return combination

    def _mark(self, combination: Mapping[str, Any], state: State,
              reason: str | None = None) -> None:
        k = key(combination)
        finished = None if state == TODO else time.time()
        with self._transaction():
            self._state(k)  # KeyError if unknown
            self._db.execute(
                "UPDATE combinations SET state = ?, host = NULL, pid = NULL, started = NULL, "
                "finished = ?, reason = ? WHERE key = ?", (state, finished, reason, k))
            self._claimed.discard(k)

    def done(self, combination: Mapping[str, Any]) -> None:
        """Record ``combination`` as done."""
        self._mark(combination, DONE)

    def skip(self, combination: Mapping[str, Any], reason: str | None = None) -> None:
        """Record ``combination`` as skipped: not to be run (``reset("skipped")`` undoes)."""
        self._mark(combination, SKIPPED, reason)

    def failed(self, combination: Mapping[str, Any], reason: str | None = None) -> None:
        """Record that ``combination`` failed, with the reason in one line; it is not
        claimed again unless ``reset("failed")`` puts it back to todo."""
        self._mark(combination, FAILED, reason)

    def cancel(self, combination: Mapping[str, Any]) -> None:
        """Put ``combination`` back to todo, to be claimed again."""
        self._mark(combination, TODO)

    def reset(self, *states: State) -> int:
        """Put back to todo this sweep's combinations in ``states`` (done, skipped or
        failed: those in progress belong to their process); return how many."""
        for state in states:
            if state not in (DONE, SKIPPED, FAILED):
                raise ValueError(f"reset: {state!r} is not one of done, skipped, failed")
        if not states:
            return 0
        marks = ", ".join("?" * len(states))
        with self._transaction():
            return int(self._db.execute(
                f"UPDATE combinations SET state = ?, finished = NULL, reason = NULL "
                f"WHERE state IN ({marks}) AND key IN (SELECT key FROM temp.mine)",
                (TODO, *states)).rowcount)

    @contextlib.contextmanager
    def running(self, combination: Mapping[str, Any],
                on_error: Literal["raise", "failed", "skipped"] = "raise"
                ) -> Iterator[Combination]:
        """Mark ``combination`` done at the end of the block.

        On an exception it goes back to todo and the exception goes on; with
        ``on_error="failed"`` (or ``"skipped"``) an ``Exception`` marks it so, its
        first line as the reason, and is swallowed. Ctrl-C (``KeyboardInterrupt``)
        always puts it back to todo and goes on.
        """
        if on_error not in ("raise", FAILED, SKIPPED):
            raise ValueError(f"on_error: {on_error!r} is not 'raise', 'failed', 'skipped'")
        try:
            yield dict(combination)
        except BaseException as exc:
            if on_error == "raise" or not isinstance(exc, Exception):
                self.cancel(combination)
                raise
            self._mark(combination, on_error, f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self.done(combination)

    def __iter__(self) -> Iterator[Combination]:
        """Claim combinations until none is left; the loop's body marks each (or
        ``with sweeper.running(combination):``), else ``RuntimeError``."""
        while (combination := self.next()) is not None:
            yield combination
            if (k := key(combination)) in self._claimed:
                raise RuntimeError(f"combination {k} was not marked "
                                   f"done, skipped, failed or cancelled")

    def stats(self) -> dict[str, int]:
        """How many of this sweep's combinations are in each state (every state a key)."""
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        with self._lock:
            counts.update(self._db.execute(
                "SELECT state, count(*) FROM combinations WHERE key IN "
                "(SELECT key FROM temp.mine) GROUP BY state").fetchall())
        return counts

    @property
    def remaining(self) -> int:
        """How many combinations are not finished yet: todo or in progress."""
        return sum(n for state, n in self.stats().items() if state in (TODO, IN_PROGRESS))

    def __len__(self) -> int:
        """How many combinations the sweep holds."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM temp.mine").fetchone()[0])

    def rows(self, *states: State) -> list[SweepRow]:
        """This sweep's combinations (those in ``states``, or all) in their order."""
        where = f"WHERE c.state IN ({', '.join('?' * len(states))})" if states else ""
        with self._lock:
            found = self._db.execute(
                f"SELECT {', '.join('c.' + c for c in _COLUMNS.split(', '))} FROM "
                f"combinations c JOIN temp.mine m USING (key) {where} ORDER BY m.position",
                states).fetchall()
        return [SweepRow(json.loads(row[0]), *row[1:]) for row in found]

    def state(self, combination: Mapping[str, Any]) -> State:
        """The state of ``combination`` in the store (``KeyError`` if it has none)."""
        with self._lock:
            return self._state(key(combination))

    def _state(self, k: str) -> State:
        row = self._db.execute("SELECT state FROM combinations WHERE key = ?", (k,)).fetchone()
        if row is None:
            raise KeyError(f"not a combination of {self.database}: {k}")
        return cast(State, row[0])

    def close(self) -> None:
        """Put back to todo what this sweeper claimed and did not mark, and close."""
        with self._lock:
            if self._claimed:
                with self._transaction():
                    self._db.executemany(
                        "UPDATE combinations SET state = ?, host = NULL, pid = NULL, "
                        "started = NULL WHERE key = ? AND state = ? AND pid = ?",
                        [(TODO, k, IN_PROGRESS, os.getpid()) for k in self._claimed])
                self._claimed.clear()
            self._db.close()

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.stats().items() if n)
        return f"<Sweeper {str(self.directory)!r}: {counts or 'empty'}>"
