"""Server-side Table rendering: column sets and cells as kube-apiserver prints them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox import catalog, tables
from sandbox.tables import human_age, to_table, wants_table

NOW = datetime(2026, 11, 26, 14, 30, 0, tzinfo=UTC)


def ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, ago: timedelta = timedelta(minutes=5), **extra: object) -> dict:
    return {
        "name": name,
        "namespace": "lab",
        "uid": f"uid-{name}",
        "resourceVersion": "42",
        "creationTimestamp": ts(ago),
        **extra,
    }


def rt(group: str, plural: str) -> catalog.ResourceType:
    return catalog.get(group, plural)


def table_of(group: str, plural: str, *objects: dict) -> dict:
    return to_table(rt(group, plural), list(objects), "100", NOW)


def cells_by_name(table: dict, row: int = 0) -> dict:
    names = [c["name"] for c in table["columnDefinitions"]]
    cells = table["rows"][row]["cells"]
    assert len(cells) == len(names)
    return dict(zip(names, cells, strict=True))


def running(name: str, ready: bool = True, restarts: int = 0) -> dict:
    return {
        "name": name,
        "ready": ready,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ts(timedelta(minutes=5))}},
    }


READY_CONDITIONS = [
    {"type": "PodScheduled", "status": "True"},
    {"type": "Initialized", "status": "True"},
    {"type": "ContainersReady", "status": "True"},
    {"type": "Ready", "status": "True"},
]


def injected_pod() -> dict:
    """Classic Istio layout: istio-proxy is a second regular container, istio-init ran first."""
    return {
        "metadata": meta("splitdim-58c48cf87b-wgdfp", labels={"app": "splitdim"}),
        "spec": {
            "nodeName": "sandbox",
            "initContainers": [{"name": "istio-init", "image": "proxyv2"}],
            "containers": [
                {"name": "splitdim", "image": "splitdim"},
                {"name": "istio-proxy", "image": "proxyv2"},
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": READY_CONDITIONS,
            "initContainerStatuses": [
                {
                    "name": "istio-init",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
            "containerStatuses": [running("splitdim"), running("istio-proxy")],
            "podIP": "127.0.0.12",
            "podIPs": [{"ip": "127.0.0.12"}],
        },
    }


def native_sidecar_pod() -> dict:
    """Istio 1.27+ layout: istio-proxy is an init container with restartPolicy Always."""
    return {
        "metadata": meta("kvstore-0", labels={"app": "kvstore"}),
        "spec": {
            "initContainers": [
                {"name": "istio-validation", "image": "proxyv2"},
                {"name": "istio-proxy", "image": "proxyv2", "restartPolicy": "Always"},
            ],
            "containers": [{"name": "kvstore", "image": "kvstore"}],
        },
        "status": {
            "phase": "Running",
            "conditions": READY_CONDITIONS,
            "initContainerStatuses": [
                {
                    "name": "istio-validation",
                    "ready": True,
                    "state": {"terminated": {"exitCode": 0}},
                },
                running("istio-proxy"),
            ],
            "containerStatuses": [running("kvstore")],
            "podIPs": [{"ip": "127.0.0.13"}],
        },
    }


# ---- Accept header and ages ----------------------------------------------------------------------


def test_wants_table_matches_kubectl_get_accept_header() -> None:
    kubectl = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
        "application/json"
    )
    assert wants_table(kubectl)
    assert not wants_table("application/json")
    assert not wants_table("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io")
    assert tables.TABLE_ACCEPT_MARKER == "as=Table"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=-3), "<invalid>"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119.9), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(seconds=121), "2m1s"),
        (timedelta(minutes=5, seconds=3), "5m3s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=10, seconds=59), "10m"),
        (timedelta(minutes=179, seconds=59), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=1), "3h1m"),
        (timedelta(hours=7, minutes=59, seconds=59), "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=8, minutes=30), "8h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(hours=49), "2d1h"),
        (timedelta(days=7, hours=23, minutes=59), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=729, hours=23), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=731), "2y1d"),
        (timedelta(days=365 * 8 - 1), "7y364d"),
        (timedelta(days=365 * 8), "8y"),
        (timedelta(days=365 * 20 + 100), "20y"),
    ],
)
def test_human_age_matches_kubectl_duration_rules(delta: timedelta, expected: str) -> None:
    assert human_age(delta) == expected


# ---- pods ----------------------------------------------------------------------------------------


def test_pod_columns_and_row_object_shape() -> None:
    table = table_of("", "pods", injected_pod())
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "100"}
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    for col in table["columnDefinitions"]:
        assert set(col) == {"name", "type", "format", "description", "priority"}
    obj = table["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata"
    assert obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"] == meta("splitdim-58c48cf87b-wgdfp", labels={"app": "splitdim"})
    assert "conditions" not in table["rows"][0]
    json.dumps(table)  # JSON-able


def test_injected_pod_is_two_of_two() -> None:
    row = cells_by_name(table_of("", "pods", injected_pod()))
    assert row == {
        "Name": "splitdim-58c48cf87b-wgdfp",
        "Ready": "2/2",
        "Status": "Running",
        "Restarts": "0",
        "Age": "5m",
        "IP": "127.0.0.12",
        "Node": "sandbox",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }


def test_native_sidecar_counts_restartable_init_container() -> None:
    row = cells_by_name(table_of("", "pods", native_sidecar_pod()))
    assert (row["Ready"], row["Status"], row["IP"], row["Node"]) == (
        "2/2",
        "Running",
        "127.0.0.13",
        "<none>",
    )


def test_native_sidecar_not_yet_started_counts_in_total_only() -> None:
    pod = native_sidecar_pod()
    pod["status"]["phase"] = "Pending"
    pod["status"]["conditions"] = [{"type": "Initialized", "status": "False"}]
    pod["status"]["initContainerStatuses"][1] = {
        "name": "istio-proxy",
        "ready": False,
        "started": False,
        "state": {"waiting": {"reason": "PodInitializing"}},
    }
    pod["status"]["containerStatuses"] = [
        {
            "name": "kvstore",
            "ready": False,
            "state": {"waiting": {"reason": "PodInitializing"}},
        }
    ]
    row = cells_by_name(table_of("", "pods", pod))
    assert (row["Ready"], row["Status"]) == ("0/2", "Init:1/2")


def test_image_pull_backoff_pod() -> None:
    pod = injected_pod()
    pod["status"]["phase"] = "Pending"
    pod["status"]["containerStatuses"][0] = {
        "name": "splitdim",
        "ready": False,
        "restartCount": 0,
        "state": {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": "Back-off pulling image",
            }
        },
    }
    row = cells_by_name(table_of("", "pods", pod))
    assert (row["Ready"], row["Status"]) == ("1/2", "ImagePullBackOff")


def test_restarts_sum_with_last_restart_age() -> None:
    pod = injected_pod()
    pod["status"]["containerStatuses"][0]["restartCount"] = 2
    pod["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "finishedAt": ts(timedelta(minutes=3))}
    }
    pod["status"]["containerStatuses"][1]["restartCount"] = 1
    assert cells_by_name(table_of("", "pods", pod))["Restarts"] == "3 (3m ago)"


def test_terminating_pod() -> None:
    pod = injected_pod()
    pod["metadata"]["deletionTimestamp"] = ts(timedelta(seconds=1))
    assert cells_by_name(table_of("", "pods", pod))["Status"] == "Terminating"


def test_completed_pod_reason_and_row_condition() -> None:
    pod = {
        "metadata": meta("seed-abc"),
        "spec": {"containers": [{"name": "curl", "image": "curl"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "curl",
                    "ready": False,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        },
    }
    table = table_of("", "pods", pod)
    assert (cells_by_name(table)["Ready"], cells_by_name(table)["Status"]) == (
        "0/1",
        "Completed",
    )
    assert table["rows"][0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"waiting": {"reason": "ErrImagePull"}}, "Init:ErrImagePull"),
        ({"waiting": {"reason": "PodInitializing"}}, "Init:0/1"),
        ({"terminated": {"exitCode": 1}}, "Init:ExitCode:1"),
        ({"terminated": {"exitCode": 2, "reason": "Error"}}, "Init:Error"),
        ({"running": {}}, "Init:0/1"),
    ],
)
def test_init_container_status(state: dict, expected: str) -> None:
    pod = injected_pod()
    pod["status"]["phase"] = "Pending"
    pod["status"]["conditions"] = [{"type": "Initialized", "status": "False"}]
    pod["status"]["initContainerStatuses"][0]["state"] = state
    assert cells_by_name(table_of("", "pods", pod))["Status"] == expected


def test_status_reason_and_readiness_gates() -> None:
    pod = injected_pod()
    pod["status"]["reason"] = "Evicted"
    pod["status"]["phase"] = "Failed"
    pod["status"]["containerStatuses"] = []
    pod["spec"]["readinessGates"] = [
        {"conditionType": "example.com/lb"},
        {"conditionType": "example.com/dns"},
    ]
    pod["status"]["conditions"] = [
        *READY_CONDITIONS,
        {"type": "example.com/lb", "status": "True"},
    ]
    row = cells_by_name(table_of("", "pods", pod))
    assert (row["Status"], row["Ready"], row["Readiness Gates"]) == (
        "Evicted",
        "0/2",
        "1/2",
    )


# ---- workloads -----------------------------------------------------------------------------------


def template(*containers: tuple[str, str]) -> dict:
    return {
        "metadata": {"labels": {"app": "splitdim"}},
        "spec": {"containers": [{"name": n, "image": i} for n, i in containers]},
    }


def test_deployment_row() -> None:
    deploy = {
        "metadata": meta("splitdim", timedelta(days=2, hours=2)),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "splitdim"}},
            "template": template(("splitdim", "localhost/splitdim:latest")),
        },
        "status": {
            "replicas": 2,
            "readyReplicas": 1,
            "updatedReplicas": 2,
            "availableReplicas": 1,
        },
    }
    table = table_of("apps", "deployments", deploy)
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
    ]
    assert table["rows"][0]["cells"] == [
        "splitdim",
        "1/2",
        2,
        1,
        "2d2h",
        "splitdim",
        "localhost/splitdim:latest",
        "app=splitdim",
    ]


def test_deployment_selector_expressions_and_defaults() -> None:
    deploy = {
        "metadata": meta("web"),
        "spec": {
            "selector": {
                "matchLabels": {"tier": "front", "app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "template": template(("web", "nginx"), ("istio-proxy", "proxyv2")),
        },
    }
    row = cells_by_name(table_of("apps", "deployments", deploy))
    assert row["Ready"] == "0/1"  # spec.replicas defaults to 1, status is still empty
    assert (row["Up-to-date"], row["Available"]) == (0, 0)
    assert row["Containers"] == "web,istio-proxy"
    assert row["Images"] == "nginx,proxyv2"
    assert row["Selector"] == "app=web,!canary,env in (dev,prod),tier=front"


def test_statefulset_row() -> None:
    sts = {
        "metadata": meta("kvstore", timedelta(hours=21)),
        "spec": {"replicas": 1, "template": template(("kvstore", "localhost/kvstore"))},
        "status": {"readyReplicas": 1},
    }
    table = table_of("apps", "statefulsets", sts)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Age",
        "Containers",
        "Images",
    ]
    assert table["rows"][0]["cells"] == [
        "kvstore",
        "1/1",
        "21h",
        "kvstore",
        "localhost/kvstore",
    ]


def test_replicaset_row() -> None:
    rs = {
        "metadata": meta("splitdim-58c48cf87b"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "splitdim", "pod-template-hash": "58c48cf87b"}},
            "template": template(("splitdim", "splitdim")),
        },
        "status": {"replicas": 1, "readyReplicas": 1},
    }
    row = cells_by_name(table_of("apps", "replicasets", rs))
    assert row == {
        "Name": "splitdim-58c48cf87b",
        "Desired": 1,
        "Current": 1,
        "Ready": 1,
        "Age": "5m",
        "Containers": "splitdim",
        "Images": "splitdim",
        "Selector": "app=splitdim,pod-template-hash=58c48cf87b",
    }
    empty = cells_by_name(table_of("apps", "replicasets", {"metadata": meta("bare"), "spec": {}}))
    assert (empty["Desired"], empty["Current"], empty["Selector"]) == (1, 0, "<none>")


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_completions", "expected_duration"),
    [
        (
            {
                "succeeded": 1,
                "startTime": ts(timedelta(minutes=4)),
                "completionTime": ts(timedelta(minutes=3, seconds=30)),
                "conditions": [{"type": "Complete", "status": "True"}],
            },
            "Complete",
            "1/1",
            "30s",
        ),
        ({"active": 1, "startTime": ts(timedelta(minutes=4))}, "Running", "0/1", "4m"),
        (
            {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]},
            "Failed",
            "0/1",
            "",
        ),
        (
            {"conditions": [{"type": "Complete", "status": "False"}]},
            "Running",
            "0/1",
            "",
        ),
    ],
)
def test_job_row(
    status: dict,
    expected_status: str,
    expected_completions: str,
    expected_duration: str,
) -> None:
    job = {
        "metadata": meta("seed"),
        "spec": {
            "completions": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "x"}},
            "template": template(("curl", "curl")),
        },
        "status": status,
    }
    row = cells_by_name(table_of("batch", "jobs", job))
    assert (row["Status"], row["Completions"], row["Duration"]) == (
        expected_status,
        expected_completions,
        expected_duration,
    )
    assert row["Selector"] == "batch.kubernetes.io/controller-uid=x"


# ---- services and endpoints ----------------------------------------------------------------------


def service(name: str, spec: dict, status: dict | None = None) -> dict:
    return {
        "metadata": meta(name, timedelta(minutes=21)),
        "spec": spec,
        "status": status or {},
    }


def test_splitdim_istio_loadbalancer_line() -> None:
    svc = service(
        "splitdim-istio",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.110.216.108",
            "clusterIPs": ["10.110.216.108"],
            "ports": [
                {
                    "name": "status-port",
                    "port": 15021,
                    "nodePort": 31840,
                    "protocol": "TCP",
                },
                {"name": "http", "port": 80, "nodePort": 30726, "protocol": "TCP"},
            ],
            "selector": {"gateway.networking.k8s.io/gateway-name": "splitdim"},
        },
        {"loadBalancer": {"ingress": [{"ip": "10.110.216.108", "ipMode": "VIP"}]}},
    )
    table = table_of("", "services", svc)
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]
    assert table["rows"][0]["cells"] == [
        "splitdim-istio",
        "LoadBalancer",
        "10.110.216.108",
        "10.110.216.108",
        "15021:31840/TCP,80:30726/TCP",
        "21m",
        "gateway.networking.k8s.io/gateway-name=splitdim",
    ]


def test_loadbalancer_pending_then_sorted_ingress_plus_external_ips() -> None:
    spec = {
        "type": "LoadBalancer",
        "clusterIPs": ["10.0.0.9"],
        "ports": [{"port": 80, "nodePort": 30001}],
    }
    pending = cells_by_name(table_of("", "services", service("lb", spec, {"loadBalancer": {}})))
    assert pending["External-IP"] == "<pending>"
    ingress = {
        "loadBalancer": {
            "ingress": [
                {"ip": "127.0.0.9"},
                {"hostname": "lb.example"},
                {"ip": "127.0.0.2"},
            ]
        }
    }
    spec_with_external = {**spec, "externalIPs": ["192.0.2.1"]}
    row = cells_by_name(table_of("", "services", service("lb", spec_with_external, ingress)))
    assert row["External-IP"] == "127.0.0.2,127.0.0.9,lb.example,192.0.2.1"
    assert row["Port(s)"] == "80:30001/TCP"  # protocol defaults to TCP


def test_clusterip_headless_and_externalname_services() -> None:
    plain = service(
        "splitdim",
        {
            "type": "ClusterIP",
            "clusterIPs": ["10.96.0.20"],
            "ports": [{"port": 80, "protocol": "TCP"}],
            "selector": {"app": "splitdim"},
        },
    )
    headless = service("kvstore", {"clusterIP": "None", "ports": [{"port": 8081, "protocol": "TCP"}]})
    external = service("ext", {"type": "ExternalName", "externalName": "example.org"})
    table = table_of("", "services", plain, headless, external)
    assert table["rows"][0]["cells"][1:5] == [
        "ClusterIP",
        "10.96.0.20",
        "<none>",
        "80/TCP",
    ]
    assert table["rows"][0]["cells"][6] == "app=splitdim"
    assert table["rows"][1]["cells"][1:5] == ["ClusterIP", "None", "<none>", "8081/TCP"]
    assert table["rows"][1]["cells"][6] == "<none>"
    assert table["rows"][2]["cells"][1:5] == [
        "ExternalName",
        "<none>",
        "example.org",
        "<none>",
    ]


def endpoints(*subsets: dict) -> dict:
    return {"metadata": meta("splitdim"), "subsets": list(subsets)}


def test_endpoints_cells() -> None:
    port = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    two = endpoints({"addresses": [{"ip": "127.0.0.5"}, {"ip": "127.0.0.6"}], "ports": port})
    assert table_of("", "endpoints", two)["rows"][0]["cells"] == [
        "splitdim",
        "127.0.0.5:8080,127.0.0.6:8080",
        "5m",
    ]
    three = endpoints({"addresses": [{"ip": f"127.0.0.{i}"} for i in (5, 6, 7)], "ports": port})
    assert (
        cells_by_name(table_of("", "endpoints", three))["Endpoints"] == "127.0.0.5:8080,127.0.0.6:8080,127.0.0.7:8080"
    )
    five = endpoints({"addresses": [{"ip": f"127.0.0.{i}"} for i in range(5, 10)], "ports": port})
    assert cells_by_name(table_of("", "endpoints", five))["Endpoints"] == (
        "127.0.0.5:8080,127.0.0.6:8080,127.0.0.7:8080 + 2 more..."
    )
    two_ports = endpoints(
        {
            "addresses": [{"ip": "127.0.0.5"}, {"ip": "127.0.0.6"}],
            "ports": [{"port": 80}, {"port": 15090}],
        }
    )
    assert cells_by_name(table_of("", "endpoints", two_ports))["Endpoints"] == (
        "127.0.0.5:80,127.0.0.6:80,127.0.0.5:15090 + 1 more..."
    )
    headless = endpoints({"addresses": [{"ip": "127.0.0.8"}]})
    assert cells_by_name(table_of("", "endpoints", headless))["Endpoints"] == "127.0.0.8"
    assert cells_by_name(table_of("", "endpoints", endpoints()))["Endpoints"] == "<none>"
    not_ready = endpoints({"notReadyAddresses": [{"ip": "127.0.0.5"}], "ports": port})
    assert cells_by_name(table_of("", "endpoints", not_ready))["Endpoints"] == ""


# ---- the rest of core/v1 -------------------------------------------------------------------------


def test_namespace_configmap_secret_serviceaccount_rows() -> None:
    ns = {"metadata": meta("lab", timedelta(days=3)), "status": {"phase": "Active"}}
    assert table_of("", "namespaces", ns)["rows"][0]["cells"] == ["lab", "Active", "3d"]
    cm = {
        "metadata": meta("splitdim-config"),
        "data": {"KVSTORE_MODE": "kvstore", "KVSTORE_ADDR": "x"},
    }
    cm_table = table_of("", "configmaps", cm)
    assert [c["name"] for c in cm_table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert cm_table["rows"][0]["cells"] == ["splitdim-config", 2, "5m"]
    secret = {
        "metadata": meta("tls"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "eA==", "tls.key": "eQ=="},
    }
    secret_table = table_of("", "secrets", secret)
    assert [c["name"] for c in secret_table["columnDefinitions"]] == [
        "Name",
        "Type",
        "Data",
        "Age",
    ]
    assert secret_table["rows"][0]["cells"] == ["tls", "kubernetes.io/tls", 2, "5m"]
    sa = {"metadata": meta("default"), "secrets": [{"name": "old-token"}]}
    sa_table = table_of("", "serviceaccounts", sa)
    assert [c["name"] for c in sa_table["columnDefinitions"]] == ["Name", "Age"]
    assert sa_table["rows"][0]["cells"] == ["default", "5m"]


def test_persistentvolumeclaim_rows() -> None:
    bound = {
        "metadata": meta("log-kvstore-0"),
        "spec": {
            "volumeName": "pvc-123",
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
        },
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        },
    }
    pending = {
        "metadata": meta("pending", annotations={"volume.beta.kubernetes.io/storage-class": "legacy"}),
        "spec": {"storageClassName": "standard"},
        "status": {"phase": "Pending"},
    }
    table = table_of("", "persistentvolumeclaims", bound, pending)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
        "VolumeAttributesClass",
        "Age",
        "VolumeMode",
    ]
    assert table["rows"][0]["cells"] == [
        "log-kvstore-0",
        "Bound",
        "pvc-123",
        "1Gi",
        "RWO,RWX",
        "standard",
        "<unset>",
        "5m",
        "Filesystem",
    ]
    assert table["rows"][1]["cells"] == [
        "pending",
        "Pending",
        "",
        "",
        "",
        "legacy",
        "<unset>",
        "5m",
        "<unset>",
    ]


def test_event_rows() -> None:
    event = {
        "metadata": meta("splitdim.1", timedelta(minutes=10)),
        "involvedObject": {
            "kind": "Pod",
            "name": "splitdim-abc",
            "fieldPath": "spec.containers{splitdim}",
        },
        "reason": "Pulled",
        "message": "  Container image already present  \n",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "sandbox"},
        "firstTimestamp": ts(timedelta(minutes=10)),
        "lastTimestamp": ts(timedelta(minutes=2)),
        "count": 3,
    }
    new_style = {
        "metadata": meta("splitdim.2"),
        "involvedObject": {"kind": "Deployment"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up",
        "type": "Normal",
        "eventTime": "2026-11-26T14:29:00.000001Z",
        "reportingComponent": "deployment-controller",
    }
    table = table_of("", "events", event, new_style)
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    assert table["rows"][0]["cells"] == [
        "2m",
        "Normal",
        "Pulled",
        "pod/splitdim-abc",
        "spec.containers{splitdim}",
        "kubelet, sandbox",
        "Container image already present",
        "10m",
        3,
        "splitdim.1",
    ]
    # eventTime is a MicroTime; 59.999999s truncates to 59s as in Go.
    assert table["rows"][1]["cells"] == [
        "59s",
        "Normal",
        "ScalingReplicaSet",
        "deployment",
        "",
        "deployment-controller",
        "Scaled up",
        "59s",
        1,
        "splitdim.2",
    ]


# ---- custom resources ----------------------------------------------------------------------------


def test_gateway_programmed_columns() -> None:
    gateway = {
        "metadata": meta("splitdim"),
        "spec": {"gatewayClassName": "istio"},
        "status": {
            "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted"},
                {"type": "Programmed", "status": "True", "reason": "Programmed"},
            ],
        },
    }
    fresh = {
        "metadata": meta("waiting"),
        "spec": {"gatewayClassName": "istio"},
        "status": {"conditions": [{"type": "Programmed", "status": "Unknown", "reason": "Pending"}]},
    }
    table = table_of("gateway.networking.k8s.io", "gateways", gateway, fresh)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Class", "string"),
        ("Address", "string"),
        ("Programmed", "string"),
        ("Age", "date"),
    ]
    assert table["rows"][0]["cells"] == ["splitdim", "istio", "127.0.0.1", "True", "5m"]
    assert table["rows"][1]["cells"] == [
        "waiting",
        "istio",
        None,
        "Unknown",
        "5m",
    ]  # missing → empty cell


def test_gateway_addresses_star_joins_every_value() -> None:
    gateway = {
        "metadata": meta("two"),
        "status": {"addresses": [{"value": "127.0.0.1"}, {"value": "127.0.0.2"}]},
    }
    row = cells_by_name(table_of("gateway.networking.k8s.io", "gateways", gateway))
    assert (row["Class"], row["Address"], row["Programmed"]) == (
        None,
        "127.0.0.1,127.0.0.2",
        None,
    )


def test_gatewayclass_age_sits_before_priority_one_description() -> None:
    gc = {
        "metadata": {"name": "istio", "creationTimestamp": ts(timedelta(hours=1))},
        "spec": {
            "controllerName": "istio.io/gateway-controller",
            "description": "The default Istio GatewayClass",
        },
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
    }
    table = table_of("gateway.networking.k8s.io", "gatewayclasses", gc)
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0),
        ("Controller", 0),
        ("Accepted", 0),
        ("Age", 0),
        ("Description", 1),
    ]
    assert table["rows"][0]["cells"] == [
        "istio",
        "istio.io/gateway-controller",
        "True",
        "60m",
        "The default Istio GatewayClass",
    ]


def test_list_valued_columns_print_as_json_like_kubectl() -> None:
    vs = {
        "metadata": meta("kvstore-500"),
        "spec": {
            "hosts": ["kvstore"],
            "http": [{"fault": {"abort": {"httpStatus": 500}}}],
        },
    }
    row = cells_by_name(table_of("networking.istio.io", "virtualservices", vs))
    assert (row["Gateways"], row["Hosts"]) == (None, '["kvstore"]')
    route = {
        "metadata": meta("splitdim"),
        "spec": {"hostnames": ["splitdim.example", "api.example"]},
    }
    assert cells_by_name(table_of("gateway.networking.k8s.io", "httproutes", route))["Hostnames"] == (
        '["splitdim.example","api.example"]'
    )


def test_istio_gateway_has_only_name_and_age() -> None:
    table = table_of("networking.istio.io", "gateways", {"metadata": meta("gw")})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["gw", "5m"]


def test_peerauthentication_and_authorizationpolicy_columns() -> None:
    pa = {"metadata": meta("default"), "spec": {"mtls": {"mode": "STRICT"}}}
    assert table_of("security.istio.io", "peerauthentications", pa)["rows"][0]["cells"] == [
        "default",
        "STRICT",
        "5m",
    ]
    ap = {"metadata": meta("deny"), "spec": {}}
    assert table_of("security.istio.io", "authorizationpolicies", ap)["rows"][0]["cells"] == [
        "deny",
        None,
        "5m",
    ]


def test_typed_custom_columns() -> None:
    custom = catalog.ResourceType(
        "example.com",
        ("v1",),
        "widgets",
        "Widget",
        builtin=False,
        columns=(
            catalog.Column("Replicas", ".spec.replicas", type="integer"),
            catalog.Column("Enabled", ".spec.enabled", type="boolean"),
            catalog.Column("Since", ".status.since", type="date"),
            catalog.Column("Wrong", ".spec.name", type="integer"),
            catalog.Column("Flag", ".spec.enabled"),
        ),
    )
    widget = {
        "metadata": meta("w"),
        "spec": {"replicas": 3, "enabled": True, "name": "x"},
        "status": {"since": ts(timedelta(hours=2))},
    }
    row = cells_by_name(to_table(custom, [widget], "1", NOW))
    assert row == {
        "Name": "w",
        "Replicas": 3,
        "Enabled": True,
        "Since": "120m",
        "Wrong": None,
        "Flag": "true",
        "Age": "5m",
    }


# ---- row objects and coverage of every served type ---------------------------------------------


def test_include_object_modes() -> None:
    pod = injected_pod()
    pod["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    pod["metadata"]["annotations"] = {"a": "b"}
    partial = to_table(rt("", "pods"), [pod], "7", NOW)["rows"][0]["object"]["metadata"]
    assert "managedFields" not in partial
    assert partial["annotations"] == {"a": "b"}
    assert (partial["uid"], partial["resourceVersion"]) == (
        "uid-splitdim-58c48cf87b-wgdfp",
        "42",
    )
    partial["labels"]["app"] = "changed"
    assert pod["metadata"]["labels"]["app"] == "splitdim"  # the row does not alias the stored object
    full = to_table(rt("", "pods"), [pod], "7", NOW, include_object="Object")["rows"][0]["object"]
    assert full == pod
    bare = to_table(rt("", "pods"), [pod], "7", NOW, include_object="None")["rows"][0]
    assert "object" not in bare


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    table = to_table(rt("", "namespaces"), [{"metadata": meta("lab")}], "1", naive)
    assert table["rows"][0]["cells"][2] == "5m"


@pytest.mark.parametrize("resource", catalog.RESOURCES, ids=lambda r: r.qualified)
def test_every_type_renders_one_cell_per_column(resource: catalog.ResourceType) -> None:
    bare = {"metadata": {"name": "x"}}
    table = to_table(resource, [bare, {"metadata": meta("y")}], "3", NOW)
    width = len(table["columnDefinitions"])
    assert width >= 2
    assert all(len(row["cells"]) == width for row in table["rows"])
    names = [c["name"] for c in table["columnDefinitions"]]
    assert "Name" in names
    assert "Age" in names or resource.plural == "events"
    age_index = names.index("Age") if "Age" in names else names.index("Last Seen")
    assert table["rows"][0]["cells"][age_index] == "<unknown>"  # no creationTimestamp
    json.loads(json.dumps(table))
