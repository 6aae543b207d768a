"""What happened in each student's lab: attempts (one Apply, Check or Reset each) and per-step progress."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Attempt(models.Model):
    """One press of Apply, Check or Reset, from the request until it passed or failed.

    The row is the source of truth for the page (the websocket only announces changes). `task_id` names
    the Celery delivery in charge; `heartbeat` is refreshed while that delivery runs, so an attempt whose
    worker died is noticed and handed to a new delivery, or failed, instead of staying "running".
    """

    class Kind(models.TextChoices):
        APPLY = "apply"
        CHECK = "check"
        RESET = "reset"

    class Status(models.TextChoices):
        QUEUED = "queued"
        VALIDATING = "validating"
        APPLYING = "applying"
        WAITING = "waiting"
        CHECKING = "checking"
        PASSED = "passed"
        FAILED = "failed"

    FINISHED = (Status.PASSED, Status.FAILED)
    RUNNING = (Status.VALIDATING, Status.APPLYING, Status.WAITING, Status.CHECKING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_attempts")
    # The student's class when the attempt was made, for the instructor dashboard.
    classroom = models.ForeignKey("classroom.Classroom", null=True, blank=True, on_delete=models.SET_NULL)
    step_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    namespace = models.CharField(max_length=63)
    manifests = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    progress = models.JSONField(null=True, blank=True)  # {"index", "total", "object"} while applying
    applied = models.JSONField(default=list, blank=True)  # ["Kind/name", ...]
    not_applied = models.JSONField(default=list, blank=True)
    checks = models.JSONField(default=list, blank=True)  # [{"name", "ok", "message", "debug"}, ...]
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveSmallIntegerField(default=0)  # how many task runs took this attempt on

    class Meta:
        ordering = ("-created", "-id")
        indexes = (
            models.Index(fields=["user", "step_id", "-created"], name="attempt_user_step"),
            models.Index(fields=["classroom", "step_id", "-created"], name="attempt_class_step"),
            models.Index(fields=["status", "heartbeat"], name="attempt_status_heartbeat"),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.step_id} by {self.user_id}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class Progress(models.Model):
    """Where a student stands on one step; one row per (user, step), created on the first attempt."""

    class State(models.TextChoices):
        NOT_STARTED = "not_started"
        IN_PROGRESS = "in_progress"
        APPLIED = "applied"
        VERIFIED = "verified"
        FAILED = "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_progress")
    classroom = models.ForeignKey("classroom.Classroom", null=True, blank=True, on_delete=models.SET_NULL)
    step_id = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.NOT_STARTED)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    hints_released = models.PositiveSmallIntegerField(default=0)
    solution_viewed = models.BooleanField(default=False)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["user", "step_id"], name="progress_user_step"),)
        indexes = (models.Index(fields=["classroom", "step_id", "state"], name="progress_class_step"),)

    def __str__(self) -> str:
        return f"{self.step_id} of {self.user_id}: {self.state}"
