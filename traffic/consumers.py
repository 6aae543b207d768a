"""The traffic websocket, /ws/traffic/<run_id>/: one run's windows, the kept history first.

On connect the consumer checks who may watch the run (`traffic.access`), joins the run's group, and then
sends one `history` message with the run's kept windows (those after `?since=<seq>` when the client
reconnects knowing what it has). Live windows follow, each once and in sequence order: a window that
was already in the history (it arrived while the history was read) is skipped. Gaps in `seq` tell the
client that something was lost; it can reconnect with `since` to fill them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from meshconsole.events import FORWARD
from traffic import control
from traffic.access import can_watch
from traffic.store import RunRecord
from traffic.stream import group

RUN_ID = re.compile(r"^[0-9a-f]{16}$")


class TrafficConsumer(AsyncWebsocketConsumer):
    group_name: str | None = None
    last_seq = 0

    async def connect(self) -> None:
        # Closing before accepting refuses the handshake (HTTP 403 to the client).
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not RUN_ID.match(run_id):
            await self.close()
            return
        record = await database_sync_to_async(_watchable)(user, run_id)
        if record is None:
            await self.close()
            return
        self.group_name = group(run_id)
        # Join before reading the history, so nothing published in between is missed.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        since = _since(self.scope.get("query_string", b""))
        texts = await sync_to_async(control.history_texts, thread_sensitive=False)(run_id, since)
        if texts:
            self.last_seq = _seq_of(texts[-1])
        elif since is not None:
            self.last_seq = since
        await self.send(
            text_data=f'{{"type":"history","run":"{run_id}","state":"{record.state}","windows":[{",".join(texts)}]}}'
        )

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Control goes through the REST API; anything the page sends here is ignored."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Windows skip Channels' per-message `aclose_old_connections()`: it hops to the one thread that
        runs sync code, so a window sent to 300 sockets queued 300 hops there (p95 delivery lag ~600 ms
        with uvicorn nearly idle). Forwarding a window never touches the database."""
        if message["type"] == FORWARD:
            await self.event_forward(message)
        else:
            await super().dispatch(message)

    async def event_forward(self, event: dict[str, Any]) -> None:
        seq = event.get("seq", 0)
        if seq and seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, seq)
        await self.send(text_data=event["text"])


def _watchable(user: Any, run_id: str) -> RunRecord | None:
    record = control.get_run(run_id)
    return record if record is not None and can_watch(user, record) else None


def _since(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("since")
    if values and values[0].isdigit():
        return int(values[0])
    return None


def _seq_of(text: str) -> int:
    """The sequence number of a stored window message: its first member, `{"seq":N,...`."""
    return int(text[7 : text.index(",")])
