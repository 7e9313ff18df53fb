"""The live view in a real Jupyter kernel: one output of the cell, replaced in place.

A kernel (ipykernel, started with jupyter_client on 127.0.0.1) runs a small scheduler
with a ``Monitor()``; its iopub messages are what a notebook would receive: one
``display_data`` with a display id, then ``update_display_data`` with the same id.
"""

from __future__ import annotations

import json
import queue
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from asynciojobs.monitor import REFRESH, in_jupyter_kernel

TIMEOUT = 60  # seconds, for the kernel to start and for one cell to run

# three jobs, plain coroutines: the opener works a little (several refreshes long),
# then opens the gate the waiter awaits; the closer needs the waiter
SETUP = textwrap.dedent("""
    import asyncio
    from asynciojobs import Job, Scheduler
    from asynciojobs.monitor import Monitor, in_jupyter_kernel

    def scenario():
        gate = asyncio.Event()

        async def opener():
            await asyncio.sleep(1)
            gate.set()

        async def waiter():
            await gate.wait()

        async def closer():
            return "closed"

        waiting = Job(waiter, label="the waiter")
        return Scheduler(Job(opener, label="the opener"), waiting,
                         Job(closer, label="the closer", required=waiting), timeout=60)
""")

LIVE = textwrap.dedent("""
    assert in_jupyter_kernel()
    scheduler = scenario()
    scheduler.subscribe(Monitor(), output=True)
    assert await scheduler.co_orchestrate()
""")

PLAIN = textwrap.dedent("""
    scheduler = scenario()
    scheduler.subscribe(Monitor(live=False), output=True)
    assert await scheduler.co_orchestrate()
""")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A kernel of this interpreter (a kernel spec of our own, so that no kernel
    installed elsewhere on the machine is picked), on 127.0.0.1; its client."""
    specs = tmp_path_factory.mktemp("kernels")
    (specs / "nepi-test").mkdir()
    (specs / "nepi-test" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nepi-ng test", "language": "python"}))
    manager = KernelManager(kernel_name="nepi-test", ip="127.0.0.1", transport="tcp",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]))
    client = None
    try:
        manager.start_kernel()
        assert manager.ip == "127.0.0.1"
        assert manager.get_connection_info()["ip"] == "127.0.0.1"
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=TIMEOUT)
        yield client
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def execute(client: Any, code: str) -> list[dict[str, Any]]:
    """Run ``code`` in a cell; the iopub messages it caused (but the kernel's status
    and the code's echo), up to the kernel going idle again (the cell's end); fails
    with the traceback if the cell raised."""
    msg_id = client.execute(code)
    deadline = time.monotonic() + TIMEOUT
    messages = []
    while True:
        try:
            msg = client.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
        except queue.Empty:
            pytest.fail(f"the cell did not end in {TIMEOUT}s; got {messages}")
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
        elif msg["msg_type"] != "execute_input":  # the outputs, and errors
            messages.append(msg)
    reply = client.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", "\n".join(
        "\n".join(error["traceback"]) for error in errors) or reply["content"]
    return messages


def running(text: str) -> int:
    match = re.search(r"(\d+) running", text)
    assert match, text
    return int(match[1])


def test_in_a_notebook_the_view_is_one_output_updated_in_place(kernel: Any) -> None:
    execute(kernel, SETUP)
    started = time.monotonic()
    messages = execute(kernel, LIVE)
    took = time.monotonic() - started
    types = [msg["msg_type"] for msg in messages]

    # nothing on the cell's streams: no plain lines, no widget warning
    assert "stream" not in types, [m["content"] for m in messages if m["msg_type"] == "stream"]
    # displayed once, then only updated, all with one display id
    assert types[0] == "display_data", types
    assert set(types[1:]) == {"update_display_data"}, types
    shown = [msg["content"] for msg in messages]
    display_id = shown[0]["transient"]["display_id"]
    assert display_id
    assert all(content["transient"]["display_id"] == display_id for content in shown)
    texts = [content["data"]["text/plain"] for content in shown]

    # first the jobs waiting, then some running (the opener works for a second,
    # redrawn every REFRESH), at the end the run's outcome and every job done
    assert "0 done, 0 running, 0 failed, 3 waiting" in texts[0]
    assert any(running(text) > 0 for text in texts[1:-1]), texts
    final = texts[-1]
    assert final.startswith("run ok: 3 done, 0 running, 0 failed, 0 waiting"), final
    assert "left" in final  # the scheduler's timeout
    for label in ("the opener", "the waiter", "the closer"):
        assert label in final
    assert final.count("✔") == 3 and "▶" not in final and "·" not in final
    html = shown[-1]["data"]["text/html"]
    assert html.startswith("<pre") and "3 done, 0 running, 0 failed" in html
    assert "the closer" in html

    # the refresh rate is bound: one draw per REFRESH at most, plus the first and last
    assert len(texts) <= took / REFRESH + 2, (len(texts), took)


def test_in_a_notebook_plain_lines_go_to_the_cell_and_nothing_is_displayed(
        kernel: Any) -> None:
    execute(kernel, SETUP)
    messages = execute(kernel, PLAIN)
    types = {msg["msg_type"] for msg in messages}
    assert not types & {"display_data", "update_display_data"}, types
    printed = "".join(msg["content"]["text"] for msg in messages
                      if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout")
    lines = [line.split(" ", 1)[1] for line in printed.splitlines()]
    assert "started  1 the opener" in lines and "ok       3 the closer" in lines
    assert lines[-1].startswith("run ok (3 done, 0 running, 0 failed, 0 waiting")


def test_outside_a_kernel_no_kernel_is_seen() -> None:
    assert not in_jupyter_kernel()  # pytest: IPython may be imported, with no kernel

