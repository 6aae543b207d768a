"""The traffic REST API under /traffic/ (JSON in, JSON out; POSTs need the CSRF token).

  GET  runs/                      the user's runs                       -> {"runs": [...]}
  POST runs/                      {"target", "streams"}                 -> 201 {"run": {...}}
  POST runs/<id>/stop/                                                  -> {"run": {...}}
  POST runs/<id>/rate/            {"stream", "rate"}                    -> {"run": {...}}
  POST runs/<id>/streams/         {"streams"}                           -> {"run": {...}}
  GET  runs/<id>/history/?since=N                                       -> {"windows": [...]}
  POST stop-all/                                                        -> {"stopped": n}

A run targets the user's own lab namespace (their StudentNamespace); users without one get 403. Errors
are {"error": message}: 400 invalid input, 403 target refused, 404 no such run (or another user's),
429 over the rate caps, 503 when the traffic service's Redis cannot be reached.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.http import HttpRequest, HttpResponse, JsonResponse

from classroom.models import StudentNamespace
from traffic import control
from traffic.specs import TrafficError

View = Callable[..., HttpResponse]
log = logging.getLogger(__name__)
UNREACHABLE = "The traffic service cannot be reached right now (its Redis does not answer); try again in a moment."
MAX_BODY = 1024 * 1024

STATUS = {
    control.TargetRefused: 403,
    control.RunNotFound: 404,
    control.RateLimitExceeded: 429,
}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api(*methods: str) -> Callable[[View], View]:
    """Method check (405), JSON body parsing for POST, TrafficError -> JSON error with its status."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = _error(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            body: dict[str, Any] = {}
            if request.method == "POST" and request.body:
                if len(request.body) > MAX_BODY:
                    return _error(400, "The request body is too large.")
                try:
                    body = json.loads(request.body)
                except (ValueError, UnicodeDecodeError):
                    return _error(400, "The request body is not valid JSON.")
                if not isinstance(body, dict):
                    return _error(400, "The request body must be a JSON object.")
            try:
                return view(request, body, *args, **kwargs)
            except TrafficError as exc:
                return _error(STATUS.get(type(exc), 400), exc.message)
            except redis.RedisError:
                log.warning("traffic API: Redis unreachable", exc_info=True)
                return _error(503, UNREACHABLE)

        return wrapper

    return decorate


def _run(request: HttpRequest, run_id: str) -> dict[str, Any]:
    return next((r for r in control.runs(request.user.pk) if r["id"] == run_id), {"id": run_id})


@api("GET", "POST")
def runs(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"runs": control.runs(request.user.pk)})
    namespace = StudentNamespace.objects.filter(user=request.user).first()
    if namespace is None:
        return _error(403, "Your account has no lab namespace, so there is no app of yours to send traffic to.")
    run_id = control.start_run(request.user.pk, namespace.name, body.get("target"), body.get("streams"))
    return JsonResponse({"run": _run(request, run_id)}, status=201)


@api("POST")
def stop(request: HttpRequest, body: dict[str, Any], run_id: str) -> HttpResponse:
    control.stop_run(run_id, request.user.pk)
    return JsonResponse({"run": _run(request, run_id)})


@api("POST")
def rate(request: HttpRequest, body: dict[str, Any], run_id: str) -> HttpResponse:
    stream = body.get("stream")
    if not isinstance(stream, str):
        return _error(400, "Name the stream whose rate changes.")
    control.set_rate(run_id, request.user.pk, stream, body.get("rate"))
    return JsonResponse({"run": _run(request, run_id)})


@api("POST")
def streams(request: HttpRequest, body: dict[str, Any], run_id: str) -> HttpResponse:
    control.set_streams(run_id, request.user.pk, body.get("streams"))
    return JsonResponse({"run": _run(request, run_id)})


@api("GET")
def history(request: HttpRequest, body: dict[str, Any], run_id: str) -> HttpResponse:
    since = request.GET.get("since", "")
    windows = control.history(run_id, request.user.pk, int(since) if since.isdigit() else None)
    return JsonResponse({"windows": windows})


@api("POST")
def stop_all(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    return JsonResponse({"stopped": control.stop_owner_runs(request.user.pk)})
