"""The lab step files load, render the lab's objects, and broken content fails with file and field named."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labsteps.content import (
    ACTION_TYPES,
    CHECK_TYPES,
    CONTENT_DIR,
    DEFAULT_IMAGES,
    RESET_TYPES,
    ContentError,
    Step,
    TemplateError,
    load_step,
    load_steps,
    render,
    render_manifests,
    template_context,
)

STEP_IDS = [
    "preliminaries",
    "deploy-splitdim",
    "observability",
    "ingress-gateway",
    "request-routing",
    "fault-injection",
    "security",
]


@pytest.fixture(scope="module")
def steps() -> dict[str, Step]:
    return {step.id: step for step in load_steps()}


def objects_by_key(step: Step, namespace: str = "alice", images: dict[str, str] | None = None) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in step.render_manifests(namespace, images)}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair of a nested structure, leaves and containers alike."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from walk(child, f"{path}[{i}]")


# --- the packaged content ------------------------------------------------------------------------


def test_seven_steps_load_in_order(steps: dict[str, Step]) -> None:
    loaded = load_steps()
    assert [step.id for step in loaded] == STEP_IDS
    assert [step.order for step in loaded] == list(range(1, 8))
    for step in loaded:
        assert step.source.name == f"{step.order:02d}-{step.id}.yaml"
        assert step.title and step.summary and "\n" not in step.summary
        assert step.checks, step.id
        assert len(step.hints) >= 2, step.id
        assert step.reset, step.id
    assert load_steps(CONTENT_DIR) == loaded
    assert load_steps(str(CONTENT_DIR)) == loaded


@pytest.mark.parametrize(
    ("step_id", "expected"),
    [
        ("preliminaries", []),
        (
            "deploy-splitdim",
            [
                ("ConfigMap", "splitdim-config"),
                ("StatefulSet", "kvstore"),
                ("Service", "kvstore"),
                ("Deployment", "splitdim"),
                ("Service", "splitdim"),
            ],
        ),
        ("observability", []),
        ("ingress-gateway", [("Service", "splitdim"), ("Gateway", "splitdim"), ("HTTPRoute", "splitdim")]),
        (
            "request-routing",
            [("Deployment", "splitdim-2"), ("Service", "splitdim-2"), ("HTTPRoute", "splitdim")],
        ),
        ("fault-injection", [("VirtualService", "kvstore-500")]),
        ("security", [("PeerAuthentication", "default")]),
    ],
)
def test_manifest_kinds_and_names(steps: dict[str, Step], step_id: str, expected: list) -> None:
    rendered = steps[step_id].render_manifests("alice")
    assert [(o["kind"], o["metadata"]["name"]) for o in rendered] == expected


def all_rendered_objects(steps: dict[str, Step], namespace: str) -> list[dict]:
    """The step manifests and the manifests of `apply` reset operations."""
    objects = []
    for step in steps.values():
        objects += step.render_manifests(namespace)
        for op in step.reset:
            if op.type == "apply":
                objects += render_manifests(op.params["manifests"], namespace)
    return objects


def test_namespace_never_written_into_metadata(steps: dict[str, Step]) -> None:
    namespace = "alice-7"
    objects = all_rendered_objects(steps, namespace)
    assert len(objects) > 10
    uses = []
    for obj in objects:
        for path, value in walk(obj):
            if path.endswith("metadata"):
                assert "namespace" not in value, (obj["kind"], obj["metadata"]["name"], path)
            if isinstance(value, str) and namespace in value:
                uses.append((obj["kind"], obj["metadata"]["name"], path, value))
    # The only place the namespace appears is the store's address the app is configured with.
    assert uses == [("ConfigMap", "splitdim-config", ".data.KVSTORE_ADDR", "kvstore.alice-7:8081")]


def test_images_are_templated(steps: dict[str, Step]) -> None:
    custom = {"splitdim": "registry.example/splitdim:v2", "kvstore": "registry.example/kvstore@sha256:abc"}
    images = {}
    for step_id in ("deploy-splitdim", "request-routing"):
        for (kind, name), obj in objects_by_key(steps[step_id], images=custom).items():
            if kind in ("Deployment", "StatefulSet"):
                images[name] = [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert images == {
        "kvstore": ["registry.example/kvstore@sha256:abc"],
        "splitdim": ["registry.example/splitdim:v2"],
        "splitdim-2": ["registry.example/splitdim:v2"],
    }
    default = objects_by_key(steps["deploy-splitdim"])[("Deployment", "splitdim")]
    assert default["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/splitdim:latest"
    probe = next(c for c in steps["security"].checks if c.type == "outside-probe-refused")
    assert render(probe.params["image"], template_context("alice")) == DEFAULT_IMAGES["curl"]
    assert render(probe.params["image"], template_context("alice", {"curl": "my/curl:1"})) == "my/curl:1"


def test_deploy_step_objects(steps: dict[str, Step]) -> None:
    objects = objects_by_key(steps["deploy-splitdim"], namespace="bob")
    assert objects[("ConfigMap", "splitdim-config")]["data"] == {
        "KVSTORE_MODE": "kvstore",
        "KVSTORE_ADDR": "kvstore.bob:8081",
    }
    kvstore = objects[("StatefulSet", "kvstore")]
    assert kvstore["spec"]["replicas"] == 1
    assert kvstore["spec"]["serviceName"] == "kvstore"
    assert kvstore["spec"]["selector"]["matchLabels"] == {"app": "kvstore"}
    assert kvstore["spec"]["template"]["metadata"]["labels"] == {"app": "kvstore"}
    (container,) = kvstore["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http-kvstore", "containerPort": 8081}]
    assert [claim["metadata"]["name"] for claim in kvstore["spec"]["volumeClaimTemplates"]] == ["kvstore-log"]
    headless = objects[("Service", "kvstore")]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["ports"][0]["port"] == 8081 and headless["ports"][0]["name"].startswith("http-")

    splitdim = objects[("Deployment", "splitdim")]
    assert splitdim["metadata"]["labels"] == {"app": "splitdim"}
    assert splitdim["spec"]["selector"]["matchLabels"] == {"app": "splitdim"}
    (container,) = splitdim["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"containerPort": 8080}]
    assert {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in container["env"]} == {
        "KVSTORE_MODE": {"name": "splitdim-config", "key": "KVSTORE_MODE"},
        "KVSTORE_ADDR": {"name": "splitdim-config", "key": "KVSTORE_ADDR"},
    }
    service = objects[("Service", "splitdim")]["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["selector"] == {"app": "splitdim"}
    assert service["ports"] == [{"name": "http-splitdim", "port": 80, "targetPort": 8080, "protocol": "TCP"}]


# The lab text's objects for steps 4-7, field by field.
LAB_OBJECTS = {
    "ingress-gateway": [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "splitdim", "labels": {"app": "splitdim"}},
            "spec": {
                "selector": {"app": "splitdim"},
                "ports": [{"name": "http-splitdim", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                "type": "ClusterIP",
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "Gateway",
            "metadata": {"name": "splitdim"},
            "spec": {
                "gatewayClassName": "istio",
                "listeners": [{"name": "http-splitdim", "port": 80, "protocol": "HTTP"}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "HTTPRoute",
            "metadata": {"name": "splitdim"},
            "spec": {
                "parentRefs": [{"name": "splitdim"}],
                "rules": [{"backendRefs": [{"name": "splitdim", "port": 80}]}],
            },
        },
    ],
    "request-routing": [
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "HTTPRoute",
            "metadata": {"name": "splitdim"},
            "spec": {
                "parentRefs": [{"name": "splitdim"}],
                "rules": [
                    {
                        "matches": [{"headers": [{"name": "user", "value": "test"}]}],
                        "backendRefs": [{"name": "splitdim-2", "port": 80}],
                    },
                    {"backendRefs": [{"name": "splitdim", "port": 80}]},
                ],
            },
        },
    ],
    "fault-injection": [
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "VirtualService",
            "metadata": {"name": "kvstore-500"},
            "spec": {
                "hosts": ["kvstore"],
                "http": [
                    {
                        "match": [{"uri": {"exact": "/api/list"}}],
                        "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 10}}},
                        "route": [{"destination": {"host": "kvstore"}}],
                    },
                    {"route": [{"destination": {"host": "kvstore"}}]},
                ],
            },
        },
    ],
    "security": [
        {
            "apiVersion": "security.istio.io/v1beta1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default"},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    ],
}


@pytest.mark.parametrize("step_id", sorted(LAB_OBJECTS))
def test_lab_objects_match_field_by_field(steps: dict[str, Step], step_id: str) -> None:
    rendered = objects_by_key(steps[step_id])
    for expected in LAB_OBJECTS[step_id]:
        assert rendered[(expected["kind"], expected["metadata"]["name"])] == expected


def renamed(obj: Any) -> Any:
    """`splitdim` → `splitdim-2` everywhere but the shared ConfigMap and the image (same code)."""
    if isinstance(obj, dict):
        return {key: value if key == "image" else renamed(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [renamed(value) for value in obj]
    if isinstance(obj, str) and obj != "splitdim-config":
        return re.sub(r"\bsplitdim\b", "splitdim-2", obj)
    return obj


def test_splitdim_2_is_a_renamed_copy(steps: dict[str, Step]) -> None:
    v1 = objects_by_key(steps["deploy-splitdim"])[("Deployment", "splitdim")]
    v1_service = objects_by_key(steps["ingress-gateway"])[("Service", "splitdim")]
    v2 = objects_by_key(steps["request-routing"])
    assert v2[("Deployment", "splitdim-2")] == renamed(v1)
    assert v2[("Service", "splitdim-2")] == renamed(v1_service)
    env = v2[("Deployment", "splitdim-2")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["configMapKeyRef"]["name"] for e in env} == {"splitdim-config"}


def yaml_blocks(markdown: str) -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", markdown, flags=re.S)
    return [obj for block in blocks for obj in yaml.safe_load_all(block) if obj is not None]


def test_solution_yaml_matches_the_manifests(steps: dict[str, Step]) -> None:
    shown = 0
    for step in steps.values():
        context = template_context("alice")
        rendered = step.render_manifests("alice")
        for obj in yaml_blocks(step.render_solution(context)):
            assert obj in rendered, (step.id, obj["kind"], obj["metadata"]["name"])
            shown += 1
    assert shown == 6  # steps 4 (three objects), 5, 6 and 7


def test_reset_undoes_every_object_of_the_step(steps: dict[str, Step]) -> None:
    for step in steps.values():
        deleted, reapplied = set(), set()
        for op in step.reset:
            if op.type == "delete":
                deleted.update(op.params["objects"])
            elif op.type == "apply":
                reapplied.update(
                    f"{o['kind'].lower()}/{o['metadata']['name']}"
                    for o in render_manifests(op.params["manifests"], "alice")
                )
        created = {f"{kind.lower()}/{name}" for kind, name in objects_by_key(step)}
        assert created <= deleted | reapplied, (step.id, created - deleted - reapplied)


def test_resets_restore_the_previous_steps_objects(steps: dict[str, Step]) -> None:
    def reapplied(step: Step) -> dict:
        (op,) = [op for op in step.reset if op.type == "apply"]
        return {(o["kind"], o["metadata"]["name"]): o for o in render_manifests(op.params["manifests"], "a")}

    deploy, gateway = objects_by_key(steps["deploy-splitdim"]), objects_by_key(steps["ingress-gateway"])
    assert reapplied(steps["ingress-gateway"]) == {("Service", "splitdim"): deploy[("Service", "splitdim")]}
    assert reapplied(steps["request-routing"]) == {("HTTPRoute", "splitdim"): gateway[("HTTPRoute", "splitdim")]}
    deleted = next(op for op in steps["deploy-splitdim"].reset if op.type == "delete").params["objects"]
    assert "persistentvolumeclaim/kvstore-log-kvstore-0" in deleted
    assert [op.type for op in steps["observability"].reset] == ["stop-traffic"]
    assert [(op.type, op.params) for op in steps["preliminaries"].reset] == [
        ("unlabel-namespace", {"keys": ["istio-injection"]}),
        ("rollout-restart", {"kinds": ["Deployment", "StatefulSet"], "workloads": None}),
    ]


def test_step_actions(steps: dict[str, Step]) -> None:
    first = steps["preliminaries"].actions
    assert (first[0].type, first[0].params) == ("label-namespace", {"labels": {"istio-injection": "enabled"}})
    assert (first[1].type, first[1].params["kinds"]) == ("rollout-restart", ["Deployment", "StatefulSet"])

    seed = [a for a in steps["deploy-splitdim"].actions if a.type == "http"]
    assert [(a.params["via"], a.params["method"], a.params["path"], a.params["body"]) for a in seed] == [
        ("service/splitdim", "GET", "/api/reset", None),
        ("service/splitdim", "POST", "/api/transfer", {"sender": "a", "receiver": "b", "amount": 2}),
        ("service/splitdim", "POST", "/api/transfer", {"sender": "b", "receiver": "c", "amount": 1}),
    ]
    # The seed runs only after the workloads are rolled out and the Service has its address.
    types = [a.type for a in steps["deploy-splitdim"].actions]
    assert types[:2] == ["wait-rollout", "wait-address"]

    (traffic,) = steps["observability"].actions
    assert traffic.params["via"] == "service/splitdim"
    assert traffic.params["streams"] == [
        {"name": "clear", "method": "GET", "path": "/api/clear", "headers": {}, "body": None, "rate": 5}
    ]
    routing = next(a for a in steps["request-routing"].actions if a.type == "traffic")
    assert routing.params["via"] == "gateway/splitdim"
    assert {s["name"]: s["headers"] for s in routing.params["streams"]} == {
        "normal": {},
        "test": {"user": "test"},
    }


def test_step_checks(steps: dict[str, Step]) -> None:
    def check_types(step_id: str) -> list[str]:
        return [check.type for check in steps[step_id].checks]

    assert check_types("preliminaries") == [
        "istio-installed",
        "istio-installed",
        "namespace-label",
        "pods-ready",
    ]
    accounts = next(c for c in steps["deploy-splitdim"].checks if c.params.get("path") == "/api/accounts")
    assert accounts.params["unordered"] is True
    assert sorted(accounts.params["expect_json"], key=lambda a: a["holder"]) == [
        {"holder": "a", "balance": 2},
        {"holder": "b", "balance": -1},
        {"holder": "c", "balance": -1},
    ]
    assert check_types("ingress-gateway") == [
        "gateway-condition",
        "service-external-ip",
        "splitdim-conformance",
    ]
    conformance = steps["ingress-gateway"].checks[2].params
    assert conformance == {
        "via": "gateway/splitdim",
        "suites": ["httphandler", "api", "reset", "transfer", "accounts", "clear"],
    }
    assert steps["ingress-gateway"].checks[1].params == {"service": "splitdim-istio"}

    routing = next(c for c in steps["request-routing"].checks if c.type == "traffic-share").params
    assert routing["match"] == {"destination_workload": ["splitdim-2"]}
    (fault,) = steps["fault-injection"].checks
    assert fault.type == "traffic-share"
    assert fault.params["reporter"] == "source"
    assert fault.params["match"] == {"response_code": ["500"], "response_flags": ["FI"]}
    assert fault.params["select"]["destination_service_name"] == ["kvstore"]
    assert fault.params["share"] == 0.1
    assert check_types("security") == ["http", "mtls", "outside-probe-refused"]


def test_every_check_message_and_debug_render(steps: dict[str, Step]) -> None:
    context = template_context("alice")
    for step in steps.values():
        for check in step.checks:
            observed = {name: f"observed-{name}" for name in check.reports}
            debug = check.render_debug({**context, "check": {"name": check.name, "type": check.type}, **observed})
            assert "{{" not in debug
            assert any(value in debug for value in observed.values()), (step.id, check.name)
            assert check.render_message(context).strip()


def test_texts_render_with_the_student_namespace(steps: dict[str, Step]) -> None:
    context = template_context("carol")
    first = steps["preliminaries"]
    assert "`carol`" in first.render_text(context)
    assert "kubectl label namespace carol istio-injection=enabled" in first.render_solution(context)
    assert any("kubectl get namespace carol" in hint for hint in first.render_hints(context))
    for step in steps.values():
        for text in [step.render_text(context), step.render_solution(context), *step.render_hints(context)]:
            assert "{{" not in text and "lab-sample" not in text


def test_type_registries_are_exposed() -> None:
    assert {"label-namespace", "rollout-restart", "http", "traffic", "wait-rollout"} <= set(ACTION_TYPES)
    assert {"traffic-share", "mtls", "outside-probe-refused", "splitdim-conformance"} <= set(CHECK_TYPES)
    assert {"delete", "unlabel-namespace", "apply", "stop-traffic"} <= set(RESET_TYPES)


# --- templates ------------------------------------------------------------------------------------


def test_render_substitutes_dotted_names() -> None:
    context = {"namespace": "ns1", "images": {"curl": "c:1"}, "n": 3, "ok": True, "items": ["a", 1]}
    assert render("{{namespace}}/{{ images.curl }}/{{  n  }}", context) == "ns1/c:1/3"
    assert render("{{ ok }} {{ items }}", context) == 'true ["a", 1]'
    assert render("no placeholders }} here", context) == "no placeholders }} here"


def test_render_does_not_re_render_substituted_values() -> None:
    assert render("{{ body }}", {"body": "{{ secret }}"}) == "{{ secret }}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ missing }}", "unknown name 'missing' (known: namespace, images.curl)"),
        ("{{ images.splitdim }}", "unknown name 'images.splitdim'"),
        ("{{ namespace.length }}", "unknown name 'namespace.length'"),
        ("{{ __class__ }}", "unknown name '__class__'"),
        ("{{ images['curl'] }}", "malformed placeholder"),
        ("{{ namespace | upper }}", "malformed placeholder"),
        ("{{ 1 + 1 }}", "malformed placeholder"),
        ("{{ namespace", "malformed placeholder"),
    ],
)
def test_render_rejects_what_it_cannot_look_up(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(template, {"namespace": "ns1", "images": {"curl": "c:1"}})


def test_template_context_validates_values() -> None:
    assert template_context("ns1") == {"namespace": "ns1", "images": dict(DEFAULT_IMAGES)}
    assert template_context("ns1", {"curl": "my/curl:2"})["images"]["curl"] == "my/curl:2"
    for bad in ("Alice", "a_b", "-a", "a" * 64, "a: b"):
        with pytest.raises(ValueError, match="not a DNS label"):
            template_context(bad)
    with pytest.raises(ValueError, match="unknown image 'redis'"):
        template_context("ns1", {"redis": "redis:7"})
    for bad in ("img\n  evil: 1", "img # x", "{a: 1}", ""):
        with pytest.raises(ValueError, match="not a valid image reference"):
            template_context("ns1", {"splitdim": bad})


# --- broken content -------------------------------------------------------------------------------

MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  ADDR: "kvstore.{{ namespace }}:8081"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  template:
    spec:
      containers:
        - name: demo
          image: {{ images.splitdim }}
"""


def valid_step() -> dict:
    return {
        "id": "demo",
        "title": "Demo",
        "order": 1,
        "summary": "A step that passes validation.",
        "text": "Work in `{{ namespace }}`.",
        "manifests": MANIFESTS,
        "actions": [
            {"type": "rollout-restart", "kinds": ["Deployment"]},
            {
                "type": "traffic",
                "via": "service/demo",
                "streams": [{"name": "clear", "path": "/api/clear", "rate": 5}],
            },
        ],
        "checks": [
            {
                "type": "traffic-share",
                "name": "share",
                "select": {"destination_service_name": "kvstore"},
                "match": {"response_code": 500},
                "share": 0.1,
                "message": "Too few or too many failures.",
                "debug": "{{ matched }} of {{ total }} in {{ namespace }}",
            },
            {
                "type": "http",
                "name": "answers",
                "via": "gateway/demo",
                "path": "/api/accounts",
                "message": "No answer.",
                "debug": "{{ status }}",
            },
        ],
        "hints": ["Look at `{{ namespace }}`."],
        "solution": "Press Apply.",
        "reset": [
            {"type": "delete", "objects": ["configmap/demo", "deployment/demo"]},
            {"type": "apply", "manifests": "apiVersion: v1\nkind: Service\nmetadata:\n  name: demo\n"},
        ],
    }


def write_step(directory: Path, data: Any, name: str = "01-demo.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_valid_fixture_loads(tmp_path: Path) -> None:
    write_step(tmp_path, valid_step())
    (step,) = load_steps(tmp_path)
    assert step.id == "demo"
    assert step.checks[0].params["match"] == {"response_code": ["500"]}
    assert step.checks[0].params["sigmas"] == 4 and step.checks[0].timeout_seconds == 30
    assert step.checks[1].params["method"] == "GET" and step.checks[1].params["attempts"] == 1
    assert [o["kind"] for o in step.render_manifests("x")] == ["ConfigMap", "Deployment"]


def setter(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets, appends or (value DELETE) removes the item at a dotted path like `a.0.b`."""

    def mutate(data: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
        target = data
        for key in keys[:-1]:
            target = target[key]
        if value is DELETE:
            del target[keys[-1]]
        elif isinstance(target, list) and keys[-1] == len(target):
            target.append(copy.deepcopy(value))
        else:
            target[keys[-1]] = copy.deepcopy(value)

    return mutate


DELETE = object()
MANIFEST_CASES = [
    ("unknown name", "kvstore.{{ image.splitdim }}", "manifests", "unknown name 'image.splitdim'"),
    ("malformed placeholder", "{{ images.splitdim | lower }}", "manifests", "malformed placeholder"),
    ("not YAML", "apiVersion: v1\nmetadata: {name: x\n", "manifests", "not valid YAML after rendering: line"),
    ("no apiVersion", "kind: ConfigMap\nmetadata: {name: x}\n", "manifests[0].apiVersion", "missing"),
    ("no kind", "apiVersion: v1\nmetadata: {name: x}\n", "manifests[0].kind", "missing"),
    ("no metadata", "apiVersion: v1\nkind: ConfigMap\n", "manifests[0].metadata", "missing"),
    (
        "no name",
        MANIFESTS + "---\napiVersion: v1\nkind: Service\nmetadata: {}\n",
        "manifests[2].metadata.name",
        "",
    ),
    (
        "namespace set",
        MANIFESTS.replace("  name: demo\ndata", "  name: demo\n  namespace: lab\ndata"),
        "manifests[0].metadata.namespace",
        "must not be set",
    ),
    (
        "templated namespace set",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: '{{ namespace }}'\n",
        "manifests[0].metadata.namespace",
        "must not be set",
    ),
    ("not an object", "- a\n- b\n", "manifests[0]", "expected a Kubernetes object"),
    (
        "kind not allowed",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
        "manifests[0].kind",
        "Secret",
    ),
    (
        "wrong apiVersion",
        "apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n",
        "manifests[0].apiVersion",
        "",
    ),
    ("same object twice", MANIFESTS + "---\n" + MANIFESTS.split("---\n")[0], "manifests[2]", "appears twice"),
    (
        "bad object name",
        "apiVersion: v1\nkind: Service\nmetadata: {name: My_Svc}\n",
        "manifests[0].metadata.name",
        "",
    ),
    ("not a string", ["apiVersion: v1"], "manifests", "expected a string, got a list"),
]
FIELD_CASES = [
    ("unknown top-level key", setter("colour", "red"), "colour", "unknown field 'colour' in step"),
    ("missing title", setter("title", DELETE), "title", "missing required field in step"),
    ("missing checks", setter("checks", DELETE), "checks", "missing required field"),
    ("no checks", setter("checks", []), "checks", "must not be empty"),
    ("multi-line summary", setter("summary", "one\ntwo"), "summary", "must be a single line"),
    ("order not int", setter("order", "one"), "order", "expected an integer, got a string 'one'"),
    ("order is bool", setter("order", True), "order", "expected an integer, got a boolean"),
    ("bad slug", setter("id", "Demo Step"), "id", "is not a lowercase slug"),
    ("id does not match file", setter("id", "other"), "id", "does not match the file name (expected 'demo')"),
    ("order does not match file", setter("order", 2), "order", "does not match the file name (expected 1)"),
    ("hints not a list", setter("hints", "one"), "hints", "expected a list, got a string"),
    ("hint unknown name", setter("hints.0", "{{ student }}"), "hints[0]", "unknown name 'student'"),
    ("text unknown name", setter("text", "In {{ namespace.name }}"), "text", "unknown name 'namespace.name'"),
    ("empty solution", setter("solution", "  "), "solution", "must not be empty"),
    (
        "unknown action type",
        setter("actions.0.type", "label-ns"),
        "actions[0].type",
        "unknown action type 'label-ns' (known: http, label-namespace,",
    ),
    ("action without type", setter("actions.0.type", DELETE), "actions[0].type", "missing required field"),
    (
        "unknown check type",
        setter("checks.0.type", "trafic-share"),
        "checks[0].type",
        "unknown check type 'trafic-share' (known: gateway-condition, http, istio-installed,",
    ),
    ("unknown reset type", setter("reset.0.type", "drop"), "reset[0].type", "unknown reset type 'drop'"),
    ("check field unknown", setter("checks.0.colour", 1), "checks[0].colour", "in traffic-share check"),
    ("check message missing", setter("checks.0.message", DELETE), "checks[0].message", "missing required"),
    ("check debug missing", setter("checks.1.debug", DELETE), "checks[1].debug", "missing required"),
    ("share not a number", setter("checks.0.share", "10%"), "checks[0].share", "expected a number"),
    ("share above one", setter("checks.0.share", 10), "checks[0].share", "must be at most 1"),
    ("timeout not a number", setter("checks.0.timeout_seconds", "soon"), "checks[0].timeout_seconds", ""),
    (
        "debug unknown name",
        setter("checks.0.debug", "{{ observed }}"),
        "checks[0].debug",
        "unknown name 'observed'",
    ),
    ("debug of another type", setter("checks.1.debug", "{{ matched }}"), "checks[1].debug", "'matched'"),
    (
        "unknown metric label",
        setter("checks.0.select.user", "test"),
        "checks[0].select.user",
        "unknown metric label 'user'",
    ),
    ("empty selector", setter("checks.0.match", {}), "checks[0].match", "non-empty mapping"),
    (
        "duplicate check names",
        setter("checks.1.name", "share"),
        "checks[1].name",
        "duplicate check name 'share'",
    ),
    (
        "unknown suite",
        setter(
            "checks.1",
            {
                "type": "splitdim-conformance",
                "name": "n",
                "via": "gateway/x",
                "suites": ["api", "stress"],
                "message": "m",
                "debug": "{{ failures }}",
            },
        ),
        "checks[1].suites[1]",
        "unknown suite 'stress'",
    ),
    ("attempts zero", setter("checks.1.attempts", 0), "checks[1].attempts", "must be at least 1"),
    ("bool for string", setter("checks.1.headers", {"user": True}), "checks[1].headers.user", "(quote it)"),
    (
        "bad via",
        setter("actions.1.via", "svc/demo"),
        "actions[1].via",
        "expected a reference like 'service/NAME'",
    ),
    ("negative rate", setter("actions.1.streams.0.rate", -1), "actions[1].streams[0].rate", "greater than 0"),
    ("rate not a number", setter("actions.1.streams.0.rate", "fast"), "actions[1].streams[0].rate", "number"),
    ("GET with body", setter("actions.1.streams.0.body", {"a": 1}), "actions[1].streams[0].body", "no body"),
    (
        "duplicate stream",
        setter("actions.1.streams.1", {"name": "clear", "path": "/", "rate": 1}),
        "actions[1].streams[1].name",
        "duplicate stream name 'clear'",
    ),
    (
        "relative path",
        setter("actions.1.streams.0.path", "api/clear"),
        "actions[1].streams[0].path",
        "absolute",
    ),
    (
        "placeholder where none is rendered",
        setter("actions.1.streams.0.path", "/api/{{ namespace }}"),
        "actions[1].streams[0].path",
        "placeholders are not allowed",
    ),
    (
        "unknown method",
        setter("actions.1.streams.0.method", "FETCH"),
        "actions[1].streams[0].method",
        "FETCH",
    ),
    (
        "kinds and workloads",
        setter("actions.0.workloads", ["deployment/demo"]),
        "actions[0]",
        "exactly one of",
    ),
    ("neither kinds nor workloads", setter("actions.0.kinds", DELETE), "actions[0]", "exactly one of"),
    ("unknown workload kind", setter("actions.0.kinds", ["DaemonSet"]), "actions[0].kinds[0]", "DaemonSet"),
    (
        "unknown ref kind",
        setter("reset.0.objects.1", "secret/demo"),
        "reset[0].objects[1]",
        "expected a reference",
    ),
    (
        "reset manifests set a namespace",
        setter("reset.1.manifests", "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: y}\n"),
        "reset[1].manifests[0].metadata.namespace",
        "must not be set",
    ),
    (
        "bad JSON body",
        setter("checks.1.expect_json", {1: "a"}),
        "checks[1].expect_json.1",
        "expected a string",
    ),
] + [(name, setter("manifests", value), path, message) for name, value, path, message in MANIFEST_CASES]


@pytest.mark.parametrize(("mutate", "field", "message"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_broken_field_names_file_and_field(tmp_path: Path, mutate: Callable, field: str, message: str) -> None:
    data = valid_step()
    mutate(data)
    path = write_step(tmp_path, data)
    with pytest.raises(ContentError) as raised:
        load_steps(tmp_path)
    assert str(raised.value).startswith(f"{path}: {field}: "), str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: demo\ntitle: [unclosed\n", "not valid YAML: line 3"),
        ("id: demo\ntitle: A\ntitle: B\n", "duplicate key 'title'"),
        ("- id: demo\n", "expected a mapping (step), got a list"),
        ("", "expected a mapping (step), got nothing"),
    ],
)
def test_broken_yaml_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "01-demo.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError, match=re.escape(message)) as raised:
        load_steps(tmp_path)
    assert str(raised.value).startswith(f"{path}: ")


def test_bad_file_name(tmp_path: Path) -> None:
    write_step(tmp_path, valid_step(), name="1-demo.yaml")
    with pytest.raises(ContentError, match=re.escape(f"{tmp_path / '1-demo.yaml'}: step files must be named")):
        load_steps(tmp_path)


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a step", encoding="utf-8")
    with pytest.raises(ContentError, match="no step files"):
        load_steps(tmp_path)


def test_duplicate_ids(tmp_path: Path) -> None:
    write_step(tmp_path, valid_step())
    second = valid_step() | {"order": 2}
    write_step(tmp_path, second, name="02-demo.yaml")
    with pytest.raises(ContentError) as raised:
        load_steps(tmp_path)
    assert str(raised.value) == f"{tmp_path / '02-demo.yaml'}: id: 'demo' is also used by {tmp_path / '01-demo.yaml'}"


def test_duplicate_orders(tmp_path: Path) -> None:
    write_step(tmp_path, valid_step())
    write_step(tmp_path, valid_step() | {"id": "other"}, name="01-other.yaml")
    with pytest.raises(ContentError) as raised:
        load_steps(tmp_path)
    assert str(raised.value) == f"{tmp_path / '01-other.yaml'}: order: 1 is also used by {tmp_path / '01-demo.yaml'}"


def test_steps_are_ordered_by_order(tmp_path: Path) -> None:
    write_step(tmp_path, valid_step() | {"id": "late", "order": 10}, name="10-late.yaml")
    write_step(tmp_path, valid_step() | {"id": "early", "order": 2}, name="02-early.yaml")
    assert [step.id for step in load_steps(tmp_path)] == ["early", "late"]


def test_packaged_paths_are_shown_relative_to_the_project() -> None:
    with pytest.raises(ContentError) as raised:
        load_step(CONTENT_DIR / "99-missing.yaml")
    assert str(raised.value).startswith("labsteps/content/99-missing.yaml: cannot read")
