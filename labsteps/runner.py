"""Running one attempt inside the Celery task: validate, apply, act, wait, check, record.

The runner owns its attempt through `task_id`: every write is conditional on it, so if the sweep handed
the attempt to another task (because this one looked dead) this one stops quietly instead of fighting
over the row. A heartbeat thread refreshes `Attempt.heartbeat` while it runs. Every phase change is
saved and announced, and the whole run stays within a time budget below Celery's soft time limit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from classroom.namespaces import provision_namespace
from labsteps import actions, attempts, checks, pipeline
from labsteps.checks import CheckContext, CheckResult
from labsteps.cluster import Cluster, ClusterError
from labsteps.metrics import ProxyScrapeSource
from labsteps.models import Attempt, Progress
from labsteps.steps import context, get_step

log = logging.getLogger(__name__)

Status = Attempt.Status
# Seconds kept in reserve below Celery's soft time limit to record the outcome.
RESERVE_SECONDS = 15
IMPLICIT_WAIT_SECONDS = 120
FIRST_STATUS = {
    Attempt.Kind.APPLY: Status.VALIDATING,
    Attempt.Kind.CHECK: Status.CHECKING,
    Attempt.Kind.RESET: Status.APPLYING,
}


class Lost(Exception):
    """Another task took this attempt over; stop without writing anything."""


class StepFailed(Exception):
    """A phase failed; the message is the attempt's summary for the student."""


def budget_seconds() -> float:
    soft = getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", None) or getattr(settings, "CELERY_TASK_TIME_LIMIT", 300)
    return max(30.0, float(soft) - RESERVE_SECONDS)


def run(attempt_id: int, task_id: str) -> None:
    """Run the attempt if this task is the one in charge of it (see `claim`)."""
    attempt = claim(attempt_id, task_id)
    if attempt is not None:
        Runner(attempt, task_id).run()


def claim(attempt_id: int, task_id: str) -> Attempt | None:
    """Take the attempt for this task: not when it is finished or belongs to another task."""
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().filter(pk=attempt_id).first()
        if attempt is None:
            log.warning("attempt %s does not exist; task %s has nothing to do", attempt_id, task_id)
            return None
        if attempt.is_finished or attempt.task_id != task_id:
            return None
        now = timezone.now()
        if attempt.deliveries >= attempts.MAX_DELIVERIES:
            attempt.status, attempt.finished = Status.FAILED, now
            attempt.message = "This attempt was interrupted too often. Press the button again."
            attempt.save()
            finished: Attempt | None = attempt
        else:
            resumed = attempt.deliveries > 0
            attempt.deliveries += 1
            attempt.started = attempt.started or now
            attempt.heartbeat = now
            attempt.status = FIRST_STATUS[attempt.kind]
            attempt.message = "Running again after a worker restart." if resumed else ""
            attempt.progress, attempt.applied, attempt.not_applied, attempt.checks = None, [], [], []
            attempt.save()
            finished = None
    if finished is not None:
        attempts.announce(finished)
        attempts.set_progress(finished, Progress.State.FAILED)
        return None
    attempts.announce(attempt)
    if attempt.kind != Attempt.Kind.RESET and not attempts.set_progress(
        attempt, Progress.State.IN_PROGRESS, task_id=task_id
    ):
        return None  # taken over already
    return attempt


class Heartbeat(threading.Thread):
    """Refreshes the attempt's heartbeat while the task runs; notices when the attempt was taken over."""

    def __init__(self, attempt_id: int, task_id: str) -> None:
        super().__init__(name=f"heartbeat-{attempt_id}", daemon=True)
        self.attempt_id, self.task_id = attempt_id, task_id
        self.lost = False
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(attempts.heartbeat_seconds()):
                mine = Attempt.objects.filter(pk=self.attempt_id, task_id=self.task_id)
                if not mine.update(heartbeat=timezone.now()):
                    self.lost = True
                    return
        finally:
            connection.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class Runner:
    def __init__(self, attempt: Attempt, task_id: str) -> None:
        self.attempt = attempt
        self.task_id = task_id
        self.deadline = time.monotonic() + budget_seconds()
        self.notes: list[str] = []
        if attempt.deliveries > 1:
            self.notes.append("It ran again after a worker restart.")
        self.heartbeat = Heartbeat(attempt.pk, task_id)

    # ---- writing the attempt --------------------------------------------------------------------------
    def save(self, announce_it: bool = True, **fields: Any) -> None:
        """Update the attempt (only while this task owns it) and announce the change."""
        if self.heartbeat.lost:
            raise Lost
        fields["heartbeat"] = timezone.now()
        if not Attempt.objects.filter(pk=self.attempt.pk, task_id=self.task_id).update(**fields):
            raise Lost
        for key, value in fields.items():
            setattr(self.attempt, key, value)
        if announce_it:
            attempts.announce(self.attempt)

    def progress(self, state: str) -> None:
        if attempts.set_progress(self.attempt, state, task_id=self.task_id) is None:
            raise Lost

    def alive(self) -> None:
        """Called between polls: stop early when the attempt was taken over."""
        if self.heartbeat.lost:
            raise Lost

    def finish(self, passed: bool, summary: str, state: str) -> None:
        """Record the outcome and the step's new state together: a reader never sees one without the other."""
        message = "\n".join([summary, *self.notes])
        with transaction.atomic():
            status = Status.PASSED if passed else Status.FAILED
            self.save(False, status=status, message=message, progress=None, finished=timezone.now())
            progress = attempts.set_progress(self.attempt, state, task_id=self.task_id, announce_it=False)
        attempts.announce(self.attempt)
        if progress is not None:
            attempts.announce_progress(progress)

    # ---- the run --------------------------------------------------------------------------------------
    def run(self) -> None:
        self.heartbeat.start()
        try:
            with Cluster() as cluster:
                self._run(cluster)
        except Lost:
            log.info("attempt %s was taken over by another task", self.attempt.pk)
        except StepFailed as exc:
            self._fail(str(exc))
        except SoftTimeLimitExceeded:
            self._fail("The attempt took too long and was stopped. Press the button again.")
        except ClusterError as exc:
            self._fail(f"The cluster could not be reached: {exc}")
        except Exception as exc:
            log.exception("attempt %s failed unexpectedly", self.attempt.pk)
            self._fail(f"Something went wrong in the console ({type(exc).__name__}); tell your instructor.")
        finally:
            self.heartbeat.stop()
            close_old_connections()

    def _fail(self, summary: str) -> None:
        try:
            self.finish(False, summary, Progress.State.FAILED)
        except Lost:
            pass

    def _ensure_namespace(self, cluster: Cluster) -> None:
        """Create the student's namespace if the cluster lacks it (it was down at their login, say)."""
        if cluster.get("Namespace", None, self.attempt.namespace) is not None:
            return
        namespace = provision_namespace(get_user_model().objects.get(pk=self.attempt.user_id))
        if namespace is None or namespace.last_error:
            reason = namespace.last_error if namespace else "you are not a student of any class"
            raise StepFailed(
                f"Your namespace {self.attempt.namespace} does not exist and could not be created: {reason}"
            )

    def _run(self, cluster: Cluster) -> None:
        self._ensure_namespace(cluster)
        step = get_step(self.attempt.step_id)
        if step is None:
            raise StepFailed(f"The lab has no step {self.attempt.step_id!r}.")
        ctx = CheckContext(
            cluster=cluster,
            namespace=self.attempt.namespace,
            step=step,
            template=context(self.attempt.namespace),
            metrics=ProxyScrapeSource(cluster),
            user_id=self.attempt.user_id,
        )
        kind = self.attempt.kind
        if kind == Attempt.Kind.RESET:
            for op in step.reset:
                self._act(ctx, op.type, op.params)
            self.finish(True, "The step was reset.", Progress.State.NOT_STARTED)
            return
        if kind == Attempt.Kind.APPLY:
            self._apply(ctx)
            for action in step.actions:
                self._act(ctx, action.type, action.params)
            self._wait_for_applied(ctx)
            self.progress(Progress.State.APPLIED)
        self._check(ctx)

    def _apply(self, ctx: CheckContext) -> None:
        try:
            objects = pipeline.validate(self.attempt.manifests, ctx.namespace)
        except pipeline.Invalid as exc:
            raise StepFailed(str(exc)) from None
        names = [pipeline.ref(obj) for obj in objects]
        self.save(status=Status.APPLYING, not_applied=names)

        def before_each(index: int, total: int, name: str) -> None:
            self.save(
                progress={"index": index, "total": total, "object": name},
                applied=names[: index - 1],
                not_applied=names[index - 1 :],
            )

        outcome = pipeline.apply_objects(ctx.cluster, ctx.namespace, objects, before_each)
        self.save(applied=outcome.applied, not_applied=outcome.not_applied)
        if outcome.error:
            raise StepFailed(
                f"Applying stopped: {outcome.error}. Applied: {', '.join(outcome.applied) or 'nothing'}. "
                f"Not applied: {', '.join(outcome.not_applied)}."
            )

    def _act(self, ctx: CheckContext, kind: str, params: Any) -> None:
        if kind in actions.WAITS:
            self.save(status=Status.WAITING, progress=None)
        elif self.attempt.status != Status.APPLYING:
            self.save(status=Status.APPLYING, progress=None)
        try:
            note = actions.run_action(ctx, kind, params, self.deadline, self.alive)
        except actions.ActionFailed as exc:
            applied = f" Applied: {', '.join(self.attempt.applied)}." if self.attempt.applied else ""
            raise StepFailed(f"The step's {kind} action failed: {exc}{applied}") from None
        if note and kind in ("traffic", "stop-traffic"):
            self.notes.append(note)

    def _wait_for_applied(self, ctx: CheckContext) -> None:
        """Wait for the rollouts and Gateways this attempt applied, whatever the step's actions did."""
        workloads = [n.lower() for n in self.attempt.applied if n.split("/")[0] in ("Deployment", "StatefulSet")]
        gateways = [n.lower() for n in self.attempt.applied if n.startswith("Gateway/")]
        if workloads:
            self._act(ctx, "wait-rollout", {"workloads": workloads, "timeout_seconds": IMPLICIT_WAIT_SECONDS})
        for gateway in gateways:
            params = {"object": gateway, "condition": "Programmed", "status": "True", "timeout_seconds": 120}
            self._act(ctx, "wait-condition", params)

    def _check(self, ctx: CheckContext) -> None:
        step = ctx.step
        results: list[CheckResult] = [checks.pending(check) for check in step.checks]
        self.save(status=Status.CHECKING, progress=None, checks=[r.as_json() for r in results])
        for index, check in enumerate(step.checks):
            results[index] = checks.run_check(ctx, check, self.deadline, self.alive)
            self.save(checks=[r.as_json() for r in results])
        failed = [r.name for r in results if not r.ok]
        if failed:
            summary = f"{len(failed)} of {len(results)} checks failed: {'; '.join(failed)}."
            self.finish(False, summary, Progress.State.FAILED)
        else:
            self.finish(True, f"Step verified: all {len(results)} checks passed.", Progress.State.VERIFIED)
