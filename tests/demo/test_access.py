"""Every demo URL and websocket route refuses students and other classes' instructors; bad input and
missing CSRF tokens change nothing. In process: Django's test client and Channels' communicators on the
project's real websocket routing (embedded Redis as the channel layer)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from demo.models import DemoNamespace, Fault
from demo.namespaces import demo_for

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def demo_urls(slug: str) -> list[tuple[str, str]]:
    return [
        ("get", f"/demo/{slug}/"),
        ("get", f"/demo/{slug}/state.json"),
        ("post", f"/demo/{slug}/prepare/"),
        ("post", f"/demo/{slug}/faults/"),
        ("post", f"/demo/{slug}/faults/1/revert/"),
    ]


def test_students_and_other_classes_instructors_are_refused_everywhere(people) -> None:
    body = json.dumps({"target": "kvstore", "abort_percent": 50})
    for user in (people.student, people.other_instructor, people.other_student):
        client = client_for(user)
        for method, url in demo_urls(people.slug):
            if method == "get":
                response = client.get(url)
            else:
                response = client.post(url, body, content_type="application/json")
            assert response.status_code == 403, (user, url)
    assert client_for(people.student).get("/demo/").status_code == 403
    # An unknown class is refused the same way: its existence is not revealed.
    assert client_for(people.instructor).get("/demo/no-such-class/state.json").status_code == 403
    assert not Fault.objects.exists()
    assert not DemoNamespace.objects.exclude(instructor__in=[people.instructor]).exists()


def test_the_instructor_sees_the_projector_with_both_panels(people) -> None:
    client = client_for(people.instructor)
    assert people.slug in client.get("/demo/").content.decode()
    page = client.get(f"/demo/{people.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    demo = DemoNamespace.objects.get(instructor=people.instructor)
    assert demo.name.startswith("mcd-") and demo.state == DemoNamespace.State.EMPTY
    assert f'data-ws-path="/ws/graph/{demo.name}/"' in html  # the graph panel
    assert 'id="demo-traffic"' in html and 'id="fault-form"' in html and 'id="demo-chart"' in html
    state = client.get(f"/demo/{people.slug}/state.json").json()
    assert state["demo"]["namespace"] == demo.name and state["students"] == 1 and state["fault"] is None


def test_posts_need_the_csrf_token(people) -> None:
    client = client_for(people.instructor, csrf=True)
    client.get(f"/demo/{people.slug}/")  # sets the csrftoken cookie
    for url in (f"/demo/{people.slug}/prepare/", f"/demo/{people.slug}/faults/"):
        response = client.post(url, json.dumps({"target": "kvstore", "abort_percent": 50}), "application/json")
        assert response.status_code == 403
        assert "CSRF" in response.json()["error"]
    assert not Fault.objects.exists()
    assert DemoNamespace.objects.get(instructor=people.instructor).state == DemoNamespace.State.EMPTY


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "form"),
        (json.dumps({"target": "kvstore", "abort_percent": 150}), "abort_percent"),
        (json.dumps({"target": "db", "abort_percent": 50}), "target"),
        (json.dumps({"target": "kvstore", "abort_percent": 50, "broadcast": True}), "confirm"),
        (json.dumps({"target": "kvstore", "abort_percent": 50, "broadcast": "yes"}), "broadcast"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_is_recorded(people, body: str, field: str) -> None:
    response = client_for(people.instructor).post(f"/demo/{people.slug}/faults/", body, "application/json")
    assert response.status_code == 400
    answer = response.json()
    assert field in answer["problems"] and answer["error"].startswith("Nothing was applied")
    assert not Fault.objects.exists()


def test_wrong_methods_are_refused(people) -> None:
    client = client_for(people.instructor)
    assert client.get(f"/demo/{people.slug}/faults/").status_code == 405
    assert client.post(f"/demo/{people.slug}/state.json").status_code == 405


# ---- websockets -------------------------------------------------------------------------------------------
def communicator(user, path: str):
    from asgiref.testing import ApplicationCommunicator
    from channels.routing import URLRouter

    from meshconsole.routing import websocket_urlpatterns

    scope = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "user": user,
    }
    return ApplicationCommunicator(URLRouter(websocket_urlpatterns()), scope)


async def opens(user, path: str) -> bool:
    socket = communicator(user, path)
    await socket.send_input({"type": "websocket.connect"})
    answer = await socket.receive_output(10)
    if answer["type"] == "websocket.accept":
        await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await socket.wait(10)
        return True
    assert answer["type"] == "websocket.close"
    return False


@pytest.mark.asyncio
async def test_every_demo_websocket_refuses_students_and_other_instructors(people, traffic_prefix) -> None:
    from asgiref.sync import sync_to_async

    from traffic import control

    demo = await sync_to_async(demo_for)(people.instructor, await sync_to_async(lambda: _class(people.slug))())
    # The demo's traffic run, as a step's traffic action starts it: owned by the instructor, in the demo namespace.
    run = await sync_to_async(control.start_run)(
        people.instructor.pk,
        demo.name,
        "http://127.0.0.1:9/",
        [{"name": "clear", "method": "GET", "path": "/api/clear", "rate": 1}],
        allow_target=lambda namespace, url: True,
    )
    try:
        routes = [f"/ws/demo/{people.slug}/", f"/ws/graph/{demo.name}/", f"/ws/traffic/{run}/"]
        for path in routes:
            for user in (people.student, people.other_instructor, people.other_student):
                assert not await opens(user, path), (user, path)
            for user in (people.instructor, people.co_instructor):
                assert await opens(user, path), (user, path)
    finally:
        await sync_to_async(control.stop_run)(run, people.instructor.pk)


@pytest.mark.asyncio
async def test_the_demo_socket_says_hello_with_the_state_and_forwards_only_demo_events(people) -> None:
    from asgiref.sync import sync_to_async

    from demo import events
    from meshconsole.events import Event, apublish

    socket = communicator(people.instructor, f"/ws/demo/{people.slug}/")
    await socket.send_input({"type": "websocket.connect"})
    assert (await socket.receive_output(10))["type"] == "websocket.accept"
    hello = json.loads((await socket.receive_output(10))["text"])
    assert hello["type"] == "hello" and hello["demo"]["namespace"].startswith("mcd-")
    demo = await sync_to_async(DemoNamespace.objects.select_related("classroom", "instructor").get)(
        instructor=people.instructor
    )
    # A student's progress event reaches the class's instructors group but is not the demo's business.
    await apublish(Event("progress", people.student.pk, (people.slug,), {"step": "x", "state": "applied"}))
    await sync_to_async(events.announce)(demo)
    message = json.loads((await socket.receive_output(10))["text"])
    assert message["type"] == "demo" and message["demo"]["id"] == demo.pk
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(10)


def _class(slug: str):
    from classroom.models import Classroom

    return Classroom.objects.get(slug=slug)
