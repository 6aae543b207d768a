"""Entry pages and class management: where `/` sends each user, the student's lab placeholder, the
instructor's classes (create a class, import a roster, reset a student's password or namespace), and
the public join page where students create their account with a class's join code.

Login is enforced for every view by LoginRequiredMiddleware except `join`. Every view about one class
answers 403 unless the user teaches it (dashboard.access); every change is a POST with CSRF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classroom import enrolment, resets
from classroom.models import Classroom, Membership, StudentNamespace
from dashboard.access import class_student, taught_class, taught_classes

View = Callable[..., HttpResponse]
REFUSED = "Only the instructors of this class can manage it."


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


def _students() -> Prefetch:
    students = Membership.objects.filter(role=Membership.Role.STUDENT).select_related("user__namespace")
    return Prefetch("memberships", queryset=students, to_attr="students")


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The instructor's classes with their students and the state of each namespace."""
    if not is_instructor(request.user):
        raise PermissionDenied("Only instructors can see the classroom overview.")
    classes = taught_classes(request.user).prefetch_related(_students())
    return render(request, "classroom/index.html", {"classes": classes})


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    if not is_instructor(request.user):
        raise PermissionDenied("Only instructors can create classes.")
    try:
        classroom = enrolment.create_class(request.POST.get("name", ""), request.user)
    except enrolment.Refused as exc:
        classes = taught_classes(request.user).prefetch_related(_students())
        context = {"classes": classes, "create_problems": exc.problems, "name": request.POST.get("name", "")}
        return render(request, "classroom/index.html", context, status=400)
    messages.success(request, f"Class {classroom.name!r} created; students join with the code {classroom.join_code}.")
    return redirect("classroom:detail", classroom.slug)


def class_view(view: View) -> View:
    """The class named by `slug` if the user teaches it, else 403 (also for a class that does not exist)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        classroom = taught_class(request.user, slug)
        if classroom is None:
            raise PermissionDenied(REFUSED)
        return view(request, classroom, *args, **kwargs)

    return wrapper


def _detail(request: HttpRequest, classroom: Classroom, status: int = 200, **extra: Any) -> HttpResponse:
    students = (
        Membership.objects.filter(classroom=classroom, role=Membership.Role.STUDENT)
        .select_related("user__namespace")
        .order_by("user__username")
    )
    context = {"classroom": classroom, "students": students, "join_url": request.build_absolute_uri(reverse("join"))}
    return render(request, "classroom/detail.html", {**context, **extra}, status=status)


@class_view
@require_GET
def detail(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    return _detail(request, classroom)


@class_view
@require_POST
def roster(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    """Import a roster CSV (an uploaded file, or pasted text); refused whole with every problem."""
    upload = request.FILES.get("file")
    if upload is not None:
        source = upload.name or "upload"
        if upload.size > enrolment.MAX_ROSTER_BYTES:
            return _detail(request, classroom, 400, roster_problems=[f"{source}: the file is larger than 256 KiB"])
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            return _detail(request, classroom, 400, roster_problems=[f"{source}: the file is not UTF-8 text"])
    else:
        source, text = "pasted roster", request.POST.get("text", "")
        if len(text.encode()) > enrolment.MAX_ROSTER_BYTES:
            return _detail(request, classroom, 400, roster_problems=[f"{source}: larger than 256 KiB"])
    try:
        result = enrolment.import_roster(classroom, text, source)
    except enrolment.Refused as exc:
        return _detail(
            request, classroom, 400, roster_problems=exc.problems, roster_text=text if upload is None else ""
        )
    messages.success(request, "Roster imported: " + result.summary())
    return redirect("classroom:detail", classroom.slug)


def _student(classroom: Classroom, user_id: int) -> AbstractBaseUser:
    student = class_student(classroom, user_id)
    if student is None:
        raise Http404("This class has no such student.")
    return student


@class_view
@require_POST
def password(request: HttpRequest, classroom: Classroom, user_id: int) -> HttpResponse:
    """A new random password for a student, shown once on this response (never stored in clear)."""
    student = _student(classroom, user_id)
    new = resets.new_password(student)
    return _detail(request, classroom, new_password={"username": student.get_username(), "password": new})


@class_view
@require_POST
def reset_namespace(request: HttpRequest, classroom: Classroom, user_id: int) -> HttpResponse:
    """Queue the deletion and re-creation of a student's namespace (classroom.tasks)."""
    from classroom.tasks import reset_namespace as task

    student = _student(classroom, user_id)
    try:
        task.delay(student.pk)
    except Exception:
        messages.error(request, "The task queue cannot be reached right now; nothing was reset. Try again later.")
    else:
        messages.success(
            request,
            f"Resetting the namespace of {student.get_username()}: everything in it is deleted and "
            "it is created again; their progress starts over.",
        )
    return redirect("classroom:detail", classroom.slug)


@login_not_required
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    """Students create their account in a class with its join code; a bad code creates nothing."""
    if request.method == "GET":
        return render(request, "classroom/join.html", {"code": request.GET.get("code", "")})
    code, username = request.POST.get("code", ""), request.POST.get("username", "")
    try:
        classroom, user = enrolment.join(code, username, request.POST.get("password", ""))
    except enrolment.Refused as exc:
        context = {"code": code, "username": username, "problems": exc.problems}
        return render(request, "classroom/join.html", context, status=400)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, f"Welcome to {classroom.name}.")
    return redirect("home")
