"""Entry pages: where `/` sends each user, the student's lab placeholder, the instructor's class list.

Login is enforced for every view by LoginRequiredMiddleware.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from classroom.models import Classroom, Membership, StudentNamespace


def is_instructor(user: AbstractBaseUser) -> bool:
    return user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.INSTRUCTOR).exists()


def home(request: HttpRequest) -> HttpResponse:
    """Instructors go to their classes, students to the lab (a placeholder until the lab app is mounted)."""
    if is_instructor(request.user):
        return redirect("classroom:index")
    try:
        return redirect(reverse("labsteps:index"))
    except NoReverseMatch:
        pass
    memberships = Membership.objects.filter(user=request.user, role=Membership.Role.STUDENT).select_related("classroom")
    namespace = StudentNamespace.objects.filter(user=request.user).first()
    return render(request, "classroom/lab_placeholder.html", {"memberships": memberships, "namespace": namespace})


def index(request: HttpRequest) -> HttpResponse:
    """The instructor's classes with their students and the state of each namespace."""
    if not is_instructor(request.user):
        raise PermissionDenied("Only instructors can see the classroom overview.")
    classes = Classroom.objects.all()
    if not request.user.is_superuser:
        classes = classes.filter(
            memberships__user=request.user, memberships__role=Membership.Role.INSTRUCTOR
        ).distinct()
    students = Membership.objects.filter(role=Membership.Role.STUDENT).select_related("user__namespace")
    classes = classes.prefetch_related(Prefetch("memberships", queryset=students, to_attr="students"))
    return render(request, "classroom/index.html", {"classes": classes})
