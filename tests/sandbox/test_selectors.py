"""Label selectors (string and spec forms), Service selector maps and field selectors."""

from __future__ import annotations

import pytest

from sandbox.selectors import (
    SelectorError,
    matches_labels,
    parse_field_selector,
    parse_label_selector,
    selector_from_spec,
)

WEB = {"app": "web", "tier": "front", "version": "v1"}
DB = {"app": "kvstore", "tier": "back"}
BARE: dict[str, str] = {}

LABEL_CASES = [
    # selector, labels, expected
    ("", WEB, True),
    ("", BARE, True),
    ("app=web", WEB, True),
    ("app==web", WEB, True),
    ("app=web", DB, False),
    ("app=web", BARE, False),
    ("app!=web", DB, True),
    ("app!=web", WEB, False),
    ("app!=web", BARE, True),  # != also matches objects without the label
    ("app in (web,kvstore)", DB, True),
    ("app in (web)", DB, False),
    ("app in (web)", BARE, False),
    ("app notin (web)", DB, True),
    ("app notin (web,kvstore)", DB, False),
    ("app notin (web)", BARE, True),
    ("version", WEB, True),
    ("version", DB, False),
    ("!version", DB, True),
    ("!version", WEB, False),
    ("app=web,tier=front", WEB, True),
    ("app=web,tier=back", WEB, False),
    ("  app = web ,  tier  in ( front , back ) , !canary  ", WEB, True),
    ("app in(web),tier notin(back)", WEB, True),
    ("version=", WEB, False),
    ("version=", {"version": ""}, True),
    ("version=,app=web", {"version": "", "app": "web"}, True),
    ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
    ("in=x", {"in": "x"}, True),
    ("app=web", None, False),
    ("!app", None, True),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), LABEL_CASES)
def test_label_selector(selector: str, labels: dict | None, expected: bool) -> None:
    assert parse_label_selector(selector)(labels) is expected


LABEL_ERRORS = [
    ("app=web,", "found '', expected: !, identifier"),
    (",app=web", "found ',', expected: !, identifier"),
    ("app=web tier=x", "found 'tier', expected: ',' or end of selector"),
    ("app in web", "found 'web', expected: \\("),
    ("app in ()", "for 'in' operator, values set can't be empty"),
    ("app notin ()", "for 'notin' operator, values set can't be empty"),
    ("app in (a,)", "found '\\)', expected: identifier"),
    ("app in (a b)", "found 'b', expected: ',' or '\\)'"),
    ("app in (a", "found '', expected: ',' or '\\)'"),
    ("app > 3", "found '>', expected: =, ==, !=, in, notin"),
    ("app ~ x", "found '~', expected: =, ==, !=, in, notin"),
    ("app=(x)", "found '\\(', expected: identifier"),
    ("!", "found '', expected: identifier"),
    ("!app=web", "found '=', expected: ',' or end of selector"),
    ("-bad=x", "invalid label key '-bad'"),
    ("a/b/c=x", "invalid label key 'a/b/c'"),
    ("Bad_Prefix/app=x", "prefix part must be a DNS subdomain"),
    ("/app=x", "prefix part must be a DNS subdomain"),
    ("app=-x", "invalid label value '-x'"),
    ("app=" + "x" * 64, "invalid label value"),
    ("app in (ok,bad!)", "found '!', expected: ',' or '\\)'"),
]


@pytest.mark.parametrize(("selector", "message"), LABEL_ERRORS)
def test_label_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_label_selector(selector)


def test_selector_error_is_a_value_error() -> None:
    assert issubclass(SelectorError, ValueError)


SPEC_CASES = [
    (None, WEB, True),
    ({}, BARE, True),
    ({"matchLabels": {}}, WEB, True),
    ({"matchLabels": {"app": "web"}}, WEB, True),
    ({"matchLabels": {"app": "web"}}, DB, False),
    ({"matchLabels": {"app": "web", "tier": "front"}}, WEB, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}, WEB, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}, WEB, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, WEB, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, DB, False),
    ({"matchExpressions": [{"key": "version", "operator": "Exists"}]}, WEB, True),
    ({"matchExpressions": [{"key": "version", "operator": "Exists"}]}, DB, False),
    ({"matchExpressions": [{"key": "version", "operator": "DoesNotExist"}]}, DB, True),
    ({"matchExpressions": [{"key": "version", "operator": "DoesNotExist"}]}, WEB, False),
    (
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "version", "operator": "DoesNotExist"}]},
        WEB,
        False,
    ),
    ({"matchLabels": {"app": "web"}}, None, False),
]


@pytest.mark.parametrize(("spec", "labels", "expected"), SPEC_CASES)
def test_selector_from_spec(spec: dict | None, labels: dict | None, expected: bool) -> None:
    assert selector_from_spec(spec)(labels) is expected


SPEC_ERRORS = [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, "'Equals' is not a valid"),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        "must be specified when `operator` is 'In'",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
        "must be specified when `operator` is 'NotIn'",
    ),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "may not be specified"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "key: Required value"),
]


@pytest.mark.parametrize(("spec", "message"), SPEC_ERRORS)
def test_selector_from_spec_errors(spec: dict, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        selector_from_spec(spec)


SERVICE_CASES = [
    ({}, WEB, False),  # a Service without a selector selects nothing
    (None, WEB, False),
    ({"app": "web"}, WEB, True),
    ({"app": "web", "tier": "front"}, WEB, True),
    ({"app": "web", "tier": "back"}, WEB, False),
    ({"app": "web"}, BARE, False),
    ({"app": "web"}, None, False),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SERVICE_CASES)
def test_matches_labels(selector: dict | None, labels: dict | None, expected: bool) -> None:
    assert matches_labels(selector, labels) is expected


def obj(name: str, namespace: str | None = "lab", **rest: object) -> dict:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"metadata": meta, **rest}


RUNNING = obj("web-1", status={"phase": "Running"}, spec={"nodeName": "sandbox"})
PENDING = obj("web-2", status={"phase": "Pending"}, spec={})
NAMESPACE = obj("lab", namespace=None)
EVENT = obj(
    "web-1.17f",
    involvedObject={"kind": "Pod", "name": "web-1", "namespace": "lab", "uid": "u1"},
    type="Normal",
)

FIELD_CASES = [
    # selector, kind, object, expected
    ("", "Pod", RUNNING, True),
    ("metadata.name=web-1", "Pod", RUNNING, True),
    ("metadata.name==web-1", "Pod", RUNNING, True),
    ("metadata.name=web-1", "Pod", PENDING, False),
    ("metadata.name!=web-1", "Pod", PENDING, True),
    ("metadata.namespace=lab", "Pod", RUNNING, True),
    ("metadata.namespace=", "Namespace", NAMESPACE, True),  # cluster-scoped: empty namespace
    ("metadata.name=lab", "Namespace", NAMESPACE, True),
    ("status.phase=Running", "Pod", RUNNING, True),
    ("status.phase!=Succeeded,status.phase!=Failed", "Pod", PENDING, True),
    ("status.phase=Running,metadata.name=web-2", "Pod", PENDING, False),
    ("spec.nodeName=sandbox", "Pod", RUNNING, True),
    ("spec.nodeName=", "Pod", PENDING, True),  # unscheduled pods have no nodeName
    ("spec.nodeName!=", "Pod", PENDING, False),
    (" metadata.name = web-1 ", "Pod", RUNNING, True),
    ("metadata.name=web-1,", "Pod", RUNNING, True),
    ("involvedObject.name=web-1,involvedObject.namespace=lab,involvedObject.uid=u1", "Event", EVENT, True),
    ("involvedObject.kind=Deployment", "Event", EVENT, False),
    ("type=Normal", "Event", EVENT, True),
    ("status.phase=Running", None, RUNNING, True),  # kind unknown: every known field is accepted
    ("metadata.name=a\\,b", "Pod", obj("a,b"), True),  # escaped comma belongs to the value
    ("metadata.name=a\\=b", "Pod", obj("a=b"), True),
]


@pytest.mark.parametrize(("selector", "kind", "target", "expected"), FIELD_CASES)
def test_field_selector(selector: str, kind: str | None, target: dict, expected: bool) -> None:
    assert parse_field_selector(selector, kind)(target) is expected


FIELD_ERRORS = [
    ("spec.foo=x", "Pod", "field label not supported: spec.foo"),
    ("status.phase=Running", "Deployment", "field label not supported: status.phase"),
    ("spec.nodeName=x", "Gateway", "field label not supported: spec.nodeName"),
    ("involvedObject.name=x", "Pod", "field label not supported: involvedObject.name"),
    ("metadata.labels=x", None, "field label not supported: metadata.labels"),
    ("metadata.name", "Pod", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("metadata.name=web,oops", "Pod", "can't understand 'oops'"),
]


@pytest.mark.parametrize(("selector", "kind", "message"), FIELD_ERRORS)
def test_field_selector_errors(selector: str, kind: str | None, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_field_selector(selector, kind)
