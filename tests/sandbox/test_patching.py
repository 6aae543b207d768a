"""Patch semantics: merge patch, strategic merge patch, JSON patch and server-side apply ownership."""

from __future__ import annotations

import copy
import json

import pytest

from sandbox.patching import (
    ApplyConflict,
    PatchError,
    apply,
    conflict_causes,
    conflict_message,
    json_patch,
    merge_patch,
    record_update,
    strategic_merge_patch,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(replicas: int = 2, image: str = "splitdim:1", **extra_spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "lab", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
            **extra_spec,
        },
    }


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


# ----------------------------------------------------------------------------------------------------
# merge patch (RFC 7386)
# ----------------------------------------------------------------------------------------------------

MERGE_CASES = [
    ("replace scalar", {"a": "b"}, {"a": "c"}, {"a": "c"}),
    ("add key", {"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ("null deletes", {"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ("null on missing key", {"a": "b"}, {"x": None}, {"a": "b"}),
    ("nested merge", {"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ("lists replaced", {"a": [{"name": "x", "v": 1}]}, {"a": [{"name": "x"}]}, {"a": [{"name": "x"}]}),
    ("map over scalar", {"a": "x"}, {"a": {"b": "c"}}, {"a": {"b": "c"}}),
    ("scalar over map", {"a": {"b": "c"}}, {"a": "x"}, {"a": "x"}),
    ("nulls inside new map are dropped", {}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ("empty patch", {"a": 1}, {}, {"a": 1}),
    ("$ keys are plain keys", {}, {"$patch": "delete"}, {"$patch": "delete"}),
    (
        "kubectl label",
        {"metadata": {"name": "lab", "labels": {"kubernetes.io/metadata.name": "lab"}}},
        {"metadata": {"labels": {"istio-injection": "enabled"}}},
        {
            "metadata": {
                "name": "lab",
                "labels": {"kubernetes.io/metadata.name": "lab", "istio-injection": "enabled"},
            }
        },
    ),
    (
        "kubectl label key-",
        {"metadata": {"labels": {"a": "1", "istio-injection": "enabled"}}},
        {"metadata": {"labels": {"istio-injection": None}}},
        {"metadata": {"labels": {"a": "1"}}},
    ),
]


@pytest.mark.parametrize(("target", "patch", "expected"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_patch(target: dict, patch: dict, expected: dict) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == before


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target, patch = {"keep": {"x": [1]}}, {"new": {"y": [2]}}
    result = merge_patch(target, patch)
    result["keep"]["x"].append(9)
    result["new"]["y"].append(9)
    assert target == {"keep": {"x": [1]}} and patch == {"new": {"y": [2]}}


def test_merge_patch_rejects_non_object() -> None:
    with pytest.raises(PatchError, match="JSON object"):
        merge_patch({}, ["a"])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# strategic merge patch
# ----------------------------------------------------------------------------------------------------

POD_SPEC = {
    "containers": [
        {
            "name": "web",
            "image": "a",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
            "volumeMounts": [
                {"mountPath": "/data", "name": "data"},
                {"mountPath": "/etc/cfg", "name": "cfg"},
            ],
            "args": ["--a", "--b"],
        },
        {"name": "sidecar", "image": "proxy:1"},
    ],
    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
    "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
}


def pod(spec: dict | None = None, **meta: object) -> dict:
    return {"metadata": {"name": "p", **meta}, "spec": copy.deepcopy(spec if spec is not None else POD_SPEC)}


def with_spec(change: dict) -> dict:
    """POD_SPEC after a plain-dict update of the given top-level keys."""
    return {**copy.deepcopy(POD_SPEC), **change}


def web(**change: object) -> dict:
    return {**copy.deepcopy(POD_SPEC["containers"][0]), **change}


SIDECAR = POD_SPEC["containers"][1]

SMP_CASES = [
    (
        "containers merge by name",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}]}},
        pod(with_spec({"containers": [web(), {"name": "sidecar", "image": "proxy:2"}]})),
    ),
    (
        "new container appended",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "debug", "image": "busybox"}]}},
        pod(with_spec({"containers": [web(), SIDECAR, {"name": "debug", "image": "busybox"}]})),
    ),
    (
        "env merges by name",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]}},
        pod(
            with_spec(
                {
                    "containers": [
                        web(
                            env=[
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "3"},
                                {"name": "C", "value": "4"},
                            ]
                        ),
                        SIDECAR,
                    ]
                }
            )
        ),
    ),
    (
        "container ports merge by containerPort",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 9090, "protocol": "TCP"}]}]}},
        pod(
            with_spec(
                {
                    "containers": [
                        web(
                            ports=[
                                {"containerPort": 80, "name": "http"},
                                {"containerPort": 9090, "name": "metrics", "protocol": "TCP"},
                            ]
                        ),
                        SIDECAR,
                    ]
                }
            )
        ),
    ),
    (
        "volumeMounts merge by mountPath",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "web", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}]}},
        pod(
            with_spec(
                {
                    "containers": [
                        web(
                            volumeMounts=[
                                {"mountPath": "/data", "name": "data", "readOnly": True},
                                {"mountPath": "/etc/cfg", "name": "cfg"},
                            ]
                        ),
                        SIDECAR,
                    ]
                }
            )
        ),
    ),
    (
        "volumes merge by name",
        "Pod",
        pod(),
        {"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "cfg2"}}]}},
        pod(
            with_spec(
                {
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg2"}},
                    ]
                }
            )
        ),
    ),
    (
        "tolerations are atomic",
        "Pod",
        pod(),
        {"spec": {"tolerations": [{"key": "b", "operator": "Equal", "value": "x"}]}},
        pod(with_spec({"tolerations": [{"key": "b", "operator": "Equal", "value": "x"}]})),
    ),
    (
        "args are atomic",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "web", "args": ["--c"]}]}},
        pod(with_spec({"containers": [web(args=["--c"]), SIDECAR]})),
    ),
    (
        "initContainers, ephemeralContainers and imagePullSecrets merge by name",
        "Pod",
        pod(
            {
                "initContainers": [{"name": "init", "image": "a"}],
                "ephemeralContainers": [{"name": "dbg", "image": "a"}],
                "imagePullSecrets": [{"name": "reg"}],
            }
        ),
        {
            "spec": {
                "initContainers": [{"name": "init", "image": "b"}],
                "ephemeralContainers": [{"name": "dbg2", "image": "c"}],
                "imagePullSecrets": [{"name": "reg2"}],
            }
        },
        pod(
            {
                "initContainers": [{"name": "init", "image": "b"}],
                "ephemeralContainers": [{"name": "dbg", "image": "a"}, {"name": "dbg2", "image": "c"}],
                "imagePullSecrets": [{"name": "reg"}, {"name": "reg2"}],
            }
        ),
    ),
    (
        "Service spec.ports merge by port",
        "Service",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}},
        {"spec": {"ports": [{"port": 80, "name": "http"}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443, "targetPort": 8443}]}},
    ),
    (
        "ports elsewhere are atomic (Endpoints subsets)",
        "Endpoints",
        {"subsets": [{"addresses": [{"ip": "127.0.0.5"}], "ports": [{"port": 80}, {"port": 81}]}]},
        {"subsets": [{"addresses": [{"ip": "127.0.0.6"}], "ports": [{"port": 80}]}]},
        {"subsets": [{"addresses": [{"ip": "127.0.0.6"}], "ports": [{"port": 80}]}]},
    ),
    (
        "spec.ports of a non-Service kind is atomic",
        "Pod",
        {"spec": {"ports": [{"port": 80, "x": 1}, {"port": 81}]}},
        {"spec": {"ports": [{"port": 80, "y": 2}]}},
        {"spec": {"ports": [{"port": 80, "y": 2}]}},
    ),
    (
        "conditions merge by type",
        "Deployment",
        {
            "status": {
                "conditions": [
                    {"type": "Available", "status": "False"},
                    {"type": "Progressing", "status": "True"},
                ]
            }
        },
        {"status": {"conditions": [{"type": "Available", "status": "True"}]}},
        {
            "status": {
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "True"},
                ]
            }
        },
    ),
    (
        "ownerReferences merge by uid",
        "ReplicaSet",
        {"metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}]}},
        {"metadata": {"ownerReferences": [{"uid": "u2", "name": "b"}, {"uid": "u1", "controller": True}]}},
        {
            "metadata": {
                "ownerReferences": [
                    {"uid": "u1", "name": "a", "controller": True},
                    {"uid": "u2", "name": "b"},
                ]
            }
        },
    ),
    (
        "finalizers merge as a set",
        "Pod",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
        {"metadata": {"finalizers": ["a", "b", "c"]}},
    ),
    (
        "$deleteFromPrimitiveList removes values before the merge",
        "Pod",
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "c"], "finalizers": ["d"]}},
        {"metadata": {"finalizers": ["b", "d"]}},
    ),
    (
        "$patch: delete removes a list item by key",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
        pod(with_spec({"containers": [web()]})),
    ),
    (
        "$patch: replace replaces the whole list",
        "Pod",
        pod(),
        {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}},
        pod(with_spec({"containers": [{"name": "only", "image": "x"}]})),
    ),
    (
        "$patch: merge in a list is the default merge",
        "Pod",
        pod(),
        {"spec": {"containers": [{"$patch": "merge"}, {"name": "web", "image": "b"}]}},
        pod(with_spec({"containers": [web(image="b"), SIDECAR]})),
    ),
    (
        "$patch: replace on a map",
        "Deployment",
        deployment(),
        {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "app": "web2", "gone": None}}}}},
        {
            **deployment(),
            "spec": {
                **deployment()["spec"],
                "template": {**deployment()["spec"]["template"], "metadata": {"labels": {"app": "web2"}}},
            },
        },
    ),
    (
        "$patch: delete on a map empties it",
        "Pod",
        {"metadata": {"name": "p", "annotations": {"a": "1"}}},
        {"metadata": {"annotations": {"$patch": "delete"}}},
        {"metadata": {"name": "p", "annotations": {}}},
    ),
    (
        "$patch: merge on a map merges",
        "Pod",
        {"metadata": {"annotations": {"a": "1"}}},
        {"metadata": {"annotations": {"$patch": "merge", "b": "2"}}},
        {"metadata": {"annotations": {"a": "1", "b": "2"}}},
    ),
    (
        "$retainKeys drops what the patch does not keep (strategy to Recreate)",
        "Deployment",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
    ),
    (
        "$setElementOrder reorders a keyed list",
        "Pod",
        pod(),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "debug"}, {"name": "sidecar"}, {"name": "web"}],
                "containers": [{"name": "debug", "image": "busybox"}],
            }
        },
        pod(with_spec({"containers": [{"name": "debug", "image": "busybox"}, SIDECAR, web()]})),
    ),
    (
        "$setElementOrder keeps server-only items in their original place",
        "Pod",
        {"spec": {"containers": [{"name": "a"}, {"name": "srv"}, {"name": "b"}]}},
        {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
        {"spec": {"containers": [{"name": "srv"}, {"name": "b"}, {"name": "a"}]}},
    ),
    (
        "$setElementOrder on a set list",
        "Pod",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}},
        {"metadata": {"finalizers": ["c", "b", "a"]}},
    ),
    (
        "unknown $ keys are dropped, nested too",
        "Pod",
        {"metadata": {"name": "p"}},
        {"$future": 1, "metadata": {"labels": {"$x": "y", "a": "1"}}},
        {"metadata": {"name": "p", "labels": {"a": "1"}}},
    ),
    (
        "null deletes; nulls in new items are dropped",
        "Pod",
        pod(),
        {"spec": {"tolerations": None, "containers": [{"name": "new", "image": "x", "command": None}]}},
        pod(
            {
                "containers": [web(), SIDECAR, {"name": "new", "image": "x"}],
                "volumes": POD_SPEC["volumes"],
            }
        ),
    ),
    (
        "kubectl apply (2nd run): last-applied annotation and replicas",
        "Deployment",
        {**deployment(), "metadata": {**deployment()["metadata"], "annotations": {LAST_APPLIED: "{old}"}}},
        {"metadata": {"annotations": {LAST_APPLIED: "{new}"}}, "spec": {"replicas": 3}},
        {
            **deployment(replicas=3),
            "metadata": {**deployment()["metadata"], "annotations": {LAST_APPLIED: "{new}"}},
        },
    ),
    (
        "kubectl rollout restart adds template annotations",
        "Deployment",
        deployment(),
        {
            "spec": {
                "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T14:01:00Z"}}}
            }
        },
        {
            **deployment(),
            "spec": {
                **deployment()["spec"],
                "template": {
                    "metadata": {
                        "labels": {"app": "web"},
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T14:01:00Z"},
                    },
                    "spec": deployment()["spec"]["template"]["spec"],
                },
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("kind", "target", "patch", "expected"), [c[1:] for c in SMP_CASES], ids=[c[0] for c in SMP_CASES]
)
def test_strategic_merge_patch(kind: str, target: dict, patch: dict, expected: dict) -> None:
    before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    assert strategic_merge_patch(target, patch, kind) == expected
    assert target == before and patch == patch_before


def test_strategic_merge_patch_top_level_directives() -> None:
    assert strategic_merge_patch({"a": 1}, {"$patch": "delete"}, "Pod") == {}
    assert strategic_merge_patch({"a": 1}, {"$patch": "replace", "b": 2}, "Pod") == {"b": 2}


SMP_ERRORS = [
    ("unknown map directive", {"spec": {"$patch": "explode"}}, "unknown \\$patch directive 'explode'"),
    (
        "unknown list directive",
        {"spec": {"containers": [{"$patch": "explode"}]}},
        "unknown \\$patch directive",
    ),
    (
        "delete without merge key",
        {"spec": {"containers": [{"$patch": "delete"}]}},
        "needs the merge key 'name'",
    ),
    ("item without merge key", {"spec": {"containers": [{"image": "x"}]}}, "merge key 'name'"),
    ("non-object item in keyed list", {"spec": {"containers": ["web"]}}, "merge key 'name'"),
    (
        "delete in atomic list",
        {"spec": {"tolerations": [{"key": "a", "$patch": "delete"}]}},
        "replaced as a whole",
    ),
    ("delete in set list", {"metadata": {"finalizers": [{"$patch": "delete"}]}}, "deleteFromPrimitiveList"),
    ("retainKeys not a list", {"spec": {"$retainKeys": "type"}}, "must be a list of strings"),
    (
        "patch key outside retainKeys",
        {"spec": {"$retainKeys": ["a"], "b": 1}},
        "not present in the \\$retainKeys",
    ),
    (
        "deleteFromPrimitiveList not a list",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        "must be a list",
    ),
]


@pytest.mark.parametrize(("patch", "message"), [c[1:] for c in SMP_ERRORS], ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_patch_errors(patch: dict, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(pod(), patch, "Pod")


# ----------------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)
# ----------------------------------------------------------------------------------------------------

DOC = {"metadata": {"labels": {"a/b": "1", "m~n": "2"}}, "spec": {"replicas": 2, "items": ["x", "y"]}}
LABELS = DOC["metadata"]


def doc(**spec: object) -> dict:
    """DOC with `spec` replaced."""
    return {"metadata": copy.deepcopy(LABELS), "spec": spec}


JSON_PATCH_CASES = [
    (
        "add member",
        [{"op": "add", "path": "/spec/paused", "value": True}],
        doc(replicas=2, items=["x", "y"], paused=True),
    ),
    (
        "add replaces member",
        [{"op": "add", "path": "/spec/replicas", "value": 5}],
        doc(replicas=5, items=["x", "y"]),
    ),
    (
        "add inserts at index",
        [{"op": "add", "path": "/spec/items/1", "value": "z"}],
        doc(replicas=2, items=["x", "z", "y"]),
    ),
    (
        "add appends with -",
        [{"op": "add", "path": "/spec/items/-", "value": "z"}],
        doc(replicas=2, items=["x", "y", "z"]),
    ),
    (
        "add at end index",
        [{"op": "add", "path": "/spec/items/2", "value": "z"}],
        doc(replicas=2, items=["x", "y", "z"]),
    ),
    ("remove member", [{"op": "remove", "path": "/spec/replicas"}], doc(items=["x", "y"])),
    ("remove index", [{"op": "remove", "path": "/spec/items/0"}], doc(replicas=2, items=["y"])),
    (
        "replace member",
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        doc(replicas=3, items=["x", "y"]),
    ),
    (
        "replace index",
        [{"op": "replace", "path": "/spec/items/1", "value": "q"}],
        doc(replicas=2, items=["x", "q"]),
    ),
    (
        "escaped ~1 and ~0",
        [
            {"op": "remove", "path": "/metadata/labels/a~1b"},
            {"op": "remove", "path": "/metadata/labels/m~0n"},
        ],
        {"metadata": {"labels": {}}, "spec": DOC["spec"]},
    ),
    (
        "move",
        [{"op": "move", "from": "/spec/replicas", "path": "/spec/count"}],
        doc(items=["x", "y"], count=2),
    ),
    (
        "move within array",
        [{"op": "move", "from": "/spec/items/0", "path": "/spec/items/-"}],
        doc(replicas=2, items=["y", "x"]),
    ),
    (
        "copy",
        [{"op": "copy", "from": "/spec/items", "path": "/spec/copy"}],
        doc(replicas=2, items=["x", "y"], copy=["x", "y"]),
    ),
    ("test passes, 2 == 2.0", [{"op": "test", "path": "/spec/replicas", "value": 2.0}], DOC),
    (
        "test then replace",
        [
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 4},
        ],
        doc(replicas=4, items=["x", "y"]),
    ),
    ("replace whole document", [{"op": "replace", "path": "", "value": {"x": 1}}], {"x": 1}),
]


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in JSON_PATCH_CASES], ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(ops: list, expected: dict) -> None:
    before = copy.deepcopy(DOC)
    assert json_patch(DOC, ops) == expected
    assert DOC == before


JSON_PATCH_ERRORS = [
    ("remove missing", [{"op": "remove", "path": "/spec/nope"}], "path '/spec/nope' does not exist"),
    (
        "replace missing",
        [{"op": "replace", "path": "/spec/nope", "value": 1}],
        "path '/spec/nope' does not exist",
    ),
    (
        "add under missing parent",
        [{"op": "add", "path": "/nope/x", "value": 1}],
        "path '/nope' does not exist",
    ),
    ("add under scalar", [{"op": "add", "path": "/spec/replicas/x", "value": 1}], "not an object or array"),
    (
        "index with leading zero",
        [{"op": "add", "path": "/spec/items/01", "value": 1}],
        "'01' is not a valid array index",
    ),
    ("index out of range", [{"op": "add", "path": "/spec/items/3", "value": 1}], "index 3 is out of range"),
    ("remove at length", [{"op": "remove", "path": "/spec/items/2"}], "index 2 is out of range"),
    (
        "dash is only for add",
        [{"op": "replace", "path": "/spec/items/-", "value": 1}],
        "'-' is not a valid array index",
    ),
    (
        "failed test",
        [{"op": "test", "path": "/spec/replicas", "value": 3}],
        "test failed: value at '/spec/replicas' is 2, expected 3",
    ),
    ("test is type strict", [{"op": "test", "path": "/spec/paused", "value": 1}], "does not exist"),
    ("unknown op", [{"op": "frobnicate", "path": "/a"}], "unknown operation 'frobnicate'"),
    ("missing value", [{"op": "add", "path": "/a"}], "missing 'value'"),
    ("missing path", [{"op": "remove"}], "missing or invalid 'path'"),
    ("missing from", [{"op": "copy", "path": "/a"}], "missing or invalid 'from'"),
    ("no op", [{"path": "/a"}], "operation 0 must be an object with an 'op' string"),
    ("pointer without slash", [{"op": "remove", "path": "spec"}], "must start with '/'"),
    ("move into own child", [{"op": "move", "from": "/spec", "path": "/spec/inner"}], "into its own child"),
    ("remove root", [{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ("root becomes non-object", [{"op": "replace", "path": "", "value": [1]}], "must be a JSON object"),
    (
        "second op fails",
        [{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}],
        "operation 1 \\(remove\\)",
    ),
]


@pytest.mark.parametrize(("ops", "message"), [c[1:] for c in JSON_PATCH_ERRORS], ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(ops: list, message: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(PatchError, match=message):
        json_patch(DOC, ops)
    assert DOC == before


def test_json_patch_test_distinguishes_bool_from_number() -> None:
    with pytest.raises(PatchError, match="test failed"):
        json_patch({"a": True}, [{"op": "test", "path": "/a", "value": 1}])
    assert json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}


def test_json_patch_rejects_non_list() -> None:
    with pytest.raises(PatchError, match="list of operations"):
        json_patch({}, {"op": "add"})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# server-side apply and managedFields
# ----------------------------------------------------------------------------------------------------

T1, T2, T3 = "2026-11-26T14:00:00Z", "2026-11-26T14:01:00Z", "2026-11-26T14:02:00Z"


def entries(obj: dict) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def fields(obj: dict, manager: str, operation: str = "Apply") -> dict:
    return entries(obj)[(manager, operation)]["fieldsV1"]


def owns(obj: dict, manager: str, *path: str, operation: str = "Apply") -> bool:
    node = fields(obj, manager, operation)
    for key in path:
        if key not in node:
            return False
        node = node[key]
    return True


WEB_KEY = 'k:{"name":"web"}'


def test_apply_create_sets_fields_and_managed_fields() -> None:
    applied = deployment()
    out = apply(None, applied, "lab-console", False, "Deployment", "apps/v1", T1)
    assert {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in applied.items() if k != "metadata"}
    assert out["metadata"]["labels"] == {"app": "web"} and out["metadata"]["name"] == "web"
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "lab-console",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {"f:matchLabels": {"f:app": {}}},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                WEB_KEY: {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {'k:{"containerPort":8080}': {".": {}, "f:containerPort": {}}},
                                }
                            }
                        },
                    },
                },
            },
        }
    ]
    assert "managedFields" not in applied["metadata"]


def test_apply_never_owns_bookkeeping_identity_or_status() -> None:
    applied = deployment()
    applied["metadata"].update(
        uid="u", resourceVersion="7", generation=3, creationTimestamp=T1, managedFields=[{"x": 1}]
    )
    applied["status"] = {"replicas": 2}
    out = apply(None, applied, "m", False, "Deployment", "apps/v1", T1)
    assert set(fields(out, "m")) == {"f:metadata", "f:spec"}
    assert fields(out, "m")["f:metadata"] == {"f:labels": {"f:app": {}}}
    for bookkeeping in ("uid", "resourceVersion", "generation", "creationTimestamp"):
        assert bookkeeping not in out["metadata"]


def test_apply_update_by_same_manager_changes_value_and_time() -> None:
    live = apply(None, deployment(replicas=2), "m", False, "Deployment", "apps/v1", T1)
    out = apply(live, deployment(replicas=4), "m", False, "Deployment", "apps/v1", T2)
    assert out["spec"]["replicas"] == 4
    assert entries(out)[("m", "Apply")]["time"] == T2
    assert live["spec"]["replicas"] == 2  # input untouched


def test_noop_apply_keeps_the_time() -> None:
    live = apply(None, deployment(), "m", False, "Deployment", "apps/v1", T1)
    out = apply(live, deployment(), "m", False, "Deployment", "apps/v1", T2)
    assert out == live


def test_apply_merges_keyed_lists_and_keeps_unapplied_items() -> None:
    live = deployment()
    containers(live).append({"name": "istio-proxy", "image": "proxyv2"})  # injected, owned by nobody
    out = apply(live, deployment(image="splitdim:2"), "m", False, "Deployment", "apps/v1", T1)
    assert [(c["name"], c["image"]) for c in containers(out)] == [
        ("web", "splitdim:2"),
        ("istio-proxy", "proxyv2"),
    ]


def test_same_manager_dropping_a_field_removes_it() -> None:
    first = deployment()
    first["metadata"]["labels"]["tier"] = "front"
    containers(first).append({"name": "extra", "image": "x"})
    live = apply(None, first, "m", False, "Deployment", "apps/v1", T1)
    out = apply(live, deployment(), "m", False, "Deployment", "apps/v1", T2)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert [c["name"] for c in containers(out)] == ["web"]
    assert 'k:{"name":"extra"}' not in fields(out, "m")["f:spec"]["f:template"]["f:spec"]["f:containers"]


def test_dropping_a_whole_map_removes_it_with_unowned_children() -> None:
    first = deployment(strategy={"type": "RollingUpdate"})
    live = apply(None, first, "m", False, "Deployment", "apps/v1", T1)
    live["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "25%"}  # defaulted, owned by nobody
    out = apply(live, deployment(), "m", False, "Deployment", "apps/v1", T2)
    assert "strategy" not in out["spec"]


def test_dropped_field_survives_when_another_manager_owns_it() -> None:
    live = apply(None, deployment(replicas=2), "a", False, "Deployment", "apps/v1", T1)
    live = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}},
        "b",
        False,
        "Deployment",
        "apps/v1",
        T1,
    )
    assert owns(live, "a", "f:spec", "f:replicas") and owns(live, "b", "f:spec", "f:replicas")
    without_replicas = deployment()
    del without_replicas["spec"]["replicas"]
    out = apply(live, without_replicas, "a", False, "Deployment", "apps/v1", T2)
    assert out["spec"]["replicas"] == 2
    assert not owns(out, "a", "f:spec", "f:replicas") and owns(out, "b", "f:spec", "f:replicas")


def test_dropping_a_field_leaves_fields_only_others_wrote() -> None:
    live = record_update(None, deployment(), "kubectl-client-side-apply", "Update", "apps/v1", T1)
    live = apply(
        live,
        {**deployment(), "metadata": {"name": "web", "labels": {"app": "web", "x": "1"}}},
        "m",
        False,
        "Deployment",
        "apps/v1",
        T2,
    )
    out = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
        "m",
        False,
        "Deployment",
        "apps/v1",
        T3,
    )
    assert out["metadata"]["labels"] == {"app": "web"}  # x was only m's; app is still the creator's
    assert out["spec"] == deployment()["spec"]
    assert ("m", "Apply") not in entries(out)  # nothing left to own: the entry goes


def test_conflict_with_another_manager() -> None:
    live = record_update(None, deployment(replicas=2), "kubectl-client-side-apply", "Update", "apps/v1", T1)
    with pytest.raises(ApplyConflict) as info:
        apply(live, deployment(replicas=3), "kubectl", False, "Deployment", "apps/v1", T2)
    assert info.value.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert conflict_message(info.value.conflicts, "apps/v1") == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert conflict_causes(info.value.conflicts, "apps/v1") == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def test_conflict_paths_name_list_items_by_key() -> None:
    live = apply(None, deployment(image="a"), "lab-console", False, "Deployment", "apps/v1", T1)
    with pytest.raises(ApplyConflict) as info:
        apply(live, deployment(image="b", replicas=5), "student", False, "Deployment", "apps/v1", T2)
    assert info.value.conflicts == [
        ("lab-console", ".spec.replicas"),
        ("lab-console", '.spec.template.spec.containers[name="web"].image'),
    ]
    assert conflict_message(info.value.conflicts, "apps/v1") == (
        'Apply failed with 2 conflicts: conflicts with "lab-console" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image'
    )


def test_multi_manager_conflict_message_groups_by_manager() -> None:
    message = conflict_message([("b", ".spec.x"), ("a", ".spec.y"), ("b", ".spec.z")], "v1")
    assert message == (
        'Apply failed with 3 conflicts: conflicts with "a" using v1:\n- .spec.y\n'
        'conflicts with "b" using v1:\n- .spec.x\n- .spec.z'
    )


def test_force_moves_ownership() -> None:
    live = record_update(None, deployment(replicas=2), "kubectl-client-side-apply", "Update", "apps/v1", T1)
    out = apply(live, deployment(replicas=3), "kubectl", True, "Deployment", "apps/v1", T2)
    assert out["spec"]["replicas"] == 3
    assert owns(out, "kubectl", "f:spec", "f:replicas")
    assert not owns(out, "kubectl-client-side-apply", "f:spec", "f:replicas", operation="Update")
    assert owns(out, "kubectl-client-side-apply", "f:spec", "f:selector", operation="Update")
    # The loser's entry keeps its time; the new owner now wins conflicts against the old one.
    assert entries(out)[("kubectl-client-side-apply", "Update")]["time"] == T1
    with pytest.raises(ApplyConflict) as info:
        apply(out, deployment(replicas=2), "other", False, "Deployment", "apps/v1", T3)
    assert info.value.conflicts == [("kubectl", ".spec.replicas")]


def test_two_managers_share_a_field_without_conflict() -> None:
    live = apply(None, deployment(replicas=2), "a", False, "Deployment", "apps/v1", T1)
    out = apply(live, deployment(replicas=2), "b", False, "Deployment", "apps/v1", T2)
    assert owns(out, "a", "f:spec", "f:replicas") and owns(out, "b", "f:spec", "f:replicas")
    with pytest.raises(ApplyConflict) as info:  # now neither can change it alone
        apply(out, deployment(replicas=5), "a", False, "Deployment", "apps/v1", T3)
    assert ("b", ".spec.replicas") in info.value.conflicts


def test_update_takes_ownership_from_an_applier() -> None:
    live = apply(None, deployment(replicas=2), "lab-console", False, "Deployment", "apps/v1", T1)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled = record_update(live, scaled, "kubectl-scale", "Update", "apps/v1", T2)
    assert fields(scaled, "kubectl-scale", "Update") == {"f:spec": {"f:replicas": {}}}
    assert not owns(scaled, "lab-console", "f:spec", "f:replicas")
    with pytest.raises(ApplyConflict) as info:
        apply(scaled, deployment(replicas=2), "lab-console", False, "Deployment", "apps/v1", T3)
    assert info.value.conflicts == [("kubectl-scale", ".spec.replicas")]
    assert (
        apply(scaled, deployment(replicas=2), "lab-console", True, "Deployment", "apps/v1", T3)["spec"]["replicas"] == 2
    )


def test_update_records_added_items_and_forgets_removed_fields() -> None:
    live = apply(None, deployment(), "lab-console", False, "Deployment", "apps/v1", T1)
    new = copy.deepcopy(live)
    containers(new).append({"name": "istio-proxy", "image": "proxyv2"})
    del new["metadata"]["labels"]
    new["status"] = {"replicas": 2}
    out = record_update(live, new, "sandbox-injector", "Update", "apps/v1", T2)
    assert fields(out, "sandbox-injector", "Update") == {
        "f:spec": {
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"istio-proxy"}': {".": {}, "f:image": {}, "f:name": {}}}}
            }
        }
    }
    assert "f:labels" not in fields(out, "lab-console").get("f:metadata", {})
    assert out["status"] == {"replicas": 2}
    assert out["metadata"]["managedFields"] != new["metadata"]["managedFields"]  # new was not touched


def test_update_without_changes_records_nothing() -> None:
    live = apply(None, deployment(), "a", False, "Deployment", "apps/v1", T1)
    out = record_update(live, copy.deepcopy(live), "b", "Update", "apps/v1", T2)
    assert list(entries(out)) == [("a", "Apply")]
    assert out["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_record_update_on_create_owns_everything_but_bookkeeping() -> None:
    obj = deployment()
    obj["metadata"].update(uid="u", resourceVersion="1", creationTimestamp=T1)
    out = record_update(None, obj, "kubectl-client-side-apply", "Update", "apps/v1", T1)
    owned = fields(out, "kubectl-client-side-apply", "Update")
    assert owned["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert owned["f:spec"]["f:replicas"] == {}


def test_status_changes_never_conflict() -> None:
    live = apply(None, deployment(), "a", False, "Deployment", "apps/v1", T1)
    live["status"] = {"replicas": 1}
    out = apply(live, {**deployment(), "status": {"replicas": 9}}, "b", False, "Deployment", "apps/v1", T2)
    assert "f:status" not in fields(out, "b")


def test_managed_fields_order_apply_before_update() -> None:
    live = record_update(None, deployment(), "z-updater", "Update", "apps/v1", T1)
    out = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"x": "1"}}},
        "a-applier",
        False,
        "Deployment",
        "apps/v1",
        T2,
    )
    assert [(e["manager"], e["operation"]) for e in out["metadata"]["managedFields"]] == [
        ("a-applier", "Apply"),
        ("z-updater", "Update"),
    ]


def test_custom_resource_lists_are_atomic() -> None:
    gw = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "lab-gw"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}],
        },
    }
    live = apply(None, gw, "m", False, "Gateway", "gateway.networking.k8s.io/v1", T1)
    assert fields(live, "m")["f:spec"] == {"f:gatewayClassName": {}, "f:listeners": {}}
    changed = copy.deepcopy(gw)
    changed["spec"]["listeners"] = [{"name": "https", "port": 8443, "protocol": "HTTPS"}]
    out = apply(live, changed, "m", False, "Gateway", "gateway.networking.k8s.io/v1", T2)
    assert out["spec"]["listeners"] == [{"name": "https", "port": 8443, "protocol": "HTTPS"}]


def test_set_lists_are_owned_by_value() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["lab/a"]},
        "data": {"k": "v"},
    }
    live = apply(None, cm, "m", False, "ConfigMap", "v1", T1)
    assert fields(live, "m")["f:metadata"] == {"f:finalizers": {'v:"lab/a"': {}}}
    live["metadata"]["finalizers"].append("other/b")
    out = apply(live, {**cm, "metadata": {"name": "c", "finalizers": ["lab/c"]}}, "m", False, "ConfigMap", "v1", T2)
    assert out["metadata"]["finalizers"] == ["other/b", "lab/c"]  # only m's own old value goes
    assert fields(out, "m")["f:metadata"] == {"f:finalizers": {'v:"lab/c"': {}}}


def test_service_ports_are_owned_by_port() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]},
    }
    live = apply(None, svc, "m", False, "Service", "v1", T1)
    assert fields(live, "m")["f:spec"]["f:ports"] == {'k:{"port":80}': {".": {}, "f:port": {}, "f:targetPort": {}}}


def test_apply_null_means_not_applied() -> None:
    applied = deployment()
    applied["spec"]["paused"] = None
    out = apply(None, applied, "m", False, "Deployment", "apps/v1", T1)
    assert "paused" not in out["spec"] and "f:paused" not in fields(out, "m")["f:spec"]


def test_other_managers_entries_round_trip_unchanged() -> None:
    live = record_update(None, deployment(), "creator", "Update", "apps/v1", T1)
    live["metadata"]["managedFields"].append(
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:phase": {}}},
            "subresource": "status",
        }
    )
    out = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"x": "1"}}},
        "m",
        False,
        "Deployment",
        "apps/v1",
        T2,
    )
    by_key = {(e["manager"], e.get("subresource", "")): e for e in out["metadata"]["managedFields"]}
    assert by_key[("kubelet", "status")] == live["metadata"]["managedFields"][-1]
    assert by_key[("creator", "")] == live["metadata"]["managedFields"][0]


APPLY_ERRORS = [
    (
        "keyed item without key",
        {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
        "with a 'name'",
    ),
    (
        "duplicate keys",
        {"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}},
        "with a 'name'",
    ),
]


@pytest.mark.parametrize(("applied", "message"), [c[1:] for c in APPLY_ERRORS], ids=[c[0] for c in APPLY_ERRORS])
def test_apply_errors(applied: dict, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply(None, applied, "m", False, "Deployment", "apps/v1", T1)


def test_managed_fields_are_json_serialisable_round_trip() -> None:
    out = apply(None, deployment(), "m", False, "Deployment", "apps/v1", T1)
    reloaded = json.loads(json.dumps(out))
    assert apply(reloaded, deployment(), "m", False, "Deployment", "apps/v1", T2) == reloaded
