"""Validation before anything is sent: the lab's own manifests pass, bad ones fail with line and object."""

from __future__ import annotations

import textwrap

import pytest

from labsteps import pipeline, schemas
from labsteps.content import render
from labsteps.pipeline import Invalid, validate
from labsteps.steps import all_steps, context, manifests_text

NS = "mc-alice"

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 80
"""


def problems_of(text: str, namespace: str = NS) -> list[pipeline.Problem]:
    with pytest.raises(Invalid) as caught:
        validate(textwrap.dedent(text), namespace)
    return caught.value.problems


@pytest.mark.parametrize("step", all_steps(), ids=lambda step: step.id)
def test_every_steps_manifests_and_reset_manifests_validate(step) -> None:
    objects = validate(manifests_text(step, NS), NS)
    assert len(objects) == len(step.render_manifests(NS))
    assert all(obj["metadata"]["namespace"] == NS for obj in objects)
    for op in step.reset:
        if op.type == "apply":
            assert validate(render(op.params["manifests"], context(NS)), NS)


def test_objects_come_in_dependency_order_with_the_namespace_forced() -> None:
    text = manifests_text(next(s for s in all_steps() if s.id == "deploy-splitdim"), NS)
    route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n"
    gateway = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: mc-alice}\n"
        "spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}\n"
    )
    objects = validate(f"{route}---\n{text}---\n{gateway}", NS)
    kinds = [obj["kind"] for obj in objects]
    assert kinds == ["ConfigMap", "Service", "Service", "StatefulSet", "Deployment", "Gateway", "HTTPRoute"]
    assert {obj["metadata"]["namespace"] for obj in objects} == {NS}


def test_empty_text_is_no_objects() -> None:
    assert validate("", NS) == []
    assert validate("---\n# only a comment\n---\n", NS) == []


BAD = [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n", 4, None, "YAML syntax error"),
    ("apiVersion: v1\nkind: ConfigMap\nkind: Service\nmetadata: {name: x}\n", 3, None, "duplicate key 'kind'"),
    ("a: &big [1, 2]\nb: *big\n", 1, None, "aliases"),
    ("- just\n- a list\n", 1, None, "not a Kubernetes object"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", 1, None, "apiVersion, kind and metadata.name"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n", 1, "Secret/token", "Secrets are not allowed"),
    (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin}\n",
        1,
        "ClusterRole/admin",
        "cluster-wide kind",
    ),
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n", 1, "Namespace/other", "cluster-wide kind"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", 1, "Pod/p", "kind Pod is not allowed"),
    (
        SERVICE.replace("  name: web\n", "  name: web\n  namespace: kube-system\n"),
        5,
        "Service/web",
        "objects must stay in your namespace mc-alice (this one names kube-system)",
    ),
    (SERVICE.replace("v1", "v2"), 1, "Service/web", "apiVersion v2 is not accepted for Service"),
    (SERVICE.replace("name: web", "name: Web_1"), 1, "Service/Web_1", "metadata.name must be lowercase"),
    (SERVICE.replace("port: 80", "port: eighty"), 7, "Service/web", "spec.ports[0].port: 'eighty' is not of type"),
    (SERVICE.replace("  ports:", "  portz:"), 6, "Service/web", "'portz' was unexpected"),
    (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\n"
        "spec:\n  mtls:\n    mode: STRICTT\n",
        6,
        "PeerAuthentication/default",
        "spec.mtls.mode: 'STRICTT' is not one of",
    ),
    (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
        "  gatewayClassName: istio\n",
        5,
        "Gateway/g",
        "'listeners' is a required property",
    ),
    (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n"
        "    - backendRefs:\n        - name: web\n          namespace: kube-system\n          port: 80\n",
        8,
        "HTTPRoute/r",
        "objects must stay in your namespace",
    ),
    (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n"
        "    - backendRefs:\n        - name: web\n",
        7,
        "HTTPRoute/r",
        "needs its port",
    ),
    (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [kv]\n"
        "  http:\n    - fault:\n        abort:\n          percentage: {value: 10}\n",
        7,
        "VirtualService/v",
        "needs a route",
    ),
    (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec:\n      hostNetwork: true\n"
        "      containers: [{name: c, image: i}]\n",
        9,
        "Deployment/d",
        "hostNetwork is not allowed",
    ),
]


@pytest.mark.parametrize(("text", "line", "obj", "fragment"), BAD, ids=[case[3] for case in BAD])
def test_problems_name_the_line_the_object_and_the_reason(text: str, line: int, obj: str | None, fragment: str) -> None:
    problems = problems_of(text)
    assert any(p.line == line and p.object == obj and fragment in p.message for p in problems), problems


def test_every_problem_is_reported_at_once_and_nothing_is_returned() -> None:
    text = SERVICE + "---\n" + SERVICE + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
    problems = problems_of(text)
    assert [(p.line, p.object) for p in problems] == [(9, "Service/web"), (17, "Secret/s")]
    assert "appears twice (first on line 1)" in problems[0].message
    with pytest.raises(Invalid, match=r"^The manifests have 2 problems; nothing was applied\. line 9 Service/web"):
        validate(text, NS)


def test_size_and_count_limits() -> None:
    big = "# " + "x" * pipeline.MAX_MANIFEST_BYTES + "\n"
    with pytest.raises(Invalid) as caught:
        validate(big, NS)
    assert caught.value.status == 413 and "the limit is 256 KiB" in str(caught.value)
    many = "---\n".join(SERVICE.replace("name: web", f"name: web{i}") for i in range(pipeline.MAX_OBJECTS + 1))
    with pytest.raises(Invalid, match="a step applies at most 50"):
        validate(many, NS)


def test_built_in_schemas_are_those_of_kubernetes_1_32_and_load_offline() -> None:
    assert schemas.kubernetes_version() == "1.32"
    assert (schemas._schema_dir() / "deployment-apps-v1.json").is_file()
    assert schemas.problems({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}, NS) == []
