"""Helpers for the graph's cluster tests: paced traffic, waiting on graphs, finding nodes and edges."""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from meshgraph.cluster import ClusterReader, scrape_targets
from meshgraph.sources import Target

Key = tuple[str, str]  # (label, nodeType), e.g. ("kvstore", "service")


@dataclass
class Traffic:
    """Requests at a fixed rate against absolute time (no drift), from a thread of their own.

    The sender runs its own event loop, so the test's loop (the embedded source's scrapes, graph
    builds) keeps its timing however busy sending gets, as it would in the graph worker's process.
    """

    url: str
    rate: float
    keepalive: bool = True  # False: a new connection per request (a policy change applies at once)
    codes: Counter = field(default_factory=Counter)
    answered: list[float] = field(default_factory=list)  # wall-clock times of the responses
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    async def _run(self) -> None:
        sent = 0
        pending: set[asyncio.Task] = set()
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=20 if self.keepalive else 0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def one() -> None:
                try:
                    self.codes[(await client.get(self.url)).status_code] += 1
                    self.answered.append(time.time())
                except httpx.HTTPError:
                    self.codes["error"] += 1

            started = time.monotonic()
            while not self._stop.is_set():
                await asyncio.sleep(max(0.0, started + sent / self.rate - time.monotonic()))
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.gather(*pending, return_exceptions=True)

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._thread.start()
        return self

    async def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        await asyncio.to_thread(self._thread.join, 15)

    def served(self, start: float, end: float) -> float:
        """Requests per second answered between two wall-clock times: what the proxies counted then."""
        return sum(start <= t <= end for t in list(self.answered)) / (end - start)


async def eventually(check: Callable[[], object], timeout: float, what: str | Callable[[], str], interval: float = 0.1):
    """Call (and await) `check()` until it returns something truthy; fail after `timeout` s saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what}")
        await asyncio.sleep(interval)


def index(graph: dict) -> tuple[dict[Key, dict], dict[tuple[Key, Key], dict]]:
    """The graph's nodes by (label, type) and edges by their ends."""
    nodes = {(n["data"]["label"], n["data"]["nodeType"]): n["data"] for n in graph["elements"]["nodes"]}
    by_id = {data["id"]: key for key, data in nodes.items()}
    edges = {(by_id[e["data"]["source"]], by_id[e["data"]["target"]]): e["data"] for e in graph["elements"]["edges"]}
    return nodes, edges


def rate(edge: dict | None) -> float:
    return edge["traffic"]["rates"].get("http", 0.0) if edge else 0.0


def close_to(value: float, expected: float, rel: float) -> bool:
    return math.isclose(value, expected, rel_tol=rel)


def targets_of(reader: ClusterReader) -> Callable[[], Awaitable[list[Target]]]:
    async def targets() -> list[Target]:
        return scrape_targets(await reader.snapshot())

    return targets


def binomial_bounds(n: float, p: float, z: float = 3.29) -> tuple[float, float]:
    """The 99.9% interval, in percent, of the share of n trials that succeed with probability p."""
    half = z * math.sqrt(p * (1 - p) / max(n, 1.0))
    return 100 * (p - half), 100 * (p + half)


# The lab's objects along the request path, as the graph names them (service nodes are injected).
GATEWAY: Key = ("splitdim-istio", "workload")
SPLITDIM_SVC: Key = ("splitdim", "service")
SPLITDIM: Key = ("splitdim", "workload")
KVSTORE_SVC: Key = ("kvstore", "service")
KVSTORE: Key = ("kvstore", "workload")
UNKNOWN: Key = ("unknown", "unknown")
MESH_PATH = ((GATEWAY, SPLITDIM_SVC), (SPLITDIM_SVC, SPLITDIM), (SPLITDIM, KVSTORE_SVC), (KVSTORE_SVC, KVSTORE))


def websocket(user: object, namespace: str):
    """An ASGI communicator for /ws/graph/<namespace>/ as `user` (what AuthMiddlewareStack would give)."""
    from asgiref.testing import ApplicationCommunicator
    from channels.routing import URLRouter

    from meshgraph.routing import websocket_urlpatterns

    path = f"/ws/graph/{namespace}/"
    scope = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "user": user,
    }
    return ApplicationCommunicator(URLRouter(websocket_urlpatterns), scope)


async def connect(user: object, namespace: str) -> tuple[object, str]:
    """Open the graph websocket; returns the communicator and "websocket.accept" or "websocket.close"."""
    socket = websocket(user, namespace)
    await socket.send_input({"type": "websocket.connect"})
    return socket, (await socket.receive_output(10))["type"]


async def disconnect(socket) -> None:
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(10)
