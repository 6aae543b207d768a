"""The typed operations a step runs after its manifests are applied, and those that reset a step.

Each operation is a function (context, params, deadline) that returns a note for the attempt's message
(or None) and raises ActionFailed with a message fit for the student when it cannot do its job. They
are idempotent where the cluster allows it, since a task may run again after a worker died: labels
are set, not toggled; deletes of missing objects are fine; waits only read.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from labsteps import pipeline
from labsteps.addresses import AddressError
from labsteps.checks import CheckContext, conditions_of, http_request
from labsteps.cluster import ClusterError, kind_for_ref
from labsteps.content import render

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the annotation `kubectl rollout restart` sets
WAITS = frozenset({"wait-rollout", "wait-condition", "wait-address"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})


class ActionFailed(Exception):
    """An action could not do its job; the message says why, for the student."""


def _poll(condition: Callable[[], tuple[bool, str]], deadline: float, heartbeat: Callable[[], None]) -> str:
    """Call `condition` until it holds or `deadline` passes; its last description, or ActionFailed."""
    interval = 0.05
    while True:
        done, description = condition()
        heartbeat()
        if done:
            return description
        if time.monotonic() + interval > deadline:
            raise ActionFailed(description)
        time.sleep(interval)
        interval = min(interval * 2, 1.0)


# ---- namespace labels ------------------------------------------------------------------------------------
def label_namespace(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    # A merge patch, not an apply: the console's own namespace apply at login (field manager `meshconsole`)
    # would otherwise drop labels it does not list.
    ctx.cluster.merge_patch("Namespace", None, ctx.namespace, {"metadata": {"labels": dict(p["labels"])}})
    return "Labelled namespace " + ", ".join(f"{k}={v}" for k, v in p["labels"].items()) + "."


def unlabel_namespace(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    ctx.cluster.merge_patch("Namespace", None, ctx.namespace, {"metadata": {"labels": dict.fromkeys(p["keys"])}})
    return "Removed namespace label(s) " + ", ".join(p["keys"]) + "."


# ---- workloads ---------------------------------------------------------------------------------------------
def _workloads(ctx: CheckContext, p: Mapping[str, Any]) -> list[dict]:
    """The workloads an action names: every existing one of `kinds`, or the named `workloads`."""
    if p.get("kinds"):
        return [obj for kind in p["kinds"] for obj in ctx.cluster.list(kind, ctx.namespace)]
    found = []
    for ref in p["workloads"]:
        kind, name = kind_for_ref(ref)
        obj = ctx.cluster.get(kind.name, ctx.namespace, name)
        if obj is None:
            raise ActionFailed(f"{kind.name} {name} does not exist in {ctx.namespace}")
        found.append(obj)
    return found


def rollout_restart(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    restarted = []
    for obj in _workloads(ctx, p):
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        ctx.cluster.merge_patch(obj["kind"], ctx.namespace, obj["metadata"]["name"], patch)
        restarted.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return f"Restarted {', '.join(restarted)}." if restarted else "No workloads to restart."


def rolled_out(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a Deployment or StatefulSet finished rolling out, judged as `kubectl rollout status` does."""
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return False, f"{name}: the controller has not seen the latest change yet"
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    if updated < wanted:
        return False, f"{name}: {updated} of {wanted} pods updated"
    if obj["kind"] == "Deployment" and status.get("replicas", 0) > updated:
        return False, f"{name}: {status['replicas'] - updated} old pod(s) still terminating"
    if obj["kind"] == "StatefulSet" and status.get("updateRevision") != status.get("currentRevision"):
        return False, f"{name}: pods still being replaced"
    if ready < wanted:
        return False, f"{name}: {ready} of {wanted} pods ready"
    return True, f"{name} rolled out"


def wait_rollout(
    ctx: CheckContext, p: Mapping[str, Any], deadline: float, heartbeat: Callable[[], None] = lambda: None
) -> str:
    until = min(deadline, time.monotonic() + p.get("timeout_seconds", 180))

    def all_done() -> tuple[bool, str]:
        states = [rolled_out(obj) for obj in _workloads(ctx, p)]
        waiting = [text for done, text in states if not done]
        return not waiting, "; ".join(waiting) or f"{len(states)} workload(s) rolled out"

    try:
        return _poll(all_done, until, heartbeat) + "."
    except ActionFailed as exc:
        raise ActionFailed(f"Rollout did not finish in time: {exc}") from None


def wait_condition(
    ctx: CheckContext, p: Mapping[str, Any], deadline: float, heartbeat: Callable[[], None] = lambda: None
) -> str:
    kind, name = kind_for_ref(p["object"])
    until = min(deadline, time.monotonic() + p["timeout_seconds"])

    def holds() -> tuple[bool, str]:
        obj = ctx.cluster.get(kind.name, ctx.namespace, name)
        if obj is None:
            return False, f"{kind.name} {name} does not exist"
        ok = any(c.get("type") == p["condition"] and c.get("status") == p["status"] for c in conditions_of(obj))
        return ok, f"{kind.name} {name} {'is' if ok else 'is not'} {p['condition']}={p['status']}"

    return _poll(holds, until, heartbeat) + "."


def wait_address(
    ctx: CheckContext, p: Mapping[str, Any], deadline: float, heartbeat: Callable[[], None] = lambda: None
) -> str:
    until = min(deadline, time.monotonic() + p["timeout_seconds"])

    def reachable() -> tuple[bool, str]:
        try:
            return True, f"{p['object']} answers at {ctx.base_url(p['object'])}"
        except AddressError as exc:
            return False, str(exc)

    return _poll(reachable, until, heartbeat) + "."


# ---- requests and traffic ----------------------------------------------------------------------------------
def http(ctx: CheckContext, p: Mapping[str, Any], deadline: float, heartbeat: Callable[[], None] = lambda: None) -> str:
    """Send one request; retried while the app is not reachable yet (never after a real answer to a write)."""
    until = min(deadline, time.monotonic() + 30)
    retry_any = p.get("method", "GET") in ("GET", "HEAD")

    def sent() -> tuple[bool, str]:
        try:
            url, status, body = http_request(ctx, p)
        except AddressError as exc:
            return False, str(exc)
        line = f"{p.get('method', 'GET')} {p['path']} answered {status}"
        if status == p["expect_status"]:
            return True, line
        if isinstance(status, int) and not retry_any and status not in RETRYABLE_STATUSES:
            raise ActionFailed(f"{line} (expected {p['expect_status']}): {body[:200]}")
        return False, f"{line} (expected {p['expect_status']})"

    return _poll(sent, until, heartbeat) + "."


def traffic_control() -> ModuleType | None:
    """The traffic generator's control API (`traffic.control`), when that app is installed."""
    try:
        return importlib.import_module("traffic.control")
    except ImportError:
        return None


NO_GENERATOR = "Background traffic is not available in this console; checks send their own short bursts."


def traffic(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    control = traffic_control()
    if control is None:
        return NO_GENERATOR
    try:
        target = ctx.base_url(p["via"])
    except AddressError as exc:
        raise ActionFailed(f"Cannot start background traffic: {exc}") from None
    streams = [dict(s) for s in p["streams"]]
    try:
        control.stop_owner_runs(ctx.user_id)
        # The target was read from the student's own Service or Gateway, so it is theirs by construction.
        run = control.start_run(ctx.user_id, ctx.namespace, target, streams, allow_target=lambda ns, url: True)
    except Exception as exc:  # the generator is a convenience: checks send their own bursts without it
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return f"Background traffic could not be started ({reason}); checks send their own short bursts."
    rates = ", ".join(f"{s['name']} {s['rate']:g}/s" for s in p["streams"])
    return f"Background traffic to {p['via']} started ({rates}; run {run})."


def stop_traffic(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    control = traffic_control()
    if control is None:
        return NO_GENERATOR
    try:
        control.stop_owner_runs(ctx.user_id)
    except Exception as exc:
        raise ActionFailed(f"Background traffic could not be stopped: {getattr(exc, 'message', exc)}") from None
    return "Background traffic stopped."


# ---- reset operations ------------------------------------------------------------------------------------
def delete(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    gone = []
    for ref in p["objects"]:
        kind, name = kind_for_ref(ref)
        if ctx.cluster.delete(kind.name, ctx.namespace, name):
            gone.append(f"{kind.name}/{name}")
    return f"Deleted {', '.join(gone)}." if gone else "Nothing to delete."


def apply(ctx: CheckContext, p: Mapping[str, Any], deadline: float) -> str:
    objects = pipeline.validate(render(p["manifests"], ctx.template), ctx.namespace)
    outcome = pipeline.apply_objects(ctx.cluster, ctx.namespace, objects)
    if outcome.error:
        raise ActionFailed(f"{outcome.error}; not applied: {', '.join(outcome.not_applied)}")
    return f"Applied {', '.join(outcome.applied)}."


ACTIONS: Mapping[str, Callable[..., str | None]] = {
    "label-namespace": label_namespace,
    "unlabel-namespace": unlabel_namespace,
    "rollout-restart": rollout_restart,
    "wait-rollout": wait_rollout,
    "wait-condition": wait_condition,
    "wait-address": wait_address,
    "http": http,
    "traffic": traffic,
    "stop-traffic": stop_traffic,
    "delete": delete,
    "apply": apply,
}


def run_action(
    ctx: CheckContext, kind: str, params: Mapping[str, Any], deadline: float, heartbeat: Callable[[], None]
) -> str | None:
    """Run one action or reset operation; cluster errors become ActionFailed."""
    function = ACTIONS[kind]
    try:
        if kind in WAITS or kind == "http":
            return function(ctx, params, deadline, heartbeat)
        return function(ctx, params, deadline)
    except ClusterError as exc:
        raise ActionFailed(f"{kind}: {exc}") from None
    except pipeline.Invalid as exc:
        raise ActionFailed(f"{kind}: {exc}") from None
