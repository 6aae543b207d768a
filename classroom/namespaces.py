"""Giving students their namespaces: a unique name in the database, then the object in the cluster.

The database row comes first and never depends on the cluster, so a class can be set up (and
students can log in) while the cluster is down; the cluster side is retried at every login.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from classroom.cluster import ClusterError, ensure_namespace
from classroom.models import Classroom, Membership, StudentNamespace
from classroom.naming import label_value, namespace_name

log = logging.getLogger(__name__)

STUDENT_LABEL = "meshconsole.io/student"
CLASS_LABEL = "meshconsole.io/class"


def allocate_namespace(user: AbstractBaseUser) -> tuple[StudentNamespace, bool]:
    """The user's namespace row, created with a fresh unique name if missing; True if created."""
    existing = StudentNamespace.objects.filter(user=user).first()
    if existing is not None:
        return existing, False
    name = namespace_name(user.get_username(), lambda n: StudentNamespace.objects.filter(name=n).exists())
    return StudentNamespace.objects.create(user=user, name=name), True


def student_classroom(user: AbstractBaseUser) -> Classroom | None:
    """The class a student works for: their most recent student membership."""
    membership = (
        Membership.objects.filter(user=user, role=Membership.Role.STUDENT)
        .select_related("classroom")
        .order_by("-joined_at", "-pk")
        .first()
    )
    return membership.classroom if membership else None


def namespace_labels(user: AbstractBaseUser, classroom: Classroom) -> dict[str, str]:
    return {STUDENT_LABEL: label_value(user.get_username()), CLASS_LABEL: label_value(classroom.slug)}


def provision_namespace(user: AbstractBaseUser) -> StudentNamespace | None:
    """Make sure a student's namespace exists in the cluster and record the outcome.

    Returns None for users who are nobody's student. Cluster problems are logged and stored in
    `last_error`, never raised: a login must work while the cluster is down.
    """
    classroom = student_classroom(user)
    if classroom is None:
        return None
    namespace, _ = allocate_namespace(user)
    try:
        ensure_namespace(namespace.name, namespace_labels(user, classroom))
    except ClusterError as exc:
        log.warning("namespace %s for %s is not ready: %s", namespace.name, user.get_username(), exc)
        _record(namespace, error=str(exc))
    else:
        _record(namespace, error="")
    return namespace


@dataclass
class ProvisionReport:
    ready: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    error: str = ""


def provision_namespaces(users: Iterable[AbstractBaseUser]) -> ProvisionReport:
    """Provision several students; after the first cluster error the rest are left pending (one
    unreachable cluster should cost one timeout, not one per student)."""
    report = ProvisionReport()
    for user in users:
        if report.error:
            report.pending.append(allocate_namespace(user)[0].name)
            continue
        namespace = provision_namespace(user)
        if namespace is None:
            continue
        if namespace.last_error:
            report.error = namespace.last_error
            report.pending.append(namespace.name)
        else:
            report.ready.append(namespace.name)
    return report


def _record(namespace: StudentNamespace, error: str) -> None:
    """Store the attempt's outcome, writing only fields that change (re-runs stay no-ops)."""
    changes: dict[str, object] = {}
    if error != namespace.last_error:
        changes["last_error"] = error
    if not error and not namespace.created:
        changes["created"] = True
        changes["created_at"] = timezone.now()
    if changes:
        for key, value in changes.items():
            setattr(namespace, key, value)
        namespace.save(update_fields=list(changes))
