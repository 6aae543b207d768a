"""`manage.py ensuredemo`: a ready-to-use demo class on first start, its credentials on every start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from classroom.management.commands.createclass import write_namespace_report
from classroom.models import Classroom, Membership
from classroom.namespaces import provision_namespaces
from classroom.roster import RosterEntry, apply_roster, validate

DEMO_CLASS = "Demo class"
DEMO_USERS = (
    ("teacher", Membership.Role.INSTRUCTOR),
    ("student1", Membership.Role.STUDENT),
    ("student2", Membership.Role.STUDENT),
)
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.txt"


def generate_password() -> str:
    """Random, but easy to type from a projector: three groups of four, no look-alike characters."""
    groups = ("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3))
    return "-".join(groups)


class Command(BaseCommand):
    help = "Create the demo class (teacher, student1, student2) unless it exists; print how to log in."

    def handle(self, *args: object, **options: object) -> None:
        path = credentials_path()
        if Classroom.objects.filter(name=DEMO_CLASS).exists():
            if path.exists():
                self.stdout.write(f"The demo class exists. Log in with (from {path}):\n{path.read_text()}")
            else:
                self.stdout.write(
                    f"The demo class exists but {path} is gone; set new passwords with "
                    "`manage.py createclass` or `manage.py changepassword`."
                )
            return
        entries = [RosterEntry(username, generate_password(), str(role), "demo") for username, role in DEMO_USERS]
        problems = validate(DEMO_CLASS, entries)
        if problems:  # only if someone took the demo's class name slug
            self.stderr.write("Cannot create the demo class:\n  " + "\n  ".join(problems))
            return
        # Write the passwords before the accounts: if this fails, no account has an unknown password.
        text = "".join(f"{e.role:<11} {e.username:<9} {e.password}\n" for e in entries)
        _write_private(path, text)
        result = apply_roster(DEMO_CLASS, entries)
        self.stdout.write(result.summary())
        self.stdout.write(f"Log in on the console's login page with (saved in {path}):\n{text}")
        write_namespace_report(self, provision_namespaces(result.students))


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only the owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)  # a leftover could have looser permissions
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
