"""Who may see a run: its owner, instructors of a class the owner is a student in, and superusers; a run in
an instructor's demo namespace also the other instructors of the demo's class."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from classroom.models import Membership
from traffic.store import RunRecord


def can_watch(user: AbstractBaseUser, record: RunRecord) -> bool:
    if not user.is_authenticated:
        return False
    if user.pk == record.owner or user.is_superuser:
        return True
    taught = Membership.objects.filter(user=user, role=Membership.Role.INSTRUCTOR).values("classroom_id")
    if Membership.objects.filter(user_id=record.owner, role=Membership.Role.STUDENT, classroom_id__in=taught).exists():
        return True
    from demo.access import may_watch_demo

    return may_watch_demo(user, record.namespace)
