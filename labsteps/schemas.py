"""Structural validation of one object before anything is sent to the cluster.

Built-in kinds are checked against the Kubernetes OpenAPI schemas shipped (offline) by the
`kubernetes-validate` package, in their strict form (unknown fields are errors, as with
`kubectl apply --validate=strict`). The Gateway API and Istio kinds have no schemas there: they get the
JSON Schemas below, written from those projects' CRDs for the fields the lab uses, plus the few rules
their CRD validation or Istio's webhook enforce beyond structure. A cluster may still refuse an object
for reasons only it knows (a name taken, quota); that surfaces at apply time.

Each problem is (field path, message), e.g. ("spec.ports[0].port", "'80a' is not of type 'integer'").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from django.conf import settings
from referencing import Registry, Resource

Problems = list[tuple[str, str]]

# The Kubernetes version whose schemas built-in kinds are checked against.
DEFAULT_KUBERNETES_VERSION = "1.32"
MAX_PROBLEMS_PER_OBJECT = 8

BUILTIN_KINDS = frozenset({"ConfigMap", "Service", "PersistentVolumeClaim", "Deployment", "StatefulSet"})


def problems(obj: Mapping[str, Any], namespace: str) -> Problems:
    """Every structural problem of `obj` (apiVersion, kind and metadata.name already checked)."""
    kind = obj["kind"]
    if kind in BUILTIN_KINDS:
        found = _schema_problems(_builtin_validator(kind, obj["apiVersion"]), obj)
    elif kind in MESH_SCHEMAS:
        found = _schema_problems(_mesh_validator(kind), obj)
        if not found:
            found = [*MESH_RULES[kind](obj.get("spec") or {}, namespace)]
    else:
        return [("kind", f"no schema for kind {kind}")]
    return found[:MAX_PROBLEMS_PER_OBJECT]


def _schema_problems(validator: jsonschema.protocols.Validator, obj: Mapping[str, Any]) -> Problems:
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [(dotted(error.absolute_path), _message(error)) for error in errors]


def dotted(path: Iterable[str | int]) -> str:
    """["spec", "ports", 0, "port"] → "spec.ports[0].port"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: jsonschema.ValidationError) -> str:
    # The schemas allow null almost everywhere (omitted fields); say what is expected without it.
    return error.message.replace(", 'null'", "").replace("['string', 'null']", "'string'")


# ---- built-in kinds: kubernetes-validate's strict OpenAPI-derived schemas ------------------------------
def kubernetes_version() -> str:
    return str(getattr(settings, "LAB_KUBERNETES_VERSION", DEFAULT_KUBERNETES_VERSION))


def _schema_dir() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{kubernetes_version()}.0-local-strict"


@cache
def _definitions() -> Registry:
    text = (_schema_dir() / "_definitions.json").read_text(encoding="utf-8")
    return Resource.from_contents(json.loads(text)) @ Registry()


@cache
def _builtin_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 → apps-v1
    text = (_schema_dir() / f"{kind.lower()}-{group_version}.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ _definitions())


# ---- Gateway API and Istio kinds ----------------------------------------------------------------------
def _obj(properties: Mapping[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    """An object schema that refuses unknown fields (a typo must not be silently dropped)."""
    return {"type": "object", "properties": dict(properties), "required": list(required), "additionalProperties": False}


def _array(items: Mapping[str, Any], max_items: int | None = None, min_items: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": dict(items)}
    if max_items is not None:
        schema["maxItems"] = max_items
    if min_items:
        schema["minItems"] = min_items
    return schema


STRING = {"type": "string"}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
BOOL = {"type": "boolean"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$"}
PERCENT = _obj({"value": {"type": "number", "minimum": 0, "maximum": 100}})
ANY_OBJECT = {"type": "object"}
METADATA = {"type": "object"}  # names and namespaces are checked by the pipeline itself

# Gateway API (v1 and v1beta1 share these fields).
PARENT_REF = _obj(
    {"group": STRING, "kind": STRING, "namespace": NAME, "name": STRING, "sectionName": STRING, "port": PORT},
    required=["name"],
)
HEADER_MATCH = _obj(
    {"type": {"enum": ["Exact", "RegularExpression"]}, "name": STRING, "value": STRING}, required=["name", "value"]
)
ROUTE_MATCH = _obj(
    {
        "path": _obj({"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]}, "value": STRING}),
        "headers": _array(HEADER_MATCH, 16),
        "queryParams": _array(HEADER_MATCH, 16),
        "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]},
    }
)
ROUTE_FILTER = {"type": "object", "required": ["type"], "properties": {"type": STRING}}
BACKEND_REF = _obj(
    {
        "group": STRING,
        "kind": STRING,
        "name": STRING,
        "namespace": NAME,
        "port": PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "filters": _array(ROUTE_FILTER, 16),
    },
    required=["name"],
)
GATEWAY_SPEC = _obj(
    {
        "gatewayClassName": STRING,
        "listeners": _array(
            _obj(
                {
                    "name": NAME,
                    "hostname": STRING,
                    "port": PORT,
                    "protocol": {"type": "string", "pattern": r"^(HTTP|HTTPS|TLS|TCP|UDP|[a-z0-9.-]+/[A-Za-z0-9]+)$"},
                    "tls": ANY_OBJECT,
                    "allowedRoutes": _obj(
                        {
                            "namespaces": _obj(
                                {"from": {"enum": ["All", "Same", "Selector", "None"]}, "selector": ANY_OBJECT}
                            ),
                            "kinds": _array(_obj({"group": STRING, "kind": STRING}, required=["kind"])),
                        }
                    ),
                },
                required=["name", "port", "protocol"],
            ),
            max_items=64,
            min_items=1,
        ),
        "addresses": _array(_obj({"type": STRING, "value": STRING}, required=["value"]), 16),
        "infrastructure": ANY_OBJECT,
        "backendTLS": ANY_OBJECT,
        "allowedListeners": ANY_OBJECT,
    },
    required=["gatewayClassName", "listeners"],
)
HTTPROUTE_SPEC = _obj(
    {
        "parentRefs": _array(PARENT_REF, 32),
        "hostnames": _array(STRING, 16),
        "rules": _array(
            _obj(
                {
                    "name": NAME,
                    "matches": _array(ROUTE_MATCH, 64),
                    "filters": _array(ROUTE_FILTER, 16),
                    "backendRefs": _array(BACKEND_REF, 16),
                    "timeouts": _obj({"request": DURATION, "backendRequest": DURATION}),
                    "retry": ANY_OBJECT,
                    "sessionPersistence": ANY_OBJECT,
                }
            ),
            max_items=16,
        ),
    }
)

# Istio networking (VirtualService) and security (PeerAuthentication).
STRING_MATCH = _obj({"exact": STRING, "prefix": STRING, "regex": STRING})
STRING_MATCH_MAP = {"type": "object", "additionalProperties": STRING_MATCH}
HTTP_MATCH = _obj(
    {
        "name": STRING,
        "uri": STRING_MATCH,
        "scheme": STRING_MATCH,
        "method": STRING_MATCH,
        "authority": STRING_MATCH,
        "headers": STRING_MATCH_MAP,
        "port": PORT,
        "sourceLabels": STRING_MAP,
        "gateways": _array(STRING),
        "queryParams": STRING_MATCH_MAP,
        "ignoreUriCase": BOOL,
        "withoutHeaders": STRING_MATCH_MAP,
        "sourceNamespace": STRING,
        "statPrefix": STRING,
    }
)
DESTINATION = _obj(
    {"host": STRING, "subset": NAME, "port": _obj({"number": PORT}, required=["number"])}, required=["host"]
)
HTTP_ROUTE = _obj(
    {
        "name": STRING,
        "match": _array(HTTP_MATCH),
        "route": _array(
            _obj(
                {"destination": DESTINATION, "weight": {"type": "integer", "minimum": 0}, "headers": ANY_OBJECT},
                required=["destination"],
            )
        ),
        "redirect": ANY_OBJECT,
        "directResponse": ANY_OBJECT,
        "delegate": ANY_OBJECT,
        "rewrite": ANY_OBJECT,
        "timeout": DURATION,
        "retries": _obj(
            {
                "attempts": {"type": "integer", "minimum": 0},
                "perTryTimeout": DURATION,
                "retryOn": STRING,
                "retryRemoteLocalities": BOOL,
            }
        ),
        "fault": _obj(
            {
                "delay": _obj({"fixedDelay": DURATION, "percentage": PERCENT, "percent": {"type": "integer"}}),
                "abort": _obj(
                    {
                        "httpStatus": {"type": "integer", "minimum": 200, "maximum": 599},
                        "grpcStatus": STRING,
                        "http2Error": STRING,
                        "percentage": PERCENT,
                    }
                ),
            }
        ),
        "mirror": DESTINATION,
        "mirrors": _array(ANY_OBJECT),
        "mirrorPercentage": PERCENT,
        "corsPolicy": ANY_OBJECT,
        "headers": ANY_OBJECT,
    }
)
VIRTUALSERVICE_SPEC = _obj(
    {
        "hosts": _array(STRING, min_items=1),
        "gateways": _array(STRING),
        "http": _array(HTTP_ROUTE),
        "tcp": _array(ANY_OBJECT),
        "tls": _array(ANY_OBJECT),
        "exportTo": _array(STRING),
    },
    required=["hosts"],
)
MTLS = _obj({"mode": {"enum": ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]}})
PEERAUTHENTICATION_SPEC = _obj(
    {
        "selector": _obj({"matchLabels": STRING_MAP}),
        "mtls": MTLS,
        "portLevelMtls": {"type": "object", "propertyNames": {"pattern": r"^[0-9]+$"}, "additionalProperties": MTLS},
    }
)


def _top(spec: Mapping[str, Any], spec_required: bool = True) -> dict[str, Any]:
    return _obj(
        {"apiVersion": STRING, "kind": STRING, "metadata": METADATA, "spec": spec, "status": ANY_OBJECT},
        required=["spec"] if spec_required else [],
    )


MESH_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    "Gateway": _top(GATEWAY_SPEC),
    "HTTPRoute": _top(HTTPROUTE_SPEC),
    "VirtualService": _top(VIRTUALSERVICE_SPEC),
    "PeerAuthentication": _top(PEERAUTHENTICATION_SPEC, spec_required=False),
}


@cache
def _mesh_validator(kind: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(MESH_SCHEMAS[kind])


# ---- rules beyond structure ---------------------------------------------------------------------------
def _foreign_namespace(value: Any, namespace: str) -> bool:
    return isinstance(value, str) and value != namespace


def _gateway_rules(spec: Mapping[str, Any], namespace: str) -> Problems:
    out: Problems = []
    seen: set[str] = set()
    for i, listener in enumerate(spec.get("listeners") or []):
        if listener["name"] in seen:
            out.append((f"spec.listeners[{i}].name", f"listener name {listener['name']!r} is used twice"))
        seen.add(listener["name"])
    return out


def _httproute_rules(spec: Mapping[str, Any], namespace: str) -> Problems:
    out: Problems = []
    for i, ref in enumerate(spec.get("parentRefs") or []):
        if _foreign_namespace(ref.get("namespace"), namespace):
            out.append((f"spec.parentRefs[{i}].namespace", f"objects must stay in your namespace {namespace}"))
    for i, rule in enumerate(spec.get("rules") or []):
        for j, match in enumerate(rule.get("matches") or []):
            path = match.get("path") or {}
            if path.get("type", "PathPrefix") != "RegularExpression" and not str(path.get("value", "/")).startswith(
                "/"
            ):
                out.append((f"spec.rules[{i}].matches[{j}].path.value", "must be an absolute path starting with /"))
        for j, ref in enumerate(rule.get("backendRefs") or []):
            where = f"spec.rules[{i}].backendRefs[{j}]"
            if _foreign_namespace(ref.get("namespace"), namespace):
                out.append((f"{where}.namespace", f"objects must stay in your namespace {namespace}"))
            is_service = ref.get("group", "") == "" and ref.get("kind", "Service") == "Service"
            if is_service and "port" not in ref:
                out.append((f"{where}.port", "a backendRef to a Service needs its port"))
    return out


def _virtualservice_rules(spec: Mapping[str, Any], namespace: str) -> Problems:
    out: Problems = []
    for i, rule in enumerate(spec.get("http") or []):
        where = f"spec.http[{i}]"
        if not any(rule.get(k) for k in ("route", "redirect", "directResponse", "delegate")):
            out.append((where, "an HTTP rule needs a route, redirect, directResponse or delegate"))
        for j, match in enumerate(rule.get("match") or []):
            for key in ("uri", "scheme", "method", "authority"):
                if len(match.get(key) or {}) > 1:
                    out.append((f"{where}.match[{j}].{key}", "set only one of exact, prefix or regex"))
        abort = (rule.get("fault") or {}).get("abort")
        if abort is not None and not any(k in abort for k in ("httpStatus", "grpcStatus", "http2Error")):
            out.append((f"{where}.fault.abort", "an abort fault needs httpStatus"))
        delay = (rule.get("fault") or {}).get("delay")
        if delay is not None and "fixedDelay" not in delay:
            out.append((f"{where}.fault.delay", "a delay fault needs fixedDelay"))
    return out


def _peerauthentication_rules(spec: Mapping[str, Any], namespace: str) -> Problems:
    if spec.get("portLevelMtls") and not (spec.get("selector") or {}).get("matchLabels"):
        return [("spec.portLevelMtls", "portLevelMtls needs a workload selector (spec.selector.matchLabels)")]
    return []


MESH_RULES = {
    "Gateway": _gateway_rules,
    "HTTPRoute": _httproute_rules,
    "VirtualService": _virtualservice_rules,
    "PeerAuthentication": _peerauthentication_rules,
}
