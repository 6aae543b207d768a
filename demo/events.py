"""The demo's JSON shapes and its events (through meshconsole.events, the one publish path).

Events go to the instructor's own group and to the class's instructors group, which the demo page's
websocket (/ws/demo/<class>/) listens to; their types start with "demo" so that socket can pick them out.
"""

from __future__ import annotations

from typing import Any

from demo.faultspec import FaultSpec
from demo.models import DemoNamespace, Fault
from meshconsole.events import Event, publish

DEMO_EVENT = "demo"
FAULT_EVENT = "demo.fault"


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def demo_json(demo: DemoNamespace) -> dict[str, Any]:
    return {
        "id": demo.pk,
        "namespace": demo.name,
        "class": demo.classroom.slug,
        "instructor": demo.instructor.get_username(),
        "state": demo.state,
        "message": demo.message,
        "progress": demo.progress,
        "updated": _iso(demo.updated),
    }


def spec_of(fault: Fault) -> FaultSpec:
    return FaultSpec(fault.target, fault.abort_percent, fault.abort_status, fault.delay, fault.delay_percent)


def fault_json(fault: Fault) -> dict[str, Any]:
    targets = list(fault.targets.all())
    return {
        "id": fault.pk,
        "demo": fault.demo_id,
        "target": fault.target,
        "abort_percent": fault.abort_percent,
        "abort_status": fault.abort_status,
        "delay": fault.delay,
        "delay_percent": fault.delay_percent,
        "broadcast": fault.broadcast,
        "summary": spec_of(fault).summary(),
        "state": fault.state,
        "message": fault.message,
        "created": _iso(fault.created),
        "applied_at": _iso(fault.applied_at),
        "reverted_at": _iso(fault.reverted_at),
        "targets": [
            {
                "namespace": t.namespace,
                "is_demo": t.is_demo,
                "object": f"VirtualService/{t.object_name}",
                "state": t.state,
                "error": t.error,
                "displaced": [f"VirtualService/{d['metadata']['name']}" for d in t.displaced],
            }
            for t in targets
        ],
    }


def announce(demo: DemoNamespace) -> None:
    publish(Event(DEMO_EVENT, demo.instructor_id, (demo.classroom.slug,), {"demo": demo_json(demo)}))


def announce_fault(fault: Fault) -> None:
    demo = fault.demo
    publish(Event(FAULT_EVENT, demo.instructor_id, (demo.classroom.slug,), {"fault": fault_json(fault)}))
