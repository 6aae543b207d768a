"""Who may use a class's demo: the instructors of that class, nobody else (students and instructors of
other classes get 403). Also answers the graph's and the traffic stream's question "may this user watch
this demo namespace?", so the projector's panels work with the existing websockets."""

from __future__ import annotations

from typing import Any

from classroom.models import Classroom, Membership


def taught_class(user: Any, slug: str) -> Classroom | None:
    """The class `slug` if `user` is one of its instructors, else None (whether or not it exists)."""
    if user is None or not user.is_authenticated:
        return None
    return Classroom.objects.filter(
        slug=slug, memberships__user=user, memberships__role=Membership.Role.INSTRUCTOR
    ).first()


def may_watch_demo(user: Any, namespace: str) -> bool:
    """Whether `namespace` is a demo namespace of a class `user` teaches."""
    from demo.models import DemoNamespace

    if user is None or not user.is_authenticated:
        return False
    return DemoNamespace.objects.filter(
        name=namespace,
        classroom__memberships__user=user,
        classroom__memberships__role=Membership.Role.INSTRUCTOR,
    ).exists()
