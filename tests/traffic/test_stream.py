"""The websocket stream end to end: a worker process publishes, uvicorn serves /ws/traffic/<run>/,
real websocket clients read. Authorisation, history first, order, reconnection."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from classroom.models import Classroom, Membership
from traffic import control

from .support import EchoTarget, LiveServer


@pytest.fixture
def people(transactional_db, prefix: str) -> dict[str, str]:
    """Session cookies of a student, her instructor, and a student of the same class."""
    make = get_user_model().objects.create_user
    room = Classroom.objects.create(name="Mesh", slug="mesh")
    cookies = {}
    for name, role in [("ann", "student"), ("teacher", "instructor"), ("bob", "student")]:
        user = make(name)
        Membership.objects.create(user=user, classroom=room, role=role)
        client = Client()
        client.force_login(user)
        cookies[name] = f"sessionid={client.cookies['sessionid'].value}"
        cookies[name + "_id"] = user.pk
    return cookies


def ws(server: LiveServer, run_id: str, cookie: str | None, since: int | None = None):
    query = f"?since={since}" if since is not None else ""
    headers = {"Cookie": cookie} if cookie else {}
    return connect(
        f"{server.ws_base}/ws/traffic/{run_id}/{query}",
        additional_headers=headers,
        origin=f"http://127.0.0.1:{server.port}",
        open_timeout=10,
    )


async def receive(conn: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(conn.recv(), timeout=10))


async def windows(conn: ClientConnection, count: int) -> list[int]:
    seqs = []
    while len(seqs) < count:
        message = await receive(conn)
        assert message["type"] == "window"
        seqs.append(message["seq"])
    return seqs


@pytest.mark.asyncio
async def test_clients_get_history_then_every_window_in_order(
    people: dict, asgi_server: LiveServer, echo: EchoTarget, start_worker
) -> None:
    start_worker()
    run_id = await sync_to_async(control.start_run, thread_sensitive=False)(
        people["ann_id"], "lab-ann", echo.url, [{"name": "s", "rate": 20}], allow_target=lambda ns, url: True
    )
    async with ws(asgi_server, run_id, people["ann"]) as first, ws(asgi_server, run_id, people["teacher"]) as second:
        for conn in (first, second):
            hello = await receive(conn)
            assert hello["type"] == "history" and hello["run"] == run_id and hello["state"] == "running"
        seen_first, seen_second = await asyncio.gather(windows(first, 4), windows(second, 4))
    # Both clients get every window once, in order; the seq numbers have no gaps.
    assert seen_first == seen_second == list(range(seen_first[0], seen_first[0] + 4))
    last_seen = seen_first[-1]

    async with ws(asgi_server, run_id, people["ann"]) as again:
        history = await receive(again)
        kept = [w["seq"] for w in history["windows"]]
        assert kept == list(range(1, kept[-1] + 1)) and kept[-1] >= last_seen
        assert all(w["streams"]["s"]["rate"] == 20 for w in history["windows"])
        live = await windows(again, 1)
        assert live[0] == kept[-1] + 1  # live windows continue right after the history, no duplicate

    async with ws(asgi_server, run_id, people["ann"], since=live[0]) as resumed:
        history = await receive(resumed)
        missed = [w["seq"] for w in history["windows"]]
        assert all(seq > live[0] for seq in missed)
        assert missed == list(range(live[0] + 1, live[0] + 1 + len(missed)))
        nxt = await windows(resumed, 1)
        assert nxt[0] == (missed[-1] + 1 if missed else live[0] + 1)


@pytest.mark.asyncio
async def test_only_the_owner_and_her_instructors_may_subscribe(people: dict, asgi_server: LiveServer) -> None:
    run_id = await sync_to_async(control.start_run, thread_sensitive=False)(
        people["ann_id"], "lab-ann", "http://127.0.0.1:9", [{"rate": 1}], allow_target=lambda ns, url: True
    )
    for cookie in (people["bob"], None, "sessionid=forged"):
        with pytest.raises(InvalidStatus) as refused:
            async with ws(asgi_server, run_id, cookie):
                pass
        assert refused.value.response.status_code == 403
    for missing in ("0123456789abcdef", "../../etc"):
        with pytest.raises(InvalidStatus):
            async with ws(asgi_server, missing, people["ann"]):
                pass
    for cookie in (people["ann"], people["teacher"]):
        async with ws(asgi_server, run_id, cookie) as conn:
            assert (await receive(conn))["type"] == "history"
