"""The traffic worker: `python -m traffic.worker` runs the generators of the runs stored in Redis.

Generators run here, outside the web processes, so browser fan-out never competes with the scheduler
(and a saturated generator never slows pages down). Any number of workers may run; they coordinate
through Redis only (keys in `traffic.store`):

- Leases. A worker runs a run only while it holds the run's lease, a key with a short expiry that it
  renews every scan. When a worker dies its leases expire and another worker claims the runs at its next
  scan: with the defaults (2.5 s lease, 0.25 s scan) a run resumes under 3 s after a SIGKILL. Window
  messages are appended by a script that first checks the lease, so a worker that lost one (stalled,
  partitioned) can never publish over the new owner.
- Sharing. Workers heartbeat into a sorted set; each claims runs only up to its fair share,
  ceil(runs / live workers), and hands back a run when it holds more than that, so a worker that joins
  later takes over part of the load.
- Control. `traffic.control` writes run records and publishes the run id on a pub/sub channel, which
  wakes the workers for an immediate scan; a scan compares record versions and applies new streams and
  rates to the running generator, or stops it.

Each closed window becomes one JSON message per run, numbered by the run's sequence counter, kept in the
run's capped history stream and sent to the run's channel-layer group (`traffic.stream`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import math
import os
import random
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from traffic.generator import Generator, Options, WindowSet
from traffic.specs import stream_from_json
from traffic.store import APPEND_WINDOW, RELEASE_LEASE, RENEW_LEASE, RUNNING, Keys, RunRecord

log = logging.getLogger("traffic.worker")

Publisher = Callable[[str, int, str], Awaitable[None]]


@dataclass
class _Slot:
    record: RunRecord
    generator: Generator
    task: asyncio.Task[None]


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    prefix: str = "traffic"
    lease_ms: int = 2500
    scan_interval: float = 0.25
    history_seconds: int = 600
    stopped_ttl: int = 3600


class WindowAppender:
    """Numbers and stores window messages (only under the run's lease, see APPEND_WINDOW), then publishes.

    Every run's window closes on the same wall-clock boundary, so a worker holding many runs appends
    many messages at once; those queued in the same turn of the event loop go to Redis as one pipeline
    rather than one round trip each.
    """

    def __init__(self, redis: aioredis.Redis, config: WorkerConfig, worker_id: str, publish: Publisher) -> None:
        self._redis = redis
        self._script = redis.register_script(APPEND_WINDOW)
        self._keys = Keys(config.prefix)
        self._config = config
        self._worker_id = worker_id
        self._publish = publish
        self._pending: list[tuple[str, str, float, asyncio.Future[list | None]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def emit(self, run_id: str, body: str, window: float) -> int | None:
        """Append `body` (a JSON object without its seq) to the run's history and publish it; returns the
        message's sequence number, or None if this worker does not hold the run's lease."""
        future: asyncio.Future[list | None] = asyncio.get_running_loop().create_future()
        if not self._pending:  # the flush runs after everything already due in this turn of the loop
            flush = asyncio.create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        self._pending.append((run_id, body, window, future))
        result = await future
        if result is None:
            return None
        seq, text = int(result[0]), result[1]
        await self._publish(run_id, seq, text)
        return seq

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        k, cfg = self._keys, self._config
        pipe = self._redis.pipeline(transaction=False)
        for run_id, body, window, _ in batch:
            await self._script(
                keys=[k.lease(run_id), k.seq(run_id), k.history(run_id)],
                args=[
                    self._worker_id,
                    body,
                    math.ceil(cfg.history_seconds / window),
                    cfg.history_seconds + cfg.stopped_ttl,
                ],
                client=pipe,
            )
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every waiting window learns it
            results = [exc] * len(batch)
        for (*_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class Worker:
    def __init__(self, config: WorkerConfig, publish: Publisher, worker_id: str | None = None) -> None:
        self.config = config
        self.keys = Keys(config.prefix)
        self.id = worker_id or f"w{os.getpid()}-{secrets.token_hex(3)}"
        # redis-py 8's asyncio pool raises once 100 connections are busy; many runs closing their windows
        # at the same boundary append concurrently, so wait for a connection instead.
        pool = aioredis.BlockingConnectionPool.from_url(
            config.redis_url, max_connections=32, timeout=None, decode_responses=True
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._appender = WindowAppender(self._redis, config, self.id, publish)
        self._renew = self._redis.register_script(RENEW_LEASE)
        self._release = self._redis.register_script(RELEASE_LEASE)
        self._slots: dict[str, _Slot] = {}
        self._broken: set[tuple[str, int]] = set()  # (run, version) whose record cannot be run
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Scan until `stop` is set, then stop every generator and hand their runs back."""
        listener = asyncio.create_task(self._listen())
        log.info("traffic worker %s started (prefix %s)", self.id, self.config.prefix)
        try:
            while not stop.is_set():
                try:
                    await self._scan()
                except (aioredis.RedisError, OSError) as exc:
                    log.warning("scan failed: %s", exc)
                self._wake.clear()
                waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
                _, pending = await asyncio.wait(
                    waiters, timeout=self.config.scan_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
        finally:
            listener.cancel()
            await asyncio.gather(*(self._stop_slot(run_id, release=True) for run_id in list(self._slots)))
            await self._redis.zrem(self.keys.workers, self.id)
            await self._redis.aclose()
            log.info("traffic worker %s stopped", self.id)

    async def _listen(self) -> None:
        """Wake the scan as soon as a control call announces a change (the scan also runs on a timer)."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.control)
                    while True:
                        # A bounded wait: an idle blocking read would hit redis-py 8's 5 s socket timeout.
                        if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0):
                            self._wake.set()
            except (aioredis.RedisError, OSError) as exc:
                log.warning("control channel lost (%s); retrying", exc)
                await asyncio.sleep(1)

    async def _scan(self) -> None:
        k, r, cfg = self.keys, self._redis, self.config
        now_ms = int(time.time() * 1000)
        pipe = r.pipeline()
        pipe.zadd(k.workers, {self.id: now_ms})
        # A worker whose heartbeat is a lease old has also lost its leases (both are written every scan), so
        # it stops counting towards the fair share exactly when its runs become free to take.
        pipe.zremrangebyscore(k.workers, "-inf", now_ms - cfg.lease_ms)
        pipe.zcard(k.workers)
        pipe.smembers(k.active)
        _, _, workers, active = await pipe.execute()

        await self._refresh_own(active)

        share = math.ceil(len(active) / max(workers, 1))
        candidates = [run_id for run_id in active if run_id not in self._slots]
        random.shuffle(candidates)  # workers scanning at once should not all race for the same run
        for run_id in candidates:
            if len(self._slots) >= share:
                break
            if await r.set(k.lease(run_id), self.id, nx=True, px=cfg.lease_ms):
                raw = await r.get(k.run(run_id))
                record = RunRecord.from_json(raw) if raw else None
                if record is None or record.state != RUNNING or (run_id, record.version) in self._broken:
                    await self._release(keys=[k.lease(run_id)], args=[self.id])
                    continue
                try:
                    self._start(record)
                except (ValueError, TypeError, KeyError):
                    log.exception("cannot run run %s (version %d); skipping it", run_id, record.version)
                    self._broken.add((run_id, record.version))
                    await self._release(keys=[k.lease(run_id)], args=[self.id])
        if len(self._slots) > share:  # hand the newest extra run to a less loaded worker
            newest = max(self._slots.values(), key=lambda s: s.record.created)
            log.info("handing run %s to another worker (%d runs, share %d)", newest.record.id, len(self._slots), share)
            await self._stop_slot(newest.record.id, release=True)

    async def _refresh_own(self, active: set[str]) -> None:
        """Renew the leases of our runs and apply changes to their records; drop what is no longer ours."""
        if not self._slots:
            return
        k = self.keys
        ids = list(self._slots)
        pipe = self._redis.pipeline(transaction=False)
        pipe.mget([k.run(run_id) for run_id in ids])
        for run_id in ids:
            await self._renew(keys=[k.lease(run_id)], args=[self.id, self.config.lease_ms], client=pipe)
        raws, *renewed = await pipe.execute()
        for run_id, raw, held in zip(ids, raws, renewed, strict=True):
            record = RunRecord.from_json(raw) if raw else None
            if run_id not in active or record is None or record.state != RUNNING:
                log.info("run %s stopped", run_id)
                await self._stop_slot(run_id, release=True)
                continue
            if not held:
                log.warning("lost the lease of run %s; another worker runs it now", run_id)
                await self._stop_slot(run_id, release=False)
                continue
            slot = self._slots[run_id]
            if record.version != slot.record.version:
                slot.generator.set_streams([stream_from_json(s) for s in record.streams])
                slot.record = record
                log.info("run %s updated to version %d", run_id, record.version)

    def _start(self, record: RunRecord) -> None:
        opts = record.options
        options = Options(
            timeout=float(opts.get("timeout", 10.0)),
            max_in_flight=int(opts.get("max_in_flight", 512)),
            window=float(opts.get("window", 1.0)),
            transport=str(opts.get("transport", "aiohttp")),
        )
        run_id = record.id

        async def on_window(windows: WindowSet) -> None:
            await self._emit(run_id, options.window, windows)

        generator = Generator(record.target, [stream_from_json(s) for s in record.streams], on_window, options)
        task = asyncio.create_task(generator.run())
        task.add_done_callback(lambda t, run_id=run_id: self._ended(run_id, t))
        self._slots[run_id] = _Slot(record, generator, task)
        log.info("running run %s (%g req/s to %s)", run_id, record.total_rate, record.target)

    def _ended(self, run_id: str, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("generator of run %s failed", run_id, exc_info=task.exception())
            slot = self._slots.get(run_id)
            if slot is not None and slot.task is task:
                asyncio.get_running_loop().create_task(self._stop_slot(run_id, release=True))

    async def _stop_slot(self, run_id: str, release: bool) -> None:
        slot = self._slots.get(run_id)
        if slot is None:
            return
        slot.generator.stop()
        try:
            await asyncio.wait_for(asyncio.shield(slot.task), 10)
        except Exception:  # the failure was logged by _ended; a stuck one is cancelled
            slot.task.cancel()
        self._slots.pop(run_id, None)
        if release:
            await self._release(keys=[self.keys.lease(run_id)], args=[self.id])

    async def _emit(self, run_id: str, window: float, windows: WindowSet) -> None:
        """Number, store and publish one window message; a worker without the lease stops the run."""
        body = {
            "type": "window",
            "run": run_id,
            "worker": self.id,
            "start": windows.start,
            "end": windows.end,
            "streams": {name: w.to_json() for name, w in windows.streams.items()},
        }
        try:
            if await self._appender.emit(run_id, orjson.dumps(body).decode(), window) is None:
                slot = self._slots.get(run_id)
                if slot is not None and not slot.task.done():
                    log.warning("run %s: lease lost, not publishing", run_id)
                    slot.generator.stop()
        except Exception:
            log.warning("could not publish a window of run %s", run_id, exc_info=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the traffic generators stored in Redis.")
    parser.add_argument(
        "--lease-ms", type=int, default=2500, help="lease length (a dead worker's runs resume after it)"
    )
    parser.add_argument("--scan-interval", type=float, default=0.25, help="seconds between scans")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshconsole.settings")
    from django.conf import settings

    # Only the settings (Redis URL, channel layer, logging) are needed: without django.setup() and its
    # app imports a replacement worker starts in about half the time, which a failover waits for.
    logging.config.dictConfig(settings.LOGGING)

    from traffic import conf
    from traffic.generator import prepare
    from traffic.stream import publish_window

    prepare()

    config = WorkerConfig(
        redis_url=settings.REDIS_URL,
        prefix=conf.get("TRAFFIC_KEY_PREFIX"),
        lease_ms=args.lease_ms,
        scan_interval=args.scan_interval,
        history_seconds=conf.get("TRAFFIC_HISTORY_SECONDS"),
        stopped_ttl=conf.get("TRAFFIC_STOPPED_TTL"),
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Worker(config, publish_window).run(stop)

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
