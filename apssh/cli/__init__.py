"""The command-line wing: ``apssh``, ``appush``, ``appull`` and ``nepi-ng``.

Nothing in the library imports this package. ``Apssh().main(*argv)`` (and
``Appush``, ``Appull``) parse ``argv`` and return the exit code (see
``errors.py`` for the table). Only argparse and the target grammar are imported
up front: ``--help``, ``--version`` and input errors stay quick.
"""

from .copies import Appull, Appush, appull_main, appush_main
from .tools import Apssh, Tool, apssh_main

__all__ = ["Appull", "Appush", "Apssh", "Tool", "appull_main", "appush_main", "apssh_main"]
