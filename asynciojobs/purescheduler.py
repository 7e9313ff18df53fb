"""Historical import path (asynciojobs 0.21): ``PureScheduler`` and ``set_debug``."""

from .debug import DEBUG, set_debug
from .scheduler import PureScheduler

__all__ = ["DEBUG", "PureScheduler", "set_debug"]
