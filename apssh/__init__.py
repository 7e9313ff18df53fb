"""apssh: ssh jobs for asynciojobs, parallel ssh commands and YAML scenarios.

Public names are imported on first use, so that ``import apssh`` (and the
command-line tools' ``--help``) stay quick: asyncssh is only loaded when needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asynciojobs._lazy import lazy_names
from asynciojobs._version import __version__ as __version__

_WHERE = {
    "ApsshError": "errors",
    "AuthenticationError": "errors",
    "BadNameError": "names",
    "Capture": "deferred",
    "CaptureFormatter": "formatters",
    "ColonFormatter": "formatters",
    "CommandFailedError": "errors",
    "CommandTimeoutError": "errors",
    "ConnectError": "errors",
    "ConnectRefusedError": "errors",
    "ConnectTimeoutError": "errors",
    "ConnectionLostError": "errors",
    "CopyError": "errors",
    "Deferred": "deferred",
    "ExpectEndError": "process",
    "ExpectTimeoutError": "process",
    "ForwardError": "forward",
    "ForwardJob": "forward",
    "GatewayError": "errors",
    "Get": "groupcopy",
    "Group": "group",
    "GroupExpectError": "group",
    "HostFormatter": "formatters",
    "HostKeyError": "errors",
    "HostUnknownError": "errors",
    "JobTimeoutError": "errors",
    "KeyFileError": "errors",
    "MissingFileError": "errors",
    "LocalNode": "nodes",
    "Node": "node",
    "Process": "process",
    "Pull": "filecopy",
    "Put": "groupcopy",
    "Push": "filecopy",
    "RawFormatter": "formatters",
    "Run": "commands",
    "ScenarioError": "loader",
    "YamlLoader": "loader",
    "RunScript": "commands",
    "RunString": "commands",
    "Service": "service",
    "SshJob": "sshjob",
    "SshJobCollector": "sshjob",
    "SshJobScript": "sshjob",
    "SshNode": "nodes",
    "SshProxy": "sshproxy",
    "SudoError": "errors",
    "SubdirFormatter": "formatters",
    "TailFormatter": "formatters",
    "TerminalFormatter": "formatters",
    "TimeColonFormatter": "formatters",
    "TimeHostFormatter": "formatters",
    "Variables": "deferred",
    "close_ssh_in_scheduler": "topology",
    "co_close_ssh_in_scheduler": "topology",
    "import_private_key": "keys",
    "load_agent_keys": "keys",
    "load_key_files": "keys",
    "load_private_keys": "keys",
    "topology_as_dotfile": "topology",
    "topology_as_pngfile": "topology",
    "topology_dot": "topology",
    "topology_graph": "topology",
}

__all__ = sorted([*_WHERE, "__version__"], key=str.lower)


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())


if TYPE_CHECKING:  # the names, for type checkers and editors
    from .commands import Run as Run
    from .commands import RunScript as RunScript
    from .commands import RunString as RunString
    from .deferred import Capture as Capture
    from .deferred import Deferred as Deferred
    from .deferred import Variables as Variables
    from .errors import ApsshError as ApsshError
    from .errors import AuthenticationError as AuthenticationError
    from .errors import CommandFailedError as CommandFailedError
    from .errors import CommandTimeoutError as CommandTimeoutError
    from .errors import ConnectError as ConnectError
    from .errors import ConnectionLostError as ConnectionLostError
    from .errors import ConnectRefusedError as ConnectRefusedError
    from .errors import ConnectTimeoutError as ConnectTimeoutError
    from .errors import CopyError as CopyError
    from .errors import GatewayError as GatewayError
    from .errors import HostKeyError as HostKeyError
    from .errors import HostUnknownError as HostUnknownError
    from .errors import JobTimeoutError as JobTimeoutError
    from .errors import KeyFileError as KeyFileError
    from .errors import MissingFileError as MissingFileError
    from .errors import SudoError as SudoError
    from .filecopy import Pull as Pull
    from .filecopy import Push as Push
    from .formatters import CaptureFormatter as CaptureFormatter
    from .formatters import ColonFormatter as ColonFormatter
    from .formatters import HostFormatter as HostFormatter
    from .formatters import RawFormatter as RawFormatter
    from .formatters import SubdirFormatter as SubdirFormatter
    from .formatters import TailFormatter as TailFormatter
    from .formatters import TerminalFormatter as TerminalFormatter
    from .formatters import TimeColonFormatter as TimeColonFormatter
    from .formatters import TimeHostFormatter as TimeHostFormatter
    from .forward import ForwardError as ForwardError
    from .forward import ForwardJob as ForwardJob
    from .group import Group as Group
    from .group import GroupExpectError as GroupExpectError
    from .groupcopy import Get as Get
    from .groupcopy import Put as Put
    from .keys import import_private_key as import_private_key
    from .keys import load_agent_keys as load_agent_keys
    from .keys import load_key_files as load_key_files
    from .keys import load_private_keys as load_private_keys
    from .loader import ScenarioError as ScenarioError
    from .loader import YamlLoader as YamlLoader
    from .names import BadNameError as BadNameError
    from .node import Node as Node
    from .nodes import LocalNode as LocalNode
    from .nodes import SshNode as SshNode
    from .process import ExpectEndError as ExpectEndError
    from .process import ExpectTimeoutError as ExpectTimeoutError
    from .process import Process as Process
    from .service import Service as Service
    from .sshjob import SshJob as SshJob
    from .sshjob import SshJobCollector as SshJobCollector
    from .sshjob import SshJobScript as SshJobScript
    from .sshproxy import SshProxy as SshProxy
    from .topology import close_ssh_in_scheduler as close_ssh_in_scheduler
    from .topology import co_close_ssh_in_scheduler as co_close_ssh_in_scheduler
    from .topology import topology_as_dotfile as topology_as_dotfile
    from .topology import topology_as_pngfile as topology_as_pngfile
    from .topology import topology_dot as topology_dot
    from .topology import topology_graph as topology_graph
