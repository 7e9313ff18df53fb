"""Deferred values: commands whose text is only known when they run.

``Capture`` stores a command's stdout into ``Variables``; a ``Deferred`` command
is a Jinja2 template rendered from those variables at run time (names still
unknown are left as ``{{ name }}``, so a graph drawn before the run shows them).
"""

from __future__ import annotations

from typing import Any

_env: Any = None


def _environment() -> Any:
    """Jinja2's environment, made on first use (importing jinja2 costs start-up time)."""
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(undefined=jinja2.DebugUndefined, keep_trailing_newline=True)
    return _env


class Variables(dict[str, Any]):
    """A dict whose keys also read as attributes (a missing one reads as ``''``)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name, "")

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Deferred:
    """A Jinja2 template rendered with ``variables`` each time it is turned into a str."""

    def __init__(self, template: str, variables: Variables) -> None:
        self.template = template
        self.variables = variables
        self._compiled: Any = None

    def __str__(self) -> str:
        if self._compiled is None:
            self._compiled = _environment().from_string(self.template)
        return str(self._compiled.render(**self.variables))

    def __repr__(self) -> str:
        return f"Deferred({self.template!r})"

    def replace(self, old: str, new: str) -> Deferred:
        """A new Deferred with ``old`` replaced by ``new`` in the template."""
        return Deferred(self.template.replace(old, new), self.variables)

    def dup_from_string(self, template: str) -> Deferred:
        """A new Deferred of ``template``, with the same variables."""
        return Deferred(template, self.variables)


class Capture:
    """Where a command's stdout goes: ``variables[varname]`` (one trailing newline off);
    with ``binary``, the bytes exactly as the command wrote them."""

    def __init__(self, varname: str, variables: Variables, *, binary: bool = False) -> None:
        self.varname = varname
        self.variables = variables
        self.binary = binary

    def store(self, output: str | bytes) -> None:
        """Record a command's captured stdout."""
        if isinstance(output, bytes):
            self.variables[self.varname] = output
        else:
            self.variables[self.varname] = output[:-1] if output.endswith("\n") else output
