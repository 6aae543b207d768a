"""Preparing the demo namespace with the whole lab: every step, in order, through the lab's own runner.

Each step becomes an ordinary Apply attempt of the instructor in the demo namespace, run by
`labsteps.runner` (the pipeline's validation and server-side apply, the step's actions, the waits for
rollouts), so the demo is built exactly as a student's namespace is. Two differences, both in
`DemoRunner`: the step's checks are skipped (they wait for a minute of metrics each; the demo wants a
running mesh, not a grade), and every phase change is also reported as the demo's progress.

At the end the lab's own fault of step 6 is reset through the same runner, so the demo starts from a
healthy mesh and the fault control owns every fault shown on the projector.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from classroom.cluster import ClusterError
from demo import events, namespaces
from demo.models import DemoNamespace
from labsteps import runner
from labsteps.models import Attempt, Progress
from labsteps.steps import all_steps, get_step, manifests_text

log = logging.getLogger(__name__)

FAULT_STEP = "fault-injection"
# A prepare whose worker died leaves the state "preparing"; after this long another may start.
STALE_AFTER = timedelta(minutes=10)


class DemoRunner(runner.Runner):
    """The lab's runner, reporting to the demo and skipping the step's checks."""

    def __init__(self, attempt: Attempt, task_id: str, demo: DemoNamespace, index: int, total: int) -> None:
        super().__init__(attempt, task_id)
        self.demo, self.index, self.total = demo, index, total

    def save(self, announce_it: bool = True, **fields: Any) -> None:
        super().save(announce_it, **fields)
        progress = self.attempt.progress or {}
        detail = f"object {progress['index']} of {progress['total']}: {progress['object']}" if progress else ""
        report(self.demo, self.index, self.total, self.attempt.step_id, self.attempt.status, detail)

    def _check(self, ctx: Any) -> None:
        self.finish(True, "Applied (the demo does not run the step's checks).", Progress.State.APPLIED)


def report(demo: DemoNamespace, index: int, total: int, step_id: str, status: str, detail: str = "") -> None:
    step = get_step(step_id)
    demo.progress = {
        "index": index,
        "total": total,
        "step": step_id,
        "title": step.title if step else step_id,
        "status": status,
        "detail": detail,
    }
    demo.updated = timezone.now()
    DemoNamespace.objects.filter(pk=demo.pk, task_id=demo.task_id).update(progress=demo.progress, updated=demo.updated)
    events.announce(demo)


def start(demo: DemoNamespace) -> str | None:
    """Mark the demo as preparing under a new task id; None when a prepare is already running."""
    task_id = uuid.uuid4().hex
    with transaction.atomic():
        current = DemoNamespace.objects.select_for_update().get(pk=demo.pk)
        running = current.state == DemoNamespace.State.PREPARING and timezone.now() - current.updated < STALE_AFTER
        if running:
            return None
        current.state, current.task_id, current.message = DemoNamespace.State.PREPARING, task_id, "Queued."
        current.progress, current.updated = None, timezone.now()
        current.save()
    demo.refresh_from_db()
    events.announce(demo)
    return task_id


def finish(demo: DemoNamespace, state: str, message: str) -> None:
    demo.state, demo.message, demo.updated = state, message, timezone.now()
    if DemoNamespace.objects.filter(pk=demo.pk, task_id=demo.task_id).update(
        state=state, message=message, updated=demo.updated
    ):
        events.announce(demo)


def _run_attempt(demo: DemoNamespace, step_id: str, kind: str, index: int, total: int) -> Attempt:
    step = get_step(step_id)
    manifests = manifests_text(step, demo.name) if kind == Attempt.Kind.APPLY and step.manifests.strip() else ""
    attempt = Attempt.objects.create(
        user=demo.instructor,
        classroom=None,  # not a student's attempt: it counts in no class's progress
        step_id=step_id,
        kind=kind,
        namespace=demo.name,
        manifests=manifests,
        task_id=uuid.uuid4().hex,
        heartbeat=timezone.now(),
    )
    report(demo, index, total, step_id, attempt.status)
    claimed = runner.claim(attempt.pk, attempt.task_id)
    if claimed is not None:
        DemoRunner(claimed, attempt.task_id, demo, index, total).run()
    attempt.refresh_from_db()
    return attempt


def run(demo_id: int, task_id: str) -> None:
    """The Celery task's body: apply every step in order, then reset the lab's own fault."""
    demo = DemoNamespace.objects.select_related("classroom", "instructor").filter(pk=demo_id, task_id=task_id).first()
    if demo is None or demo.state != DemoNamespace.State.PREPARING:
        return  # superseded by a newer prepare, or a duplicate delivery of a finished one
    try:
        namespaces.ensure(demo)
    except ClusterError as exc:
        finish(demo, DemoNamespace.State.FAILED, f"The demo namespace could not be created: {exc}")
        return
    steps = list(all_steps())
    total = len(steps) + 1
    for index, step in enumerate(steps, 1):
        attempt = _run_attempt(demo, step.id, Attempt.Kind.APPLY, index, total)
        if attempt.status != Attempt.Status.PASSED:
            message = f"Step {index} ({step.title}) failed: {attempt.message}"
            finish(demo, DemoNamespace.State.FAILED, message)
            return
    if get_step(FAULT_STEP) is not None:
        attempt = _run_attempt(demo, FAULT_STEP, Attempt.Kind.RESET, total, total)
        if attempt.status != Attempt.Status.PASSED:
            finish(demo, DemoNamespace.State.FAILED, f"Removing the lab's own fault failed: {attempt.message}")
            return
    finish(
        demo,
        DemoNamespace.State.READY,
        f"All {len(steps)} steps applied; the lab's own fault of step 6 was taken out again.",
    )
