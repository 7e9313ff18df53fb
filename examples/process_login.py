"""A serial-console-like login, driven with expect() and write(), on the embedded lab.

    .venv/bin/python examples/process_login.py

A small local program plays the console: it prints ``login:``, then
``password:``, then a prompt, and answers each line typed at it. The script
talks to it through a ``Process`` on a lab node (ssh on 127.0.0.1), as execo's
serial-port example does: nothing but loopback is used.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from apssh import HostFormatter
from apssh.lab import Lab

#: the "console": a login, a password, then a prompt that echoes what it is told
CONSOLE = r"""
printf 'console login: '
read user
echo "$user"  # a terminal echoes what is typed (not the password)
printf 'password: '
read password
echo
[ "$password" = secret ] || { echo 'Login incorrect'; exit 1; }
echo "Welcome, $user"
while printf '%s@console$ ' "$user" && read line; do
    echo "$line"
    case $line in
        exit) echo logout; exit 0 ;;
        *) echo "you typed: $line" ;;
    esac
done
"""


async def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="process-login-"))
    console = workdir / "console.sh"
    console.write_text(CONSOLE)
    async with Lab(nodes=1) as lab:
        node = lab.ssh_node("node1", formatter=HostFormatter(verbose=False))
        # kills the console on the way out, whatever happens inside
        async with node.process(f"sh {console}") as serial:
            await serial.expect(r"login:\s*$", timeout=10)
            await serial.write("alice\n")
            await serial.expect(r"^password:\s*$", timeout=10)
            await serial.write("secret\n")
            prompt = await serial.expect(r"^(?P<user>\w+)@console\$ $", timeout=10)
            print(f"logged in as {prompt['user']}")
            await serial.write("uptime\n")
            answer = await serial.expect(r"^you typed: (?P<what>.*)$", timeout=10)
            print(f"the console heard: {answer['what']}")
            await serial.expect(r"@console\$ $", timeout=10)
            await serial.write("exit\n")
            status = await serial.wait(timeout=10)
        print(f"console exit status: {status}")
        await node.close()
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
