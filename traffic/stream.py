"""Where live traffic goes: one channel-layer group per run, and run lifecycle events for the user's pages.

Window messages go to the group `traffic.<run_id>`, which only the run's websocket subscribers join, so
a page receives the runs it shows and nothing else. `meshconsole.events` addresses users and
instructors rather than runs, so windows do not go through it; they use its message type, so every
console consumer forwards pre-built JSON the same way. Starting and stopping a run *is* a user event and
goes through `meshconsole.events.publish`.
"""

from __future__ import annotations

from typing import Any

from channels.layers import get_channel_layer

from meshconsole.events import FORWARD, Event, publish


def group(run_id: str) -> str:
    return f"traffic.{run_id}"


async def publish_window(run_id: str, seq: int, text: str) -> None:
    """Send one window message (JSON text, built once by the worker) to the run's subscribers."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group(run_id), {"type": FORWARD, "seq": seq, "text": text})


def publish_run_event(owner_id: int, run: dict[str, Any]) -> None:
    """Tell the owner's pages (and their instructors' dashboards) that a run started, changed or stopped."""
    from classroom.models import Classroom

    slugs = tuple(Classroom.objects.filter(memberships__user_id=owner_id).values_list("slug", flat=True))
    publish(Event(type="traffic.run", user_id=owner_id, classrooms=slugs, payload={"run": run}))
