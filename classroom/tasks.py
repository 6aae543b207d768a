"""Celery tasks of classes: resetting a student's namespace (see classroom.resets)."""

from __future__ import annotations

import logging

from celery import shared_task

from classroom import resets
from classroom.cluster import ClusterError

log = logging.getLogger(__name__)


@shared_task(name="classroom.reset_namespace", ignore_result=True)
def reset_namespace(user_id: int) -> None:
    """Delete and recreate a student's namespace; failures are recorded on the namespace row."""
    try:
        log.info(resets.reset_namespace(user_id))
    except ClusterError as exc:
        log.warning("namespace reset of user %s failed: %s", user_id, exc)
