"""DotStyle: graphviz attributes of a node or a cluster, printed the way DOT wants them."""

from __future__ import annotations


def dot_quote(value: object) -> str:
    """Render ``value`` as a double-quoted DOT string (``"`` and ``\\`` escaped)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class DotStyle(dict[str, object]):
    """A dict of DOT attributes; its repr is ``key="value",key="value"``.

    A list value (such as ``style``) is joined with commas.
    """

    def __repr__(self) -> str:
        parts = []
        for key, value in self.items():
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            parts.append(f"{key}={dot_quote(value)}")
        return ",".join(parts)

    __str__ = __repr__
