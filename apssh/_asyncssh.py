"""asyncssh, imported with a quick search for liboqs.

At import time asyncssh looks for liboqs (post-quantum key exchanges) with
``ctypes.util.find_library``, which on Linux runs ``ldconfig -p``, then ``gcc``
and ``ld`` when the library is absent: about 50 ms of CPU, and as much wall time,
for every process that imports apssh. During that import, liboqs is looked for
in ``LD_LIBRARY_PATH`` and the usual library directories instead, which finds it
where its packages install it. Every apssh module takes asyncssh from here.
"""

from __future__ import annotations

import os
import sys

_MULTIARCH = getattr(sys.implementation, "_multiarch", "")
LIB_DIRS = ("/usr/local/lib", f"/usr/lib/{_MULTIARCH}", f"/lib/{_MULTIARCH}", "/usr/lib",
            "/lib", "/usr/lib64", "/lib64")
QUICK_NAMES = ("oqs", "liboqs")


def find_liboqs() -> str | None:
    """The path of liboqs, or None."""
    import glob

    dirs = [*os.environ.get("LD_LIBRARY_PATH", "").split(":"), *LIB_DIRS]
    for directory in filter(None, dirs):
        found = sorted(glob.glob(os.path.join(directory, "liboqs.so*")))
        if found:
            return found[-1]
    return None


def _import() -> None:
    if "asyncssh" in sys.modules or not sys.platform.startswith("linux"):
        return
    import ctypes.util

    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        return find_liboqs() if name in QUICK_NAMES else original(name)

    ctypes.util.find_library = find_library
    try:
        import asyncssh  # noqa: F401
    finally:
        ctypes.util.find_library = original


_import()

import asyncssh  # noqa: E402

__all__ = ["asyncssh"]
