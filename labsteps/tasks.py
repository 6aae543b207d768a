"""Celery tasks of the lab: one task runs one attempt; each worker also sweeps for stale attempts.

The task is late-acknowledged and re-queued if its worker process dies (settings: acks_late,
reject_on_worker_lost), and runs under Celery's hard and soft time limits. When a whole worker dies,
its unacknowledged message would only come back after the broker's visibility timeout (an hour), so
every worker runs a small sweeper thread from the moment it is ready: attempts whose heartbeat went
stale get a fresh task, which this or another worker then runs (see labsteps.attempts.sweep).
"""

from __future__ import annotations

import logging
import threading

from celery import Task, shared_task
from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections

from labsteps import attempts, runner

log = logging.getLogger(__name__)


@shared_task(bind=True, name="labsteps.run_attempt", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_attempt(self: Task, attempt_id: int) -> None:
    """Run attempt `attempt_id` (a redelivered or duplicate message finds it finished or taken)."""
    runner.run(attempt_id, self.request.id)


class Sweeper(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="labsteps-sweeper", daemon=True)
        self._halt = threading.Event()

    def run(self) -> None:
        interval = max(1.0, attempts.stale_seconds() / 3)
        while not self._halt.wait(interval):
            try:
                changed = attempts.sweep()
                if changed:
                    log.info("swept %d stale attempt(s)", changed)
            except Exception:
                log.exception("the stale-attempt sweep failed; retrying in %.0f s", interval)
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._halt.set()


_sweeper: Sweeper | None = None


@worker_ready.connect(dispatch_uid="labsteps.start_sweeper")
def start_sweeper(**kwargs: object) -> None:
    global _sweeper
    if _sweeper is None:
        _sweeper = Sweeper()
        _sweeper.start()


@worker_shutdown.connect(dispatch_uid="labsteps.stop_sweeper")
def stop_sweeper(**kwargs: object) -> None:
    if _sweeper is not None:
        _sweeper.stop()
