"""Exports of a class's progress: one record per student and step, as CSV or JSON.

Fields: username, namespace, step, step_order, state (the dashboard's cell state), progress_state (the
stored Progress state, empty when the step was never tried), attempts (Apply/Check/Reset presses
counted on the step), first_attempt and last_attempt (creation times), last_status (of the latest
attempt) and last_event (the cell's latest event). Times are ISO 8601 in UTC; missing values are empty
in CSV and null in JSON.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from django.db.models import Max, Min

from classroom.models import Classroom
from dashboard import matrix
from labsteps.models import Attempt

FIELDS = (
    "username",
    "namespace",
    "step",
    "step_order",
    "state",
    "progress_state",
    "attempts",
    "first_attempt",
    "last_attempt",
    "last_status",
    "last_event",
)


def records(classroom: Classroom) -> list[dict[str, Any]]:
    table = matrix.build(classroom)
    ids = [row.id for row in table.rows]
    spans = {
        (a["user_id"], a["step_id"]): a
        for a in Attempt.objects.filter(user_id__in=ids)
        .values("user_id", "step_id")
        .annotate(first=Min("created"), last=Max("created"))
    }
    out = []
    for row in table.rows:
        for step, cell in zip(table.steps, row.cells, strict=True):
            span = spans.get((row.id, step["id"]), {})
            out.append(
                {
                    "username": row.username,
                    "namespace": row.namespace,
                    "step": step["id"],
                    "step_order": step["order"],
                    "state": cell.state,
                    "progress_state": cell.progress_state,
                    "attempts": cell.attempts,
                    "first_attempt": _iso(span.get("first")),
                    "last_attempt": _iso(span.get("last")),
                    "last_status": cell.last_status,
                    "last_event": _iso(cell.last),
                }
            )
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else _safe_cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _safe_cell(value: Any) -> Any:
    """Spreadsheets run cells starting with = + - @ as formulas; usernames cannot start so, but be sure."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
