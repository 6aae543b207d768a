"""Celery tasks of the demo: prepare the namespace with the whole lab, apply a fault, revert a fault.

Each task is late-acknowledged (a worker that dies mid-task gets it redelivered) and owns its row through
a task id stored there, so a redelivered or superseded task finds nothing to do.
"""

from __future__ import annotations

from celery import Task, shared_task

from demo import faults, prepare

OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


# Seven steps with their rollouts: far more than one attempt's time limit, well under the hour the broker waits.
@shared_task(name="demo.prepare", soft_time_limit=1500, time_limit=1560, **OPTIONS)
def prepare_demo(self: Task, demo_id: int) -> None:
    prepare.run(demo_id, self.request.id)


@shared_task(name="demo.apply_fault", **OPTIONS)
def apply_fault(self: Task, fault_id: int) -> None:
    faults.apply(fault_id, self.request.id)


@shared_task(name="demo.revert_fault", **OPTIONS)
def revert_fault(self: Task, fault_id: int) -> None:
    faults.revert(fault_id, self.request.id)


def send(task: Task, row_id: int, task_id: str) -> None:
    """Queue `task` for a row under the task id stored on the row; raises when the broker is unreachable."""
    task.apply_async(
        args=[row_id],
        task_id=task_id,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
    )
