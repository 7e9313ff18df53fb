"""Run demo.yaml.j2 on the embedded lab: the YAML twin of demo.py.

    .venv/bin/python examples/demo_yaml.py [output-dir]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from apssh import YamlLoader, co_close_ssh_in_scheduler
from apssh.lab import Lab


async def main(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    async with Lab(nodes=3, gateway=True) as lab:
        assert lab.gateway is not None
        env = {"gateway_port": lab.gateway.port, "user": lab.username,
               "key": str(lab.client_key), "known_hosts": str(lab.known_hosts),
               "outdir": str(outdir.resolve())}
        scheduler = YamlLoader(Path(__file__).with_name("demo.yaml.j2")).load(env)
        scheduler.timeout = 30
        scheduler.critical = False
        ok = await scheduler.co_run()
        scheduler.list()
        await co_close_ssh_in_scheduler(scheduler)  # remotest nodes first
    print(f"results: {outdir / 'measures.txt'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))))
