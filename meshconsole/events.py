"""The one way the console tells browsers that something happened: `publish(Event(...))`.

An event goes to the channel-layer group of the user it concerns (`user.<id>`, joined by that user's
own websocket consumers) and to the instructor group of each class the user belongs to
(`instructors.<class-slug>`, joined by the dashboard); the instructors' copy also names the student
and may carry a few more keys. The JSON texts are built once here; consumers only forward it, so they
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


INSTRUCTORS_PREFIX = "instructors."


def instructors_group(class_slug: str) -> str:
    return f"{INSTRUCTORS_PREFIX}{class_slug}"


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
    # Extra keys only the instructors' copy carries (the student's own pages do not need them).
    for_instructors: Mapping[str, Any] = field(default_factory=dict)

    def groups(self) -> list[str]:
        return [user_group(self.user_id), *(instructors_group(slug) for slug in self.classrooms)]

    def text(self) -> str:
        if "type" in self.payload:
            raise ValueError("the payload must not carry its own 'type'")
        return json.dumps({"type": self.type, **self.payload}, separators=(",", ":"), default=str)

    def instructor_text(self) -> str:
        """The instructors' copy: the payload plus `student` (whose event it is) and `for_instructors`."""
        body = {"type": self.type, **self.payload, "student": self.user_id, **self.for_instructors}
        return json.dumps(body, separators=(",", ":"), default=str)


async def apublish(event: Event) -> None:
    """Send `event` to its groups (from async code: consumers, streamers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    texts: dict[bool, str] = {}
    try:
        for group in event.groups():
            staff = group.startswith(INSTRUCTORS_PREFIX)
            if staff not in texts:
                texts[staff] = event.instructor_text() if staff else event.text()
            await layer.group_send(group, {"type": FORWARD, "text": texts[staff]})
    except Exception:
        log.warning("could not publish %s event for user %s", event.type, event.user_id, exc_info=True)


def publish(event: Event) -> None:
    """Send `event` to its groups (from sync code: views, Celery tasks)."""
    async_to_sync(apublish)(event)
