"""Lab step content: one YAML file per step under `labsteps/content/`, validated when loaded.

A step file holds the page text, the manifests that Apply server-side-applies to the student's
namespace, typed actions run after the apply, typed checks, hints, a solution and the typed
operations that reset the step. All of it is validated on load, so a broken step fails at start-up
(and in CI) with its file and field named, not in front of a class.

No Django here on purpose: the content is plain data shared by the web app, the Celery tasks and the
tests. Templates use a tiny `{{ dotted.name }}` substitution (no Jinja, no expressions).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

CONTENT_DIR = Path(__file__).with_name("content")
DEFAULT_IMAGES: Mapping[str, str] = {
    "splitdim": "localhost/splitdim:latest",
    "kvstore": "localhost/kvstore:latest",
    "curl": "localhost/curl:latest",
}
# Values the templates are test-rendered with at load time.
SAMPLE_NAMESPACE = "lab-sample"

# The kinds a step may apply (or name in a reference), with the apiVersions accepted for each.
# The console forces the student's namespace on every object, so only namespaced kinds are here.
KINDS: Mapping[str, tuple[str, ...]] = {
    "ConfigMap": ("v1",),
    "Service": ("v1",),
    "PersistentVolumeClaim": ("v1",),
    "Deployment": ("apps/v1",),
    "StatefulSet": ("apps/v1",),
    "Gateway": ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"),
    "VirtualService": (
        "networking.istio.io/v1",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
    ),
    "PeerAuthentication": ("security.istio.io/v1", "security.istio.io/v1beta1"),
}
_REF_KINDS = {kind.lower(): kind for kind in KINDS}

# Labels of Istio's standard request metrics that a metric check may select on.
ISTIO_METRIC_LABELS = frozenset(
    {
        "reporter",
        "source_workload",
        "source_workload_namespace",
        "source_canonical_service",
        "source_canonical_revision",
        "source_principal",
        "source_app",
        "source_version",
        "source_cluster",
        "destination_workload",
        "destination_workload_namespace",
        "destination_canonical_service",
        "destination_canonical_revision",
        "destination_principal",
        "destination_app",
        "destination_version",
        "destination_cluster",
        "destination_service",
        "destination_service_name",
        "destination_service_namespace",
        "request_protocol",
        "response_code",
        "response_flags",
        "grpc_response_status",
        "connection_security_policy",
    }
)


class ContentError(ValueError):
    """Invalid step content; the message names the file and the field path."""


class TemplateError(ValueError):
    """A template that cannot be rendered with the given context."""


# ---------------------------------------------------------------------------------------------------
# Templates

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r"(?:\." + _NAME + r")*)\s*\}\}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
# Image references are inserted into YAML unquoted, so only characters safe in a plain scalar pass.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")


def render(text: str, context: Mapping[str, Any]) -> str:
    """Replace each `{{ dotted.name }}` in `text` with its value in `context`.

    Only lookups in nested mappings happen (no expressions, no attribute access), so a template can
    reach nothing the caller did not put in `context`. Strings go in as they are, anything else as
    JSON. An unknown name, or a `{{` that does not start a placeholder, raises TemplateError.
    """
    for opening in re.finditer(r"\{\{", text):
        if not _PLACEHOLDER.match(text, opening.start()):
            snippet = text[opening.start() : opening.start() + 30].split("\n")[0]
            raise TemplateError(f"malformed placeholder {snippet!r} (write {{{{ dotted.name }}}})")
    return _PLACEHOLDER.sub(lambda m: _format(_lookup(context, m.group(1))), text)


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise TemplateError(f"unknown name {name!r} (known: {', '.join(_leaf_names(context))})")
        value = value[part]
    return value


def _leaf_names(context: Mapping[str, Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for key, value in context.items():
        if isinstance(value, Mapping) and value:
            names.extend(_leaf_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names


def _format(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def template_context(namespace: str, images: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The context every step template is rendered with: the namespace and the image references.

    `images` overrides DEFAULT_IMAGES key by key. Values are validated because they are substituted
    into YAML text: a namespace must be a DNS label, an image a plain reference.
    """
    if not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not a DNS label")
    merged = dict(DEFAULT_IMAGES)
    for key, image in (images or {}).items():
        if key not in DEFAULT_IMAGES:
            raise ValueError(f"unknown image {key!r} (known: {', '.join(DEFAULT_IMAGES)})")
        if not isinstance(image, str) or not _IMAGE.fullmatch(image):
            raise ValueError(f"image {key}={image!r} is not a valid image reference")
        merged[key] = image
    return {"namespace": namespace, "images": merged}


def render_manifests(template: str, namespace: str, images: Mapping[str, str] | None = None) -> list[dict]:
    """Render a multi-document manifest template and parse it into objects (empty documents dropped).

    The objects carry no `metadata.namespace`: the console sets the student's namespace on apply.
    """
    text = render(template, template_context(namespace, images))
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key repeated in one mapping (plain PyYAML keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        return f"line {error.problem_mark.line + 1}: {error.problem}"
    return str(error)


# ---------------------------------------------------------------------------------------------------
# The loaded content


@dataclass(frozen=True)
class Action:
    """An operation run after the step's manifests are applied (see ACTION_TYPES)."""

    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ResetOp:
    """An operation that undoes the step (see RESET_TYPES); `apply` carries a manifest template."""

    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """A verification of the step (see CHECK_TYPES).

    `message` is shown to the learner when the check fails; `debug` is for the instructor and is
    rendered with the template context plus `check.name`, `check.type` and the values the engine
    reports for this check type (`reports`). `timeout_seconds` bounds how long the engine may keep
    re-evaluating the check, because mesh config and metrics take a while to settle.
    """

    type: str
    name: str
    message: str
    debug: str
    timeout_seconds: float
    params: Mapping[str, Any]

    @property
    def reports(self) -> tuple[str, ...]:
        return _CHECK_TYPES[self.type].reports

    def render_message(self, context: Mapping[str, Any]) -> str:
        return render(self.message, context)

    def render_debug(self, context: Mapping[str, Any]) -> str:
        return render(self.debug, context)


@dataclass(frozen=True)
class Step:
    """One lab step as loaded from `NN-slug.yaml`; `manifests` and the texts are still templates."""

    id: str
    title: str
    order: int
    summary: str
    text: str
    manifests: str
    actions: tuple[Action, ...]
    checks: tuple[Check, ...]
    hints: tuple[str, ...]
    solution: str
    reset: tuple[ResetOp, ...]
    source: Path

    def render_manifests(self, namespace: str, images: Mapping[str, str] | None = None) -> list[dict]:
        return render_manifests(self.manifests, namespace, images)

    def render_text(self, context: Mapping[str, Any]) -> str:
        return render(self.text, context)

    def render_hints(self, context: Mapping[str, Any]) -> list[str]:
        return [render(hint, context) for hint in self.hints]

    def render_solution(self, context: Mapping[str, Any]) -> str:
        return render(self.solution, context)


# ---------------------------------------------------------------------------------------------------
# Validation: each validator takes a value and where it sits, returns the value, or fails there.


class _At:
    """The file and field path of a value, so that every error can name both."""

    def __init__(self, file: str, path: str = "") -> None:
        self.file = file
        self.path = path

    def __getitem__(self, key: str | int) -> _At:
        if isinstance(key, int):
            return _At(self.file, f"{self.path}[{key}]")
        return _At(self.file, f"{self.path}.{key}" if self.path else key)

    def fail(self, message: str) -> NoReturn:
        where = f"{self.file}: {self.path}" if self.path else self.file
        raise ContentError(f"{where}: {message}")


Validator = Callable[[Any, _At], Any]
_REQUIRED = object()


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{names.get(type(value), type(value).__name__)} {shown}"


def _is_str(value: Any, at: _At) -> str:
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, bool | int | float) else ""
        at.fail(f"expected a string, got {_describe(value)}{hint}")
    return value


def _string(pattern: re.Pattern[str] | None = None, hint: str = "", one_line: bool = False) -> Validator:
    def check(value: Any, at: _At) -> str:
        _is_str(value, at)
        if not value.strip():
            at.fail("must not be empty")
        if one_line and "\n" in value.strip():
            at.fail("must be a single line")
        if "{{" in value:
            at.fail("placeholders are not allowed in this field")
        if pattern is not None and not pattern.fullmatch(value):
            at.fail(f"{value!r} is not {hint}")
        return value.strip() if one_line else value

    return check


def _template(context: Mapping[str, Any]) -> Validator:
    """A non-empty string that renders with `context` (so unknown names fail at load time)."""

    def check(value: Any, at: _At) -> str:
        _is_str(value, at)
        if not value.strip():
            at.fail("must not be empty")
        try:
            render(value, context)
        except TemplateError as error:
            at.fail(str(error))
        return value

    return check


def _integer(minimum: int | None = None, maximum: int | None = None) -> Validator:
    def check(value: Any, at: _At) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            at.fail(f"expected an integer, got {_describe(value)}")
        _bounds(value, at, minimum, maximum)
        return value

    return check


def _number(minimum: float | None = None, maximum: float | None = None, positive: bool = False) -> Validator:
    def check(value: Any, at: _At) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            at.fail(f"expected a number, got {_describe(value)}")
        if positive and value <= 0:
            at.fail(f"must be greater than 0, got {value}")
        _bounds(value, at, minimum, maximum)
        return value

    return check


def _bounds(value: float, at: _At, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        at.fail(f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        at.fail(f"must be at most {maximum}, got {value}")


def _boolean(value: Any, at: _At) -> bool:
    if not isinstance(value, bool):
        at.fail(f"expected true or false, got {_describe(value)}")
    return value


def _choice(*choices: str, what: str = "value") -> Validator:
    def check(value: Any, at: _At) -> str:
        if not isinstance(value, str) or value not in choices:
            at.fail(f"unknown {what} {value!r} (known: {', '.join(choices)})")
        return value

    return check


def _list_of(item: Validator, nonempty: bool = False) -> Validator:
    def check(value: Any, at: _At) -> list:
        if not isinstance(value, list):
            at.fail(f"expected a list, got {_describe(value)}")
        if nonempty and not value:
            at.fail("must not be empty")
        return [item(element, at[i]) for i, element in enumerate(value)]

    return check


def _mapping_of(key: Validator, value: Validator, nonempty: bool = True) -> Validator:
    def check(data: Any, at: _At) -> dict:
        if not isinstance(data, Mapping):
            at.fail(f"expected a mapping, got {_describe(data)}")
        if nonempty and not data:
            at.fail("must not be empty")
        return {key(k, at[str(k)]): value(v, at[str(k)]) for k, v in data.items()}

    return check


def _json(value: Any, at: _At) -> Any:
    """Plain JSON data (YAML can also produce dates and other types a request body cannot carry)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_json(element, at[i]) for i, element in enumerate(value)]
    if isinstance(value, Mapping):
        return {_is_str(k, at[str(k)]): _json(v, at[str(k)]) for k, v in value.items()}
    at.fail(f"expected JSON data, got {_describe(value)}")


def _ref(*kinds: str) -> Validator:
    """A `kind/name` reference such as `service/splitdim`, limited to `kinds`."""
    allowed = kinds or tuple(_REF_KINDS)

    def check(value: Any, at: _At) -> str:
        _is_str(value, at)
        kind, _, name = value.partition("/")
        if kind not in allowed or not _DNS_LABEL.fullmatch(name):
            at.fail(f"expected a reference like '{allowed[0]}/NAME' (kinds: {', '.join(allowed)}), got {value!r}")
        return value

    return check


_OBJECT_NAME = _string(_DNS_LABEL, "a valid object name")
_STREAM_NAME = _string(_DNS_LABEL, "a lowercase name like 'normal'")
_LABEL_KEY = _string(re.compile(r"(?:[a-z0-9.-]+/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"), "a label key")
_LABEL_VALUE = _string(re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"), "a label value")
_PATH = _string(re.compile(r"/\S*"), "an absolute path like '/api/clear'")
_HEADER_NAME = _string(re.compile(r"[A-Za-z0-9-]+"), "an HTTP header name")
_METHOD = _choice("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", what="HTTP method")
# Where HTTP requests go: a Service's load-balancer address, or the address in a Gateway's status.
_VIA = _ref("service", "gateway")
_WORKLOAD_KINDS = _list_of(_choice("Deployment", "StatefulSet", what="workload kind"), nonempty=True)
_WORKLOADS = _list_of(_ref("deployment", "statefulset"), nonempty=True)
_REPORTER = _choice("source", "destination", what="reporter")
_CONDITION = _string(re.compile(r"[A-Z][A-Za-z]*"), "a condition type like 'Programmed'")
_CONDITION_STATUS = _choice("True", "False", "Unknown", what="condition status")


def _metric_value(value: Any, at: _At) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # `response_code: 500` is meant as the label value "500"
    return _string()(value, at)


def _metric_selector(data: Any, at: _At) -> dict[str, list[str]]:
    """Label matchers on Istio's request metrics: a value or a list of alternatives per label."""
    if not isinstance(data, Mapping) or not data:
        at.fail(f"expected a non-empty mapping of metric labels, got {_describe(data)}")
    selector: dict[str, list[str]] = {}
    for label, value in data.items():
        if label not in ISTIO_METRIC_LABELS:
            at[str(label)].fail(f"unknown metric label {label!r} (known: {', '.join(sorted(ISTIO_METRIC_LABELS))})")
        if label == "reporter":
            at[label].fail("set the reporter with the check's `reporter` field")
        values = value if isinstance(value, list) else [value]
        selector[label] = _list_of(_metric_value, nonempty=True)(values, at[label])
    return selector


@dataclass(frozen=True)
class _Field:
    validate: Validator
    default: Any = _REQUIRED


def _record(data: Any, at: _At, fields: Mapping[str, _Field], what: str) -> dict[str, Any]:
    """Validate a mapping with a fixed set of keys: no unknown keys, no missing required ones."""
    if not isinstance(data, Mapping):
        at.fail(f"expected a mapping ({what}), got {_describe(data)}")
    for key in data:
        if key not in fields:
            at[str(key)].fail(f"unknown field {key!r} in {what} (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            values[name] = field.validate(data[name], at[name])
        elif field.default is _REQUIRED:
            at[name].fail(f"missing required field in {what}")
        else:
            values[name] = copy.deepcopy(field.default)
    return values


def _sub_record(fields: Mapping[str, _Field], what: str) -> Validator:
    return lambda data, at: _record(data, at, fields, what)


@dataclass(frozen=True)
class _OpType:
    """The fields of one action, check or reset type, a rule across them, and (checks) the reports."""

    fields: Mapping[str, _Field]
    rule: Callable[[dict[str, Any], _At], None] | None = None
    reports: tuple[str, ...] = ()


def _no_body_without_payload_method(params: dict[str, Any], at: _At) -> None:
    if params["body"] is not None and params["method"] in ("GET", "HEAD", "DELETE"):
        at["body"].fail(f"a {params['method']} request carries no body")


def _kinds_or_workloads(params: dict[str, Any], at: _At) -> None:
    if (params["kinds"] is None) == (params["workloads"] is None):
        at.fail("give exactly one of `kinds` (every existing workload of those kinds) or `workloads`")


def _unique_stream_names(params: dict[str, Any], at: _At) -> None:
    seen: set[str] = set()
    for i, stream in enumerate(params["streams"]):
        if stream["name"] in seen:
            at["streams"][i]["name"].fail(f"duplicate stream name {stream['name']!r}")
        seen.add(stream["name"])
        _no_body_without_payload_method(stream, at["streams"][i])


def _manifests(value: Any, at: _At) -> str:
    """A multi-document manifest template: renders with sample values and yields valid objects."""
    _is_str(value, at)
    try:
        objects = render_manifests(value, SAMPLE_NAMESPACE)
    except TemplateError as error:
        at.fail(str(error))
    except yaml.YAMLError as error:
        at.fail(f"not valid YAML after rendering: {_yaml_problem(error)}")
    seen: set[tuple[str, str]] = set()
    for i, obj in enumerate(objects):
        _check_object(obj, at[i])
        key = (obj["kind"], obj["metadata"]["name"])
        if key in seen:
            at[i].fail(f"{key[0]} {key[1]!r} appears twice")
        seen.add(key)
    return value


def _check_object(obj: Any, at: _At) -> None:
    if not isinstance(obj, Mapping):
        at.fail(f"expected a Kubernetes object (a mapping), got {_describe(obj)}")
    for key in ("apiVersion", "kind", "metadata"):
        if key not in obj:
            at[key].fail("missing (every object needs apiVersion, kind and metadata.name)")
    kind = _is_str(obj["kind"], at["kind"])
    if kind not in KINDS:
        at["kind"].fail(f"kind {kind!r} is not allowed in steps (allowed: {', '.join(KINDS)})")
    if obj["apiVersion"] not in KINDS[kind]:
        at["apiVersion"].fail(f"{obj['apiVersion']!r} is not served for {kind} (use one of: {', '.join(KINDS[kind])})")
    metadata = obj["metadata"]
    if not isinstance(metadata, Mapping):
        at["metadata"].fail(f"expected a mapping, got {_describe(metadata)}")
    if "name" not in metadata:
        at["metadata"]["name"].fail("missing (every object needs apiVersion, kind and metadata.name)")
    _OBJECT_NAME(metadata["name"], at["metadata"]["name"])
    if "namespace" in metadata:
        at["metadata"]["namespace"].fail("must not be set: the console applies every object to the student's namespace")


_SAMPLE_CONTEXT = template_context(SAMPLE_NAMESPACE)
_TEXT = _template(_SAMPLE_CONTEXT)

# Shared by actions and reset operations.
_RESTART = _OpType(
    {"kinds": _Field(_WORKLOAD_KINDS, None), "workloads": _Field(_WORKLOADS, None)},
    _kinds_or_workloads,
)
_WAIT_ROLLOUT = _OpType(
    {
        "kinds": _Field(_WORKLOAD_KINDS, None),
        "workloads": _Field(_WORKLOADS, None),
        "timeout_seconds": _Field(_number(positive=True), 180),
    },
    _kinds_or_workloads,
)
_WAIT_ADDRESS = _OpType({"object": _Field(_VIA), "timeout_seconds": _Field(_number(positive=True), 120)})
_REQUEST = {
    "method": _Field(_METHOD, "GET"),
    "path": _Field(_PATH),
    "headers": _Field(_mapping_of(_HEADER_NAME, _string()), {}),
    "body": _Field(_json, None),
}
_HTTP_REQUEST = {"via": _Field(_VIA), **_REQUEST, "expect_status": _Field(_integer(100, 599), 200)}
_STREAM = {"name": _Field(_STREAM_NAME), **_REQUEST, "rate": _Field(_number(maximum=1000, positive=True))}
_TRAFFIC = _OpType(
    {"via": _Field(_VIA), "streams": _Field(_list_of(_sub_record(_STREAM, "traffic stream"), nonempty=True))},
    _unique_stream_names,
)

_ACTION_TYPES: Mapping[str, _OpType] = {
    "label-namespace": _OpType({"labels": _Field(_mapping_of(_LABEL_KEY, _LABEL_VALUE))}),
    "rollout-restart": _RESTART,
    "wait-rollout": _WAIT_ROLLOUT,
    "wait-condition": _OpType(
        {
            "object": _Field(_ref("gateway", "httproute")),
            "condition": _Field(_CONDITION),
            "status": _Field(_CONDITION_STATUS, "True"),
            "timeout_seconds": _Field(_number(positive=True), 120),
        }
    ),
    "wait-address": _WAIT_ADDRESS,
    "http": _OpType(_HTTP_REQUEST, _no_body_without_payload_method),
    "traffic": _TRAFFIC,
}

_RESET_TYPES: Mapping[str, _OpType] = {
    "delete": _OpType({"objects": _Field(_list_of(_ref(), nonempty=True))}),
    "unlabel-namespace": _OpType({"keys": _Field(_list_of(_LABEL_KEY, nonempty=True))}),
    "apply": _OpType({"manifests": _Field(_manifests)}),
    "rollout-restart": _RESTART,
    "wait-rollout": _WAIT_ROLLOUT,
    "wait-address": _WAIT_ADDRESS,
    "traffic": _TRAFFIC,
    "stop-traffic": _OpType({}),
}

_WINDOW = _Field(_integer(10, 3600), 60)
_CHECK_TYPES: Mapping[str, _OpType] = {
    "istio-installed": _OpType(
        {"components": _Field(_list_of(_choice("istiod", "prometheus", "gateway-api", what="component"), True))},
        reports=("missing", "found"),
    ),
    "namespace-label": _OpType({"labels": _Field(_mapping_of(_LABEL_KEY, _LABEL_VALUE))}, reports=("labels",)),
    "pods-ready": _OpType(
        {
            # No workloads: every running pod of the namespace except Gateway proxies (a lone Envoy).
            "workloads": _Field(_list_of(_ref("deployment", "statefulset")), []),
            "containers": _Field(_integer(1, 10)),
            "allow_none": _Field(_boolean, False),
        },
        reports=("pods",),
    ),
    "service-external-ip": _OpType({"service": _Field(_OBJECT_NAME)}, reports=("service_type", "ingress")),
    "gateway-condition": _OpType(
        {
            "gateway": _Field(_OBJECT_NAME),
            "condition": _Field(_CONDITION),
            "status": _Field(_CONDITION_STATUS, "True"),
        },
        reports=("conditions",),
    ),
    "http": _OpType(
        {
            **_HTTP_REQUEST,
            "expect_json": _Field(_json, None),
            # Compare JSON lists as multisets (SplitDim does not promise an order for clear).
            "unordered": _Field(_boolean, False),
            # Passes when any attempt meets the expectation (absorbs injected faults).
            "attempts": _Field(_integer(1, 20), 1),
        },
        _no_body_without_payload_method,
        reports=("url", "status", "body"),
    ),
    "splitdim-conformance": _OpType(
        {
            "via": _Field(_VIA),
            "suites": _Field(
                _list_of(
                    _choice("httphandler", "api", "reset", "transfer", "accounts", "clear", what="suite"),
                    nonempty=True,
                )
            ),
        },
        reports=("failures",),
    ),
    "traffic-rate": _OpType(
        {
            "reporter": _Field(_REPORTER, "destination"),
            "select": _Field(_metric_selector),
            "window_seconds": _WINDOW,
            "min_rate": _Field(_number(positive=True)),
        },
        reports=("rate", "query"),
    ),
    "traffic-share": _OpType(
        {
            "reporter": _Field(_REPORTER, "destination"),
            "select": _Field(_metric_selector),  # the requests counted
            "match": _Field(_metric_selector),  # those of them whose share is checked
            "window_seconds": _WINDOW,
            "share": _Field(_number(0, 1)),
            # Accept matched/total within `sigmas` binomial standard deviations of `share`.
            "sigmas": _Field(_number(maximum=10, positive=True), 4),
            "min_requests": _Field(_integer(1), 50),
        },
        reports=("matched", "total", "share", "low", "high", "query"),
    ),
    "mtls": _OpType(
        {
            "workloads": _Field(_list_of(_OBJECT_NAME, nonempty=True)),
            "window_seconds": _WINDOW,
            "min_requests": _Field(_integer(1), 1),
        },
        reports=("shares", "query"),
    ),
    "outside-probe-refused": _OpType(
        {
            "target": _Field(_ref("service")),
            "port": _Field(_integer(1, 65535)),
            "path": _Field(_PATH),
            "image": _Field(_TEXT, "{{ images.curl }}"),
        },
        reports=("exit_code", "output"),
    ),
}

ACTION_TYPES = tuple(sorted(_ACTION_TYPES))
CHECK_TYPES = tuple(sorted(_CHECK_TYPES))
RESET_TYPES = tuple(sorted(_RESET_TYPES))


def _typed(data: Any, at: _At, registry: Mapping[str, _OpType], what: str) -> tuple[str, _OpType]:
    """Find the type of a typed operation, failing with the list of known types."""
    if not isinstance(data, Mapping):
        at.fail(f"expected a mapping ({what}), got {_describe(data)}")
    if "type" not in data:
        at["type"].fail(f"missing required field in {what}")
    kind = data["type"]
    if not isinstance(kind, str) or kind not in registry:
        at["type"].fail(f"unknown {what} type {kind!r} (known: {', '.join(sorted(registry))})")
    return kind, registry[kind]


def _operation(registry: Mapping[str, _OpType], what: str, make: type[Action | ResetOp]) -> Validator:
    def check(data: Any, at: _At) -> Action | ResetOp:
        kind, spec = _typed(data, at, registry, what)
        params = _record(data, at, {"type": _Field(_is_str), **spec.fields}, f"{kind} {what}")
        del params["type"]
        if spec.rule is not None:
            spec.rule(params, at)
        return make(kind, params)

    return check


def _check(data: Any, at: _At) -> Check:
    kind, spec = _typed(data, at, _CHECK_TYPES, "check")
    debug_context = {
        **_SAMPLE_CONTEXT,
        "check": {"name": "sample", "type": kind},
        **{name: f"<{name}>" for name in spec.reports},
    }
    common = {
        "type": _Field(_is_str),
        "name": _Field(_string(one_line=True)),
        "message": _Field(_TEXT),
        "debug": _Field(_template(debug_context)),
        "timeout_seconds": _Field(_number(minimum=0, maximum=600), 30),
    }
    params = _record(data, at, {**common, **spec.fields}, f"{kind} check")
    if spec.rule is not None:
        spec.rule(params, at)
    fixed = {name: params.pop(name) for name in common}
    return Check(
        type=kind,
        name=fixed["name"],
        message=fixed["message"],
        debug=fixed["debug"],
        timeout_seconds=fixed["timeout_seconds"],
        params=params,
    )


def _unique_check_names(checks: list[Check], at: _At) -> tuple[Check, ...]:
    seen: set[str] = set()
    for i, check in enumerate(checks):
        if check.name in seen:
            at[i]["name"].fail(f"duplicate check name {check.name!r}")
        seen.add(check.name)
    return tuple(checks)


_STEP_FIELDS: Mapping[str, _Field] = {
    "id": _Field(_string(re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*"), "a lowercase slug like 'fault-injection'")),
    "title": _Field(_string(one_line=True)),
    "order": _Field(_integer(1, 99)),
    "summary": _Field(_string(one_line=True)),
    "text": _Field(_TEXT),
    "manifests": _Field(_manifests, ""),
    "actions": _Field(_list_of(_operation(_ACTION_TYPES, "action", Action)), []),
    "checks": _Field(lambda v, at: _unique_check_names(_list_of(_check, nonempty=True)(v, at), at)),
    "hints": _Field(_list_of(_TEXT), []),
    "solution": _Field(_TEXT),
    "reset": _Field(_list_of(_operation(_RESET_TYPES, "reset", ResetOp)), []),
}
_FILE_NAME = re.compile(r"(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.yaml")


def _display(path: Path) -> str:
    """The path as shown in errors: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(CONTENT_DIR.parent.parent))
    except ValueError:
        return str(path)


def load_step(path: Path) -> Step:
    """Load and validate one step file named `NN-slug.yaml` (NN is its order, slug its id)."""
    at = _At(_display(path))
    name = _FILE_NAME.fullmatch(path.name)
    if name is None:
        at.fail("step files must be named NN-slug.yaml, e.g. 06-fault-injection.yaml")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as error:
        at.fail(f"not valid YAML: {_yaml_problem(error)}")
    except (OSError, UnicodeDecodeError) as error:
        at.fail(f"cannot read: {error}")
    fields = _record(data, at, _STEP_FIELDS, "step")
    if fields["id"] != name.group(2):
        at["id"].fail(f"{fields['id']!r} does not match the file name (expected {name.group(2)!r})")
    if fields["order"] != int(name.group(1)):
        at["order"].fail(f"{fields['order']} does not match the file name (expected {int(name.group(1))})")
    for key in ("actions", "hints", "reset"):
        fields[key] = tuple(fields[key])
    return Step(**fields, source=path)


def load_steps(directory: Path | str | None = None) -> list[Step]:
    """Load every step file of `directory` (default: the packaged content), ordered by `order`.

    Raises ContentError, naming the file and field, for anything invalid, including ids or orders
    used by two files.
    """
    root = Path(directory) if directory is not None else CONTENT_DIR
    paths = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    if not paths:
        raise ContentError(f"{_display(root)}: no step files (NN-slug.yaml)")
    steps = [load_step(path) for path in paths]
    for field in ("id", "order"):
        owners: dict[Any, Step] = {}
        for step in steps:
            value = getattr(step, field)
            if value in owners:
                other = _display(owners[value].source)
                _At(_display(step.source))[field].fail(f"{value!r} is also used by {other}")
            owners[value] = step
    return sorted(steps, key=lambda step: step.order)
