"""The progress matrix of a class: students × lab steps, read from the database in a fixed number of queries.

A cell shows what the instructor needs at a glance, derived from the step's Progress row and its latest
attempt (`cell_state`, mirrored by static/js/dashboard.js for live updates):

- failed       the latest attempt failed (even a manifest that did not validate), or the step failed;
- in_progress  an attempt is queued or running and the step has no better state yet;
- otherwise the Progress state: not_started, in_progress, applied or verified.

`last` is the time of the cell's latest event (the progress update or the attempt's end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from classroom.models import Classroom, Membership
from labsteps.models import Attempt, Progress
from labsteps.steps import all_steps

STATES = ("not_started", "in_progress", "applied", "verified", "failed")
STATE_LABELS = {
    "not_started": "not started",
    "in_progress": "in progress",
    "applied": "applied",
    "verified": "verified",
    "failed": "failed",
}
ACTIVE = {Attempt.Status.QUEUED, *Attempt.RUNNING}


def cell_state(progress_state: str | None, last_status: str | None) -> str:
    if last_status == Attempt.Status.FAILED or progress_state == Progress.State.FAILED:
        return "failed"
    if last_status in ACTIVE and progress_state in (None, Progress.State.NOT_STARTED):
        return "in_progress"
    return progress_state or "not_started"


@dataclass
class Cell:
    step: str
    state: str = "not_started"
    progress_state: str | None = None
    attempts: int = 0
    attempt: int | None = None  # id of the latest attempt
    last_status: str | None = None
    last: datetime | None = None

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def last_iso(self) -> str:
        return self.last.isoformat() if self.last else ""

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "state": self.state,
            "progress": self.progress_state,
            "attempts": self.attempts,
            "attempt": self.attempt,
            "last_status": self.last_status,
            "last": self.last.isoformat() if self.last else None,
        }


@dataclass
class Row:
    id: int
    username: str
    namespace: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def last(self) -> datetime | None:
        times = [cell.last for cell in self.cells if cell.last]
        return max(times) if times else None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "namespace": self.namespace,
            "cells": [cell.as_json() for cell in self.cells],
        }


@dataclass
class Matrix:
    steps: list[dict[str, Any]]
    rows: list[Row]

    def totals(self) -> list[dict[str, int]]:
        """Per step (in order), how many students are in each state."""
        out = []
        for index in range(len(self.steps)):
            counts = dict.fromkeys(STATES, 0)
            for row in self.rows:
                counts[row.cells[index].state] += 1
            out.append(counts)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "students": [row.as_json() for row in self.rows], "totals": self.totals()}


def students_of(classroom: Classroom) -> list[Any]:
    return list(
        get_user_model()
        .objects.filter(memberships__classroom=classroom, memberships__role=Membership.Role.STUDENT)
        .select_related("namespace")
        .order_by("username")
    )


def build(classroom: Classroom) -> Matrix:
    """The class's matrix: three queries whatever the class size (students, progress, latest attempts)."""
    return build_for(students_of(classroom))


def build_for(students: list[Any]) -> Matrix:
    """The matrix of these students (users, with `namespace` selected)."""
    steps = [{"id": step.id, "order": step.order, "title": step.title} for step in all_steps()]
    ids = [user.pk for user in students]
    progress = {
        (p["user_id"], p["step_id"]): p
        for p in Progress.objects.filter(user_id__in=ids).values(
            "user_id", "step_id", "state", "attempts", "updated", "last_attempt_id"
        )
    }
    attempt_ids = [p["last_attempt_id"] for p in progress.values() if p["last_attempt_id"]]
    latest = {
        a["id"]: a for a in Attempt.objects.filter(id__in=attempt_ids).values("id", "status", "created", "finished")
    }
    rows = []
    for user in students:
        namespace = getattr(user, "namespace", None)
        row = Row(user.pk, user.get_username(), namespace.name if namespace else "")
        for step in steps:
            row.cells.append(_cell(step["id"], progress.get((user.pk, step["id"])), latest))
        rows.append(row)
    return Matrix(steps, rows)


def _cell(step_id: str, progress: dict[str, Any] | None, latest: dict[int, dict[str, Any]]) -> Cell:
    if progress is None:
        return Cell(step_id)
    attempt = latest.get(progress["last_attempt_id"]) if progress["last_attempt_id"] else None
    status = attempt["status"] if attempt else None
    times = [progress["updated"]]
    if attempt:
        times.append(attempt["finished"] or attempt["created"])
    return Cell(
        step=step_id,
        state=cell_state(progress["state"], status),
        progress_state=progress["state"],
        attempts=progress["attempts"],
        attempt=attempt["id"] if attempt else None,
        last_status=status,
        last=max(t for t in times if t),
    )
