"""The graph websocket, /ws/graph/<namespace>/: the namespace's latest graph at once, then every refresh.

Only the namespace's student and the instructors of their classes may subscribe. While the socket is
open it holds a lease that tells the graph worker to poll the namespace (see meshgraph.poller).
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from meshgraph.access import may_view
from meshgraph.live import graph_group, graph_message, redis_client
from meshgraph.poller import Latest, Watchers

log = logging.getLogger(__name__)

FORBIDDEN = 4403  # close code for a refused subscription (before the handshake completes: HTTP 403)


class GraphConsumer(AsyncWebsocketConsumer):
    namespace = ""
    watchers: Watchers | None = None
    renewal: asyncio.Task | None = None

    async def connect(self) -> None:
        self.namespace = self.scope["url_route"]["kwargs"]["namespace"]
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(may_view)(user, self.namespace):
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(graph_group(self.namespace), self.channel_name)
        await self.accept()
        redis = redis_client()
        self.watchers = Watchers(redis)
        await self.watchers.hold(self.namespace, self.channel_name)
        self.renewal = asyncio.create_task(self._renew())
        latest = await Latest(redis).get(self.namespace)
        if latest is not None:
            await self.send(text_data=graph_message(latest))

    async def _renew(self) -> None:
        assert self.watchers is not None
        while True:
            await asyncio.sleep(self.watchers.lease_s / 3)
            try:
                await self.watchers.hold(self.namespace, self.channel_name)
            except RedisError as exc:
                log.warning("cannot renew the graph lease of %s: %s", self.namespace, exc)

    async def disconnect(self, code: int) -> None:
        if self.watchers is None:
            return  # refused before subscribing
        if self.renewal is not None:
            self.renewal.cancel()
        try:
            await self.watchers.drop(self.namespace, self.channel_name)
        except RedisError as exc:  # the lease expires by itself
            log.warning("cannot drop the graph lease of %s: %s", self.namespace, exc)
        await self.channel_layer.group_discard(graph_group(self.namespace), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; anything they send is ignored."""

    async def event_forward(self, event: dict) -> None:
        await self.send(text_data=event["text"])
