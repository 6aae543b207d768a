"""The lab websocket through the project's real ASGI stack and Redis channel layer: who may connect,
what a student is sent on connect, and that events never cross from one student to another."""

from __future__ import annotations

import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from classroom.models import StudentNamespace
from labsteps import attempts, routing
from labsteps.models import Attempt
from meshconsole.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 10


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def communicator(path: str, cookie: str = "") -> WebsocketCommunicator:
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def make_attempt(user, step_id: str, **fields) -> Attempt:
    namespace = StudentNamespace.objects.get(user=user).name
    return Attempt.objects.create(
        user=user, step_id=step_id, kind="apply", namespace=namespace, task_id=uuid.uuid4().hex, **fields
    )


ROUTES = [str(pattern.pattern) for pattern in routing.websocket_urlpatterns]


def test_the_lab_serves_one_websocket_route() -> None:
    assert ROUTES == ["ws/lab/"]


@pytest.mark.asyncio
@pytest.mark.parametrize("route", ROUTES)
async def test_anonymous_users_and_users_without_a_namespace_are_refused(route: str, make_student) -> None:
    instructor = await database_sync_to_async(make_student)(role="instructor")
    for cookie in ("", await database_sync_to_async(session_cookie)(instructor)):
        ws = communicator(f"/{route}", cookie)
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert not connected
        await ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize("route", ROUTES)
async def test_a_student_gets_a_hello_their_latest_attempts_and_only_their_own_events(route: str, make_student) -> None:
    alice, bob = await database_sync_to_async(make_student)(), await database_sync_to_async(make_student)()
    older = await database_sync_to_async(make_attempt)(alice, "preliminaries", status="failed", message="old")
    latest = await database_sync_to_async(make_attempt)(alice, "preliminaries", status="passed")
    deploy = await database_sync_to_async(make_attempt)(alice, "deploy-splitdim", status="queued")
    alice_ns = await database_sync_to_async(lambda: StudentNamespace.objects.get(user=alice).name)()

    ws_alice = communicator(f"/{route}", await database_sync_to_async(session_cookie)(alice))
    ws_bob = communicator(f"/{route}", await database_sync_to_async(session_cookie)(bob))
    assert (await ws_alice.connect(timeout=TIMEOUT))[0] and (await ws_bob.connect(timeout=TIMEOUT))[0]
    assert await ws_alice.receive_json_from(TIMEOUT) == {
        "type": "hello",
        "user": alice.get_username(),
        "namespace": alice_ns,
    }
    sent = [(await ws_alice.receive_json_from(TIMEOUT))["attempt"]["id"] for _ in range(2)]
    assert sent == [latest.id, deploy.id] and older.id not in sent  # the newest of each step, in lab order
    assert (await ws_bob.receive_json_from(TIMEOUT))["type"] == "hello"
    assert await ws_bob.receive_nothing(0.3)

    # Asking for someone else's group is not a thing the consumer understands.
    await ws_bob.send_to(text_data=json.dumps({"type": "subscribe", "group": f"user.{alice.pk}"}))
    deploy.status, deploy.message = "applying", "working"
    await database_sync_to_async(attempts.announce)(deploy)
    event = await ws_alice.receive_json_from(TIMEOUT)
    assert event["type"] == "attempt" and event["attempt"]["status"] == "applying"
    progress = await database_sync_to_async(attempts.set_progress)(deploy, "applied")
    event = await ws_alice.receive_json_from(TIMEOUT)
    assert event == {
        "type": "progress",
        "step": "deploy-splitdim",
        "state": "applied",
        "updated": progress.updated.isoformat(),
    }
    assert await ws_bob.receive_nothing(1.0)
    await ws_alice.disconnect()
    await ws_bob.disconnect()
