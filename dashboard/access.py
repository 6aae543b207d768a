"""Who may look at a class on the dashboard: its instructors (and superusers), nobody else.

Every dashboard view and websocket goes through `taught_class` (and `class_student` for one student),
so a student, or an instructor of another class, is refused the same way everywhere.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from classroom.models import Classroom, Membership


def is_instructor(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.INSTRUCTOR).exists()


def taught_classes(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Classroom]:
    """The classes `user` may see on the dashboard."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    if user.is_superuser:
        return Classroom.objects.all()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Membership.Role.INSTRUCTOR).distinct()


def taught_class(user: AbstractBaseUser | AnonymousUser, slug: str) -> Classroom | None:
    """The class `slug` if `user` teaches it, else None (whether or not it exists)."""
    return taught_classes(user).filter(slug=slug).first()


def class_student(classroom: Classroom, user_id: int) -> AbstractBaseUser | None:
    """A student of `classroom` by id, or None."""
    return (
        get_user_model()
        .objects.filter(pk=user_id, memberships__classroom=classroom, memberships__role=Membership.Role.STUDENT)
        .select_related("namespace")
        .first()
    )
