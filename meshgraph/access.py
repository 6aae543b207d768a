"""Who may see a namespace's graph: its student, and the instructors of a class that student is in; for an
instructor's demo namespace, the instructors of the demo's class."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from classroom.models import Membership, StudentNamespace


def may_view(user: AbstractBaseUser | AnonymousUser, namespace: str) -> bool:
    if not user.is_authenticated:
        return False
    owner = StudentNamespace.objects.filter(name=namespace).values_list("user_id", flat=True).first()
    if owner is None:
        from demo.access import may_watch_demo

        return may_watch_demo(user, namespace)
    if owner == user.pk:
        return True
    student_classes = Membership.objects.filter(user_id=owner, role=Membership.Role.STUDENT).values("classroom_id")
    return Membership.objects.filter(
        user=user, role=Membership.Role.INSTRUCTOR, classroom_id__in=student_classes
    ).exists()
