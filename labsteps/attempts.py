"""Attempts and progress as the page sees them: JSON shapes, events, queueing, and the stale sweep.

Everything that changes an Attempt's or a Progress's visible state goes through here, so the database
row and the websocket event never disagree. The sweep is what guarantees that no attempt stays
"running" after its worker died: an attempt whose heartbeat went stale is handed to a new task (a
restarted worker picks it up and runs it again, which is safe because applying is idempotent), and
failed with a message once it was interrupted too often or nobody picked it up.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from classroom.models import Classroom, Membership, StudentNamespace
from classroom.namespaces import student_classroom
from labsteps.models import Attempt, Progress
from labsteps.steps import all_steps
from meshconsole.events import Event, publish

log = logging.getLogger(__name__)

MAX_DELIVERIES = 3  # task runs one attempt may take (the first and two after worker deaths)


def stale_seconds() -> int:
    return int(getattr(settings, "LAB_ATTEMPT_STALE_SECONDS", 15))


def heartbeat_seconds() -> float:
    return max(0.5, stale_seconds() / 5)


def queue_timeout() -> timedelta:
    """How long an attempt may wait for a worker before it is failed."""
    return timedelta(seconds=max(600, 2 * int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 300))))


# ---- JSON shapes ------------------------------------------------------------------------------------------
def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "step": attempt.step_id,
        "kind": attempt.kind,
        "status": attempt.status,
        "message": attempt.message,
        "progress": attempt.progress,
        "applied": attempt.applied,
        "not_applied": attempt.not_applied,
        "checks": attempt.checks,
        "created": _iso(attempt.created),
        "finished": _iso(attempt.finished),
    }


def progress_json(step_id: str, progress: Progress | None) -> dict[str, Any]:
    if progress is None:
        return {"step": step_id, "state": Progress.State.NOT_STARTED, "updated": None}
    return {"step": step_id, "state": progress.state, "updated": _iso(progress.updated)}


def progress_by_step(user: AbstractBaseUser) -> dict[str, Progress]:
    return {p.step_id: p for p in Progress.objects.filter(user=user)}


def latest_attempts(user: AbstractBaseUser) -> list[Attempt]:
    """The newest attempt of each step the user has tried, in lab order."""
    latest = Attempt.objects.filter(user=user).values("step_id").annotate(last=Max("id")).values("last")
    by_step = {a.step_id: a for a in Attempt.objects.filter(id__in=latest)}
    return [by_step[step.id] for step in all_steps() if step.id in by_step]


# ---- events -----------------------------------------------------------------------------------------------
def _class_slugs(user_id: int) -> tuple[str, ...]:
    return tuple(
        Membership.objects.filter(user_id=user_id, role=Membership.Role.STUDENT).values_list(
            "classroom__slug", flat=True
        )
    )


def announce(attempt: Attempt) -> None:
    payload = {"attempt": attempt_json(attempt)}
    publish(Event("attempt", attempt.user_id, _class_slugs(attempt.user_id), payload))


def announce_progress(progress: Progress) -> None:
    payload = progress_json(progress.step_id, progress)
    # The dashboard's cell also shows the attempt count and whether the latest attempt failed.
    last = progress.last_attempt
    staff = {
        "attempts": progress.attempts,
        "attempt": last.id if last else None,
        "last_status": last.status if last else None,
    }
    publish(Event("progress", progress.user_id, _class_slugs(progress.user_id), payload, staff))


def set_progress(
    attempt: Attempt,
    state: str | None = None,
    counted: bool = False,
    task_id: str | None = None,
    announce_it: bool = True,
) -> Progress | None:
    """Record `attempt` as the step's latest (counting it when `counted`), optionally with a new state.

    With `task_id`, only while that task still owns the attempt (None otherwise): a task the sweep took
    the attempt from must not overwrite what the new task recorded.
    """
    with transaction.atomic():
        if task_id is not None and not Attempt.objects.select_for_update().filter(pk=attempt.pk, task_id=task_id):
            return None
        progress, _ = Progress.objects.select_for_update().get_or_create(
            user_id=attempt.user_id, step_id=attempt.step_id, defaults={"classroom": attempt.classroom}
        )
        if counted:
            progress.attempts += 1
        progress.last_attempt = attempt
        if state is not None:
            progress.state = state
        progress.classroom = attempt.classroom or progress.classroom
        progress.updated = timezone.now()
        progress.save()
    if announce_it:
        announce_progress(progress)
    return progress


# ---- creating and queueing --------------------------------------------------------------------------------
def new_attempt(
    user: AbstractBaseUser, namespace: StudentNamespace, step_id: str, kind: str, manifests: str = ""
) -> Attempt:
    """A queued attempt; queued attempts of the same user that never started are superseded by it."""
    now = timezone.now()
    superseded = Attempt.objects.filter(user=user, status=Attempt.Status.QUEUED)
    for old in superseded:
        if Attempt.objects.filter(pk=old.pk, status=Attempt.Status.QUEUED).update(
            status=Attempt.Status.FAILED, message="Replaced by a newer attempt before it started.", finished=now
        ):
            old.refresh_from_db()
            announce(old)
    classroom: Classroom | None = student_classroom(user)
    attempt = Attempt.objects.create(
        user=user,
        classroom=classroom,
        step_id=step_id,
        kind=kind,
        namespace=namespace.name,
        manifests=manifests,
        task_id=uuid.uuid4().hex,
        heartbeat=now,
    )
    set_progress(attempt, counted=True)
    announce(attempt)
    return attempt


def fail_now(attempt: Attempt, message: str) -> Attempt:
    """Finish a not-yet-running attempt as failed (validation problems, a queue that is down)."""
    attempt.status = Attempt.Status.FAILED
    attempt.message = message
    attempt.finished = timezone.now()
    attempt.save(update_fields=["status", "message", "finished"])
    announce(attempt)
    return attempt


def send_task(attempt: Attempt) -> None:
    """Hand the attempt to a worker; raises when the broker cannot be reached."""
    from labsteps.tasks import run_attempt

    run_attempt.apply_async(
        args=[attempt.id],
        task_id=attempt.task_id,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
    )


def running_attempt(user: AbstractBaseUser) -> Attempt | None:
    return Attempt.objects.filter(user=user, status__in=Attempt.RUNNING).first()


# ---- the sweep ----------------------------------------------------------------------------------------------
def sweep(user: AbstractBaseUser | None = None) -> int:
    """Take over attempts whose worker died and fail those nobody picked up; how many were changed."""
    now = timezone.now()
    scope = Attempt.objects.all() if user is None else Attempt.objects.filter(user=user)
    stale = scope.filter(
        Q(status__in=Attempt.RUNNING, heartbeat__lt=now - timedelta(seconds=stale_seconds()))
        | Q(status=Attempt.Status.QUEUED, heartbeat__lt=now - queue_timeout())
    )
    changed = 0
    for attempt in stale:
        changed += _take_over(attempt, now)
    return changed


def _take_over(attempt: Attempt, now: Any) -> int:
    same = Attempt.objects.filter(pk=attempt.pk, status=attempt.status, task_id=attempt.task_id)
    if attempt.status == Attempt.Status.QUEUED:
        message = "No worker picked this attempt up; is the Celery worker running? Press the button again."
        fields: dict[str, Any] = {"status": Attempt.Status.FAILED, "message": message, "finished": now}
    elif attempt.deliveries >= MAX_DELIVERIES:
        message = "The worker stopped while running this attempt, more than once. Press the button again."
        fields = {"status": Attempt.Status.FAILED, "message": message, "finished": now, "progress": None}
    else:
        message = "The worker running this attempt stopped; it is queued to run again."
        fields = {"status": Attempt.Status.QUEUED, "message": message, "task_id": uuid.uuid4().hex, "heartbeat": now}
    if not same.update(**fields):
        return 0  # its task moved on meanwhile
    attempt.refresh_from_db()
    log.warning("attempt %s: %s", attempt.pk, message)
    announce(attempt)
    if attempt.status == Attempt.Status.FAILED:
        set_progress(attempt, Progress.State.FAILED)
    else:
        try:
            send_task(attempt)
        except Exception:
            log.warning("attempt %s: the task queue is not reachable; it stays queued until it times out", attempt.pk)
    return 1
