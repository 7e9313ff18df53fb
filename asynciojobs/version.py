"""Historical import path (asynciojobs 0.21): ``__version__``."""

from ._version import __version__

__all__ = ["__version__"]
