"""The dashboard's websocket, /ws/teach/<class-slug>/: every lab event of the class's students.

On connect the consumer checks that the user teaches the class (`dashboard.access`), then joins the
class's instructor group (`instructors.<slug>`, fed by meshconsole.events) and says hello; the page
then loads the matrix over HTTP, so nothing published between the page's render and the connection is
lost. Events are forwarded as the publisher built them; the consumer never reads the database per event.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.access import taught_class
from meshconsole.events import FORWARD, instructors_group

FORBIDDEN = 4403


class DashboardConsumer(AsyncWebsocketConsumer):
    group_name: str | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=FORBIDDEN)
            return
        classroom = await database_sync_to_async(taught_class)(user, slug)
        if classroom is None:
            await self.close(code=FORBIDDEN)  # before accept: the handshake is refused (HTTP 403)
            return
        self.group_name = instructors_group(classroom.slug)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello", "class": classroom.slug}))

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The dashboard only listens; whatever it sends is ignored."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Forwarding needs no database: skip Channels' per-message hop to the sync thread (see
        # traffic.consumers), which would serialise a busy class's events behind one thread.
        if message["type"] == FORWARD:
            await self.send(text_data=message["text"])
        else:
            await super().dispatch(message)

    async def event_forward(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])
