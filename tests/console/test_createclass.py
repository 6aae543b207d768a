"""`manage.py createclass`: create, re-run without changes, refuse bad input whole."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from classroom.models import Classroom, Membership, StudentNamespace

pytestmark = pytest.mark.django_db

User = get_user_model()
ARGS = (
    "Mesh 101",
    "--instructor",
    "prof:Instructor-pass-1",
    "--student",
    "alice:Alice-pass-123",
    "--student",
    "bob.smith:Bob:with:colons-9",
)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("createclass", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot() -> dict:
    """Everything createclass may write, to compare before and after a re-run."""
    return {
        "classes": list(Classroom.objects.values_list("pk", "name", "slug", "join_code")),
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "password")),
        "memberships": list(Membership.objects.order_by("pk").values_list("pk", "user_id", "classroom_id", "role")),
        "namespaces": list(
            StudentNamespace.objects.order_by("pk").values_list("pk", "user_id", "name", "created", "last_error")
        ),
    }


def test_creates_class_users_memberships_and_namespaces() -> None:
    out, err = run(*ARGS)
    room = Classroom.objects.get(name="Mesh 101")
    assert room.slug == "mesh-101" and len(room.join_code) == 8
    roles = dict(Membership.objects.filter(classroom=room).values_list("user__username", "role"))
    assert roles == {"prof": "instructor", "alice": "student", "bob.smith": "student"}
    assert User.objects.get(username="alice").check_password("Alice-pass-123")
    assert User.objects.get(username="bob.smith").check_password("Bob:with:colons-9")
    namespaces = dict(StudentNamespace.objects.values_list("user__username", "name"))
    assert namespaces == {"alice": "mc-alice", "bob.smith": "mc-bob-smith"}  # instructors get none
    assert "3 user(s) created" in out and "join code " + room.join_code in out
    # The test cluster is down: the namespaces wait for the first login, and the command says so.
    assert not StudentNamespace.objects.filter(created=True).exists()
    assert "2 namespace(s) not created yet" in err and "cannot reach the cluster" in err
    assert StudentNamespace.objects.get(name="mc-alice").last_error.startswith("cannot reach the cluster")


def test_rerun_with_same_arguments_changes_nothing() -> None:
    run(*ARGS)
    before = snapshot()
    out, _ = run(*ARGS)
    assert snapshot() == before
    assert "already up to date, nothing changed" in out


def test_rerun_updates_only_what_differs() -> None:
    run(*ARGS)
    before = snapshot()
    out, _ = run("Mesh 101", "--instructor", "prof:Instructor-pass-1", "--instructor", "alice:New-alice-pass-7")
    after = snapshot()
    assert "1 password(s) changed" in out and "1 role(s) changed" in out and "0 user(s) created" in out
    passwords_before = dict((u, p) for _, u, p in before["users"])
    passwords_after = dict((u, p) for _, u, p in after["users"])
    assert passwords_after["prof"] == passwords_before["prof"]
    assert passwords_after["alice"] != passwords_before["alice"]
    assert Membership.objects.get(user__username="alice").role == "instructor"
    assert Membership.objects.filter(user__username="bob.smith").exists()  # absent from input: kept


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def test_csv_roster(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "username, password, role\n"
        "teacher, Teach-me-2024, instructor\n"
        'carol, "pass,with,commas-1", Student\n'
        "\n"
        "dave, Dave-pass-4567, student\n",
    )
    run("Networks", "--csv", str(path), "--student", "erin:Erin-pass-8910")
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"teacher": "instructor", "carol": "student", "dave": "student", "erin": "student"}
    assert User.objects.get(username="carol").check_password("pass,with,commas-1")


def test_bad_csv_is_refused_whole_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "username,password,role\n"
        "good,Good-pass-1234,student\n"  # line 2: fine, but must not be created either
        "mallory,Mallory-pass-1,admin\n"  # line 3: bad role
        "oscar,Oscar-pass-1234\n"  # line 4: missing field
        "bad name,Whatever-pass-1,student\n"  # line 5: bad username
        "good,Good-pass-1234,student\n"  # line 6: duplicate
        "peggy,short,student\n",  # line 7: weak password
    )
    with pytest.raises(CommandError) as raised:
        run("Mesh 101", "--csv", str(path), "--student", "trent:Trent-pass-1234")
    message = str(raised.value)
    assert "nothing was changed" in message
    assert f"{path} line 3: role must be one of" in message
    assert f"{path} line 4: expected 3 fields, got 2" in message
    assert f"{path} line 5: invalid username 'bad name'" in message
    assert f"{path} line 6: 'good' is already listed at {path} line 2" in message
    assert f"{path} line 7: password for 'peggy'" in message
    assert not Classroom.objects.exists()
    assert not User.objects.exists()


def test_bad_csv_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "user,pass,role\nalice,Alice-pass-123,student\n")
    with pytest.raises(CommandError, match="line 1: header must be username,password,role"):
        run("Mesh 101", "--csv", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        run("Mesh 101", "--csv", str(tmp_path / "missing.csv"))


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("!!!",), "needs at least one letter or digit"),
        (("   ",), "class name is empty"),
        (("x" * 101,), "longer than 100 characters"),
        (("Mesh 101", "--student", "x" * 64 + ":Long-user-pass-1"), "invalid username"),
        (("Mesh 101", "--student=-lead:Lead-pass-1234"), "invalid username '-lead'"),
        (("Mesh 101", "--student", "zoë:Zoe-pass-12345"), "invalid username 'zoë'"),
        (("Mesh 101", "--student", "nopassword"), "--student #1: expected USER:PASS"),
        (("Mesh 101", "--instructor", "prof:"), "--instructor #1: empty password"),
    ],
)
def test_bad_names_are_refused(args: tuple[str, ...], problem: str) -> None:
    with pytest.raises(CommandError, match="nothing was changed") as raised:
        run(*args)
    assert problem in str(raised.value)
    assert not Classroom.objects.exists() and not User.objects.exists()


def test_class_name_clashing_with_an_existing_slug() -> None:
    run("Mesh 101")
    with pytest.raises(CommandError, match="too close to the existing class 'Mesh 101'"):
        run("mesh-101!")
    assert Classroom.objects.count() == 1
