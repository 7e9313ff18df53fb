"""apssh: ssh jobs for asynciojobs, parallel ssh commands and YAML scenarios.

The ssh layer is built by later issues; for now the package only carries the
distribution's version.
"""

from asynciojobs._version import __version__

__all__ = ["__version__"]
