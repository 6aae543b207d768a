"""The graph's way to the browsers: a channel-layer group per namespace, fed through meshconsole.events.

`meshconsole.events.Event` addresses a user and their instructors; a graph is addressed to whoever
watches a namespace (its student and any of their instructors, checked when they subscribe). So a
`GraphEvent` keeps Event's publish path (best effort, one JSON text for all receivers) and only
names its own audience, the group `graph.<namespace>`. The graph JSON is serialised once and
embedded as is: {"type": "graph", "graph": {...}}.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

import orjson
from django.conf import settings
from redis.asyncio import Redis

from meshconsole.events import Event, apublish

GRAPH_EVENT = "graph"


def graph_group(namespace: str) -> str:
    return f"graph.{namespace}"


@dataclass(frozen=True)
class GraphEvent(Event):
    """A namespace's current graph; `user_id` is unused (0): the audience is the namespace's group."""

    namespace: str = ""
    graph_text: str = ""

    def groups(self) -> list[str]:
        return [graph_group(self.namespace)]

    def text(self) -> str:
        return f'{{"type":"{self.type}","graph":{self.graph_text}}}'


def graph_text(graph: dict) -> str:
    return orjson.dumps(graph).decode()


def graph_message(text: str) -> str:
    """The websocket message carrying a graph given as JSON text."""
    return GraphEvent(GRAPH_EVENT, 0, graph_text=text).text()


async def publish_graph(namespace: str, text: str) -> None:
    """Send a graph (JSON text) to the namespace's watchers."""
    await apublish(GraphEvent(GRAPH_EVENT, 0, namespace=namespace, graph_text=text))


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()


def redis_client() -> Redis:
    """The console's Redis for the running event loop (asyncio connections cannot cross loops)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    return client
