"""The fault control's input rules and the VirtualService it becomes (no Django, no cluster)."""

from __future__ import annotations

import pytest

from demo.faultspec import TARGETS, FaultInvalid, FaultSpec, parse, routes_host, virtual_service
from labsteps import pipeline
from labsteps.content import load_steps


def test_a_valid_abort_and_delay_become_one_rule_for_the_whole_host() -> None:
    spec = parse({"target": "kvstore", "abort_percent": "50", "abort_status": 503, "delay": "2s", "delay_percent": 10})
    assert spec == FaultSpec("kvstore", 50.0, 503, "2s", 10.0)
    vs = virtual_service(spec, 7)
    assert vs["metadata"] == {"name": "demo-fault-kvstore", "labels": {"meshconsole.io/demo-fault": "7"}}
    assert vs["spec"] == {
        "hosts": ["kvstore"],
        "http": [
            {
                "fault": {
                    "abort": {"httpStatus": 503, "percentage": {"value": 50.0}},
                    "delay": {"fixedDelay": "2s", "percentage": {"value": 10.0}},
                },
                "route": [{"destination": {"host": "kvstore"}}],
            }
        ],
    }
    assert spec.summary() == "abort 50% with HTTP 503 and delay 10% by 2s on requests to kvstore"


def test_the_demo_virtual_service_passes_the_lab_pipeline() -> None:
    import yaml

    for target in TARGETS:
        text = yaml.safe_dump(virtual_service(parse({"target": target, "abort_percent": 100}), 1))
        [obj] = pipeline.validate(text, "mcd-x")
        assert obj["metadata"]["namespace"] == "mcd-x"


def test_the_targets_are_services_of_the_lab() -> None:
    services = {
        obj["metadata"]["name"]
        for step in load_steps()
        for obj in step.render_manifests("sample")
        if obj["kind"] == "Service"
    }
    assert set(TARGETS) <= services


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"target": "mysql", "abort_percent": 10}, "target", "kvstore or splitdim"),
        ({"abort_percent": 10}, "target", "Choose the route"),
        ({"target": "kvstore", "abort_percent": 101}, "abort_percent", "from 0 to 100"),
        ({"target": "kvstore", "abort_percent": -1}, "abort_percent", "from 0 to 100"),
        ({"target": "kvstore", "abort_percent": "lots"}, "abort_percent", "must be a number"),
        ({"target": "kvstore", "abort_percent": True}, "abort_percent", "must be a number"),
        ({"target": "kvstore", "abort_percent": "nan"}, "abort_percent", "from 0 to 100"),
        ({"target": "kvstore", "abort_percent": 10, "abort_status": 99}, "abort_status", "from 200 to 599"),
        ({"target": "kvstore", "abort_percent": 10, "abort_status": 700}, "abort_status", "from 200 to 599"),
        ({"target": "kvstore", "abort_percent": 10, "abort_status": "5xx"}, "abort_status", "whole number"),
        ({"target": "kvstore", "abort_percent": 10, "abort_status": 500.5}, "abort_status", "whole number"),
        ({"target": "kvstore", "delay": "2 seconds", "delay_percent": 5}, "delay", "duration such as 2s"),
        ({"target": "kvstore", "delay": "0s", "delay_percent": 5}, "delay", "more than 0"),
        ({"target": "kvstore", "delay": "31s", "delay_percent": 5}, "delay", "at most 30s"),
        ({"target": "kvstore", "delay": "2s"}, "delay_percent", "percentage of requests to delay"),
        ({"target": "kvstore", "delay_percent": 5}, "delay", "Give the delay"),
        ({"target": "kvstore"}, "abort_percent", "Nothing to inject"),
        ({"target": "kvstore", "abort_percent": 0, "delay_percent": 0}, "abort_percent", "Nothing to inject"),
    ],
)
def test_bad_input_names_the_field_and_says_what_is_wrong(data: dict, field: str, words: str) -> None:
    with pytest.raises(FaultInvalid) as caught:
        parse(data)
    assert words in caught.value.problems[field]
    assert str(caught.value).startswith("Nothing was applied")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(FaultInvalid) as caught:
        parse({"target": "x", "abort_percent": 200, "abort_status": 1, "delay": "soon", "delay_percent": 3})
    assert set(caught.value.problems) == {"target", "abort_percent", "abort_status", "delay"}


def test_not_an_object() -> None:
    with pytest.raises(FaultInvalid) as caught:
        parse(["kvstore"])
    assert caught.value.problems == {"form": "Send the fault as a JSON object."}


def test_which_virtual_services_route_a_host() -> None:
    def vs(hosts: list[str], gateways: list[str] | None = None) -> dict:
        spec: dict = {"hosts": hosts}
        if gateways is not None:
            spec["gateways"] = gateways
        return {"metadata": {"name": "x"}, "spec": spec}

    assert routes_host(vs(["kvstore"]), "kvstore", "ns")
    assert routes_host(vs(["kvstore.ns.svc.cluster.local"]), "kvstore", "ns")
    assert routes_host(vs(["kvstore"], ["mesh", "gw"]), "kvstore", "ns")
    assert not routes_host(vs(["kvstore"], ["gw"]), "kvstore", "ns")  # bound to a gateway only
    assert not routes_host(vs(["kvstore.other.svc.cluster.local"]), "kvstore", "ns")
    assert not routes_host(vs(["splitdim"]), "kvstore", "ns")
