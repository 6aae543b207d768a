"""Checks: the helpers they rest on, and what they report on the sandbox when a step is not done."""

from __future__ import annotations

from collections import Counter

import pytest

from labsteps import bursts, checks
from labsteps.checks import CheckContext, readiness
from labsteps.cluster import Cluster
from labsteps.metrics import Counts, ProxyScrapeSource, parse, promql
from labsteps.pipeline import apply_objects, validate
from labsteps.steps import context, get_step, manifests_text
from tests.conftest import wait_for


def pod(containers: int, ready: list[bool], init: list[tuple[str, bool]] = ()) -> dict:
    """A pod with `containers` app containers (ready as given) and init containers (name, ready)."""
    spec = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    spec["initContainers"] = [
        {"name": name, **({"restartPolicy": "Always"} if name == "istio-proxy" else {})} for name, _ in init
    ]
    status = {
        "containerStatuses": [{"name": f"c{i}", "ready": r} for i, r in enumerate(ready)],
        "initContainerStatuses": [{"name": name, "ready": r} for name, r in init],
    }
    return {"spec": spec, "status": status}


def test_readiness_counts_native_sidecars_like_kubectl() -> None:
    assert readiness(pod(2, [True, True])) == (2, 2)  # the classic sidecar: a second container
    assert readiness(pod(1, [True], [("istio-proxy", True)])) == (2, 2)  # a native sidecar (init, Always)
    assert readiness(pod(1, [True], [("istio-proxy", False)])) == (1, 2)
    assert readiness(pod(1, [True], [("istio-init", False)])) == (1, 1)  # a plain init container does not count


EXPOSITION = """\
# TYPE istio_requests_total counter
istio_requests_total{reporter="destination",destination_workload="splitdim",response_code="200"} 12
istio_requests_total{reporter="destination",destination_workload="splitdim",response_code="500"} 3
istio_requests_total{reporter="source",destination_workload="kvstore",path="a \\"quoted\\" value"} 7
istio_request_duration_milliseconds_bucket{le="5"} 99
"""


def test_prometheus_text_is_parsed_and_counts_filter_by_labels() -> None:
    samples = parse(EXPOSITION, "istio_requests_total")
    assert [value for _, value in samples] == [12, 3, 7]
    assert samples[2][0]["path"] == 'a "quoted" value'
    counts = Counts(samples, 2.0, "q")
    assert counts.total(reporter="destination") == 15
    assert counts.total(response_code=["500", "503"]) == 3
    assert counts.by("destination_workload") == {"splitdim": 15, "kvstore": 7}
    assert promql(60, {"reporter": "source", "destination_workload": ["a", "b"]}) == (
        'sum(increase(istio_requests_total{destination_workload=~"a|b",reporter="source"}[60s]))'
    )


def test_bursts_keep_the_streams_rates_exactly_and_interleaved() -> None:
    streams = [{"name": "normal", "rate": 4}, {"name": "test", "rate": 1}]
    order = [s["name"] for s in bursts.schedule(streams, 120)]
    assert Counter(order) == {"normal": 96, "test": 24}
    assert "test" in order[:10] and "test" in order[-10:]  # spread out, not bunched at one end
    step = get_step("request-routing")
    assert bursts.plan_for(step).via == "gateway/splitdim"
    assert bursts.plan_for(get_step("deploy-splitdim")) is None


# ---- on the sandbox --------------------------------------------------------------------------------------
@pytest.fixture
def ctx(on_sandbox, namespace):
    with Cluster() as cluster:
        yield lambda step_id: CheckContext(
            cluster, namespace, get_step(step_id), context(namespace), ProxyScrapeSource(cluster, sample_seconds=0.2)
        )


@pytest.mark.cluster
def test_checks_fail_with_the_learner_message_and_a_debug_message(ctx, namespace) -> None:
    results = {}
    for step_id in ("preliminaries", "deploy-splitdim", "ingress-gateway"):
        step_ctx = ctx(step_id)
        for check in step_ctx.step.checks:
            results[check.name] = (check, checks.evaluate(step_ctx, check))
    passed = {name for name, (_, result) in results.items() if result.ok}
    assert passed == {
        "Istio control plane and Gateway API are installed",
        "Mesh metrics are reachable",
        "Every running pod has its sidecar",  # an empty namespace is fine in step 1
    }
    for name, (check, result) in results.items():
        if name not in passed:
            assert result.ok is False
            assert result.message == check.render_message(context(namespace)), name
            assert result.debug, name
    assert results["Sidecar injection is enabled for your namespace"][1].debug.startswith(f"labels of {namespace}: {{")
    assert "deployment/splitdim: does not exist" in results["SplitDim and kvstore run with sidecars"][1].debug
    assert results["The Gateway is programmed"][1].debug == "conditions: Gateway splitdim does not exist"
    assert "Service splitdim does not exist" in results["The seeded balances are a 2, b -1, c -1"][1].debug


@pytest.mark.cluster
def test_outside_probe_reaches_kvstore_without_strict_mtls_and_is_cleaned_up(ctx, namespace) -> None:
    step_ctx = ctx("security")
    objects = validate(manifests_text(get_step("deploy-splitdim"), namespace), namespace)
    assert not apply_objects(step_ctx.cluster, namespace, objects).error
    probe = next(c for c in step_ctx.step.checks if c.type == "outside-probe-refused")
    wait_for(lambda: step_ctx.cluster.get("StatefulSet", namespace, "kvstore")["status"].get("readyReplicas"), 20)
    result = checks.evaluate(step_ctx, probe)
    assert result.ok is False  # no PeerAuthentication yet: plain text still gets through
    assert result.debug.startswith("probe exit code 0: [")
    wait_for(lambda: not step_ctx.cluster.list("Job", namespace), 10, what="the probe Job to be deleted")
