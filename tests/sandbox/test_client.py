"""The official `kubernetes` client (DynamicClient, server-side apply) against the sandbox, for every kind."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

from tests.conftest import wait_for

pytestmark = pytest.mark.cluster

MANAGER = "meshconsole-tests"


def sample_objects() -> list[dict]:
    """One object of each namespaced kind the sandbox serves (names are per kind)."""
    pod_spec = {
        "containers": [{"name": "app", "image": "localhost/kvstore:latest", "ports": [{"containerPort": 8081}]}]
    }
    tpl = {"metadata": {"labels": {"app": "thing"}}, "spec": pod_spec}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "secret"}, "stringData": {"password": "hunter2"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"selector": {"app": "thing"}, "ports": [{"port": 80, "targetPort": 8081}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "manual"},
            "subsets": [{"addresses": [{"ip": "127.1.200.1"}], "ports": [{"port": 80}]}],
        },
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "labels": {"app": "thing"}}, "spec": pod_spec},
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "deploy"},
            "spec": {"selector": {"matchLabels": {"app": "thing"}}, "template": tpl},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "sts"},
            "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "thing"}}, "template": tpl},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "thing"}}, "template": tpl},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "job"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "curl", "image": "curlimages/curl", "args": ["-s", "http://svc/api/list"]}
                        ],
                    }
                },
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 8088, "protocol": "HTTP"}]},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "HTTPRoute",
            "metadata": {"name": "route"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "vs"},
            "spec": {"hosts": ["svc"], "http": [{"route": [{"destination": {"host": "svc"}}]}]},
        },
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": "dr"},
            "spec": {"host": "svc", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
        },
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "Gateway",
            "metadata": {"name": "istio-gw"},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
            },
        },
        {
            "apiVersion": "security.istio.io/v1beta1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default"},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-all"},
            "spec": {"action": "ALLOW", "rules": [{}]},
        },
    ]


@pytest.mark.parametrize("obj", sample_objects(), ids=lambda o: f"{o['apiVersion']}/{o['kind']}")
def test_apply_get_list_watch_delete(dyn, namespace, obj):
    api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    name = obj["metadata"]["name"]

    events = []
    watching = threading.Event()

    def watch() -> None:
        watching.set()
        for ev in api.watch(namespace=namespace, timeout=5):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    watching.wait(5)

    created = api.server_side_apply(body=obj, namespace=namespace, field_manager=MANAGER)
    assert created.metadata.name == name
    assert created.metadata.namespace == namespace
    assert created.metadata.uid and created.metadata.resourceVersion and created.metadata.creationTimestamp
    if set(obj) - {"apiVersion", "kind", "metadata"}:  # like the real server, empty field sets are not recorded
        assert any(m.manager == MANAGER for m in created.metadata.managedFields)

    got = api.get(name=name, namespace=namespace)
    assert got.metadata.uid == created.metadata.uid
    if obj["kind"] == "Secret":
        assert got.data["password"] == "aHVudGVyMg=="  # stringData is stored base64-encoded
    listed = api.get(namespace=namespace)
    assert name in [i.metadata.name for i in listed.items]
    everywhere = api.get()
    assert (namespace, name) in [(i.metadata.namespace, i.metadata.name) for i in everywhere.items]

    # Applying the same object again changes nothing: the stored version stays. A controller may write the
    # object's status between the read and the apply (a Job's pods finishing), so a few tries are allowed; an
    # apply that always writes fails every one.
    for _ in range(3):
        before = api.get(name=name, namespace=namespace).metadata.resourceVersion
        again = api.server_side_apply(body=obj, namespace=namespace, field_manager=MANAGER)
        if again.metadata.resourceVersion == before:
            break
    assert again.metadata.resourceVersion == before
    assert again.metadata.generation == created.metadata.generation

    api.delete(name=name, namespace=namespace)
    with pytest.raises(NotFoundError):
        api.get(name=name, namespace=namespace)
    t.join(10)
    types = [e for e in events if e[1] == name]
    assert types[0] == ("ADDED", name)
    assert types[-1] == ("DELETED", name)


def test_cluster_scoped_kinds(dyn):
    ns = dyn.resources.get(api_version="v1", kind="Namespace")
    names = {i.metadata.name for i in ns.get().items}
    assert {"default", "kube-system", "istio-system"} <= names
    gc = dyn.resources.get(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass").get(name="istio")
    assert gc.spec.controllerName == "istio.io/gateway-controller"
    accepted = [c for c in gc.status.conditions if c.type == "Accepted"]
    assert accepted and accepted[0].status == "True"
    istiod = dyn.resources.get(api_version="apps/v1", kind="Deployment").get(name="istiod", namespace="istio-system")
    assert istiod.status.readyReplicas == 1


def test_field_manager_conflict_and_force(dyn, namespace):
    api = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = sample_objects()[7]
    body = {**body, "spec": {**body["spec"], "replicas": 1}}
    api.server_side_apply(body=body, namespace=namespace, field_manager="alice")
    changed = {**body, "spec": {**body["spec"], "replicas": 2}}
    with pytest.raises(ConflictError) as err:
        api.server_side_apply(body=changed, namespace=namespace, field_manager="bob")
    status = json.loads(err.value.body)
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice" using apps/v1: .spec.replicas'
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    forced = api.server_side_apply(body=changed, namespace=namespace, field_manager="bob", force_conflicts=True)
    assert forced.spec.replicas == 2
    wait_for(lambda: api.get(name="deploy", namespace=namespace).status.readyReplicas == 2, what="2 ready replicas")


def test_apply_requires_field_manager(dyn, namespace):
    api = dyn.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(UnprocessibleEntityError) as err:
        api.server_side_apply(body=sample_objects()[0], namespace=namespace)
    assert "fieldManager: Required value" in json.loads(err.value.body)["message"]
    assert api.get(namespace=namespace).items == []


def test_label_and_field_selectors(dyn, namespace):
    api = dyn.resources.get(api_version="v1", kind="ConfigMap")
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        api.create(
            namespace=namespace,
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}},
        )
    web = api.get(namespace=namespace, label_selector="tier=web")
    assert sorted(i.metadata.name for i in web.items) == ["a", "c"]
    not_web = api.get(namespace=namespace, label_selector="tier notin (web)")
    assert [i.metadata.name for i in not_web.items] == ["b"]
    one = api.get(namespace=namespace, field_selector="metadata.name=b")
    assert [i.metadata.name for i in one.items] == ["b"]


def test_generation_and_resource_version(dyn, namespace):
    api = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = sample_objects()[7]
    first = api.server_side_apply(body=body, namespace=namespace, field_manager=MANAGER)
    assert first.metadata.generation == 1
    labelled = api.patch(
        name="deploy",
        namespace=namespace,
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert labelled.metadata.generation == 1  # metadata-only changes keep the generation
    assert int(labelled.metadata.resourceVersion) > int(first.metadata.resourceVersion)
    scaled = api.patch(
        name="deploy", namespace=namespace, body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert scaled.metadata.generation == 2
    stale = {**body, "metadata": {**body["metadata"], "resourceVersion": first.metadata.resourceVersion}}
    with pytest.raises(ConflictError):
        api.replace(name="deploy", namespace=namespace, body=stale)
    wait_for(
        lambda: api.get(name="deploy", namespace=namespace).status.observedGeneration == 2, what="observedGeneration"
    )
