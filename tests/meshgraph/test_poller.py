"""Graph pollers run for watched namespaces only, one per namespace across processes, through real Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from meshgraph.live import publish_graph, redis_client
from meshgraph.pipeline import open_graph
from meshgraph.poller import LOCK_PREFIX, PollerManager, Watchers, refresh_schedule
from tests.meshgraph.lab import connect, disconnect, eventually


async def graph_message(socket) -> dict:
    message = json.loads((await socket.receive_output(10))["text"])
    assert message["type"] == "graph"
    return message["graph"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_poller_runs_from_the_first_subscriber_to_the_last(people):
    redis = redis_client()
    manager = PollerManager(redis, open_graph, publish_graph, refresh_s=0.5, watch_interval_s=0.05)
    running = asyncio.create_task(manager.run())
    ns = people.namespace
    try:
        assert not manager.pollers
        student, answer = await connect(people.student, ns)
        assert answer == "websocket.accept"
        await eventually(lambda: ns in manager.pollers, 5, "a poller for the namespace")
        # The real pipeline runs: no Prometheus is configured and the cluster is down, and it says so.
        graph = await graph_message(student)
        assert graph["namespace"] == ns and graph["source"] == "embedded"
        assert graph["status"]["ok"] is False and "unreachable" in graph["status"]["message"]
        # A second watcher gets the latest graph at once and shares the poller.
        instructor, answer = await connect(people.instructor, ns)
        assert answer == "websocket.accept" and (await graph_message(instructor))["namespace"] == ns
        assert list(manager.pollers) == [ns]
        await disconnect(student)
        assert (await graph_message(instructor))["timestamp"] >= graph["timestamp"]  # still refreshed
        assert list(manager.pollers) == [ns]
        await disconnect(instructor)
        await eventually(lambda: not manager.pollers, 5, "the poller stops")
        assert await redis.get(LOCK_PREFIX + ns) is None  # and gave its lock back
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


class CountingSession:
    """A stand-in pipeline that counts its builds."""

    def __init__(self, builds: list[str], name: str) -> None:
        self.builds = builds
        self.name = name

    async def build(self) -> str:
        self.builds.append(self.name)
        return json.dumps({"by": self.name})

    async def aclose(self) -> None:
        pass


@pytest.mark.asyncio
async def test_one_poller_per_namespace_across_processes():
    redis = redis_client()
    ns = f"g-{uuid.uuid4().hex[:8]}"
    builds: list[str] = []
    published: list[str] = []

    async def publish(namespace: str, text: str) -> None:
        published.append(json.loads(text)["by"])

    def manager(name: str) -> PollerManager:
        async def open_session(namespace: str) -> CountingSession:
            return CountingSession(builds, name)

        return PollerManager(redis, open_session, publish, refresh_s=0.1, watch_interval_s=0.05)

    # A lock left behind by a crashed process: nobody polls until it expires.
    await redis.set(LOCK_PREFIX + ns, "crashed", px=1000)
    first, second = manager("first"), manager("second")
    await Watchers(redis).hold(ns, "browser-1")
    tasks = {name: asyncio.create_task(m.run()) for name, m in (("first", first), ("second", second))}
    try:
        await eventually(lambda: ns in first.pollers and ns in second.pollers, 5, "both see it")
        assert builds == []
        await eventually(lambda: len(builds) >= 10, 5, "ten refreshes after the lock expired")
        holder = builds[0]
        assert set(builds) == {holder} and published == builds  # only one of the two polls
        # The holder stops (its process ends): the other takes over at its next refresh.
        tasks.pop(holder).cancel()
        other = "second" if holder == "first" else "first"
        await eventually(lambda: other in builds, 5, "the other process takes over")  # lock TTL: 10 s
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await Watchers(redis).drop(ns, "browser-1")


@pytest.mark.asyncio
async def test_news_refreshes_at_once_and_restarts_the_period():
    refreshed: list[float] = []
    news = asyncio.Event()

    async def refresh() -> None:
        refreshed.append(time.monotonic())

    async def wait_news() -> None:
        await news.wait()
        news.clear()

    task = asyncio.create_task(refresh_schedule(refresh, 0.5, wait_news))
    try:
        await eventually(lambda: len(refreshed) >= 3, 5, "refreshes every period without news")
        # None early: the i-th comes no sooner than i periods after the first (the schedule is on absolute time).
        assert all(t - refreshed[0] > i * 0.5 - 0.05 for i, t in enumerate(refreshed))
        slow = asyncio.create_task(refresh_schedule(refresh, 3600.0, wait_news))  # a period of an hour
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        task = slow
        await eventually(lambda: len(refreshed) >= 4, 5, "the first refresh")
        news.set()
        await eventually(lambda: len(refreshed) >= 5, 5, "a refresh for the news, long before the period")
        news.set()
        await eventually(lambda: len(refreshed) >= 6, 5, "and for the next news")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
