"""The open-loop generator against the echo target (a separate process on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gc
import math
import socket
from collections.abc import Iterator

import httpx
import pytest

from traffic.generator import CONNECT_ERROR, DISCONNECTED, TIMEOUT, Generator, Options, Stream, WindowSet, prepare
from traffic.windows import merge_windows

from .support import EchoTarget, await_for

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module", autouse=True)
def prepared() -> None:
    """The one-time set-up (imports, TLS context) happens before any test's timing starts, as in a worker."""
    prepare()


async def run_windows(
    target: str,
    streams: list[Stream],
    windows: int,
    options: Options | None = None,
    during=None,
) -> list[WindowSet]:
    """Run a generator until it has handed out `windows` windows; `during(generator, collected)` runs
    alongside (to change rates, stall the server, ...)."""
    collected: list[WindowSet] = []
    generator = Generator(target, streams, collected.append, options or Options())
    task = asyncio.create_task(generator.run())
    try:
        if during is not None:
            await during(generator, collected)
        await await_for(lambda: len(collected) >= windows or task.done(), timeout=windows * 1.0 + 10)
    finally:
        generator.stop()
        await task
    return collected


def full(collected: list[WindowSet], name: str) -> list:
    """The stream's complete windows: not the first (the run began inside it) nor the last (stop)."""
    return [w.streams[name] for w in collected[1:-1]]


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield sock.getsockname()[1]


@pytest.mark.slow
async def test_rate_200_for_10_seconds_is_held(echo: EchoTarget) -> None:
    # The worker process freezes its start-up heap out of the collector's way (generator.prepare); this
    # test process carries the heap of the whole test session, whose full collections would stall the
    # loop for tens of milliseconds. Measure the generator, not the test runner's garbage.
    gc.collect()
    gc.disable()
    try:
        collected = await run_windows(echo.url, [Stream("s", rate=200)], windows=11)
    finally:
        gc.enable()
    windows = [w.streams["s"] for w in collected]
    duration = windows[-1].end - windows[0].start
    assert duration >= 10
    merged = merge_windows(windows)
    assert merged.sent / duration == pytest.approx(200, rel=0.01), [w.sent for w in windows]
    # Open loop: sends keep to the schedule instead of drifting behind it. The figure (p99 <= 5 ms)
    # is a measurement, printed by benchmarks/traffic_rate.py: on this shared VM single 50-90 ms stalls of
    # the test process come and go, so the test only bounds the lag far below a closed loop's seconds.
    assert merged.send_lag.value_at(99) <= 100_000, merged.send_lag.summary()
    assert merged.codes == {"200": merged.completed} and merged.dropped == 0
    assert all(w.rate == 200 for w in windows)


async def test_a_one_second_stall_shows_in_the_p99_of_its_window(echo: EchoTarget) -> None:
    """wrk2's demonstration: latency counts from the intended send time, so a stall cannot hide."""

    async def stall_once(generator: Generator, collected: list[WindowSet]) -> None:
        await await_for(lambda: len(collected) >= 2, timeout=15)
        async with httpx.AsyncClient() as client:
            (await client.post(f"{echo.url}/_stall?ms=1000")).raise_for_status()

    collected = await run_windows(echo.url, [Stream("s", rate=200)], windows=6, during=stall_once)
    windows = full(collected, "s")
    worst = max(windows, key=lambda w: w.latency.value_at(99))
    assert worst.latency.value_at(99) >= 900_000, worst.latency.summary()
    assert sum(1 for w in windows if w.latency.value_at(99) >= 900_000) <= 2  # once, not everywhere
    # Open loop: sending went on through the stall instead of waiting for the answers.
    assert merge_windows(windows).sent / sum(w.duration for w in windows) == pytest.approx(200, rel=0.03)


async def test_share_of_500s_is_within_the_binomial_interval(echo: EchoTarget) -> None:
    collected = await run_windows(echo.url, [Stream("s", path="/mix?status=500:10", rate=400)], windows=6)
    merged = merge_windows([w.streams["s"] for w in collected])
    n = merged.completed
    assert n >= 1000 and set(merged.codes) == {"200", "500"}
    share = merged.codes["500"] / n
    half_width = 3.2905 * math.sqrt(0.1 * 0.9 / n)  # two-sided 99.9 %
    assert abs(share - 0.1) <= half_width, (share, n)


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
async def test_failures_are_counted_as_their_own_codes(transport: str, echo: EchoTarget, closed_port: int) -> None:
    options = Options(timeout=0.3, transport=transport)
    streams = [Stream("slow", path="/?delay=2000", rate=20), Stream("dropped", path="/?close=100", rate=20)]
    collected = await run_windows(echo.url, streams, windows=3, options=options)
    slow = merge_windows([w.streams["slow"] for w in collected])
    dropped = merge_windows([w.streams["dropped"] for w in collected])
    assert set(slow.codes) == {TIMEOUT} and slow.codes[TIMEOUT] >= 20
    assert 290_000 <= slow.latency.value_at(50) <= 600_000
    assert set(dropped.codes) == {DISCONNECTED} and dropped.codes[DISCONNECTED] >= 20

    refused = await run_windows(f"http://127.0.0.1:{closed_port}", [Stream("s", rate=20)], 3, options)
    merged = merge_windows([w.streams["s"] for w in refused])
    assert set(merged.codes) == {CONNECT_ERROR} and merged.codes[CONNECT_ERROR] >= 20


async def test_in_flight_cap_drops_and_counts(echo: EchoTarget) -> None:
    options = Options(max_in_flight=5, timeout=5)
    collected = await run_windows(echo.url, [Stream("s", path="/?delay=1000", rate=40)], 4, options)
    windows = [w.streams["s"] for w in collected]
    merged = merge_windows(windows)
    assert max(w.in_flight for w in windows) <= 5
    assert merged.dropped >= 80  # about 35 of every 40 sends find the cap full
    assert merged.sent + merged.dropped == pytest.approx(40 * sum(w.duration for w in windows), abs=3)
    assert merged.completed <= merged.sent


async def test_rate_changes_take_effect_and_streams_are_independent(echo: EchoTarget) -> None:
    async def speed_up(generator: Generator, collected: list[WindowSet]) -> None:
        await await_for(lambda: len(collected) >= 2, timeout=15)
        generator.set_rate("a", 100)

    streams = [Stream("a", rate=40), Stream("b", path="/b", headers=(("user", "test"),), rate=20)]
    collected = await run_windows(echo.url, streams, windows=5, during=speed_up)
    assert abs(collected[1].streams["a"].sent - 40) <= 1
    last = collected[-2]
    assert last.streams["a"].rate == 100 and abs(last.streams["a"].sent - 100) <= 2
    assert all(abs(w.streams["b"].sent - 20) <= 1 for w in collected[1:-1])
    with pytest.raises(KeyError):
        Generator(echo.url, streams, lambda w: None).set_rate("missing", 1)


async def test_httpcore_transport_holds_a_modest_rate(echo: EchoTarget) -> None:
    """The stock transport works too (its CPU cost per request makes it the slower choice: see benchmarks)."""
    collected = await run_windows(echo.url, [Stream("s", rate=30)], windows=4, options=Options(transport="httpcore"))
    windows = full(collected, "s")
    assert windows and all(abs(w.sent - 30) <= 2 for w in windows)
    assert all(w.codes == {"200": w.completed} for w in windows)
