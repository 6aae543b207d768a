"""No attempt stays running: the stale sweep, the claim of a delivered task, and superseded attempts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from classroom.models import StudentNamespace
from labsteps import attempts, runner
from labsteps.models import Attempt, Progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def student(make_student):
    return make_student()


def make_attempt(student, **fields) -> Attempt:
    namespace = StudentNamespace.objects.get(user=student)
    values = {"step_id": "deploy-splitdim", "kind": Attempt.Kind.APPLY, "task_id": uuid.uuid4().hex}
    values.update(fields)
    return Attempt.objects.create(user=student, namespace=namespace.name, **values)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_running_attempt_with_a_stale_heartbeat_is_queued_again_under_a_new_task(student) -> None:
    attempt = make_attempt(student, status=Attempt.Status.APPLYING, heartbeat=ago(60), deliveries=1)
    fresh = make_attempt(student, step_id="observability", status=Attempt.Status.CHECKING, heartbeat=ago(1))
    assert attempts.sweep(student) == 1
    attempt.refresh_from_db()
    fresh.refresh_from_db()
    assert attempt.status == Attempt.Status.QUEUED and "worker running this attempt stopped" in attempt.message
    assert attempt.heartbeat > ago(5)
    assert fresh.status == Attempt.Status.CHECKING  # its worker is alive
    # The old delivery, should it ever come back, no longer owns the attempt; the new one does.
    old_task = Attempt.objects.get(pk=attempt.pk).task_id
    assert runner.claim(attempt.pk, "the-dead-workers-task") is None
    claimed = runner.claim(attempt.pk, old_task)
    assert claimed.status == Attempt.Status.VALIDATING and claimed.deliveries == 2
    assert claimed.message == "Running again after a worker restart."


def test_an_attempt_interrupted_too_often_fails_with_a_message(student) -> None:
    attempt = make_attempt(
        student, status=Attempt.Status.WAITING, heartbeat=ago(60), deliveries=attempts.MAX_DELIVERIES
    )
    assert attempts.sweep() == 1
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.FAILED and attempt.finished is not None
    assert "stopped while running this attempt" in attempt.message
    assert Progress.objects.get(user=student, step_id=attempt.step_id).state == Progress.State.FAILED


def test_an_attempt_nobody_picked_up_fails(student) -> None:
    waiting = make_attempt(student, heartbeat=ago(attempts.queue_timeout().total_seconds() + 5))
    recent = make_attempt(student, step_id="security", heartbeat=ago(2))
    assert attempts.sweep(student) == 1
    waiting.refresh_from_db()
    recent.refresh_from_db()
    assert waiting.status == Attempt.Status.FAILED and "is the Celery worker running" in waiting.message
    assert recent.status == Attempt.Status.QUEUED


def test_claim_skips_finished_attempts_and_fails_exhausted_ones(student) -> None:
    done = make_attempt(student, status=Attempt.Status.PASSED, finished=timezone.now())
    assert runner.claim(done.pk, done.task_id) is None
    assert runner.claim(10**9, "no-such-attempt") is None
    exhausted = make_attempt(student, deliveries=attempts.MAX_DELIVERIES)
    assert runner.claim(exhausted.pk, exhausted.task_id) is None
    exhausted.refresh_from_db()
    assert exhausted.status == Attempt.Status.FAILED and "interrupted too often" in exhausted.message


def test_a_new_attempt_supersedes_queued_ones_and_counts_in_progress(student) -> None:
    namespace = StudentNamespace.objects.get(user=student)
    first = attempts.new_attempt(student, namespace, "observability", Attempt.Kind.CHECK)
    second = attempts.new_attempt(student, namespace, "observability", Attempt.Kind.APPLY, "")
    first.refresh_from_db()
    assert first.status == Attempt.Status.FAILED and "Replaced by a newer attempt" in first.message
    assert second.status == Attempt.Status.QUEUED and second.heartbeat is not None
    progress = Progress.objects.get(user=student, step_id="observability")
    assert progress.attempts == 2 and progress.last_attempt == second
    assert attempts.attempt_json(second) == {
        "id": second.id,
        "step": "observability",
        "kind": "apply",
        "status": "queued",
        "message": "",
        "progress": None,
        "applied": [],
        "not_applied": [],
        "checks": [],
        "created": second.created.isoformat(),
        "finished": None,
    }
