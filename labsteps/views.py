"""The lab's pages and JSON API (URL names in labsteps/urls.py).

Every view works on the requesting student's own namespace (their StudentNamespace) and their own
attempts; nothing in a URL or body can name another student's. Users without a lab namespace (an
instructor, an admin) get 403: a page for pages, JSON for the API. Login itself is enforced by
LoginRequiredMiddleware. JSON endpoints answer errors as {"error": "...", ...}.

Template context (templates/labsteps/):
- both: `namespace` (name) and `namespace_error` (why the cluster has not got the namespace yet, or "").
- index.html: `steps` — list of {id, order, title, summary, state, updated, url}.
- step.html: `step` (title, summary, order, id), `steps` (as above, for navigation), `previous`, `next`
  (neighbouring steps or None), `namespace`, `text_html` (rendered Markdown, safe), `manifests` (YAML
  text for the editor), `progress` ({step, state, updated}), `attempt` (latest attempt JSON or None),
  `hints_total`, `hints_released`, and `lab_config` (everything the page script needs, for
  `{{ lab_config|json_script:"lab-config" }}`: step, namespace, urls {apply, check, reset, solution,
  hint (with 0 for the hint number), attempt (with 0 for the id), progress, ws}, hintsTotal,
  hintsReleased, attempt), `traffic_panel` (the live traffic panel's options, see
  static/js/traffic-chart.js) and `graph_step` (the mesh graph is shown beside it).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.http import require_GET

from classroom.models import StudentNamespace
from labsteps import attempts, pipeline
from labsteps.addresses import AddressError, base_url
from labsteps.cluster import Cluster, ClusterError
from labsteps.markdown import render_markdown
from labsteps.models import Attempt, Progress
from labsteps.steps import all_steps, context, get_step, manifests_text, neighbours

log = logging.getLogger(__name__)

# A JSON string may escape characters (a newline takes two bytes), so the body may exceed the manifests.
BODY_LIMIT = 2 * pipeline.MAX_MANIFEST_BYTES + 4096
NO_NAMESPACE = (
    "The lab is for students, and your account has no lab namespace. "
    "Ask your instructor to add you to a class as a student."
)
WS_PATH = "/ws/lab/"
# Steps whose page shows the mesh graph beside the traffic panel (issue 6).
GRAPH_STEPS = frozenset({"observability", "request-routing", "fault-injection", "security"})

View = Callable[..., HttpResponse]


def json_error(code: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=code)


def _namespace(request: HttpRequest) -> StudentNamespace | None:
    return StudentNamespace.objects.filter(user=request.user).first()


def lab_api(*methods: str) -> Callable[[View], View]:
    """A JSON endpoint of the student's own lab: method check (405), namespace (403), JSON errors."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = json_error(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            namespace = _namespace(request)
            if namespace is None:
                return json_error(403, NO_NAMESPACE)
            return view(request, namespace, *args, **kwargs)

        return wrapper

    return decorate


def lab_page(view: View) -> View:
    """A page of the student's own lab: GET only, 403 page without a lab namespace."""

    @require_GET
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        namespace = _namespace(request)
        if namespace is None:
            raise PermissionDenied(NO_NAMESPACE)
        return view(request, namespace, *args, **kwargs)

    return wrapper


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: JSON for the JSON APIs (lab, traffic, demo: their callers read JSON), Django's page
    elsewhere."""
    if request.path.startswith(("/lab/", "/traffic/", "/demo/")):
        return json_error(403, "The request has no valid CSRF token; reload the page and try again.", reason=reason)
    return django_csrf_failure(request, reason=reason)


# ---- pages ------------------------------------------------------------------------------------------------
def _step_list(progress: dict[str, Progress]) -> list[dict[str, Any]]:
    out = []
    for step in all_steps():
        state = attempts.progress_json(step.id, progress.get(step.id))
        out.append(
            {
                "id": step.id,
                "order": step.order,
                "title": step.title,
                "summary": step.summary,
                "state": state["state"],
                "updated": state["updated"],
                "url": reverse("labsteps:step", args=[step.id]),
            }
        )
    return out


@lab_page
def index(request: HttpRequest, namespace: StudentNamespace) -> HttpResponse:
    attempts.sweep(request.user)
    steps = _step_list(attempts.progress_by_step(request.user))
    page = {"namespace": namespace.name, "namespace_error": namespace.last_error, "steps": steps}
    return render(request, "labsteps/index.html", page)


def _urls(step_id: str) -> dict[str, str]:
    return {
        "apply": reverse("labsteps:apply", args=[step_id]),
        "check": reverse("labsteps:check", args=[step_id]),
        "reset": reverse("labsteps:reset", args=[step_id]),
        "solution": reverse("labsteps:solution", args=[step_id]),
        "hint": reverse("labsteps:hint", args=[step_id, 0]),
        "attempt": reverse("labsteps:attempt", args=[0]),
        "progress": reverse("labsteps:progress"),
        "ws": WS_PATH,
    }


# Where the traffic panel sends the lab's default streams: through the gateway once the lab has one
# (step 4 removes the Service's external address), before that to the SplitDim Service itself.
TRAFFIC_VIA = ("gateway/splitdim", "service/splitdim")
NO_APP = "Your app has no external address yet, so there is nothing to send traffic to. Deploy SplitDim (step 2) first."


def traffic_panel(step_id: str) -> dict[str, Any]:
    """Options of the step page's traffic panel (templates/traffic/panel.html, static/js/traffic-chart.js)."""
    return {
        "runsUrl": reverse("traffic:runs"),
        "wsPath": "/ws/traffic/{run}/",
        "targetUrl": reverse("labsteps:traffic-target"),
        "controls": True,
        "follow": True,
        "steps": {s.id: s.title for s in all_steps()},
        "step": step_id,
    }


@lab_page
def step(request: HttpRequest, namespace: StudentNamespace, step_id: str) -> HttpResponse:
    current = get_step(step_id)
    if current is None:
        raise Http404(f"The lab has no step {step_id!r}.")
    attempts.sweep(request.user)
    progress = attempts.progress_by_step(request.user)
    mine = progress.get(step_id)
    latest = Attempt.objects.filter(user=request.user, step_id=step_id).first()
    attempt = attempts.attempt_json(latest) if latest else None
    released = mine.hints_released if mine else 0
    previous, following = neighbours(current)
    lab_config = {
        "step": step_id,
        "namespace": namespace.name,
        "urls": _urls(step_id),
        "hintsTotal": len(current.hints),
        "hintsReleased": released,
        "attempt": attempt,
    }
    return render(
        request,
        "labsteps/step.html",
        {
            "step": current,
            "steps": _step_list(progress),
            "previous": previous,
            "next": following,
            "namespace": namespace.name,
            "namespace_error": namespace.last_error,
            "text_html": render_markdown(current.render_text(context(namespace.name))),
            "manifests": manifests_text(current, namespace.name),
            "progress": attempts.progress_json(step_id, mine),
            "attempt": attempt,
            "hints_total": len(current.hints),
            "hints_released": released,
            "lab_config": lab_config,
            "traffic_panel": traffic_panel(step_id),
            "graph_step": step_id in GRAPH_STEPS,
        },
    )


# ---- actions ----------------------------------------------------------------------------------------------
def _busy(request: HttpRequest) -> JsonResponse | None:
    attempts.sweep(request.user)
    running = attempts.running_attempt(request.user)
    if running is None:
        return None
    return json_error(
        409, "Another attempt is still running; wait for it to finish.", attempt=running.id, status=running.status
    )


def _queue(attempt: Attempt) -> JsonResponse:
    try:
        attempts.send_task(attempt)
    except Exception:
        log.exception("could not queue attempt %s", attempt.pk)
        message = "The console's task queue cannot be reached right now; try again in a moment."
        attempts.fail_now(attempt, message)
        return json_error(503, message, attempt=attempt.id)
    return JsonResponse({"attempt": attempt.id, "status": attempt.status}, status=202)


@lab_api("POST")
def apply(request: HttpRequest, namespace: StudentNamespace, step_id: str) -> HttpResponse:
    current = get_step(step_id)
    if current is None:
        return json_error(404, f"The lab has no step {step_id!r}.")
    limit = f"the limit is {pipeline.MAX_MANIFEST_BYTES // 1024} KiB of manifests"
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > BODY_LIMIT:
            return json_error(413, f"The request is too large; {limit}.")
        body = request.body
    except (ValueError, RequestDataTooBig):
        return json_error(413, f"The request is too large; {limit}.")
    try:
        manifests = json.loads(body)["manifests"]
    except (ValueError, KeyError, TypeError):
        manifests = None
    if not isinstance(manifests, str):
        return json_error(400, 'The request body must be JSON: {"manifests": "<YAML text>"}.', problems=[])
    if len(manifests.encode()) > pipeline.MAX_MANIFEST_BYTES:
        return json_error(413, f"The manifests are too large; {limit}.")
    busy = _busy(request)
    if busy is not None:
        return busy
    try:
        pipeline.validate(manifests, namespace.name)
    except pipeline.Invalid as exc:
        attempt = attempts.new_attempt(request.user, namespace, current.id, Attempt.Kind.APPLY, manifests)
        attempts.fail_now(attempt, str(exc))
        problems = [problem.as_json() for problem in exc.problems]
        return json_error(exc.status, str(exc), problems=problems, attempt=attempt.id)
    attempt = attempts.new_attempt(request.user, namespace, current.id, Attempt.Kind.APPLY, manifests)
    return _queue(attempt)


def _simple(kind: str) -> View:
    @lab_api("POST")
    def view(request: HttpRequest, namespace: StudentNamespace, step_id: str) -> HttpResponse:
        if get_step(step_id) is None:
            return json_error(404, f"The lab has no step {step_id!r}.")
        busy = _busy(request)
        if busy is not None:
            return busy
        return _queue(attempts.new_attempt(request.user, namespace, step_id, kind))

    view.__name__ = view.__qualname__ = kind
    view.__doc__ = f"POST: run the step's {kind} as an attempt (202 with its id)."
    return view


check = _simple(Attempt.Kind.CHECK)
reset = _simple(Attempt.Kind.RESET)


@lab_api("GET")
def solution(request: HttpRequest, namespace: StudentNamespace, step_id: str) -> HttpResponse:
    current = get_step(step_id)
    if current is None:
        return json_error(404, f"The lab has no step {step_id!r}.")
    Progress.objects.update_or_create(user=request.user, step_id=step_id, defaults={"solution_viewed": True})
    text = current.render_solution(context(namespace.name))
    return JsonResponse({"html": render_markdown(text), "manifests": manifests_text(current, namespace.name)})


@lab_api("GET")
def hint(request: HttpRequest, namespace: StudentNamespace, step_id: str, n: int) -> HttpResponse:
    """Hint number `n` (from 1); hints are released in order, so hint n needs hint n-1 opened first."""
    current = get_step(step_id)
    if current is None:
        return json_error(404, f"The lab has no step {step_id!r}.")
    total = len(current.hints)
    if not 1 <= n <= total:
        return json_error(404, f"This step has {total} hint(s), numbered from 1.", total=total)
    progress, _ = Progress.objects.get_or_create(user=request.user, step_id=step_id)
    if n > progress.hints_released + 1:
        return json_error(403, f"Open hint {progress.hints_released + 1} first.", total=total)
    if n > progress.hints_released:
        progress.hints_released = n
        progress.save(update_fields=["hints_released"])
    text = current.render_hints(context(namespace.name))[n - 1]
    return JsonResponse({"html": render_markdown(text), "index": n, "total": total})


@lab_api("GET")
def attempt_detail(request: HttpRequest, namespace: StudentNamespace, attempt_id: int) -> HttpResponse:
    attempts.sweep(request.user)
    attempt = Attempt.objects.filter(pk=attempt_id, user=request.user).first()
    if attempt is None:
        return json_error(404, f"You have no attempt {attempt_id}.")
    return JsonResponse(attempts.attempt_json(attempt))


@lab_api("GET")
def progress(request: HttpRequest, namespace: StudentNamespace) -> HttpResponse:
    attempts.sweep(request.user)
    mine = attempts.progress_by_step(request.user)
    return JsonResponse({"steps": [attempts.progress_json(step.id, mine.get(step.id)) for step in all_steps()]})


@lab_api("GET")
def traffic_target(request: HttpRequest, namespace: StudentNamespace) -> HttpResponse:
    """The student's app as the traffic panel should reach it: {target, via, streams} or 409 with why not.

    The panel posts these to the traffic API (POST /traffic/runs/), which checks again that the target
    is an address of a Service in the student's namespace."""
    from traffic.specs import lab_streams

    reasons = []
    try:
        with Cluster() as cluster:
            for via in TRAFFIC_VIA:
                try:
                    target = base_url(cluster, namespace.name, via)
                except AddressError as exc:
                    reasons.append(str(exc))
                    continue
                return JsonResponse({"target": target, "via": via, "streams": lab_streams()})
    except ClusterError as exc:
        return json_error(503, f"The cluster cannot be reached to find your app: {exc}")
    return json_error(409, NO_APP, reasons=reasons)
