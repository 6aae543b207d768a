"""The lab page's websocket: the student's own attempt and progress events, nothing else.

The consumer joins exactly one group, that of the authenticated user (`user.<id>`); it never takes a
group, namespace or attempt from the client, so there is nothing to ask for that belongs to someone
else. It only forwards the JSON text built by meshconsole.events.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from classroom.models import StudentNamespace
from labsteps import attempts
from meshconsole.events import user_group


class LabConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        # Closing before accepting refuses the handshake itself (HTTP 403 to the client).
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        hello = await database_sync_to_async(_hello)(user)
        if hello is None:  # not a student: no lab, no events
            await self.close()
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        greeting, latest = hello
        await self.send(text_data=json.dumps(greeting))
        for attempt in latest:
            await self.send(text_data=json.dumps({"type": "attempt", "attempt": attempt}))

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page has nothing to say; whatever it sends is ignored."""

    async def event_forward(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


def _hello(user: Any) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    namespace = StudentNamespace.objects.filter(user=user).first()
    if namespace is None:
        return None
    attempts.sweep(user)
    greeting = {"type": "hello", "user": user.get_username(), "namespace": namespace.name}
    return greeting, [attempts.attempt_json(a) for a in attempts.latest_attempts(user)]
