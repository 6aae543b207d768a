"""The typed checks that verify a step, one function per check type of the content files.

Each check type is a function (context, params) → Outcome(ok, reports). `run_check` evaluates a
step's `Check` until it passes or its `timeout_seconds` run out (mesh config and metrics take a while
to settle) and turns the last outcome into a CheckResult: ok, the learner message (the content's
`message`, shown on failure) and the debug message (the content's `debug` template filled with the
values the check reports). Checks only read the cluster, except `outside-probe-refused`, which runs a
short-lived Job and deletes it.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from labsteps import bursts
from labsteps.addresses import AddressError, base_url
from labsteps.cluster import Cluster, ClusterError, kind_for_ref
from labsteps.conformance import run_suites
from labsteps.content import Check, Step, render
from labsteps.metrics import Counts, MetricsSource

HTTP_TIMEOUT = 5.0
BODY_SHOWN = 300  # characters of a response body in debug text
MIN_BURST = 50
BURST_SECONDS = 1.5


@dataclass
class CheckContext:
    """What checks (and actions) work with: the student's namespace in one cluster, and the step."""

    cluster: Cluster
    namespace: str
    step: Step
    template: Mapping[str, Any]  # the step's template context (namespace, images)
    metrics: MetricsSource
    user_id: int = 0

    def base_url(self, via: str) -> str:
        return base_url(self.cluster, self.namespace, via)


@dataclass
class Outcome:
    ok: bool
    reports: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool | None  # None while pending
    message: str
    debug: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message, "debug": self.debug}


def pending(check: Check) -> CheckResult:
    return CheckResult(check.name, None, "", "")


# ---- cluster state -------------------------------------------------------------------------------------
def istio_installed(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    found, missing = [], []
    for component in p["components"]:
        try:
            ok, detail = _component(ctx, component)
        except ClusterError as exc:
            ok, detail = False, str(exc)
        (found if ok else missing).append(f"{component} ({detail})")
    return Outcome(not missing, {"missing": ", ".join(missing) or "none", "found": ", ".join(found) or "none"})


def _component(ctx: CheckContext, component: str) -> tuple[bool, str]:
    if component == "istiod":
        deployments = ctx.cluster.list("Deployment", "istio-system", "app=istiod")
        ready = sum((d.get("status") or {}).get("readyReplicas", 0) for d in deployments)
        return ready > 0, f"{ready} ready replica(s) in istio-system"
    if component == "gateway-api":
        served = ctx.cluster.group_served("gateway.networking.k8s.io")
        return served, "gateway.networking.k8s.io served" if served else "gateway.networking.k8s.io not served"
    return ctx.metrics.reachable()


def namespace_label(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    namespace = ctx.cluster.get("Namespace", None, ctx.namespace) or {}
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return Outcome(all(labels.get(k) == v for k, v in p["labels"].items()), {"labels": labels})


def readiness(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(ready, total) containers as `kubectl get pods` counts them, native sidecars included: init
    containers with `restartPolicy: Always` (how recent Istio injects its proxy) run alongside the app."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    sidecars = {c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    ready = sum(1 for cs in status.get("containerStatuses") or [] if cs.get("ready"))
    ready += sum(
        1 for cs in status.get("initContainerStatuses") or [] if cs.get("name") in sidecars and cs.get("ready")
    )
    return ready, total


def _is_lab_pod(pod: Mapping[str, Any]) -> bool:
    """Pods the namespace-wide pods-ready check looks at: not finished, not a Job's, not a gateway's."""
    meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
    labels = meta.get("labels") or {}
    owners = {ref.get("kind") for ref in meta.get("ownerReferences") or []}
    return (
        phase in ("Pending", "Running")
        and not meta.get("deletionTimestamp")
        and "Job" not in owners
        and "gateway.networking.k8s.io/gateway-name" not in labels
        and "istio.io/gateway-name" not in labels
    )


def _workload_pods(ctx: CheckContext, ref: str) -> list[dict] | None:
    kind, name = kind_for_ref(ref)
    workload = ctx.cluster.get(kind.name, ctx.namespace, name)
    if workload is None:
        return None
    match = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in match.items())
    pods = ctx.cluster.list("Pod", ctx.namespace, selector)
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def pods_ready(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    wanted = p["containers"]
    shown: list[str] = []
    ok = True
    if p["workloads"]:
        groups = []
        for ref in p["workloads"]:
            pods = _workload_pods(ctx, ref)
            if not pods:
                ok = False
                shown.append(f"{ref}: {'does not exist' if pods is None else 'no pods'}")
            groups.append(pods or [])
        pods = [pod for group in groups for pod in group]
    else:
        pods = [pod for pod in ctx.cluster.list("Pod", ctx.namespace) if _is_lab_pod(pod)]
        if not pods and not p["allow_none"]:
            ok = False
            shown.append("no pods")
    for pod in sorted(pods, key=lambda pod: pod["metadata"]["name"]):
        ready, total = readiness(pod)
        running = (pod.get("status") or {}).get("phase") == "Running"
        ok = ok and running and ready == total == wanted
        shown.append(
            f"{pod['metadata']['name']} {ready}/{total}" + ("" if running else f" {pod['status'].get('phase')}")
        )
    return Outcome(ok, {"pods": ", ".join(shown) or "none"})


def service_external_ip(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    service = ctx.cluster.get("Service", ctx.namespace, p["service"])
    if service is None:
        return Outcome(False, {"service_type": "missing", "ingress": "none"})
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = next((i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")), "")
    service_type = service["spec"].get("type", "ClusterIP")
    return Outcome(
        service_type == "LoadBalancer" and bool(address), {"service_type": service_type, "ingress": address or "none"}
    )


def conditions_of(obj: Mapping[str, Any]) -> list[dict]:
    """Status conditions of a Gateway, or of an HTTPRoute's parents (all of them)."""
    status = obj.get("status") or {}
    if "parents" in status:
        return [c for parent in status["parents"] or [] for c in parent.get("conditions") or []]
    return status.get("conditions") or []


def gateway_condition(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    gateway = ctx.cluster.get("Gateway", ctx.namespace, p["gateway"])
    if gateway is None:
        return Outcome(False, {"conditions": f"Gateway {p['gateway']} does not exist"})
    conditions = conditions_of(gateway)
    ok = any(c.get("type") == p["condition"] and c.get("status") == p["status"] for c in conditions)
    shown = ", ".join(f"{c.get('type')}={c.get('status')}" for c in conditions) or "none"
    return Outcome(ok, {"conditions": shown})


# ---- HTTP ----------------------------------------------------------------------------------------------
def _same_json(got: Any, expected: Any, unordered: bool) -> bool:
    if unordered and isinstance(got, list) and isinstance(expected, list):
        return Counter(json.dumps(x, sort_keys=True) for x in got) == Counter(
            json.dumps(x, sort_keys=True) for x in expected
        )
    return got == expected


def http_request(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[str, int | str, str]:
    """Send the request a check or action describes; (url, status or error, body text)."""
    url = ctx.base_url(p["via"]) + p["path"]
    try:
        response = httpx.request(
            p.get("method", "GET"),
            url,
            headers=dict(p.get("headers") or {}),
            json=p.get("body"),
            timeout=HTTP_TIMEOUT,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        return url, f"no answer ({type(exc).__name__})", ""
    return url, response.status_code, response.text


def http(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    reports: dict[str, Any] = {}
    for _ in range(p["attempts"]):
        url, status, body = http_request(ctx, p)
        reports = {"url": url, "status": status, "body": body[:BODY_SHOWN]}
        if status != p["expect_status"]:
            continue
        if p["expect_json"] is None:
            return Outcome(True, reports)
        try:
            if _same_json(json.loads(body), p["expect_json"], p["unordered"]):
                return Outcome(True, reports)
        except ValueError:
            continue
    return Outcome(False, reports)


def splitdim_conformance(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    failures = run_suites(ctx.base_url(p["via"]), p["suites"])
    return Outcome(not failures, {"failures": "; ".join(failures[:10]) or "none"})


# ---- observed traffic ------------------------------------------------------------------------------------
def observe(ctx: CheckContext, window_s: float, min_requests: int, **label_filters: Any) -> tuple[Counts, str]:
    """Metrics over the window, with a burst of the step's own traffic inside it; (counts, debug note)."""
    plan = bursts.plan_for(ctx.step)
    if plan is None:
        return ctx.metrics.counts(ctx.namespace, window_s, **label_filters), "no burst (the step has no traffic)"
    try:
        target = ctx.base_url(plan.via)
    except AddressError as exc:
        return ctx.metrics.counts(ctx.namespace, window_s, **label_filters), f"no burst ({exc})"
    total = max(MIN_BURST, math.ceil(min_requests * 1.2))
    result = bursts.BurstResult()

    def burst() -> None:
        nonlocal result
        result = bursts.send(target, plan.streams, total, duration=BURST_SECONDS)

    counts = ctx.metrics.counts(ctx.namespace, window_s, while_observing=burst, **label_filters)
    return counts, result.summary()


def _query(counts: Counts, note: str) -> str:
    extra = "; ".join([note, *counts.notes])
    return f"{counts.query} ({extra})" if extra else counts.query


def traffic_rate(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    counts, note = observe(ctx, p["window_seconds"], 1, reporter=p["reporter"], **p["select"])
    rate = counts.total() / counts.seconds if counts.seconds else 0.0
    return Outcome(rate >= p["min_rate"], {"rate": round(rate, 2), "query": _query(counts, note)})


def traffic_share(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    counts, note = observe(ctx, p["window_seconds"], p["min_requests"], reporter=p["reporter"], **p["select"])
    total = counts.total()
    matched = sum(value for labels, value in counts.series if all(labels.get(k) in v for k, v in p["match"].items()))
    expected = p["share"]
    share = matched / total if total else 0.0
    # Binomial spread around the expected share, never narrower than one request in the total.
    spread = max(p["sigmas"] * math.sqrt(expected * (1 - expected) / total), 1 / total) if total else 0.0
    low, high = max(0.0, expected - spread), min(1.0, expected + spread)
    ok = total >= p["min_requests"] and low <= share <= high
    return Outcome(
        ok,
        {
            "matched": int(matched),
            "total": int(total),
            "share": round(share, 3),
            "low": round(low, 3),
            "high": round(high, 3),
            "query": _query(counts, note),
        },
    )


def mtls(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    counts, note = observe(
        ctx, p["window_seconds"], p["min_requests"], reporter="destination", destination_workload=p["workloads"]
    )
    totals = counts.by("destination_workload")
    secured = counts.by("destination_workload", connection_security_policy="mutual_tls")
    shares = {w: round(secured.get(w, 0.0) / totals[w], 3) if totals.get(w) else None for w in p["workloads"]}
    ok = all(totals.get(w, 0) >= p["min_requests"] and shares[w] == 1.0 for w in p["workloads"])
    return Outcome(ok, {"shares": shares, "query": _query(counts, note)})


# ---- a client outside the mesh ---------------------------------------------------------------------------
PROBE_LABEL = "meshconsole.io/probe"


def outside_probe_refused(ctx: CheckContext, p: Mapping[str, Any]) -> Outcome:
    """Run curl in a pod without a sidecar against the target; passes when the connection is refused."""
    _, service = kind_for_ref(p["target"])
    if ctx.cluster.get("Service", ctx.namespace, service) is None:
        return Outcome(False, {"exit_code": "-", "output": f"Service {service} does not exist"})
    name = f"mc-probe-{secrets.token_hex(3)}"
    url = f"http://{service}.{ctx.namespace}:{p['port']}{p['path']}"
    no_sidecar = {"sidecar.istio.io/inject": "false"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {PROBE_LABEL: "outside"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 60,
            "ttlSecondsAfterFinished": 120,  # cleanup of last resort if the delete below is missed
            "template": {
                "metadata": {"labels": {PROBE_LABEL: "outside", **no_sidecar}, "annotations": no_sidecar},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "probe",
                            "image": p["image"],
                            "args": ["-sSf", "--max-time", "5", url],
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                        }
                    ],
                },
            },
        },
    }
    ctx.cluster.create(job, ctx.namespace)
    try:
        exit_code, output = _probe_result(ctx, name, deadline=time.monotonic() + 30)
    finally:
        ctx.cluster.delete("Job", ctx.namespace, name)
    if exit_code is None:
        return Outcome(False, {"exit_code": "-", "output": output})
    return Outcome(exit_code != 0, {"exit_code": exit_code, "output": output.strip()[:BODY_SHOWN]})


def _probe_result(ctx: CheckContext, job: str, deadline: float) -> tuple[int | None, str]:
    interval = 0.1
    while time.monotonic() < deadline:
        for pod in ctx.cluster.list("Pod", ctx.namespace, f"job-name={job}"):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated")
                if terminated:
                    return terminated.get("exitCode"), terminated.get("message") or terminated.get("reason") or ""
        time.sleep(interval)
        interval = min(interval * 2, 1.0)
    return None, "the probe pod did not finish in time"


CHECK_FUNCTIONS: Mapping[str, Callable[[CheckContext, Mapping[str, Any]], Outcome]] = {
    "istio-installed": istio_installed,
    "namespace-label": namespace_label,
    "pods-ready": pods_ready,
    "service-external-ip": service_external_ip,
    "gateway-condition": gateway_condition,
    "http": http,
    "splitdim-conformance": splitdim_conformance,
    "traffic-rate": traffic_rate,
    "traffic-share": traffic_share,
    "mtls": mtls,
    "outside-probe-refused": outside_probe_refused,
}


# ---- running a check -----------------------------------------------------------------------------------
def evaluate(ctx: CheckContext, check: Check) -> CheckResult:
    """One evaluation of `check`; cluster and network problems make it fail with their text as debug."""
    params = dict(check.params)
    if isinstance(params.get("image"), str):
        params["image"] = render(params["image"], ctx.template)  # validated as a template on load
    try:
        outcome = CHECK_FUNCTIONS[check.type](ctx, params)
    except (ClusterError, AddressError) as exc:
        return CheckResult(check.name, False, check.render_message(ctx.template), f"{check.type}: {exc}")
    reports = {name: outcome.reports.get(name, "-") for name in check.reports}
    debug_context = {**ctx.template, "check": {"name": check.name, "type": check.type}, **reports}
    debug = check.render_debug(debug_context)
    return CheckResult(check.name, outcome.ok, "" if outcome.ok else check.render_message(ctx.template), debug)


def run_check(
    ctx: CheckContext, check: Check, deadline: float, heartbeat: Callable[[], None] = lambda: None
) -> CheckResult:
    """Evaluate until the check passes, its own timeout passes, or `deadline` (monotonic) is reached."""
    until = min(time.monotonic() + check.timeout_seconds, deadline)
    interval = 0.25
    while True:
        result = evaluate(ctx, check)
        heartbeat()
        if result.ok or time.monotonic() + interval > until:
            return result
        time.sleep(interval)
        interval = min(interval * 2, 3.0)
