"""Class rosters: read them from command-line options and CSV files, validate them whole, apply them.

Validation collects every problem (with where it came from) before anything is written, so a
roster is either applied completely or not at all. Applying is idempotent: users, passwords,
memberships and roles are only written when they differ from what is stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from classroom.models import Classroom, Membership
from classroom.namespaces import allocate_namespace
from classroom.naming import USERNAME_RE, USERNAME_RULE, class_slug

CSV_COLUMNS = ("username", "password", "role")
ROLES = tuple(Membership.Role.values)


@dataclass(frozen=True)
class RosterEntry:
    username: str
    password: str
    role: str
    origin: str  # where the entry came from, for error messages: "--student #2", "class.csv line 4"


class RosterInvalid(Exception):
    """The roster has problems; nothing was written."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the roster")
        self.problems = list(problems)


def parse_option(value: str, role: str, index: int) -> tuple[RosterEntry | None, str | None]:
    """One `USER:PASS` option value (the password may itself contain ':')."""
    origin = f"--{role} #{index}"
    username, sep, password = value.partition(":")
    if not sep:
        return None, f"{origin}: expected USER:PASS, got {value!r}"
    return RosterEntry(username.strip(), password, role, origin), None


def read_csv(path: Path) -> tuple[list[RosterEntry], list[str]]:
    """Entries and problems of a CSV file with the header `username,password,role` (any order)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets add a BOM
            return read_csv_lines(handle, str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read: {exc}"]


def read_csv_text(text: str, source: str) -> tuple[list[RosterEntry], list[str]]:
    """Like `read_csv`, for CSV text (an upload) named `source` in the messages."""
    return read_csv_lines(io.StringIO(text.removeprefix("\ufeff"), newline=""), source)


def read_csv_lines(lines: Iterable[str], source: str) -> tuple[list[RosterEntry], list[str]]:
    entries: list[RosterEntry] = []
    problems: list[str] = []
    try:
        reader = csv.reader(lines, skipinitialspace=True)
        header = [column.strip().lower() for column in next(reader, [])]
        if sorted(header) != sorted(CSV_COLUMNS):
            missing = [column for column in CSV_COLUMNS if column not in header]
            detail = f" (missing: {', '.join(missing)})" if missing else ""
            return [], [f"{source} line 1: header must be {','.join(CSV_COLUMNS)}, got {','.join(header)!r}{detail}"]
        for row in reader:
            origin = f"{source} line {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(CSV_COLUMNS):
                problems.append(f"{origin}: expected {len(CSV_COLUMNS)} fields, got {len(row)}")
                continue
            record = dict(zip(header, row, strict=True))
            role = record["role"].strip().lower()
            if role not in ROLES:
                problems.append(f"{origin}: role must be one of {', '.join(ROLES)}, got {record['role']!r}")
                continue
            entries.append(RosterEntry(record["username"].strip(), record["password"], role, origin))
    except csv.Error as exc:
        problems.append(f"{source}: cannot read: {exc}")
    return entries, problems


def load_roster(
    class_name: str,
    instructors: Iterable[str] = (),
    students: Iterable[str] = (),
    csv_files: Iterable[Path] = (),
) -> list[RosterEntry]:
    """Parse and validate everything; raise RosterInvalid listing every problem."""
    entries: list[RosterEntry] = []
    problems: list[str] = []
    for role, values in ((Membership.Role.INSTRUCTOR, instructors), (Membership.Role.STUDENT, students)):
        for index, value in enumerate(values, start=1):
            entry, problem = parse_option(value, str(role), index)
            if entry is not None:
                entries.append(entry)
            if problem is not None:
                problems.append(problem)
    for path in csv_files:
        file_entries, file_problems = read_csv(Path(path))
        entries.extend(file_entries)
        problems.extend(file_problems)
    problems.extend(validate(class_name, entries))
    if problems:
        raise RosterInvalid(problems)
    return entries


def validate(class_name: str, entries: Sequence[RosterEntry]) -> list[str]:
    """Problems with the class name and with each entry (names, passwords, duplicates)."""
    problems = _class_name_problems(class_name)
    user_model = get_user_model()
    first_seen: dict[str, str] = {}
    for entry in entries:
        if entry.username in first_seen:
            problems.append(f"{entry.origin}: {entry.username!r} is already listed at {first_seen[entry.username]}")
            continue
        first_seen[entry.username] = entry.origin
        if not USERNAME_RE.match(entry.username):
            problems.append(f"{entry.origin}: invalid username {entry.username!r} (use {USERNAME_RULE})")
            continue
        if not entry.password:
            problems.append(f"{entry.origin}: empty password for {entry.username!r}")
            continue
        try:
            validate_password(entry.password, user=user_model(username=entry.username))
        except ValidationError as exc:
            problems.append(f"{entry.origin}: password for {entry.username!r}: {' '.join(exc.messages)}")
    return problems


def _class_name_problems(class_name: str) -> list[str]:
    name = class_name.strip()
    max_length = Classroom._meta.get_field("name").max_length
    if not name:
        return ["class name is empty"]
    if len(name) > max_length:
        return [f"class name is longer than {max_length} characters"]
    slug = class_slug(name)
    if not slug:
        return [f"class name {name!r} needs at least one letter or digit"]
    clash = Classroom.objects.filter(slug=slug).exclude(name=name).first()
    if clash is not None:
        return [f"class name {name!r} is too close to the existing class {clash.name!r} (same slug {slug!r})"]
    return []


@dataclass
class RosterResult:
    classroom: Classroom
    class_created: bool = False
    users_created: list[str] = field(default_factory=list)
    passwords_changed: list[str] = field(default_factory=list)
    memberships_added: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)
    namespaces_allocated: list[str] = field(default_factory=list)
    students: list[AbstractBaseUser] = field(default_factory=list)  # for provisioning namespaces

    @property
    def changed(self) -> bool:
        return bool(
            self.class_created
            or self.users_created
            or self.passwords_changed
            or self.memberships_added
            or self.roles_changed
            or self.namespaces_allocated
        )

    def summary(self) -> str:
        room = self.classroom
        head = f"Class {room.name!r} (slug {room.slug}, join code {room.join_code})"
        if not self.changed:
            return f"{head}: already up to date, nothing changed."
        parts = [
            "created" if self.class_created else "updated",
            f"{len(self.users_created)} user(s) created",
            f"{len(self.passwords_changed)} password(s) changed",
            f"{len(self.memberships_added)} membership(s) added",
            f"{len(self.roles_changed)} role(s) changed",
            f"{len(self.namespaces_allocated)} namespace name(s) assigned",
        ]
        return f"{head}: " + ", ".join(parts) + "."


@transaction.atomic
def apply_roster(class_name: str, entries: Sequence[RosterEntry]) -> RosterResult:
    """Create or update the class and its members (entries must come from `load_roster`)."""
    name = class_name.strip()
    classroom, class_created = Classroom.objects.get_or_create(name=name, defaults={"slug": class_slug(name)})
    result = RosterResult(classroom=classroom, class_created=class_created)
    user_model = get_user_model()
    for entry in entries:
        user, created = user_model.objects.get_or_create(username=entry.username)
        if created:
            user.set_password(entry.password)
            user.save(update_fields=["password"])
            result.users_created.append(entry.username)
        elif not user.check_password(entry.password):
            user.set_password(entry.password)
            user.save(update_fields=["password"])
            result.passwords_changed.append(entry.username)
        membership, joined = Membership.objects.get_or_create(
            user=user, classroom=classroom, defaults={"role": entry.role}
        )
        if joined:
            result.memberships_added.append(entry.username)
        elif membership.role != entry.role:
            membership.role = entry.role
            membership.save(update_fields=["role"])
            result.roles_changed.append(entry.username)
        if entry.role == Membership.Role.STUDENT:
            namespace, allocated = allocate_namespace(user)
            if allocated:
                result.namespaces_allocated.append(namespace.name)
            result.students.append(user)
    return result
