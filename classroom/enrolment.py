"""Class management for instructors and joining for students, apart from the HTTP layer.

- `create_class`: a new class named by an instructor, who becomes its first instructor;
- `import_roster`: a CSV roster validated whole (every problem with its line) and applied atomically;
  through the web an instructor may add new accounts and update their own class's students, never
  touch an account outside their class (that would let them take over someone else's account);
- `join`: a new student account in the class whose join code was given.

Each returns what happened or raises `Refused` with every problem; nothing is written on refusal.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from classroom import roster
from classroom.models import Classroom, Membership
from classroom.namespaces import allocate_namespace
from classroom.naming import USERNAME_RE, USERNAME_RULE, class_slug

MAX_ROSTER_BYTES = 256 * 1024


class Refused(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def create_class(name: str, instructor: AbstractBaseUser) -> Classroom:
    name = (name or "").strip()
    problems = roster.validate(name, [])
    if not problems and Classroom.objects.filter(name=name).exists():
        problems = [f"a class named {name!r} already exists"]
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        classroom = Classroom.objects.create(name=name, slug=class_slug(name))
        Membership.objects.create(user=instructor, classroom=classroom, role=Membership.Role.INSTRUCTOR)
    return classroom


def import_roster(classroom: Classroom, text: str, source: str) -> roster.RosterResult:
    entries, problems = roster.read_csv_text(text, source)
    if not entries and not problems:
        problems = [f"{source}: no students in the file (header: {','.join(roster.CSV_COLUMNS)})"]
    problems += roster.validate(classroom.name, entries)
    problems += _outside_accounts(classroom, entries)
    if problems:
        raise Refused(problems)
    return roster.apply_roster(classroom.name, entries)


def _outside_accounts(classroom: Classroom, entries: Sequence[roster.RosterEntry]) -> list[str]:
    """Entries naming an existing account that is not a student of this class (or would stop being one)."""
    names = [entry.username for entry in entries]
    users = get_user_model().objects.filter(username__in=names)
    existing = {user.get_username(): user for user in users}
    students = set(
        Membership.objects.filter(classroom=classroom, role=Membership.Role.STUDENT, user__in=users).values_list(
            "user__username", flat=True
        )
    )
    problems = []
    for entry in entries:
        if entry.username not in existing:
            continue
        if entry.username not in students:
            problems.append(
                f"{entry.origin}: the account {entry.username!r} already exists and is not a student of this class"
            )
        elif entry.role != Membership.Role.STUDENT:
            problems.append(
                f"{entry.origin}: {entry.username!r} is a student here; a roster cannot make them instructor"
            )
    return problems


def join(code: str, username: str, password: str) -> tuple[Classroom, AbstractBaseUser]:
    code = (code or "").strip().upper().replace(" ", "").replace("-", "")
    username = (username or "").strip()
    classroom = Classroom.objects.filter(join_code=code).first() if code else None
    if classroom is None:
        raise Refused(["No class has this join code; check it with your instructor."])
    user_model = get_user_model()
    problems = []
    if not USERNAME_RE.match(username):
        problems.append(f"Choose another username: {USERNAME_RULE}.")
    elif user_model.objects.filter(username=username).exists():
        problems.append(f"The username {username!r} is taken; choose another.")
    else:
        try:
            validate_password(password or "", user=user_model(username=username))
        except ValidationError as exc:
            problems.extend(exc.messages)
    if problems:
        raise Refused(problems)
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, password=password)
            Membership.objects.create(user=user, classroom=classroom, role=Membership.Role.STUDENT)
            allocate_namespace(user)
    except IntegrityError as exc:  # the same name taken a moment ago
        raise Refused([f"The username {username!r} is taken; choose another."]) from exc
    return classroom, user
