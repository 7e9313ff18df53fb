"""``python -m apssh.cli``: the ``apssh`` command."""

from .tools import apssh_main

apssh_main()
