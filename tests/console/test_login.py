"""Login, logout and where `/` sends students and instructors, with the cluster down."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from classroom.models import StudentNamespace
from meshconsole.urls import urlpatterns as project_urlpatterns

pytestmark = pytest.mark.django_db

STUDENT = ("alice", "Alice-pass-123")
INSTRUCTOR = ("prof", "Instructor-pass-1")


def lab_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the lab")


# Used as ROOT_URLCONF by the test that mounts a stand-in lab app.
urlpatterns = [*project_urlpatterns, path("lab/", include(([path("", lab_index, name="index")], "labsteps")))]


@pytest.fixture(autouse=True)
def roster() -> None:
    call_command(
        "createclass",
        "Mesh 101",
        "--instructor",
        ":".join(INSTRUCTOR),
        "--student",
        ":".join(STUDENT),
        stdout=None,
        stderr=None,
    )


def log_in(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


@pytest.mark.parametrize("url", ["/", "/classroom/", "/admin/classroom/classroom/"])
def test_every_page_needs_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].split("?")[0] in ("/accounts/login/", "/admin/login/")


def test_login_page(client: Client) -> None:
    response = client.get("/accounts/login/?next=/classroom/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html
    assert "/static/css/console.css" in html
    assert 'value="/classroom/"' in html


def test_wrong_password_stays_on_login_page(client: Client) -> None:
    response = log_in(client, "alice", "wrong-password")
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_student_login_works_while_cluster_is_down(client: Client) -> None:
    response = log_in(client, *STUDENT)
    assert response.status_code == 302 and response["Location"] == "/"
    namespace = StudentNamespace.objects.get(user__username="alice")
    assert namespace.name == "mc-alice" and not namespace.created
    assert "cannot reach the cluster" in namespace.last_error
    assert client.get("/")["Location"] == "/lab/"
    page = client.get("/lab/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "mc-alice" in html
    assert "cluster could not be reached" in html


def test_student_without_class_is_told_so(client: Client) -> None:
    get_user_model().objects.create_user("loner", password="Loner-pass-123")
    log_in(client, "loner", "Loner-pass-123")
    page = client.get("/lab/")
    assert page.status_code == 403
    assert "no lab namespace" in page.content.decode()
    assert not StudentNamespace.objects.filter(user__username="loner").exists()


def test_student_goes_to_the_lab_once_it_is_mounted(client: Client, settings) -> None:
    settings.ROOT_URLCONF = __name__
    log_in(client, *STUDENT)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/lab/"


def test_instructor_goes_to_classroom_overview(client: Client) -> None:
    log_in(client, *INSTRUCTOR)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/classroom/"
    html = client.get("/classroom/").content.decode()
    assert "Mesh 101" in html and "alice" in html and "mc-alice" in html
    assert not StudentNamespace.objects.filter(user__username="prof").exists()


def test_students_cannot_open_the_overview(client: Client) -> None:
    log_in(client, *STUDENT)
    response = client.get("/classroom/")
    assert response.status_code == 403
    assert "Only instructors" in response.content.decode()


def test_logout(client: Client) -> None:
    log_in(client, *STUDENT)
    assert client.get("/").status_code == 302
    assert client.get("/accounts/logout/").status_code == 405  # logging out needs a POST (CSRF)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_session_and_csrf_cookies_are_secure_by_default(client: Client, settings) -> None:
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    response = log_in(client, *STUDENT)
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
