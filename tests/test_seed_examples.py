"""The examples A to F of the asynciojobs seed README, with the historical Engine.

They behave as the seed shows (return values, results, which jobs ran, the order
of what they print); listings follow asynciojobs 0.21's format.
"""

from __future__ import annotations

import asyncio

from asynciojobs import Engine, Job, Sequence


async def mycoro(timeout):
    print(f"-> mycoro({timeout})")
    await asyncio.sleep(timeout)
    print(f"<- mycoro({timeout})")
    return 1000 * timeout


async def boom(n):
    await asyncio.sleep(n)
    raise Exception(f"boom after {n}s")


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_example_a_runs_in_parallel(capsys):
    a1, a2, a3 = Job(mycoro(0.1)), Job(mycoro(0.2)), Job(mycoro(0.25))
    ea = Engine(a1, a2, a3)
    assert ea.orchestrate() is True
    assert lines(capsys) == [
        "-> mycoro(0.1)", "-> mycoro(0.2)", "-> mycoro(0.25)",
        "<- mycoro(0.1)", "<- mycoro(0.2)", "<- mycoro(0.25)",
    ]
    assert [a1.result(), a2.result(), a3.result()] == [100.0, 200.0, 250.0]


def test_example_b_requirements(capsys):
    b1, b2, b3 = (Job(mycoro(0.1), label="b1"), Job(mycoro(0.2), label="b2"),
                  Job(mycoro(0.25)))
    b2.requires(b1)
    eb = Engine(b1, b2, b3)
    assert eb.orchestrate() is True
    assert lines(capsys) == [
        "-> mycoro(0.1)", "-> mycoro(0.25)", "<- mycoro(0.1)",
        "-> mycoro(0.2)", "<- mycoro(0.25)", "<- mycoro(0.2)",
    ]
    for job in eb.jobs:
        print(job)
    assert lines(capsys) == [
        "  ☉ ☓   <Job `b1`> [[ -> 100.0]] ",
        "  ☉ ☓   <Job `b2`> [[ -> 200.0]] requires={1}",
        "  ☉ ☓   <Job `Job[mycoro (...)]`> [[ -> 250.0]] ",
    ]
    assert b1.is_done() is True
    assert b3.result() == 250.0


def test_example_b_prime_with_a_sequence(capsys):
    bp1, bp2 = Job(mycoro(0.1), label="bp1"), Job(mycoro(0.2), label="bp2")
    other = Job(mycoro(0.25))
    ebp = Engine(Sequence(bp1, bp2), other)
    assert ebp.orchestrate() is True
    out = lines(capsys)
    # the seed printed the two starts in hash order; here they follow insertion order
    assert sorted(out[:2]) == ["-> mycoro(0.1)", "-> mycoro(0.25)"]
    assert out[2:] == ["<- mycoro(0.1)", "-> mycoro(0.2)", "<- mycoro(0.25)", "<- mycoro(0.2)"]
    assert list(bp2.required) == [bp1]


def test_example_c_forever_job(capsys):
    message_bus: asyncio.Queue[str] = asyncio.Queue()

    async def monitor_loop(bus):
        while True:
            message = await bus.get()
            print(f"BUS: {message}")

    async def mycoro_bus(timeout, bus):
        await bus.put(f"-> mycoro({timeout})")
        await asyncio.sleep(timeout)
        await bus.put(f"<- mycoro({timeout})")
        return 10 * timeout

    c1, c2, c3, c4 = (Job(mycoro_bus(0.2, message_bus), label="c1"),
                      Job(mycoro_bus(0.4, message_bus), label="c2"),
                      Job(mycoro_bus(0.3, message_bus), label="c3"),
                      Job(monitor_loop(message_bus), forever=True, label="monitor"))
    c3.requires(c1)
    ec = Engine(c1, c2, c3, c4)
    assert ec.orchestrate() is True
    assert lines(capsys) == [
        "BUS: -> mycoro(0.2)", "BUS: -> mycoro(0.4)", "BUS: <- mycoro(0.2)",
        "BUS: -> mycoro(0.3)", "BUS: <- mycoro(0.4)", "BUS: <- mycoro(0.3)",
    ]
    ec.list()
    assert lines(capsys) == [
        "1   ☉ ☓   <Job `c1`> [[ -> 2.0]] ",
        "2   ☉ ☓   <Job `c2`> [[ -> 4.0]] ",
        "3   ☉ ↺ ∞ <Job `monitor`> [not done] ",
        "4   ☉ ☓   <Job `c3`> [[ -> 3.0]] requires={1}",
    ]


def test_example_d_global_timeout(capsys):
    async def forever():
        for i in range(100000):
            print(f"forever {i}")
            await asyncio.sleep(0.1)

    j = Job(forever(), forever=True)
    e = Engine(j)
    assert e.orchestrate(timeout=0.25) is False
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # the seed shows 3 lines (at 0, 0.1 and 0.2 s); a loaded machine may leave time for 2
    assert lines == ["forever 0", "forever 1", "forever 2"][: len(lines)] and len(lines) >= 2
    assert "TIMED OUT after 0.25s" in err
    assert repr(j) == "  ☉ ↺ ∞ <Job `Job[forever (...)]`> [not done] "


def test_example_e_non_critical_jobs(capsys):
    e1 = Job(mycoro(0.2))
    e2 = Job(boom(0.2), label="boom")
    e3 = Job(mycoro(0.3))
    e2.requires(e1)
    e3.requires(e2)
    e = Engine(e1, e2, e3)
    print("orch:", e.orchestrate())
    e.list()
    assert lines(capsys) == [
        "-> mycoro(0.2)", "<- mycoro(0.2)", "-> mycoro(0.3)", "<- mycoro(0.3)", "orch: True",
        "1   ☉ ☓   <Job `Job[mycoro (...)]`> [[ -> 200.0]] ",
        "2   ★ ☓   <Job `boom`> !! exception => Exception:boom after 0.2s!! requires={1}",
        "3   ☉ ☓   <Job `Job[mycoro (...)]`> [[ -> 300.0]] requires={2}",
    ]
    assert str(e2.raised_exception()) == "boom after 0.2s"


def test_example_f_critical_jobs(capsys):
    e1 = Job(mycoro(0.2))
    e2 = Job(boom(0.2), label="boom", critical=True)
    e3 = Job(mycoro(0.3))
    e2.requires(e1)
    e3.requires(e2)
    e = Engine(e1, e2, e3)
    print("orchestrate:", e.orchestrate())
    e.list()
    assert lines(capsys) == [
        "-> mycoro(0.2)", "<- mycoro(0.2)", "orchestrate: False",
        "1   ☉ ☓   <Job `Job[mycoro (...)]`> [[ -> 200.0]] ",
        "2 ⚠ ★ ☓   <Job `boom`> !! CRIT. EXC. => Exception:boom after 0.2s!! requires={1}",
        "3     ⚐   <Job `Job[mycoro (...)]`> [not done] requires={2}",
    ]
    e.close_idle_jobs() if hasattr(e, "close_idle_jobs") else e3.close()


def test_sequence_listing(capsys):
    e = Engine(Sequence(Job(mycoro(1), label="j1"), Job(mycoro(2), label="lab2"),
                        Job(mycoro(3), label="tag3")))
    e.list()
    assert lines(capsys) == [
        "1     ⚐   <Job `j1`> [not done] ",
        "2     ⚐   <Job `lab2`> [not done] requires={1}",
        "3     ⚐   <Job `tag3`> [not done] requires={2}",
    ]
    for job in e.jobs:
        job.close()


def test_historical_save_as_dotfile_and_rain_check(tmp_path):
    e = Engine(Job(mycoro(0.01), label="only"))
    assert e.rain_check() is True
    e.save_as_dotfile(str(tmp_path / "e.dot"))
    assert "digraph" in (tmp_path / "e.dot").read_text()
    e.orchestrate()
