"""What the fault-injection control accepts, and the VirtualService it becomes. Pure: no Django, no cluster.

`parse(data)` turns the form's JSON into a `FaultSpec` or raises `FaultInvalid` with one message per bad
field; nothing is stored or applied for invalid input. `virtual_service(spec)` is the Istio object the
demo applies: one HTTP rule for the whole host, with the abort and/or delay fault, routing to the host
itself, so the only change to the route is the fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The lab's services a fault can target (Services of step 2). A VirtualService acts at the caller's
# sidecar: kvstore's callers are the SplitDim pods; splitdim is called through the gateway, which
# applies Gateway API routes, not mesh VirtualServices, so a splitdim fault reaches only mesh callers.
TARGETS: Mapping[str, str] = {
    "kvstore": "the key-value store, called by SplitDim's sidecars",
    "splitdim": "SplitDim, for callers inside the mesh (the gateway does not apply mesh VirtualServices)",
}
OBJECT_PREFIX = "demo-fault-"
FAULT_LABEL = "meshconsole.io/demo-fault"
MIN_STATUS, MAX_STATUS = 200, 599  # Envoy's range for an abort's status
MAX_DELAY_SECONDS = 30.0  # the traffic generator gives up on a request after 10 s by default
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


class FaultInvalid(ValueError):
    """The control's input is not a fault; `problems` maps each bad field to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("Nothing was applied: " + " ".join(self.problems.values()))


@dataclass(frozen=True)
class FaultSpec:
    target: str
    abort_percent: float = 0.0
    abort_status: int = 500
    delay: str = ""
    delay_percent: float = 0.0

    @property
    def object_name(self) -> str:
        return OBJECT_PREFIX + self.target

    def summary(self) -> str:
        parts = []
        if self.abort_percent:
            parts.append(f"abort {self.abort_percent:g}% with HTTP {self.abort_status}")
        if self.delay_percent:
            parts.append(f"delay {self.delay_percent:g}% by {self.delay}")
        return f"{' and '.join(parts)} on requests to {self.target}"


def _percent(data: Mapping[str, Any], field: str, label: str, problems: dict[str, str]) -> float:
    raw = data.get(field, 0)
    if raw in (None, ""):
        return 0.0
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        problems[field] = f"The {label} must be a number from 0 to 100."
        return 0.0
    if not math.isfinite(value) or not 0 <= value <= 100:
        problems[field] = f"The {label} must be from 0 to 100 (it is a percentage), not {raw}."
        return 0.0
    return round(value, 4)


def delay_seconds(text: str) -> float:
    """Seconds in a delay such as "2s", "1.5s" or "250ms"; ValueError for anything else."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    return float(match.group(1)) * (0.001 if match.group(2) == "ms" else 1.0)


def parse(data: Any) -> FaultSpec:
    if not isinstance(data, Mapping):
        raise FaultInvalid({"form": "Send the fault as a JSON object."})
    problems: dict[str, str] = {}
    target = data.get("target")
    if target not in TARGETS:
        problems["target"] = f"Choose the route to fault: {' or '.join(TARGETS)}."
    abort_percent = _percent(data, "abort_percent", "abort percentage", problems)
    status_raw = data.get("abort_status", 500)
    abort_status = 500
    if status_raw not in (None, ""):
        try:
            if isinstance(status_raw, bool) or float(status_raw) != int(float(status_raw)):
                raise ValueError
            abort_status = int(float(status_raw))
        except (TypeError, ValueError, OverflowError):
            problems["abort_status"] = "The abort status must be a whole number such as 500 or 503."
        else:
            if not MIN_STATUS <= abort_status <= MAX_STATUS:
                problems["abort_status"] = f"The abort status must be an HTTP status from {MIN_STATUS} to {MAX_STATUS}."
    delay = str(data.get("delay") or "").strip()
    delay_percent = _percent(data, "delay_percent", "delay percentage", problems)
    if delay:
        try:
            seconds = delay_seconds(delay)
        except ValueError:
            problems["delay"] = "The delay must be a duration such as 2s, 1.5s or 250ms."
        else:
            if not 0 < seconds <= MAX_DELAY_SECONDS:
                problems["delay"] = f"The delay must be more than 0 and at most {MAX_DELAY_SECONDS:g}s."
        if "delay_percent" not in problems and delay_percent == 0 and "delay" not in problems:
            problems["delay_percent"] = "Give the percentage of requests to delay (more than 0)."
    elif delay_percent > 0:
        problems["delay"] = "Give the delay (such as 2s) for the requests to delay."
    if not problems and abort_percent == 0 and delay_percent == 0:
        problems["abort_percent"] = "Nothing to inject: give an abort percentage or a delay with its percentage."
    if problems:
        raise FaultInvalid(problems)
    return FaultSpec(target, abort_percent, abort_status, delay if delay_percent else "", delay_percent)


def virtual_service(spec: FaultSpec, fault_id: int) -> dict[str, Any]:
    """The demo's VirtualService for `spec` (the namespace is set when it is applied)."""
    fault: dict[str, Any] = {}
    if spec.abort_percent:
        fault["abort"] = {"httpStatus": spec.abort_status, "percentage": {"value": spec.abort_percent}}
    if spec.delay_percent:
        fault["delay"] = {"fixedDelay": spec.delay, "percentage": {"value": spec.delay_percent}}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": spec.object_name, "labels": {FAULT_LABEL: str(fault_id)}},
        "spec": {
            "hosts": [spec.target],
            "http": [{"fault": fault, "route": [{"destination": {"host": spec.target}}]}],
        },
    }


def routes_host(vs: Mapping[str, Any], host: str, namespace: str) -> bool:
    """Whether a VirtualService of `namespace` is applied by sidecars to requests for Service `host` there:
    bound to the mesh (no `gateways`, or `mesh` among them) and naming the host short or in full."""
    spec = vs.get("spec") or {}
    gateways = spec.get("gateways") or ["mesh"]
    if "mesh" not in gateways:
        return False
    names = {host, f"{host}.{namespace}", f"{host}.{namespace}.svc", f"{host}.{namespace}.svc.cluster.local"}
    return any(isinstance(h, str) and h.strip().lower().rstrip(".") in names for h in spec.get("hosts") or [])
