"""`manage.py ensuredemo`: the demo class on first start, the same credentials afterwards."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from classroom.models import Classroom, Membership

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("ensuredemo", stdout=out, stderr=StringIO())
    return out.getvalue()


def read_credentials() -> dict[str, tuple[str, str]]:
    path = settings.VAR_DIR / "demo-credentials.txt"
    rows = (line.split() for line in path.read_text().splitlines())
    return {username: (role, password) for role, username, password in rows}


def test_first_start_creates_demo_class_and_credentials() -> None:
    out = run()
    credentials = read_credentials()
    assert set(credentials) == {"teacher", "student1", "student2"}
    assert credentials["teacher"][0] == "instructor" and credentials["student1"][0] == "student"
    path = settings.VAR_DIR / "demo-credentials.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    room = Classroom.objects.get()
    assert Membership.objects.filter(classroom=room, role="student").count() == 2
    for username, (_, password) in credentials.items():
        assert password in out
        assert Client().login(username=username, password=password)


def test_second_start_changes_nothing_and_repeats_credentials() -> None:
    run()
    credentials = read_credentials()
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    out = run()
    assert "The demo class exists" in out
    assert all(password in out for _, password in credentials.values())
    assert read_credentials() == credentials
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes
    assert Classroom.objects.count() == 1


def test_lost_credentials_file_is_reported() -> None:
    run()
    (settings.VAR_DIR / "demo-credentials.txt").unlink()
    assert "is gone" in run()
