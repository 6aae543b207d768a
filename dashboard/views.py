"""The dashboard's pages and data under /teach/ (URL names in dashboard/urls.py).

Every view takes the class from the URL and answers 403 unless the user teaches it (`access`), the
same answer for a class that does not exist, so nothing about other classes leaks. Everything here is
read-only (GET); changes to a class (roster, passwords, namespaces) live in classroom/.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from classroom.models import Classroom
from dashboard import access, diff, export, matrix
from labsteps import attempts as lab_attempts
from labsteps.models import Attempt
from traffic import control

View = Callable[..., HttpResponse]
REFUSED = "Only the instructors of this class can see it."
ATTEMPTS_SHOWN = 50
DEFAULT_STUCK_MINUTES = 5


def class_view(view: View) -> View:
    """The class named by `slug` if the user teaches it, else 403 (checked before anything else); GET only."""
    get_only = require_GET(view)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        classroom = access.taught_class(request.user, slug)
        if classroom is None:
            if request.path.endswith(".json"):
                return JsonResponse({"error": REFUSED}, status=403)
            raise PermissionDenied(REFUSED)
        return get_only(request, classroom, *args, **kwargs)

    return wrapper


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    classes = list(access.taught_classes(request.user))
    if not classes and not request.user.is_superuser and not access.is_instructor(request.user):
        raise PermissionDenied("The dashboard is for instructors.")
    return render(request, "dashboard/index.html", {"classes": classes})


@class_view
def class_page(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    table = matrix.build(classroom)
    config = {
        "slug": classroom.slug,
        "ws": f"/ws/teach/{classroom.slug}/",
        "matrixUrl": reverse("dashboard:matrix", args=[classroom.slug]),
        "stuckMinutes": DEFAULT_STUCK_MINUTES,
        "steps": [step["id"] for step in table.steps],
    }
    totals = table.totals()
    return render(
        request,
        "dashboard/class.html",
        {
            "classroom": classroom,
            "matrix": table,
            "totals": [
                (step, [(state, matrix.STATE_LABELS[state], counts[state]) for state in matrix.STATES])
                for step, counts in zip(table.steps, totals, strict=True)
            ],
            "states": list(matrix.STATE_LABELS.items()),
            "config": config,
            "stuck_minutes": DEFAULT_STUCK_MINUTES,
        },
    )


@class_view
def matrix_json(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    response = JsonResponse(matrix.build(classroom).as_json())
    response["Cache-Control"] = "no-store"
    return response


@class_view
def export_csv(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    response = HttpResponse(export.to_csv(export.records(classroom)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="progress-{classroom.slug}.csv"'
    return response


@class_view
def export_json(request: HttpRequest, classroom: Classroom) -> HttpResponse:
    body = {"class": classroom.name, "slug": classroom.slug, "fields": export.FIELDS, "rows": export.records(classroom)}
    response = HttpResponse(json.dumps(body, indent=1), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="progress-{classroom.slug}.json"'
    return response


def _student(classroom: Classroom, user_id: int) -> Any:
    student = access.class_student(classroom, user_id)
    if student is None:
        raise Http404("This class has no such student.")
    return student


@class_view
def student_page(request: HttpRequest, classroom: Classroom, user_id: int) -> HttpResponse:
    student = _student(classroom, user_id)
    namespace = getattr(student, "namespace", None)
    namespace_name = namespace.name if namespace else ""
    lab_attempts.sweep(student)
    shown = list(Attempt.objects.filter(user=student)[:ATTEMPTS_SHOWN])
    items = []
    for attempt in shown:
        changes = None
        if attempt.kind == Attempt.Kind.APPLY and attempt.manifests:
            changes = diff.manifest_diff(attempt.step_id, attempt.namespace, attempt.manifests)
        items.append({"attempt": attempt, "diff": changes})
    table = matrix.build_for([student])
    runs = control.runs(student.pk)
    # The reusable traffic panel (templates/traffic/panel.html), read-only on the student's latest run.
    traffic = {
        "runsUrl": reverse("dashboard:student-runs", args=[classroom.slug, student.pk]),
        "wsPath": "/ws/traffic/{run}/",
        "controls": False,
        "steps": {step["id"]: step["title"] for step in table.steps},
    }
    if runs:
        traffic["runId"] = runs[0]["id"]
    return render(
        request,
        "dashboard/student.html",
        {
            "classroom": classroom,
            "student": student,
            "namespace": namespace_name,
            "row": table.rows[0] if table.rows else None,
            "steps": table.steps,
            "items": items,
            "total_attempts": Attempt.objects.filter(user=student).count(),
            "runs": runs,
            "traffic": traffic,
        },
    )


@class_view
def student_runs(request: HttpRequest, classroom: Classroom, user_id: int) -> HttpResponse:
    """The student's traffic runs, read-only (the instructor watches them on /ws/traffic/<run>/)."""
    student = access.class_student(classroom, user_id)
    if student is None:
        return JsonResponse({"error": "This class has no such student."}, status=404)
    return JsonResponse({"runs": control.runs(student.pk), "controls": False})
