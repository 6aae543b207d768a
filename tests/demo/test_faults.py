"""The fault's apply and revert against the sandbox cluster, run in process (the Celery path is covered by
test_demo_stack.py): namespaces that do not carry the class's label are skipped with the reason and
never written to, and revert leaves what others created meanwhile alone."""

from __future__ import annotations

import pytest

from classroom.cluster import ensure_namespace
from classroom.models import Classroom, StudentNamespace
from classroom.namespaces import CLASS_LABEL
from demo import faults
from demo.faultspec import parse
from demo.models import Fault, FaultTarget
from demo.namespaces import demo_for
from labsteps.cluster import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def on_sandbox(settings, sandbox):
    settings.KUBECONFIG = str(sandbox.kubeconfig)
    return sandbox


def run_apply(fault: Fault) -> Fault:
    faults.apply(fault.pk, fault.task_id)
    return Fault.objects.get(pk=fault.pk)


def run_revert(fault: Fault) -> Fault:
    faults.start_revert(fault)
    fault.refresh_from_db()
    faults.revert(fault.pk, fault.task_id)
    return Fault.objects.get(pk=fault.pk)


def names(namespace: str) -> set[str]:
    with Cluster() as cluster:
        return {vs["metadata"]["name"] for vs in cluster.list("VirtualService", namespace)}


def test_a_namespace_labelled_for_another_class_is_skipped_and_untouched(on_sandbox, people) -> None:
    classroom = Classroom.objects.get(slug=people.slug)
    mine = StudentNamespace.objects.get(user=people.student).name
    ensure_namespace(mine, {CLASS_LABEL: people.slug})
    # A second student of this class whose namespace belongs to the other class (they joined it later).
    from classroom.models import Membership

    Membership.objects.create(user=people.other_student, classroom=classroom, role=Membership.Role.STUDENT)
    theirs = StudentNamespace.objects.get(user=people.other_student).name
    ensure_namespace(theirs, {CLASS_LABEL: people.other_slug})

    demo = demo_for(people.instructor, classroom)
    fault = faults.create(demo, parse({"target": "kvstore", "abort_percent": 40}), True, people.instructor)
    fault = run_apply(fault)
    states = {t.namespace: (t.state, t.error) for t in fault.targets.all()}
    assert fault.state == Fault.State.ACTIVE
    assert states[demo.name] == (FaultTarget.State.APPLIED, "")
    assert states[mine] == (FaultTarget.State.APPLIED, "")
    assert states[theirs][0] == FaultTarget.State.SKIPPED and "not labelled as one of class" in states[theirs][1]
    assert f"Not applied in 1: {theirs}" in fault.message
    assert names(theirs) == set() and names(mine) == {"demo-fault-kvstore"}

    # Someone replaces the demo's object by their own of the same name: revert leaves it alone.
    with Cluster() as cluster:
        cluster.delete("VirtualService", mine, "demo-fault-kvstore")
        cluster.apply(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "demo-fault-kvstore"},
                "spec": {"hosts": ["kvstore"], "http": [{"route": [{"destination": {"host": "kvstore"}}]}]},
            },
            mine,
        )
    fault = run_revert(fault)
    assert fault.state == Fault.State.REVERTED
    assert {t.namespace: t.state for t in fault.targets.all()} == {
        demo.name: FaultTarget.State.REVERTED,
        mine: FaultTarget.State.REVERTED,
        theirs: FaultTarget.State.SKIPPED,
    }
    assert names(demo.name) == set() and names(mine) == {"demo-fault-kvstore"}  # not the demo's: kept


def test_a_second_fault_waits_for_the_revert_and_a_revert_needs_an_open_fault(on_sandbox, people) -> None:
    demo = demo_for(people.instructor, Classroom.objects.get(slug=people.slug))
    fault = run_apply(
        faults.create(demo, parse({"target": "splitdim", "delay": "1s", "delay_percent": 20}), False, None)
    )
    assert fault.state == Fault.State.ACTIVE and names(demo.name) == {"demo-fault-splitdim"}
    with pytest.raises(faults.Busy):
        faults.create(demo, parse({"target": "kvstore", "abort_percent": 10}), False, None)
    fault = run_revert(fault)
    assert fault.state == Fault.State.REVERTED and names(demo.name) == set()
    with pytest.raises(faults.NotRevertable):
        faults.start_revert(fault)
    assert faults.create(demo, parse({"target": "kvstore", "abort_percent": 10}), False, None).state == "queued"
