"""The one way the console tells browsers that something happened: `publish(Event(...))`.

An event goes to the channel-layer group of the user it concerns (`user.<id>`, joined by that user's
own websocket consumers) and to the instructor group of each class the user belongs to
(`instructors.<class-slug>`). The JSON text is built once here; consumers only forward it, so they
never decide who may see what.

Publishing is best effort: a channel layer that is down must not fail the Apply task or the request
that caused the event, and the page reloads its state over HTTP anyway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# The channel-layer message type consumers handle (method `event_forward`).
FORWARD = "event.forward"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def instructors_group(class_slug: str) -> str:
    return f"instructors.{class_slug}"


@dataclass(frozen=True)
class Event:
    """Something a user's pages (and their instructors' dashboards) should show.

    `type` becomes the message's "type" key and `payload` its other keys, e.g. type "attempt" with
    payload {"attempt": {...}} is sent as {"type": "attempt", "attempt": {...}}.
    """

    type: str
    user_id: int
    classrooms: tuple[str, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)

    def groups(self) -> list[str]:
        return [user_group(self.user_id), *(instructors_group(slug) for slug in self.classrooms)]

    def text(self) -> str:
        if "type" in self.payload:
            raise ValueError("the payload must not carry its own 'type'")
        return json.dumps({"type": self.type, **self.payload}, separators=(",", ":"), default=str)


async def apublish(event: Event) -> None:
    """Send `event` to its groups (from async code: consumers, streamers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": FORWARD, "text": event.text()}
    try:
        for group in event.groups():
            await layer.group_send(group, message)
    except Exception:
        log.warning("could not publish %s event for user %s", event.type, event.user_id, exc_info=True)


def publish(event: Event) -> None:
    """Send `event` to its groups (from sync code: views, Celery tasks)."""
    async_to_sync(apublish)(event)
