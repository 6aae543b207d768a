"""Class management through the web: creating a class, importing a roster (refused whole with the line of
every problem), resetting a password, and students joining with the join code."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classroom.models import Classroom, Membership, StudentNamespace

pytestmark = pytest.mark.django_db
User = get_user_model()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_instructor_creates_a_class_and_teaches_it(world) -> None:
    client = logged_in(world.teacher_a)
    response = client.post(reverse("classroom:create"), {"name": "  Mesh 201 "})
    room = Classroom.objects.get(name="Mesh 201")
    assert response.status_code == 302 and response["Location"] == reverse("classroom:detail", args=[room.slug])
    assert room.slug == "mesh-201" and len(room.join_code) == 8
    assert Membership.objects.filter(user=world.teacher_a, classroom=room, role="instructor").exists()
    page = client.get(reverse("classroom:detail", args=[room.slug]))
    assert room.join_code in page.content.decode()
    # The class list leads to its live dashboard and its demo.
    listing = client.get(reverse("classroom:index")).content.decode()
    assert reverse("dashboard:class", args=[room.slug]) in listing
    assert reverse("demo:projector", args=[room.slug]) in listing
    # The other instructor does not see it.
    assert logged_in(world.teacher_b).get(reverse("classroom:detail", args=[room.slug])).status_code == 403


@pytest.mark.parametrize("name", ["", "   ", "!!!"])
def test_a_bad_class_name_is_refused_with_a_message(world, name: str) -> None:
    before = Classroom.objects.count()
    response = logged_in(world.teacher_a).post(reverse("classroom:create"), {"name": name})
    assert response.status_code == 400
    assert "class name" in response.content.decode()
    assert Classroom.objects.count() == before


def test_a_duplicate_class_name_is_refused(world) -> None:
    response = logged_in(world.teacher_a).post(reverse("classroom:create"), {"name": world.b.name})
    assert response.status_code == 400 and "already exists" in response.content.decode()
    assert not world.b.memberships.filter(user=world.teacher_a).exists()


BAD_ROSTER = (
    "username,password,role\n"
    "ann,long-enough-pw-1,student\n"  # line 2: fine
    "bad name!,long-enough-pw-2,student\n"  # line 3: invalid username
    "ann,long-enough-pw-3,student\n"  # line 4: duplicate of line 2
    "cy,long-enough-pw-4,teacher\n"  # line 5: bad role
    "dee,long-enough-pw-5\n"  # line 6: missing field
)


def test_a_roster_with_errors_is_refused_whole_with_every_line(world) -> None:
    users_before, members_before = User.objects.count(), Membership.objects.count()
    upload = SimpleUploadedFile("class.csv", BAD_ROSTER.encode(), content_type="text/csv")
    response = logged_in(world.teacher_a).post(reverse("classroom:roster", args=[world.a.slug]), {"file": upload})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Nothing was imported" in text
    for line, words in ((3, "invalid username"), (4, "already listed at class.csv line 2"), (5, "role"), (6, "fields")):
        assert f"class.csv line {line}:" in text and words in text, (line, words)
    assert "class.csv line 2:" not in text.replace("already listed at class.csv line 2", "")
    assert User.objects.count() == users_before and Membership.objects.count() == members_before
    assert not User.objects.filter(username="ann").exists()


def test_a_roster_missing_columns_is_refused(world) -> None:
    response = logged_in(world.teacher_a).post(
        reverse("classroom:roster", args=[world.a.slug]), {"text": "username,role\nann,student\n"}
    )
    assert response.status_code == 400
    assert "pasted roster line 1: header must be username,password,role" in response.content.decode()
    assert "missing: password" in response.content.decode()
    assert not User.objects.filter(username="ann").exists()


def test_a_roster_cannot_take_over_an_account_outside_the_class(world) -> None:
    outsider, colleague = world.students_b[0], world.teacher_b
    before = (outsider.password, colleague.password)
    text = (
        "username,password,role\n"
        f"{outsider.username},new-password-123,student\n"
        f"{colleague.username},new-password-456,student\n"
        "newbie,new-password-789,student\n"
    )
    response = logged_in(world.teacher_a).post(reverse("classroom:roster", args=[world.a.slug]), {"text": text})
    assert response.status_code == 400
    body = response.content.decode()
    assert "pasted roster line 2:" in body and "pasted roster line 3:" in body
    outsider.refresh_from_db()
    colleague.refresh_from_db()
    assert (outsider.password, colleague.password) == before
    assert not User.objects.filter(username="newbie").exists()


def test_a_good_roster_is_imported(world) -> None:
    text = f"username,password,role\nnew-one,long-enough-pw-1,student\n{world.students_a[0].username},changed-pw-77,student\n"
    response = logged_in(world.teacher_a).post(reverse("classroom:roster", args=[world.a.slug]), {"text": text})
    assert response.status_code == 302
    new = User.objects.get(username="new-one")
    assert new.check_password("long-enough-pw-1")
    assert Membership.objects.filter(user=new, classroom=world.a, role="student").exists()
    assert StudentNamespace.objects.filter(user=new).exists()
    world.students_a[0].refresh_from_db()
    assert world.students_a[0].check_password("changed-pw-77")


def test_a_password_reset_shows_the_new_password_once(world) -> None:
    student = world.students_a[0]
    client = logged_in(world.teacher_a)
    response = client.post(reverse("classroom:password", args=[world.a.slug, student.pk]))
    assert response.status_code == 200
    new = response.context["new_password"]["password"]
    assert new in response.content.decode()
    student.refresh_from_db()
    assert student.check_password(new) and not student.check_password("pw-for-tests-1")
    again = client.get(reverse("classroom:detail", args=[world.a.slug]))
    assert new not in again.content.decode()
    assert Client().login(username=student.username, password=new)


def test_students_join_with_the_code(world) -> None:
    client = Client()
    assert client.get(reverse("join")).status_code == 200  # no login needed
    response = client.post(
        reverse("join"), {"code": world.a.join_code.lower(), "username": "joiner", "password": "a-good-pass-99"}
    )
    assert response.status_code == 302
    joiner = User.objects.get(username="joiner")
    assert Membership.objects.filter(user=joiner, classroom=world.a, role="student").exists()
    assert StudentNamespace.objects.filter(user=joiner).exists()
    assert client.get(reverse("home")).status_code == 302  # logged in
    assert client.session["_auth_user_id"] == str(joiner.pk)


@pytest.mark.parametrize(
    ("code", "username", "password", "message"),
    [
        ("WRONG123", "joiner", "a-good-pass-99", "No class has this join code"),
        ("", "joiner", "a-good-pass-99", "No class has this join code"),
        (None, "bad name", "a-good-pass-99", "Choose another username"),
        (None, "EXISTING", "a-good-pass-99", "is taken"),
        (None, "joiner", "123", "too short"),
    ],
)
def test_a_bad_join_creates_nothing(world, code, username, password, message) -> None:
    if username == "EXISTING":
        username = world.students_b[0].username
    users, members = User.objects.count(), Membership.objects.count()
    response = Client().post(
        reverse("join"),
        {"code": world.a.join_code if code is None else code, "username": username, "password": password},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (User.objects.count(), Membership.objects.count()) == (users, members)


def test_joining_needs_the_csrf_token(world) -> None:
    client = Client(enforce_csrf_checks=True)
    data = {"code": world.a.join_code, "username": "forged", "password": "a-good-pass-99"}
    assert client.post(reverse("join"), data).status_code == 403
    assert not User.objects.filter(username="forged").exists()
