"""One graph poller per watched namespace, coordinated through Redis.

Where the pollers run: in their own process, `python -m meshgraph.worker`, not inside the web
server. Web processes only serve pages and websockets (the project's rule for streams); a poller
holds open HTTP clients, scrapes proxies every second in embedded mode and reads the cluster in
threads, none of which should compete with websocket traffic or die with a web worker restart. The
price is one more process for `make run` to start.

How they know what to poll: each graph websocket holds a lease in one Redis sorted set (member
"<namespace> <channel>", score = expiry), renewed while it is open and removed when it closes. The
`PollerManager` looks at the set four times a second, starts a poller for each namespace with a
live lease and stops the poller of a namespace whose last lease is gone. A web process that dies
without cleaning up loses its leases when they expire.

Exactly one poller per namespace: before each refresh a poller must hold the namespace's Redis lock
(SET NX PX, renewed by the holder, released by token). If two workers run, or a restarted worker
overlaps a dying one, the second waits and takes over within one lock lifetime if the first stops.
The latest graph is also kept in Redis for a short while, so a new websocket gets one at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WATCHERS_KEY = "meshgraph:watchers"
LOCK_PREFIX = "meshgraph:poller:"
LATEST_PREFIX = "meshgraph:latest:"

# Renew our lock or take a free one; never touch a lock held by someone else.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current == false and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Watchers:
    """Leases of open graph websockets, one per (namespace, watcher)."""

    def __init__(self, redis: Redis, lease_s: float = 30.0) -> None:
        self.redis = redis
        self.lease_s = lease_s

    async def hold(self, namespace: str, watcher: str) -> None:
        """Take or renew the lease; call at least every lease_s / 3 seconds."""
        await self.redis.zadd(WATCHERS_KEY, {f"{namespace} {watcher}": time.time() + self.lease_s})

    async def drop(self, namespace: str, watcher: str) -> None:
        await self.redis.zrem(WATCHERS_KEY, f"{namespace} {watcher}")

    async def namespaces(self) -> set[str]:
        """Namespaces with at least one live lease (expired leases are removed on the way)."""
        now = time.time()
        await self.redis.zremrangebyscore(WATCHERS_KEY, "-inf", now)
        members = await self.redis.zrangebyscore(WATCHERS_KEY, now, "+inf")
        return {member.decode().split(" ", 1)[0] for member in members}


class Latest:
    """The most recent graph (JSON text) of each namespace, kept a few refresh periods."""

    def __init__(self, redis: Redis, ttl_s: float = 10.0) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)

    async def put(self, namespace: str, text: str) -> None:
        await self.redis.set(LATEST_PREFIX + namespace, text, px=self.ttl_ms)

    async def get(self, namespace: str) -> str | None:
        value = await self.redis.get(LATEST_PREFIX + namespace)
        return value.decode() if value is not None else None


class Lock:
    """A per-namespace lock in Redis that only its holder can renew or release."""

    def __init__(self, redis: Redis, ttl_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)

    async def hold(self, namespace: str, token: str) -> bool:
        return bool(await self.redis.eval(_HOLD, 1, LOCK_PREFIX + namespace, token, self.ttl_ms))

    async def release(self, namespace: str, token: str) -> None:
        await self.redis.eval(_RELEASE, 1, LOCK_PREFIX + namespace, token)


class GraphSession(Protocol):
    """One namespace's graph pipeline, open while the namespace is polled.

    A session may also have `async def news(self) -> None`, returning when its metrics changed in a
    way worth a graph before the next period (meshgraph.sources.EmbeddedSource.news).
    """

    async def build(self) -> str:
        """The namespace's current graph, as JSON text."""
        ...

    async def aclose(self) -> None: ...


async def refresh_schedule(
    refresh: Callable[[], Awaitable[None]], refresh_s: float, news: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Call `refresh` every `refresh_s` seconds until cancelled, and at once whenever `news` returns.

    The period runs on absolute time, so a slow refresh does not make every later one late; a refresh
    for news restarts it, so pushes stay at least one news interval (a scrape round) apart.
    """
    start = time.monotonic()
    ticks = 0
    while True:
        await refresh()
        ticks += 1
        ticks = max(ticks, int((time.monotonic() - start) / refresh_s))
        delay = max(0.0, start + ticks * refresh_s - time.monotonic())
        if news is None:
            await asyncio.sleep(delay)
            continue
        try:
            await asyncio.wait_for(news(), delay)
        except TimeoutError:
            continue
        start, ticks = time.monotonic(), 0


OpenSession = Callable[[str], Awaitable[GraphSession]]
Publish = Callable[[str, str], Awaitable[None]]  # (namespace, graph JSON text)


class PollerManager:
    """Runs a poller for each namespace somebody watches, and none for the others."""

    def __init__(
        self,
        redis: Redis,
        open_session: OpenSession,
        publish: Publish,
        refresh_s: float = 2.0,
        watch_interval_s: float = 0.25,
    ) -> None:
        self.watchers = Watchers(redis)
        self.lock = Lock(redis, ttl_s=max(3 * refresh_s, 10.0))
        self.latest = Latest(redis, ttl_s=max(3 * refresh_s, 10.0))
        self.open_session = open_session
        self.publish = publish
        self.refresh_s = refresh_s
        self.watch_interval_s = watch_interval_s
        self.pollers: dict[str, asyncio.Task] = {}

    async def run(self) -> None:
        """Follow the watchers until cancelled; Redis outages are logged and waited out."""
        try:
            while True:
                try:
                    await self.sync()
                except RedisError as exc:
                    log.warning("cannot read the graph watchers from Redis: %s", exc)
                await asyncio.sleep(self.watch_interval_s)
        finally:
            await self.stop_all()

    async def sync(self) -> None:
        """Start and stop pollers to match the namespaces being watched now."""
        wanted = await self.watchers.namespaces()
        for namespace in wanted - self.pollers.keys():
            self.pollers[namespace] = asyncio.create_task(self._poll(namespace), name=f"graph-poller-{namespace}")
            log.info("graph poller started for %s", namespace)
        for namespace in self.pollers.keys() - wanted:
            await self._stop(namespace)
        for namespace, task in list(self.pollers.items()):
            if task.done():  # it failed; the next sync starts it again if still watched
                self.pollers.pop(namespace)
                if not task.cancelled() and task.exception() is not None:
                    log.error("graph poller for %s failed", namespace, exc_info=task.exception())

    async def _stop(self, namespace: str) -> None:
        task = self.pollers.pop(namespace)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being stopped ourselves (SIGTERM): that must not be swallowed here
        except Exception:
            log.exception("graph poller for %s failed while stopping", namespace)
        log.info("graph poller stopped for %s", namespace)

    async def stop_all(self) -> None:
        tasks = list(self.pollers.values())
        self.pollers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, namespace: str) -> None:
        token = uuid.uuid4().hex
        session = await self.open_session(namespace)
        try:
            await refresh_schedule(
                lambda: self._refresh(namespace, token, session), self.refresh_s, getattr(session, "news", None)
            )
        finally:
            try:
                await self.lock.release(namespace, token)
            except RedisError:
                pass  # the lock expires by itself
            await session.aclose()

    async def _refresh(self, namespace: str, token: str, session: GraphSession) -> None:
        try:
            if not await self.lock.hold(namespace, token):
                return  # another process polls this namespace
            text = await session.build()
            await self.latest.put(namespace, text)
        except RedisError as exc:
            log.warning("graph of %s not refreshed, Redis failed: %s", namespace, exc)
            return
        await self.publish(namespace, text)
