"""The demo's pages and JSON API, mounted at /demo/. Only the class's instructors get past `taught_class`.

GET  /demo/                              the classes the instructor can demo in
GET  /demo/<class>/                      the projector view (traffic and graph of the demo namespace, controls)
GET  /demo/<class>/state.json            the demo, its traffic run, the open fault and recent faults
POST /demo/<class>/prepare/              prepare the demo namespace with the whole lab (202, a Celery task)
POST /demo/<class>/faults/               inject a fault: JSON {target, abort_percent, abort_status, delay,
                                         delay_percent, broadcast, confirm}; 400 with every problem, nothing applied
POST /demo/<class>/faults/<id>/revert/   revert it everywhere it went (202, a Celery task)

Every POST needs the CSRF token (Django's middleware); refusals are JSON with an `error`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from classroom.models import Classroom, Membership
from demo import events, faults, prepare, tasks
from demo.access import taught_class
from demo.faultspec import TARGETS, FaultInvalid, parse
from demo.models import DemoNamespace, Fault
from demo.namespaces import demo_for
from labsteps.steps import all_steps

log = logging.getLogger(__name__)

FORBIDDEN = "Only the instructors of this class can use its demo."
BODY_LIMIT = 16 * 1024
QUEUE_DOWN = "The console's task queue cannot be reached right now; try again in a moment."
View = Callable[..., HttpResponse]


def json_error(code: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=code)


def demo_api(*methods: str) -> Callable[[View], View]:
    """A JSON endpoint of one class's demo: method (405), instructor of the class (403)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = json_error(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            classroom = taught_class(request.user, slug)
            if classroom is None:
                return json_error(403, FORBIDDEN)
            return view(request, demo_for(request.user, classroom), *args, **kwargs)

        return wrapper

    return decorate


def _run_of(demo: DemoNamespace) -> dict[str, Any] | None:
    """The demo's traffic run (started by the lab's steps, owned by the instructor): the newest running one."""
    try:
        from traffic import control

        runs = control.runs(demo.instructor_id)
    except Exception as exc:  # Redis down: the page still works, without the chart
        log.warning("cannot read the traffic runs of %s: %s", demo.instructor, exc)
        return None
    mine = [run for run in runs if run["namespace"] == demo.name]
    running = [run for run in mine if run["state"] == "running"]
    return (running or mine or [None])[0]


def state_json(demo: DemoNamespace) -> dict[str, Any]:
    recent = list(demo.faults.prefetch_related("targets")[:5])
    current = next((f for f in recent if f.state in Fault.OPEN), None) or faults.open_fault(demo)
    return {
        "demo": events.demo_json(demo),
        "run": _run_of(demo),
        "fault": events.fault_json(current) if current else None,
        "faults": [events.fault_json(f) for f in recent],
        "students": len(faults.student_namespaces(demo)),
        "targets": dict(TARGETS),
    }


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    classes = Classroom.objects.filter(
        memberships__user=request.user, memberships__role=Membership.Role.INSTRUCTOR
    ).distinct()
    if not classes:
        raise PermissionDenied("Only instructors have a demo.")
    return render(request, "demo/index.html", {"classes": classes})


@require_GET
def projector(request: HttpRequest, slug: str) -> HttpResponse:
    classroom = taught_class(request.user, slug)
    if classroom is None:
        raise PermissionDenied(FORBIDDEN)
    demo = demo_for(request.user, classroom)
    current = state_json(demo)
    config = {
        "slug": classroom.slug,
        "namespace": demo.name,
        "csrf": get_token(request),
        "urls": {
            "state": reverse("demo:state", args=[slug]),
            "prepare": reverse("demo:prepare", args=[slug]),
            "faults": reverse("demo:faults", args=[slug]),
            "ws": f"/ws/demo/{slug}/",
        },
        "state": current,
    }
    # The traffic chart's options (static/js/traffic-chart.js): read-only, on the demo's run; before there
    # is one, it finds the instructor's running run itself and demo.js points it at the demo's later.
    chart: dict[str, Any] = {"wsPath": "/ws/traffic/{run}/", "controls": False, "follow": True}
    chart["steps"] = {step.id: step.title for step in all_steps()}
    if current["run"]:
        chart["runId"] = current["run"]["id"]
    else:
        chart["runsUrl"] = reverse("traffic:runs")
    context = {
        "demo": demo,
        "classroom": classroom,
        "state": current,
        "targets": TARGETS,
        "config": config,
        "chart": chart,
    }
    return render(request, "demo/projector.html", context)


@demo_api("GET")
def state(request: HttpRequest, demo: DemoNamespace) -> HttpResponse:
    response = JsonResponse(state_json(demo))
    response["Cache-Control"] = "no-store"
    return response


@demo_api("POST")
def prepare_view(request: HttpRequest, demo: DemoNamespace) -> HttpResponse:
    task_id = prepare.start(demo)
    if task_id is None:
        return json_error(409, "The demo namespace is being prepared already; watch its progress.")
    try:
        tasks.send(tasks.prepare_demo, demo.pk, task_id)
    except Exception:
        log.exception("could not queue the prepare of %s", demo.name)
        prepare.finish(demo, DemoNamespace.State.FAILED, QUEUE_DOWN)
        return json_error(503, QUEUE_DOWN)
    return JsonResponse({"demo": events.demo_json(demo)}, status=202)


def _body(request: HttpRequest) -> Any:
    if int(request.META.get("CONTENT_LENGTH") or 0) > BODY_LIMIT:
        raise FaultInvalid({"form": "The request is too large."})
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise FaultInvalid({"form": "The request body must be JSON."}) from None


@demo_api("POST")
def fault_create(request: HttpRequest, demo: DemoNamespace) -> HttpResponse:
    try:
        data = _body(request)
        spec = parse(data)
        broadcast = data.get("broadcast", False)
        if not isinstance(broadcast, bool):
            raise FaultInvalid({"broadcast": "broadcast must be true or false."})
        if broadcast and data.get("confirm") is not True:
            raise FaultInvalid({"confirm": "Broadcasting to every student namespace needs your confirmation."})
    except FaultInvalid as exc:
        return json_error(400, str(exc), problems=exc.problems)
    try:
        fault = faults.create(demo, spec, broadcast, request.user)
    except faults.Busy as exc:
        return json_error(409, str(exc), fault=exc.fault.pk)
    try:
        tasks.send(tasks.apply_fault, fault.pk, fault.task_id)
    except Exception:
        log.exception("could not queue fault %s", fault.pk)
        Fault.objects.filter(pk=fault.pk).update(state=Fault.State.REVERTED, message=QUEUE_DOWN)
        return json_error(503, QUEUE_DOWN)
    return JsonResponse({"fault": events.fault_json(fault)}, status=202)


@demo_api("POST")
def fault_revert(request: HttpRequest, demo: DemoNamespace, fault_id: int) -> HttpResponse:
    fault = demo.faults.filter(pk=fault_id).first()
    if fault is None:
        return json_error(404, f"Your demo has no fault {fault_id}.")
    try:
        faults.start_revert(fault)
    except faults.NotRevertable as exc:
        return json_error(409, str(exc))
    try:
        tasks.send(tasks.revert_fault, fault.pk, fault.task_id)
    except Exception:
        log.exception("could not queue the revert of fault %s", fault.pk)
        return json_error(503, QUEUE_DOWN)
    return JsonResponse({"fault": events.fault_json(fault)}, status=202)
