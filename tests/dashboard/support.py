"""Helpers for the dashboard tests: attempts and progress rows as the lab writes them."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone

from classroom.models import StudentNamespace
from labsteps.models import Attempt, Progress


def record(user, step_id: str, state: str, status: str, at: datetime | None = None, manifests: str = "") -> Progress:
    """One finished attempt of `user` on `step_id` and the step's progress, as labsteps.attempts leaves them."""
    at = at or timezone.now()
    room = user.memberships.first().classroom
    attempt = Attempt.objects.create(
        user=user,
        classroom=room,
        step_id=step_id,
        kind="apply",
        namespace=StudentNamespace.objects.get(user=user).name,
        manifests=manifests,
        status=status,
        task_id=uuid.uuid4().hex,
        created=at,
        finished=at if status in ("passed", "failed") else None,
    )
    progress, _ = Progress.objects.get_or_create(user=user, step_id=step_id, defaults={"classroom": room})
    progress.attempts += 1
    progress.state = state
    progress.last_attempt = attempt
    progress.updated = at
    progress.save()
    return progress
