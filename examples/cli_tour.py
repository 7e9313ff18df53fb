"""A tour of the apssh, appush and appull commands, on the embedded lab.

    .venv/bin/python examples/cli_tour.py [WORKDIR]

Starts ``nepi-ng lab --gateway`` (five nodes fit01..fit05, reachable only through
the lab's gateway, described in its ssh config), then runs the commands shown in
docs/cli.md against it, each printed before its output. The commands are called
in-process (``Apssh().main(*argv)``), exactly as the shell would run them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from apssh.cli import Appull, Appush, Apssh

TOOLS = {"apssh": Apssh, "appush": Appush, "appull": Appull}


def start_lab(workdir: Path) -> subprocess.Popen[str]:
    """``nepi-ng lab`` in the background, once it says it is ready."""
    lab = subprocess.Popen([sys.executable, "-m", "apssh.cli.nepi", "lab", "--gateway",
                            "--workdir", str(workdir / "lab")],
                           stdout=subprocess.PIPE, text=True)
    assert lab.stdout is not None
    for line in lab.stdout:
        if line.startswith("Ctrl-C to stop"):
            return lab
    raise SystemExit("the lab did not start")


def shell(config: Path, line: str) -> int:
    """Print a command line as typed, run it, print its exit code."""
    print(f"$ {line}", flush=True)
    tool, *argv = shlex.split(line)
    code = TOOLS[tool]().main("-F", str(config), *argv)
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"(exit code {code})", flush=True)
    return code


def main() -> int:
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="cli-tour-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lab = start_lab(workdir)
    config = workdir / "lab" / "ssh_config"
    out = workdir / "probe"
    try:
        # live output, then the same gathered
        shell(config, "apssh -t fit[01-05] 'echo I am $LAB_NODE'")
        shell(config, "apssh -b -t fit[01-05] 'uname -s; [ $LAB_NODE = fit03 ] && echo odd; true'")
        shell(config, "apssh --diff -t fit[01-05] "
                      "'uname -s; [ $LAB_NODE = fit03 ] && echo odd; true'")
        # per-host values; other braces stay as written
        shell(config, "apssh -t fit[01-03] "
                      "\"echo {host} is number {rank}; echo x y | awk '{print NF}'\"")
        # a flag file on two nodes only, pushed from here
        flag = workdir / "flag"
        flag.write_text("ready\n")
        shell(config, f"appush -t fit02,fit04 {flag} @:")
        # probe every node; the marks say which have the flag...
        shell(config, f"apssh -o {out} -m -t fit[01-05] 'test -f flag'")
        # ...and are targets themselves
        shell(config, f"apssh -t {out}/0ok 'echo flagged'")
        shell(config, f"apssh -t fit[01-05] -x {out}/0ok -n")
        shell(config, f"appull -t {out}/0ok @:flag '{workdir}/pulled/{{host}}/'")
        print(sorted(str(p.relative_to(workdir)) for p in (workdir / "pulled").rglob("flag")))
        # failures: one line each, then the summary; 255 when a host is unreachable
        shell(config, "apssh -t fit[01-02],gateway:1 'exit 3'")
    finally:
        lab.terminate()
        lab.wait(10)
        if lab.stdout is not None:
            lab.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
