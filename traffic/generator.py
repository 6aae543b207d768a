"""The open-loop HTTP generator: several streams at fixed rates against one target, measured in windows.

Scheduling follows wrk2 and vegeta rather than closed-loop tools (hey, fortio): request n of a stream is
due at `anchor + n / rate` whatever happened to earlier requests, so a slow server never slows the
sending down and nothing is hidden from the percentiles (coordinated omission). One dispatcher wakes at
the next due time, but at most every `tick` seconds, and launches everything due, each request stamped
with its own intended time: Python timers are only good to about a millisecond, the stamps are exact.

Per request three instants are kept: intended (from the plan), started (just before the client call)
and completed (body read). Latency = completed - intended is what users see (it includes any lateness
of the generator); service time = completed - started is the uncorrected figure; send lag = started -
intended is the generator's own health. A request that cannot go out because `max_in_flight` requests
are outstanding, or whose due time is already older than the timeout (after a stall of the process), is
counted as dropped, never silently delayed.

The HTTP client is one httpx.AsyncClient per run whose pool is as large as the in-flight cap (so the
pool never queues and httpcore's keep-alive limit never churns connections). Its transport is
switchable: aiohttp (httpx-aiohttp, the default: about half the CPU per request) or httpcore (stock).
No Django here: the worker process embeds this module.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import httpx

from traffic.windows import StreamWindow

TRANSPORTS = ("aiohttp", "httpcore")

# Codes recorded instead of an HTTP status when no response arrived.
TIMEOUT = "timeout"
CONNECT_ERROR = "connect_error"
DISCONNECTED = "disconnected"
OTHER_ERROR = "error"


@dataclass(frozen=True)
class Stream:
    """One kind of request sent at its own rate (req/s; 0 pauses the stream)."""

    name: str
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    rate: float = 1.0


@dataclass(frozen=True)
class Options:
    """Per-run knobs. `timeout` bounds each request as a whole (connect to last body byte)."""

    timeout: float = 10.0
    max_in_flight: int = 512
    window: float = 1.0
    transport: str = "aiohttp"
    tick: float = 0.002
    # How long after a window's end it is closed: responses completed just before the boundary are
    # often processed a little after it.
    grace: float = 0.01
    # Idle pooled connections are closed before typical server idle timeouts (uvicorn: 5 s).
    keepalive_expiry: float = 4.0

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}; use one of {', '.join(TRANSPORTS)}")
        if self.timeout <= 0 or self.max_in_flight < 1 or self.window <= 0:
            raise ValueError("timeout and window must be positive and max_in_flight at least 1")


@dataclass
class WindowSet:
    """All streams' windows for one time slice, handed to the generator's `on_window` callback."""

    index: int
    start: float
    end: float
    streams: dict[str, StreamWindow]


WindowSink = Callable[[WindowSet], Awaitable[None] | None]


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class StatelessClient(httpx.AsyncClient):
    """An AsyncClient without a cookie jar. Generated requests must not change with earlier responses
    (a session-affinity cookie would quietly pin the traffic), and skipping httpx's cookie extraction,
    which builds urllib and email objects for every response, saves about 30 % of the client's own CPU
    per request (110 -> 77 us, measured with a no-op transport)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, value: object) -> None:
        pass


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process. Building one loads the CA bundle, which takes up to a
    second of CPU on a busy machine; per run, that would stall every generator sharing the loop."""
    return httpx.create_ssl_context()


def prepare() -> None:
    """Do the slow one-time set-up before serving, instead of on the event loop when the first run starts:
    the TLS context and the aiohttp transport's imports (about a second each on a busy machine). Then
    freeze what exists so far (modules, settings) out of the garbage collector's reach: otherwise every
    full collection scans it all, a 25-50 ms stall of the loop measured as send lag."""
    ssl_context()
    import httpx_aiohttp  # noqa: F401

    gc.freeze()


def make_client(options: Options) -> httpx.AsyncClient:
    """The run's client: pool sized to the in-flight cap, no proxies from the environment, no redirects.

    httpx logs every request at INFO; at hundreds of requests a second that costs more CPU than the
    request itself wherever logging is configured at INFO (Django's settings do), so it is silenced.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    limits = httpx.Limits(
        max_connections=options.max_in_flight,
        max_keepalive_connections=options.max_in_flight,
        keepalive_expiry=options.keepalive_expiry,
    )
    transport: httpx.AsyncBaseTransport
    if options.transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(verify=ssl_context(), limits=limits, trust_env=False)
    else:
        transport = httpx.AsyncHTTPTransport(verify=ssl_context(), limits=limits, trust_env=False, retries=0)
    return StatelessClient(
        transport=transport, timeout=httpx.Timeout(options.timeout), trust_env=False, follow_redirects=False
    )


def classify_error(exc: BaseException) -> str:
    """The pseudo-status for a failed attempt. The aiohttp transport maps every aiohttp connection error to
    httpx.ConnectTimeout, so the original exception (the cause) is looked at first."""
    import aiohttp

    for err in (exc.__cause__, exc):
        if isinstance(err, aiohttp.ClientConnectorError):
            return CONNECT_ERROR
        if isinstance(err, aiohttp.ServerTimeoutError | TimeoutError):
            return TIMEOUT
        if isinstance(err, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return DISCONNECTED
    if isinstance(exc, httpx.ConnectError):
        return CONNECT_ERROR
    if isinstance(exc, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return DISCONNECTED
    return OTHER_ERROR


class _Plan:
    """The absolute schedule of one stream: the n-th send after `anchor` is due at anchor + n / rate."""

    __slots__ = ("stream", "url", "headers", "anchor", "n", "next_due")

    def __init__(self, stream: Stream, base: httpx.URL, now: float) -> None:
        self.stream = stream
        self.url = base.join(stream.path) if stream.path else base
        self.headers = httpx.Headers(list(stream.headers))
        # A plan starts now, its first send one interval later.
        self.anchor = now
        self.n = 1
        self.next_due = now + 1.0 / stream.rate if stream.rate > 0 else math.inf

    def advance(self) -> float:
        """Consume the next due time and return it."""
        due = self.next_due
        self.n += 1
        self.next_due = self.anchor + self.n / self.stream.rate
        return due


class Generator:
    """One run: `run()` sends until `stop()`; every window is handed to `on_window`.

    Times are `time.monotonic()` seconds (uvloop's loop clock only has millisecond resolution); windows
    are labelled with wall-clock times.
    """

    def __init__(
        self,
        target: str,
        streams: Iterable[Stream],
        on_window: WindowSink,
        options: Options | None = None,
    ) -> None:
        self.options = options or Options()
        self.base = httpx.URL(target)
        self._streams = {s.name: s for s in streams}
        self._on_window = on_window
        self._plans: dict[str, _Plan] = {}
        self._windows: dict[int, dict[str, StreamWindow]] = {}
        self._first_open = 0  # windows below this index have been handed out
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._offset = 0.0  # wall clock minus monotonic clock
        self._started_wall = 0.0

    # --- control (call from the loop the generator runs in)

    def stop(self) -> None:
        self._stopped = True
        self._wake()

    def set_rate(self, name: str, rate: float) -> None:
        """Change one stream's rate; its schedule restarts now so the new plan is consistent."""
        if name not in self._streams:
            raise KeyError(name)
        self.set_streams([replace(s, rate=rate) if s.name == name else s for s in self._streams.values()])

    def set_streams(self, streams: Iterable[Stream]) -> None:
        """Replace the streams; unchanged ones keep their schedules, changed or new ones start now."""
        self._streams = {s.name: s for s in streams}
        if self._client is None:  # not running yet: run() builds the plans
            return
        now = time.monotonic()
        old = self._plans
        self._plans = {
            name: old[name] if name in old and old[name].stream == stream else _Plan(stream, self.base, now)
            for name, stream in self._streams.items()
        }
        self._wake()

    # --- running

    async def run(self) -> None:
        self._client = make_client(self.options)  # first, so its set-up time is not owed to the plan
        self._offset = time.time() - time.monotonic()
        now = time.monotonic()
        self._started_wall = now + self._offset
        self._first_open = self._index(now)
        self._plans = {name: _Plan(s, self.base, now) for name, s in self._streams.items()}
        closer = asyncio.create_task(self._close_windows())
        try:
            await self._dispatch()
        finally:
            closer.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(closer, *self._tasks, return_exceptions=True)
            await self._client.aclose()
            await self._emit_until(self._index(time.monotonic()) + 1, final=True)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        opts = self.options
        while not self._stopped:
            now = time.monotonic()
            for name, plan in self._plans.items():
                while plan.next_due <= now:
                    intended = plan.advance()
                    if now - intended > opts.timeout or self._in_flight >= opts.max_in_flight:
                        self._window(now)[name].dropped += 1
                        continue
                    self._in_flight += 1
                    task = loop.create_task(self._request(plan, intended))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            next_due = min((p.next_due for p in self._plans.values()), default=math.inf)
            await self._sleep(max(next_due - time.monotonic(), opts.tick))

    async def _sleep(self, delay: float) -> None:
        """Sleep `delay` seconds (forever if infinite) unless woken by a control call; no task is created,
        as asyncio.wait_for would, since this runs hundreds of times a second."""
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = None if delay == math.inf else loop.call_later(delay, _resolve, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter)

    async def _request(self, plan: _Plan, intended: float) -> None:
        stream = plan.stream
        started = time.monotonic()
        window = self._window(started)[stream.name]
        window.sent += 1
        window.send_lag.record(int((started - intended) * 1e6))
        try:
            request = httpx.Request(stream.method, plan.url, headers=plan.headers, content=stream.body or None)
            try:
                async with asyncio.timeout(self.options.timeout):
                    response = await self._client.send(request)  # type: ignore[union-attr]
                code = str(response.status_code)
            except TimeoutError:
                code = TIMEOUT
            except (httpx.HTTPError, OSError) as exc:
                code = classify_error(exc)
            completed = time.monotonic()
            self._window(completed)[stream.name].record_result(
                code, int((completed - intended) * 1e6), int((completed - started) * 1e6)
            )
        finally:
            self._in_flight -= 1

    # --- windows

    def _index(self, mono: float) -> int:
        return math.floor((mono + self._offset) / self.options.window)

    def _window(self, mono: float) -> dict[str, StreamWindow]:
        """The open windows (per stream) that an event at `mono` belongs to; an event that arrives after
        its window was handed out goes into the oldest open one."""
        return self._slot(max(self._index(mono), self._first_open))

    def _slot(self, index: int) -> dict[str, StreamWindow]:
        windows = self._windows.get(index)
        if windows is None:
            windows = self._windows[index] = {}
        if len(windows) < len(self._streams):
            width = self.options.window
            start = max(index * width, self._started_wall)
            for name in self._streams.keys() - windows.keys():
                windows[name] = StreamWindow(start=start, end=(index + 1) * width)
        return windows

    async def _close_windows(self) -> None:
        grace = self.options.grace
        while True:
            boundary = (self._first_open + 1) * self.options.window - self._offset + grace
            await asyncio.sleep(max(boundary - time.monotonic(), 0))
            await self._emit_until(self._index(time.monotonic() - grace))

    async def _emit_until(self, index: int, final: bool = False) -> None:
        """Hand out every window below `index` (all current streams, zero-filled), oldest first. The final
        call (at stop) ends the last window at the stop time."""
        now_wall = time.monotonic() + self._offset
        width = self.options.window
        while self._first_open < index:
            current = self._first_open
            windows = self._slot(current)
            del self._windows[current]
            self._first_open = current + 1
            for name, window in windows.items():
                if final:
                    window.end = min(window.end, now_wall)
                stream = self._streams.get(name)
                window.rate = stream.rate if stream else 0.0
                window.in_flight = self._in_flight
            result = self._on_window(WindowSet(current, current * width, (current + 1) * width, windows))
            if inspect.isawaitable(result):
                await result


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
