"""A small HTTP target with controllable delay and status, for tests, benchmarks and demos on loopback.

Every path answers; query parameters shape the answer, in the spirit of fortio's echo server:

  status=500:10,503:5   answer 500 for 10 % of requests, 503 for 5 %, else 200 (`status=404` always 404)
  delay=250:20,5        wait 250 ms for 20 % of requests, else 5 ms (milliseconds; a bare value is 100 %)
  close=5               drop the connection without answering for 5 % of requests

`POST /_stall?ms=1000` makes every request that arrives in the next second wait until that second is
over (a server hiccup, as in wrk2's coordinated-omission demonstration); `GET /_stats` counts requests.
Random choices come from one seeded generator, so a test's status mix is reproducible.

Run: python -m traffic.echo [--host 127.0.0.1] [--port 0] [--seed 1]; it prints `listening on URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from aiohttp import web

STATS = web.AppKey("stats", dict)
RANDOM = web.AppKey("random", random.Random)
STALL = web.AppKey("stall", list)


def parse_choices(spec: str) -> list[tuple[float, float]]:
    """'500:10,503:5' -> [(500, 10.0), (503, 5.0)]; a value without ':' has weight 100."""
    out = []
    for part in spec.split(","):
        value, _, weight = part.partition(":")
        out.append((float(value), float(weight) if weight else 100.0))
    return out


def pick(choices: list[tuple[float, float]], draw: float) -> float | None:
    """The value whose cumulative percentage range holds `draw` (0–100), else None."""
    edge = 0.0
    for value, weight in choices:
        edge += weight
        if draw < edge:
            return value
    return None


async def answer(request: web.Request) -> web.StreamResponse:
    app = request.app
    stats = app[STATS]
    stats["requests"] += 1
    await request.read()
    loop = asyncio.get_running_loop()
    stall_until = app[STALL][0]
    if stall_until > loop.time():
        await asyncio.sleep(stall_until - loop.time())
    rng = app[RANDOM]
    query = request.query
    if "close" in query and rng.random() * 100 < float(query["close"]):
        stats["closed"] += 1
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # no response: the client sees the connection drop
    if "delay" in query:
        delay = pick(parse_choices(query["delay"]), rng.random() * 100)
        if delay:
            await asyncio.sleep(delay / 1000.0)
    status = 200
    if "status" in query:
        status = int(pick(parse_choices(query["status"]), rng.random() * 100) or 200)
    stats[str(status)] = stats.get(str(status), 0) + 1
    return web.Response(status=status, text="ok\n")


async def stall(request: web.Request) -> web.Response:
    loop = asyncio.get_running_loop()
    request.app[STALL][0] = loop.time() + float(request.query.get("ms", "1000")) / 1000.0
    return web.json_response({"stalled_ms": float(request.query.get("ms", "1000"))})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS])


def make_app(seed: int = 1) -> web.Application:
    app = web.Application()
    app[STATS] = {"requests": 0, "closed": 0}
    app[RANDOM] = random.Random(seed)
    app[STALL] = [0.0]
    app.router.add_post("/_stall", stall)
    app.router.add_get("/_stats", stats)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def serve(host: str, port: int, seed: int) -> None:
    runner = web.AppRunner(make_app(seed), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("the echo target only listens on loopback addresses")
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        (uvloop.run if uvloop else asyncio.run)(serve(args.host, args.port, args.seed))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
