"""`manage.py createclass NAME --instructor USER:PASS --student USER:PASS ... [--csv FILE]`."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classroom.namespaces import ProvisionReport, provision_namespaces
from classroom.roster import RosterInvalid, apply_roster, load_roster


class Command(BaseCommand):
    help = (
        "Create or update a class with its instructors and students, then create the students' "
        "namespaces. The whole input is validated first; running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="class name (unique)")
        parser.add_argument("--instructor", action="append", default=[], metavar="USER:PASS")
        parser.add_argument("--student", action="append", default=[], metavar="USER:PASS")
        parser.add_argument(
            "--csv",
            action="append",
            default=[],
            type=Path,
            metavar="FILE",
            help="CSV with the header username,password,role (role: student or instructor)",
        )

    def handle(self, *args: object, **options: object) -> None:
        name = str(options["name"])
        try:
            entries = load_roster(name, options["instructor"], options["student"], options["csv"])
        except RosterInvalid as exc:
            raise CommandError("nothing was changed:\n  " + "\n  ".join(exc.problems)) from exc
        result = apply_roster(name, entries)
        self.stdout.write(result.summary())
        write_namespace_report(self, provision_namespaces(result.students))


def write_namespace_report(command: BaseCommand, report: ProvisionReport) -> None:
    """Say which namespaces exist in the cluster and which wait for the students' first login."""
    if report.ready:
        command.stdout.write(f"Namespaces ready in the cluster: {len(report.ready)}.")
    if report.pending:
        command.stderr.write(
            f"{len(report.pending)} namespace(s) not created yet ({report.error}); "
            "they will be created when the students log in."
        )
