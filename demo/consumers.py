"""The demo page's websocket, /ws/demo/<class>/: the class's demo events, for its instructors only.

It joins the class's instructors group (meshconsole.events) and forwards only the demo's events, whose
JSON starts with {"type":"demo; progress events of students that share the group are not its business.
The first message is the current state, so a page that reconnects is up to date at once.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from demo.access import taught_class
from meshconsole.events import instructors_group

FORBIDDEN = 4403
DEMO_PREFIX = '{"type":"demo'


class DemoConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        hello = await database_sync_to_async(_hello)(self.scope.get("user"), slug)
        if hello is None:
            await self.close(code=FORBIDDEN)  # before accepting: the handshake gets HTTP 403
            return
        self.group = instructors_group(slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps(hello))

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Control goes through the HTTP API; whatever the page sends is ignored."""

    async def event_forward(self, event: dict[str, Any]) -> None:
        if event["text"].startswith(DEMO_PREFIX):
            await self.send(text_data=event["text"])


def _hello(user: Any, slug: str) -> dict[str, Any] | None:
    from demo.namespaces import demo_for
    from demo.views import state_json

    classroom = taught_class(user, slug)
    if classroom is None:
        return None
    return {"type": "hello", **state_json(demo_for(user, classroom))}
