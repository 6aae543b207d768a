"""What a real cluster refuses at apply time for the mesh kinds, so the sandbox can answer 422.

Istio kinds get the checks of Istio's validating webhook (`validation.istio.io`) and their CRD
schemas (unknown fields, enums); HTTPRoute gets the Gateway API CRD's schema and CEL rules. Each
problem is a (field path, message) cause in the style of `sandbox.admission.Invalid`; the
messages follow Istio's wording so students can search for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.mesh.routing import compile_regex, parse_duration

Causes = list[tuple[str, str]]

KINDS_VALIDATED = frozenset({"VirtualService", "DestinationRule", "PeerAuthentication", "HTTPRoute"})
ISTIO_WEBHOOK_KINDS = frozenset({"VirtualService", "DestinationRule", "PeerAuthentication"})
WEBHOOK_PREFIX = 'admission webhook "validation.istio.io" denied the request: configuration is invalid'

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
HOST = re.compile(rf"^(\*|(\*\.)?{_LABEL}(\.{_LABEL})*)$")  # "*", or DNS labels with an optional "*." first

HTTP_ROUTE_FIELDS = frozenset(
    {
        "name",
        "match",
        "route",
        "redirect",
        "directResponse",
        "delegate",
        "rewrite",
        "timeout",
        "retries",
        "fault",
        "mirror",
        "mirrors",
        "mirrorPercentage",
        "mirrorPercent",
        "mirror_percent",
        "corsPolicy",
        "headers",
    }
)
MATCH_FIELDS = frozenset(
    {
        "name",
        "uri",
        "scheme",
        "method",
        "authority",
        "headers",
        "port",
        "sourceLabels",
        "gateways",
        "queryParams",
        "ignoreUriCase",
        "withoutHeaders",
        "sourceNamespace",
        "statPrefix",
    }
)
ROUTE_DESTINATION_FIELDS = frozenset({"destination", "weight", "headers"})
DESTINATION_FIELDS = frozenset({"host", "subset", "port"})
STRING_MATCH_KINDS = ("exact", "prefix", "regex")
RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
MTLS_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
TLS_MODES = ("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL")
PATH_MATCH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
VALUE_MATCH_TYPES = ("Exact", "RegularExpression")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
MAX_BACKEND_WEIGHT = 1_000_000


def validate_istio(kind: str, obj: dict) -> Causes:
    """Every problem a real cluster reports for `obj` of `kind` (empty when it would be accepted)."""
    check = _CHECKS.get(kind)
    return check(obj) if check else []


def webhook_message(causes: Causes) -> str:
    """The message Istio's webhook denies with, each problem led by its field path."""
    if len(causes) == 1:
        field, message = causes[0]
        return f"{WEBHOOK_PREFIX}: {field}: {message}"
    items = "".join(f"\n\t* {field}: {message}" for field, message in causes)
    return f"{WEBHOOK_PREFIX}: {len(causes)} errors occurred:{items}"


# ---- shared checks ---------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unsupported(value: object, allowed: tuple[str, ...]) -> str:
    choices = ", ".join(f'"{a}"' for a in allowed)
    return f'Unsupported value: "{value}": supported values: {choices}'


def _unknown_fields(obj: dict, allowed: frozenset[str], path: str) -> Causes:
    return [(f"{path}.{k}", f'unknown field "{path}.{k}"') for k in obj if k not in allowed]


def _list(value: object, path: str, out: Causes) -> list:
    """`value` as a list (absent: empty); records a cause when it is something else."""
    if value is None:
        return []
    if not isinstance(value, list):
        out.append((path, f"must be a list, not {type(value).__name__}"))
        return []
    return value


def _regex(pattern: object, path: str) -> Causes:
    try:
        compile_regex(pattern)  # type: ignore[arg-type]
    except ValueError as e:
        return [(path, f'"{pattern}" is not a valid regex: {e}')]
    return []


def _duration(value: object, path: str) -> Causes:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as e:
        return [(path, str(e))]
    if seconds < 0.001:
        return [(path, f'duration "{value}" must be at least 1ms')]
    millis = seconds * 1000
    if abs(millis - round(millis)) > 1e-6:
        return [(path, f'duration "{value}": only durations to ms precision are supported')]
    return []


def _host(value: object, path: str) -> Causes:
    if not isinstance(value, str) or not value:
        return [(path, "host is required")]
    if len(value) > 255 or not HOST.match(value):
        return [(path, f'invalid host "{value}": must be a DNS name, optionally starting with a "*." wildcard')]
    return []


def _export_to(spec: dict, out: Causes) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(_list(spec.get("exportTo"), "spec.exportTo", out)):
        path = f"spec.exportTo[{i}]"
        if not isinstance(entry, str) or not (entry in (".", "*", "~") or DNS_LABEL.match(entry)):
            out.append((path, f'invalid exportTo value "{entry}": use ".", "*", "~" or a namespace name'))
        elif entry in seen:
            out.append((path, f"duplicate entries in exportTo for entry {entry}"))
        seen.add(str(entry))


def _port_number(value: object, path: str) -> Causes:
    if not _is_int(value) or not 1 <= value <= 65535:  # type: ignore[operator]
        return [(path, f"port number {value} must be in the range 1..65535")]
    return []


# ---- VirtualService --------------------------------------------------------------------------------
def _string_match(spec: object, path: str, out: Causes) -> None:
    """An Istio StringMatch: at most one of exact / prefix / regex (empty asks for presence)."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        out.append((path, "must be an object with one of exact, prefix or regex"))
        return
    out.extend(_unknown_fields(spec, frozenset(STRING_MATCH_KINDS), path))
    kinds = [k for k in STRING_MATCH_KINDS if k in spec]
    if len(kinds) > 1:
        out.append((path, f"only one of exact, prefix or regex may be set (found {', '.join(kinds)})"))
    if "regex" in spec:
        out.extend(_regex(spec["regex"], f"{path}.regex"))


def _named_matches(value: object, path: str, out: Causes) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.append((path, "must be a map of name to string match"))
        return
    for name, spec in value.items():
        if not name:
            out.append((path, "header or parameter name cannot be empty"))
        _string_match(spec, f"{path}.{name}", out)


def _http_match(m: object, path: str, out: Causes) -> None:
    if not isinstance(m, dict):
        out.append((path, "must be an object"))
        return
    out.extend(_unknown_fields(m, MATCH_FIELDS, path))
    for key in ("uri", "scheme", "method", "authority"):
        if key in m:
            _string_match(m[key], f"{path}.{key}", out)
    for key in ("headers", "withoutHeaders", "queryParams"):
        _named_matches(m.get(key), f"{path}.{key}", out)
    if "port" in m:
        out.extend(_port_number(m["port"], f"{path}.port"))


def _percentages(spec: dict, path: str, out: Causes) -> None:
    if "percentage" in spec:
        pct = spec["percentage"]
        value = pct.get("value") if isinstance(pct, dict) else None
        if not _is_number(value):
            out.append((f"{path}.percentage.value", "percentage must be a number between 0 and 100"))
        elif not 0 <= value <= 100:  # type: ignore[operator]
            out.append((f"{path}.percentage.value", f"percentage {value:g} is not in range 0..100"))
    if "percent" in spec:
        value = spec["percent"]
        if not _is_int(value) or not 0 <= value <= 100:
            out.append((f"{path}.percent", f"percentage {value} is not in range 0..100"))


def _fault(fault: object, path: str, out: Causes) -> None:
    if not isinstance(fault, dict):
        out.append((path, "must be an object"))
        return
    abort, delay = fault.get("abort"), fault.get("delay")
    if abort is None and delay is None:
        out.append((path, "fault injection must have an abort and/or a delay"))
    if abort is not None:
        p = f"{path}.abort"
        if not isinstance(abort, dict):
            out.append((p, "must be an object"))
        else:
            status = abort.get("httpStatus")
            if status is None:
                out.append((f"{p}.httpStatus", "abort must set httpStatus (grpcStatus aborts are not supported)"))
            elif not _is_int(status) or not 200 <= status <= 599:
                out.append((f"{p}.httpStatus", f"HTTP status {status} is not in range 200..599"))
            _percentages(abort, p, out)
    if delay is not None:
        p = f"{path}.delay"
        if not isinstance(delay, dict):
            out.append((p, "must be an object"))
        else:
            if "fixedDelay" not in delay:
                out.append((f"{p}.fixedDelay", "delay must set fixedDelay (exponentialDelay is not supported)"))
            else:
                out.extend(_duration(delay["fixedDelay"], f"{p}.fixedDelay"))
            _percentages(delay, p, out)


def _retries(retries: object, path: str, out: Causes) -> None:
    if not isinstance(retries, dict):
        out.append((path, "must be an object"))
        return
    attempts = retries.get("attempts", 0)
    if not _is_int(attempts) or attempts < 0:
        out.append((f"{path}.attempts", f"attempts {attempts} must be a whole number, 0 or more"))
    if "perTryTimeout" in retries:
        out.extend(_duration(retries["perTryTimeout"], f"{path}.perTryTimeout"))
    if "retryOn" in retries:
        for cond in str(retries["retryOn"]).split(","):
            cond = cond.strip()
            if cond not in RETRY_ON and not (cond.isdigit() and 100 <= int(cond) <= 599):
                out.append((f"{path}.retryOn", f'"{cond}" is not a valid retryOn policy'))


def _route_destinations(route: object, path: str, out: Causes) -> None:
    dests = _list(route, path, out)
    weights = []
    for k, rd in enumerate(dests):
        p = f"{path}[{k}]"
        if not isinstance(rd, dict):
            out.append((p, "must be an object"))
            continue
        out.extend(_unknown_fields(rd, ROUTE_DESTINATION_FIELDS, p))
        weight = rd.get("weight", 0)
        if not _is_int(weight):
            out.append((f"{p}.weight", f"weight {weight} must be a whole number"))
        elif weight < 0:
            out.append((f"{p}.weight", f"weight {weight} must not be negative"))
        else:
            weights.append(weight)
        dest = rd.get("destination")
        if not isinstance(dest, dict):
            out.append((f"{p}.destination", "destination is required"))
            continue
        out.extend(_unknown_fields(dest, DESTINATION_FIELDS, f"{p}.destination"))
        if not dest.get("host"):
            out.append((f"{p}.destination.host", "destination host is required"))
        else:
            out.extend(_host(dest["host"], f"{p}.destination.host"))
        subset = dest.get("subset")
        if subset is not None and (not isinstance(subset, str) or not DNS_LABEL.match(subset)):
            out.append((f"{p}.destination.subset", f'subset name "{subset}" is invalid: must be a DNS-1123 label'))
        port = dest.get("port")
        if port is not None:
            number = port.get("number") if isinstance(port, dict) else port
            out.extend(_port_number(number, f"{p}.destination.port.number"))
    if len(dests) > 1 and len(weights) == len(dests) and sum(weights) != 100:
        out.append((path, f"total destination weight {sum(weights)} != 100"))


def _http_route(rule: object, path: str, out: Causes) -> None:
    if not isinstance(rule, dict):
        out.append((path, "must be an object"))
        return
    out.extend(_unknown_fields(rule, HTTP_ROUTE_FIELDS, path))
    actions = [k for k in ("route", "redirect", "directResponse", "delegate") if rule.get(k)]
    if not actions:
        out.append((path, "HTTP route must have a route, redirect, directResponse or delegate"))
    elif "route" in actions and len(actions) > 1:
        out.append((path, f"HTTP route cannot contain both route and {actions[1]}"))
    for j, m in enumerate(_list(rule.get("match"), f"{path}.match", out)):
        _http_match(m, f"{path}.match[{j}]", out)
    if "route" in rule:
        _route_destinations(rule["route"], f"{path}.route", out)
    if "timeout" in rule:
        out.extend(_duration(rule["timeout"], f"{path}.timeout"))
    if "retries" in rule:
        _retries(rule["retries"], f"{path}.retries", out)
    if "fault" in rule:
        _fault(rule["fault"], f"{path}.fault", out)
    if isinstance(rule.get("mirrorPercentage"), dict):
        _percentages({"percentage": rule["mirrorPercentage"]}, path, out)


def _virtual_service(obj: dict) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    out: Causes = []
    gateways = spec.get("gateways") or ["mesh"]
    hosts = spec.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        out.append(("spec.hosts", "virtual service must have at least one host"))
    else:
        for i, host in enumerate(hosts):
            out.extend(_host(host, f"spec.hosts[{i}]"))
            if host == "*" and "mesh" in gateways:
                out.append(
                    (
                        f"spec.hosts[{i}]",
                        'wildcard host "*" is not allowed for virtual services bound to the mesh gateway',
                    )
                )
    _export_to(spec, out)
    for i, rule in enumerate(_list(spec.get("http"), "spec.http", out)):
        _http_route(rule, f"spec.http[{i}]", out)
    return out


# ---- DestinationRule -------------------------------------------------------------------------------
def _tls_mode(policy: object, path: str, out: Causes) -> None:
    tls = policy.get("tls") if isinstance(policy, dict) else None
    if isinstance(tls, dict) and "mode" in tls and tls["mode"] not in TLS_MODES:
        out.append((f"{path}.tls.mode", _unsupported(tls["mode"], TLS_MODES)))


def _destination_rule(obj: dict) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    out: Causes = []
    out.extend(_host(spec.get("host"), "spec.host"))
    _export_to(spec, out)
    policy = spec.get("trafficPolicy")
    if isinstance(policy, dict):
        _tls_mode(policy, "spec.trafficPolicy", out)
        settings = _list(policy.get("portLevelSettings"), "spec.trafficPolicy.portLevelSettings", out)
        for i, setting in enumerate(settings):
            _tls_mode(setting, f"spec.trafficPolicy.portLevelSettings[{i}]", out)
    names: set[str] = set()
    for i, subset in enumerate(_list(spec.get("subsets"), "spec.subsets", out)):
        path = f"spec.subsets[{i}]"
        if not isinstance(subset, dict):
            out.append((path, "must be an object"))
            continue
        name = subset.get("name")
        if not name:
            out.append((f"{path}.name", "subset name is required"))
        elif not isinstance(name, str) or not DNS_LABEL.match(name):
            out.append((f"{path}.name", f'subset name "{name}" is invalid: must be a DNS-1123 label'))
        elif name in names:
            out.append((f"{path}.name", f'duplicate subset name "{name}"'))
        names.add(str(name))
        labels = subset.get("labels")
        if not isinstance(labels, dict) or not labels:
            out.append((f"{path}.labels", "subset must have at least one identifying label"))
        elif not all(isinstance(v, str) for v in labels.values()):
            out.append((f"{path}.labels", "label values must be strings"))
        _tls_mode(subset.get("trafficPolicy"), f"{path}.trafficPolicy", out)
    return out


# ---- PeerAuthentication ----------------------------------------------------------------------------
def _peer_authentication(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        return [("spec", "must be an object")]
    out: Causes = []
    mtls = spec.get("mtls")
    if isinstance(mtls, dict) and "mode" in mtls and mtls["mode"] not in MTLS_MODES:
        out.append(("spec.mtls.mode", _unsupported(mtls["mode"], MTLS_MODES)))
    selector = spec.get("selector")
    match_labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if match_labels is not None and not (
        isinstance(match_labels, dict) and all(isinstance(v, str) for v in match_labels.values())
    ):
        out.append(("spec.selector.matchLabels", "must be a map of label names to string values"))
    levels = spec.get("portLevelMtls")
    if levels is None:
        return out
    if not isinstance(levels, dict):
        return [*out, ("spec.portLevelMtls", "must be a map of port number to mtls settings")]
    if not match_labels:
        out.append(("spec.portLevelMtls", "portLevelMtls requires a workload selector (spec.selector.matchLabels)"))
    for port, level in levels.items():
        path = f"spec.portLevelMtls[{port}]"
        if not str(port).isdigit() or not 1 <= int(port) <= 65535:
            out.append((path, f"port {port} must be in the range 1..65535"))
        mode = level.get("mode") if isinstance(level, dict) else None
        if isinstance(level, dict) and "mode" in level and mode not in MTLS_MODES:
            out.append((f"{path}.mode", _unsupported(mode, MTLS_MODES)))
    return out


# ---- Gateway API HTTPRoute -------------------------------------------------------------------------
def _not_array(path: str) -> tuple[str, str]:
    return (path, f'Invalid value: "object": {path} in body must be of type array')


def _typed_values(value: object, path: str, out: Causes) -> None:
    """HTTPRoute header and query parameter matches: name, type (Exact / RegularExpression), value."""
    if value is None:
        return
    if not isinstance(value, list):
        out.append(_not_array(path))
        return
    for k, item in enumerate(value):
        p = f"{path}[{k}]"
        if not isinstance(item, dict):
            out.append((p, "must be an object"))
            continue
        if not item.get("name"):
            out.append((f"{p}.name", "Required value"))
        if not isinstance(item.get("value"), str):
            out.append((f"{p}.value", "Required value"))
        kind = item.get("type", "Exact")
        if kind not in VALUE_MATCH_TYPES:
            out.append((f"{p}.type", _unsupported(kind, VALUE_MATCH_TYPES)))
        elif kind == "RegularExpression" and isinstance(item.get("value"), str):
            out.extend(_regex(item["value"], f"{p}.value"))


def _route_match(m: object, path: str, out: Causes) -> None:
    if not isinstance(m, dict):
        out.append((path, "must be an object"))
        return
    match_path = m.get("path")
    if match_path is not None:
        p = f"{path}.path"
        if not isinstance(match_path, dict):
            out.append((p, "must be an object"))
        else:
            kind = match_path.get("type", "PathPrefix")
            value = match_path.get("value", "/")
            if kind not in PATH_MATCH_TYPES:
                out.append((f"{p}.type", _unsupported(kind, PATH_MATCH_TYPES)))
            elif kind == "RegularExpression":
                out.extend(_regex(value, f"{p}.value"))
            elif not isinstance(value, str) or not value.startswith("/"):
                out.append(
                    (
                        f"{p}.value",
                        f'Invalid value: "{value}": value must be an absolute path and start with "/"',
                    )
                )
    _typed_values(m.get("headers"), f"{path}.headers", out)
    _typed_values(m.get("queryParams"), f"{path}.queryParams", out)
    if "method" in m and m["method"] not in HTTP_METHODS:
        out.append((f"{path}.method", _unsupported(m["method"], HTTP_METHODS)))


def _backend_ref(ref: object, path: str, out: Causes) -> None:
    if not isinstance(ref, dict):
        out.append((path, "must be an object"))
        return
    if not ref.get("name"):
        out.append((f"{path}.name", "Required value"))
    weight = ref.get("weight", 1)
    if not _is_int(weight):
        out.append((f"{path}.weight", f"Invalid value: {weight!r}: {path}.weight in body must be of type integer"))
    elif weight < 0:
        out.append(
            (
                f"{path}.weight",
                f"Invalid value: {weight}: {path}.weight in body should be greater than or equal to 0",
            )
        )
    elif weight > MAX_BACKEND_WEIGHT:
        out.append(
            (
                f"{path}.weight",
                f"Invalid value: {weight}: {path}.weight in body should be less than or equal to {MAX_BACKEND_WEIGHT}",
            )
        )
    is_service = ref.get("group", "") == "" and ref.get("kind", "Service") == "Service"
    if is_service and "port" not in ref:
        out.append((f"{path}.port", "Must have port for Service reference"))
    elif "port" in ref:
        out.extend(_port_number(ref["port"], f"{path}.port"))


def _http_route_api(obj: dict) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    out: Causes = []
    rules = spec.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [_not_array("spec.rules")]
    for i, rule in enumerate(rules or []):
        path = f"spec.rules[{i}]"
        if not isinstance(rule, dict):
            out.append((path, "must be an object"))
            continue
        for key, check in (("matches", _route_match), ("backendRefs", _backend_ref)):
            items = rule.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                out.append(_not_array(f"{path}.{key}"))
                continue
            for k, item in enumerate(items):
                check(item, f"{path}.{key}[{k}]", out)
    return out


_CHECKS: dict[str, Callable[[dict], Causes]] = {
    "VirtualService": _virtual_service,
    "DestinationRule": _destination_rule,
    "PeerAuthentication": _peer_authentication,
    "HTTPRoute": _http_route_api,
}
