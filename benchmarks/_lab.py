"""Shared by the sandbox benchmarks: apply the whole lab to a namespace and wait for its pods."""

from __future__ import annotations

import time

from kubernetes import config
from kubernetes.dynamic import DynamicClient

from labsteps.content import load_steps

MANAGER = "meshconsole-bench"


def client(kubeconfig, cache_file) -> DynamicClient:
    return DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)), cache_file=str(cache_file))


def lab_objects(namespace: str) -> list[dict]:
    """Every object of every step, in step order (later steps update earlier objects, as in the lab)."""
    objects = []
    for step in load_steps():
        objects.extend(step.render_manifests(namespace))
    return objects


def apply_lab(dyn: DynamicClient, namespace: str) -> None:
    ns_api = dyn.resources.get(api_version="v1", kind="Namespace")
    ns_api.server_side_apply(
        body={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}},
        },
        field_manager=MANAGER,
    )
    for obj in lab_objects(namespace):
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        api.server_side_apply(body=obj, namespace=namespace, field_manager=MANAGER, force_conflicts=True)


def pods_ready(dyn: DynamicClient, namespace: str | None, expected: int) -> bool:
    pods = dyn.resources.get(api_version="v1", kind="Pod").get(namespace=namespace).items
    running = [p for p in pods if p.status.phase == "Running"]
    return len(running) >= expected and all(
        any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])) for p in running
    )


def wait_ready(dyn: DynamicClient, namespace: str | None, expected: int, timeout: float = 30.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if pods_ready(dyn, namespace, expected):
            return time.perf_counter() - start
        time.sleep(0.005)
    raise RuntimeError(f"pods in {namespace or 'all namespaces'} not ready within {timeout}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]
