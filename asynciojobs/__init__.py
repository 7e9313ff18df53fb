"""asynciojobs: a pure-asyncio scheduler of jobs with requirements.

Describe jobs (``Job`` around a coroutine, or your own ``AbstractJob``), say which
require which, put them in a ``Scheduler`` and ``run()`` it: each job starts as
soon as the jobs it requires are done.
"""

from ._version import __version__
from .debug import set_debug
from .engine import Engine
from .errors import (
    CycleError,
    InvalidScenarioError,
    JobNotFinishedError,
    JobReuseError,
    SchedulerError,
    SchedulerTimeoutError,
)
from .job import AbstractJob, Job
from .printjob import PrintJob
from .scheduler import PureScheduler, Scheduler, SchedulerJob
from .sequence import Sequence
from .watch import Watch

__all__ = [
    "AbstractJob",
    "CycleError",
    "Engine",
    "InvalidScenarioError",
    "Job",
    "JobNotFinishedError",
    "JobReuseError",
    "PrintJob",
    "PureScheduler",
    "Scheduler",
    "SchedulerError",
    "SchedulerJob",
    "SchedulerTimeoutError",
    "Sequence",
    "Watch",
    "__version__",
    "set_debug",
]
