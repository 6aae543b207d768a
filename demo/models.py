"""The instructor's demo namespace and the faults the demo injected, recorded so that revert is exact.

A `Fault` is one press of "Inject": its parameters, and one `FaultTarget` per namespace it was sent to
(the demo namespace, plus every student namespace of the class when broadcast). Each target records
the VirtualService the demo created there and any VirtualService it had to take out of the way (the
mesh applies only one per host), so revert deletes exactly the demo's object and puts back exactly
what it displaced, after a restart of any process as well.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class DemoNamespace(models.Model):
    """One instructor's demo namespace for one class, and the state of its "prepare the whole lab" run."""

    class State(models.TextChoices):
        EMPTY = "empty"
        PREPARING = "preparing"
        READY = "ready"
        FAILED = "failed"

    classroom = models.ForeignKey("classroom.Classroom", on_delete=models.CASCADE, related_name="demos")
    instructor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demos")
    name = models.CharField(max_length=63, unique=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.EMPTY)
    message = models.TextField(blank=True)
    # While preparing: {"index", "total", "step", "title", "status", "detail"}; the last one afterwards.
    progress = models.JSONField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["classroom", "instructor"], name="demo_one_per_instructor"),)
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Fault(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        APPLYING = "applying"
        ACTIVE = "active"  # applied to at least one namespace
        FAILED = "failed"  # applied nowhere
        REVERTING = "reverting"
        REVERTED = "reverted"

    OPEN = (State.QUEUED, State.APPLYING, State.ACTIVE, State.FAILED, State.REVERTING)

    demo = models.ForeignKey(DemoNamespace, on_delete=models.CASCADE, related_name="faults")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    target = models.CharField(max_length=63)  # the Service the fault is for: kvstore or splitdim
    abort_percent = models.FloatField(default=0)
    abort_status = models.PositiveSmallIntegerField(default=500)
    delay = models.CharField(max_length=16, blank=True)  # an Istio duration, e.g. "2s"; "" for none
    delay_percent = models.FloatField(default=0)
    broadcast = models.BooleanField(default=False)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"fault {self.pk} on {self.target} ({self.state})"


class FaultTarget(models.Model):
    """What the fault did in one namespace."""

    class State(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        SKIPPED = "skipped"  # refused before anything was done there (not this class's namespace, say)
        FAILED = "failed"
        REVERTED = "reverted"
        REVERT_FAILED = "revert_failed"

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="targets")
    namespace = models.CharField(max_length=63)
    is_demo = models.BooleanField(default=False)  # the demo namespace itself, not a student's
    object_name = models.CharField(max_length=63)  # the VirtualService the demo creates
    displaced = models.JSONField(default=list, blank=True)  # VirtualServices taken out, to put back
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-is_demo", "namespace")
        constraints = (models.UniqueConstraint(fields=["fault", "namespace"], name="fault_target_once"),)

    def __str__(self) -> str:
        return f"{self.object_name} in {self.namespace} ({self.state})"
