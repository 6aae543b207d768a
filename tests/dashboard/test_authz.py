"""Every instructor URL and websocket route refuses students and the instructors of other classes.

The routes are enumerated from the URLconfs (dashboard.urls, classroom.urls) and the dashboard's routing,
so a route added later is checked without editing this file. GET and POST are both tried: a refusal must
come before anything else (method checks included) and change nothing.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, reverse

from classroom import urls as classroom_urls
from classroom.models import Classroom, Membership
from dashboard import routing
from dashboard import urls as dashboard_urls
from meshconsole.asgi import application
from meshconsole.events import Event, publish

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 10


def class_routes() -> list[tuple[str, URLPattern]]:
    """(namespace, pattern) of every route that names a class."""
    out = []
    for namespace, module in (("dashboard", dashboard_urls), ("classroom", classroom_urls)):
        for pattern in module.urlpatterns:
            if "slug" in pattern.pattern.converters:
                out.append((namespace, pattern))
    return out


def instructor_only_routes() -> list[tuple[str, URLPattern]]:
    """Routes without a class that are still for instructors only."""
    return [("dashboard", p) for p in dashboard_urls.urlpatterns if p.name == "index"] + [
        ("classroom", p) for p in classroom_urls.urlpatterns if p.name in ("index", "create")
    ]


def url_for(namespace: str, pattern: URLPattern, room: Classroom, student_id: int) -> str:
    kwargs = {}
    if "slug" in pattern.pattern.converters:
        kwargs["slug"] = room.slug
    if "user_id" in pattern.pattern.converters:
        kwargs["user_id"] = student_id
    return reverse(f"{namespace}:{pattern.name}", kwargs=kwargs)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_enumeration_sees_every_route() -> None:
    names = {p.name for _, p in class_routes()}
    assert {"class", "matrix", "export-csv", "export-json", "student", "student-runs"} <= names
    assert {"detail", "roster", "password", "reset-namespace"} <= names
    every = {p.name for p in dashboard_urls.urlpatterns} | {p.name for p in classroom_urls.urlpatterns}
    covered = names | {p.name for _, p in instructor_only_routes()}
    assert every == covered, f"routes neither class-scoped nor instructor-only: {every - covered}"


@pytest.mark.parametrize("method", ["get", "post"])
def test_students_and_other_instructors_are_refused_everywhere(world, method: str) -> None:
    student = world.students_a[0]
    password_before = student.password
    memberships_before = Membership.objects.count()
    routes = class_routes()
    assert routes
    for who in (student, world.teacher_b, world.students_b[0]):
        client = client_for(who)
        for namespace, pattern in routes:
            url = url_for(namespace, pattern, world.a, student.pk)
            response = getattr(client, method)(url, {"name": "x", "text": "username,password,role\n"})
            assert response.status_code == 403, f"{who.username} {method.upper()} {url}: {response.status_code}"
    # A class that does not exist answers the same as one the user does not teach.
    client = client_for(world.teacher_b)
    for namespace, pattern in routes:
        fake = Classroom(name="nope", slug="no-such-class")
        assert getattr(client, method)(url_for(namespace, pattern, fake, student.pk)).status_code == 403
    student.refresh_from_db()
    assert student.password == password_before
    assert Membership.objects.count() == memberships_before


@pytest.mark.parametrize("method", ["get", "post"])
def test_students_are_refused_the_instructor_pages_without_a_class(world, method: str) -> None:
    client = client_for(world.students_a[0])
    for namespace, pattern in instructor_only_routes():
        url = url_for(namespace, pattern, world.a, 0)
        response = getattr(client, method)(url, {"name": "A class by a student"})
        assert response.status_code in (403, 405), f"{method.upper()} {url}: {response.status_code}"
    assert not Classroom.objects.filter(name="A class by a student").exists()


def test_the_class_instructor_gets_every_page(world) -> None:
    client = client_for(world.teacher_a)
    for namespace, pattern in class_routes():
        url = url_for(namespace, pattern, world.a, world.students_a[0].pk)
        response = client.get(url)
        assert response.status_code in (200, 405), f"GET {url}: {response.status_code}"
    for namespace, pattern in instructor_only_routes():
        url = url_for(namespace, pattern, world.a, 0)
        response = client.get(url)
        assert response.status_code in (200, 405), f"GET {url}: {response.status_code}"
        if response.status_code == 200:
            html = response.content.decode()
            assert world.a.name in html and world.b.name not in html, url  # only their own classes
    # A student of another class is not reachable through class A's URLs.
    outsider = world.students_b[0].pk
    assert client.get(reverse("dashboard:student", args=[world.a.slug, outsider])).status_code == 404
    assert client.post(reverse("classroom:password", args=[world.a.slug, outsider])).status_code == 404


def test_posts_need_the_csrf_token(world) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.teacher_a)
    student = world.students_a[0]
    before = student.password
    for name in ("password", "reset-namespace"):
        response = client.post(reverse(f"classroom:{name}", args=[world.a.slug, student.pk]))
        assert response.status_code == 403
    response = client.post(reverse("classroom:roster", args=[world.a.slug]), {"text": "username,password,role\n"})
    assert response.status_code == 403
    assert client.post(reverse("classroom:create"), {"name": "Via forged post"}).status_code == 403
    student.refresh_from_db()
    assert student.password == before
    assert not Classroom.objects.filter(name="Via forged post").exists()


# --- websockets -----------------------------------------------------------------------------------------
WS_ROUTES = [str(pattern.pattern) for pattern in routing.websocket_urlpatterns]


def test_the_dashboard_serves_one_websocket_route() -> None:
    assert WS_ROUTES == ["ws/teach/<slug:slug>/"]


def communicator(path: str, user=None) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={client_for(user).cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def ws_path(route: str, slug: str) -> str:
    return "/" + route.replace("<slug:slug>", slug)


@pytest.mark.asyncio
@pytest.mark.parametrize("route", WS_ROUTES)
async def test_websocket_refuses_anonymous_students_and_other_instructors(route: str, world) -> None:
    for who in (None, world.students_a[0], world.teacher_b, world.students_b[0]):
        ws = await database_sync_to_async(communicator)(ws_path(route, world.a.slug), who)
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert not connected, f"{who} was let in"
        await ws.disconnect()
    ws = await database_sync_to_async(communicator)(ws_path(route, "no-such-class"), world.teacher_a)
    assert not (await ws.connect(timeout=TIMEOUT))[0]
    await ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize("route", WS_ROUTES)
async def test_the_instructor_gets_their_class_events_only(route: str, world) -> None:
    ws = await database_sync_to_async(communicator)(ws_path(route, world.a.slug), world.teacher_a)
    assert (await ws.connect(timeout=TIMEOUT))[0]
    assert await ws.receive_json_from(TIMEOUT) == {"type": "hello", "class": world.a.slug}
    other = world.students_b[0]
    await database_sync_to_async(publish)(
        Event("progress", other.pk, (world.b.slug,), {"step": "x", "state": "applied"})
    )
    mine = world.students_a[1]
    event = Event("progress", mine.pk, (world.a.slug,), {"step": "y", "state": "verified"}, {"attempts": 2})
    await database_sync_to_async(publish)(event)
    assert await ws.receive_json_from(TIMEOUT) == {
        "type": "progress",
        "step": "y",
        "state": "verified",
        "student": mine.pk,
        "attempts": 2,
    }
    assert await ws.receive_nothing(0.5)
    await ws.disconnect()
