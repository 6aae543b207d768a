"""What an instructor can reset for a student: their password, and their whole lab namespace.

A namespace reset deletes the namespace through the kubernetes client (the cluster deletes everything
in it), waits until it is gone, creates it again with the console's labels, and sets the student's
progress on every step back to "not started" (announced to their pages and the dashboard). It runs in
a Celery task (classroom.tasks) because deleting a namespace takes seconds.
"""

from __future__ import annotations

import logging
import secrets
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from classroom.cluster import ClusterError, delete_namespace, namespace_exists
from classroom.models import StudentNamespace
from classroom.namespaces import provision_namespace

log = logging.getLogger(__name__)

# Readable passwords to dictate or write on a board: no 0/O or 1/l/I.
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 12


def new_password(user: AbstractBaseUser) -> str:
    """Give `user` a fresh random password and return it (it is stored only hashed)."""
    password = "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))
    user.set_password(password)
    user.save(update_fields=["password"])
    return password


def wait_seconds() -> float:
    return float(getattr(settings, "NAMESPACE_RESET_WAIT_SECONDS", 120))


def reset_namespace(user_id: int) -> str:
    """Delete and recreate the student's namespace, reset their progress; a sentence saying what happened.

    Errors are recorded in the namespace's `last_error` (shown to the instructor) and raised as ClusterError.
    """
    from labsteps.attempts import announce_progress
    from labsteps.models import Progress
    from traffic import control

    user = get_user_model().objects.get(pk=user_id)
    namespace = StudentNamespace.objects.filter(user=user).first()
    if namespace is None:
        return f"{user.get_username()} has no namespace; nothing to reset."
    try:
        control.stop_owner_runs(user.pk)  # their traffic targets are about to disappear
    except Exception:
        log.warning("could not stop the traffic runs of %s", user.get_username(), exc_info=True)
    try:
        delete_namespace(namespace.name)
        deadline = time.monotonic() + wait_seconds()
        while namespace_exists(namespace.name):
            if time.monotonic() > deadline:
                raise ClusterError(f"namespace {namespace.name} was still being deleted after {wait_seconds():.0f} s")
            time.sleep(0.5)
    except ClusterError as exc:
        StudentNamespace.objects.filter(pk=namespace.pk).update(last_error=f"reset failed: {exc}")
        raise
    StudentNamespace.objects.filter(pk=namespace.pk).update(created=False, created_at=None)
    provisioned = provision_namespace(user)
    for progress in Progress.objects.filter(user=user).select_related("last_attempt"):
        progress.state = Progress.State.NOT_STARTED
        progress.last_attempt = None
        progress.hints_released = 0
        progress.updated = timezone.now()
        progress.save(update_fields=["state", "last_attempt", "hints_released", "updated"])
        announce_progress(progress)
    if provisioned is not None and provisioned.last_error:
        raise ClusterError(f"namespace {namespace.name} was deleted but not created again: {provisioned.last_error}")
    return f"The namespace {namespace.name} of {user.get_username()} was reset."
