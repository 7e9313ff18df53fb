"""The status legend printed by ``repr_short()``, in unicode or in ASCII.

Four slots: critical, outcome (raised / went fine), lifecycle (done / running /
scheduled / idle), forever. The unicode set is used when the output stream can
encode it, the ASCII set otherwise.
"""

from __future__ import annotations

import sys
from typing import NamedTuple


class Legend(NamedTuple):
    """One symbol per status a job can show."""

    critical: str
    not_critical: str
    raised: str
    went_fine: str
    no_outcome: str
    done: str
    running: str
    scheduled: str
    idle: str
    forever: str
    finite: str


UNICODE = Legend("⚠", " ", "★", "☉", " ", "☓", "↺", "⚑", "⚐", "∞", " ")
ASCII = Legend("!", " ", ":(", ":)", "  ", "x", "o", ".", ">", "8", " ")

_by_encoding: dict[str, Legend] = {}


def legend() -> Legend:
    """The legend that the current ``sys.stdout`` can print (cached per encoding)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    found = _by_encoding.get(encoding)
    if found is None:
        try:
            "".join(UNICODE).encode(encoding)
            found = UNICODE
        except (UnicodeEncodeError, LookupError):
            found = ASCII
        _by_encoding[encoding] = found
    return found
