"""asynciojobs: a pure-asyncio scheduler of jobs with requirements.

Describe jobs (``Job`` around a coroutine, or your own ``AbstractJob``), say which
require which, put them in a ``Scheduler`` and ``run()`` it: each job starts as
soon as the jobs it requires are done.

Public names are imported on first use, so that importing the package (and the
command-line tools' ``--help``) does not load asyncio until it is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names
from ._version import __version__ as __version__

_WHERE = {
    "AbstractJob": "job",
    "CycleError": "errors",
    "Engine": "engine",
    "InvalidScenarioError": "errors",
    "Job": "job",
    "JobNotFinishedError": "errors",
    "JobReuseError": "errors",
    "PrintJob": "printjob",
    "PureScheduler": "scheduler",
    "Readiness": "readiness",
    "ReadinessError": "readiness",
    "ReadinessTimeoutError": "readiness",
    "Scheduler": "scheduler",
    "SchedulerError": "errors",
    "SchedulerJob": "scheduler",
    "SchedulerTimeoutError": "errors",
    "Sequence": "sequence",
    "Sweeper": "sweep",
    "SignalExit": "errors",
    "Watch": "watch",
    "combinations": "sweep",
    "parse_parameter": "sweep",
    "set_debug": "debug",
}

__all__ = sorted([*_WHERE, "__version__"], key=str.lower)


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())


if TYPE_CHECKING:  # the names, for type checkers and editors
    from .debug import set_debug as set_debug
    from .engine import Engine as Engine
    from .errors import CycleError as CycleError
    from .errors import InvalidScenarioError as InvalidScenarioError
    from .errors import JobNotFinishedError as JobNotFinishedError
    from .errors import JobReuseError as JobReuseError
    from .errors import SchedulerError as SchedulerError
    from .errors import SchedulerTimeoutError as SchedulerTimeoutError
    from .errors import SignalExit as SignalExit
    from .job import AbstractJob as AbstractJob
    from .job import Job as Job
    from .printjob import PrintJob as PrintJob
    from .readiness import Readiness as Readiness
    from .readiness import ReadinessError as ReadinessError
    from .readiness import ReadinessTimeoutError as ReadinessTimeoutError
    from .scheduler import PureScheduler as PureScheduler
    from .scheduler import Scheduler as Scheduler
    from .scheduler import SchedulerJob as SchedulerJob
    from .sequence import Sequence as Sequence
    from .sweep import Sweeper as Sweeper
    from .sweep import combinations as combinations
    from .sweep import parse_parameter as parse_parameter
    from .watch import Watch as Watch
