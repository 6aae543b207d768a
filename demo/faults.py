"""Injecting a fault and reverting it, namespace by namespace, with a record of what was done where.

Applying, in each target namespace: check the namespace (it exists; a student's carries this class's
label, so a namespace of another class is never touched), take out of the way any VirtualService that
already routes the host (a sidecar applies only one per host, the oldest), recording it first, then
validate and server-side apply the demo's VirtualService through the lab's pipeline. Reverting deletes
the demo's object (only if it is still the demo's: it carries the fault's label) and puts back what was
displaced, unless someone created an object of that name meanwhile. Every write to the cluster is
recorded in `FaultTarget` before it is made, so a revert after a crash or restart is still exact.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from classroom.models import Membership, StudentNamespace
from classroom.namespaces import CLASS_LABEL
from classroom.naming import label_value
from demo import events, namespaces
from demo.faultspec import FAULT_LABEL, FaultSpec, routes_host, virtual_service
from demo.models import DemoNamespace, Fault, FaultTarget
from labsteps import pipeline
from labsteps.cluster import Cluster, ClusterError

log = logging.getLogger(__name__)

TargetState = FaultTarget.State


class Busy(Exception):
    """The demo already has a fault that is not reverted."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"Fault {fault.pk} ({fault.state}) is still in place; revert it first.")
        self.fault = fault


def student_namespaces(demo: DemoNamespace) -> list[str]:
    """Namespaces of the class's students (only students of this class, by membership)."""
    students = Membership.objects.filter(classroom=demo.classroom, role=Membership.Role.STUDENT).values("user_id")
    return list(StudentNamespace.objects.filter(user_id__in=students).order_by("name").values_list("name", flat=True))


def open_fault(demo: DemoNamespace) -> Fault | None:
    return demo.faults.filter(state__in=Fault.OPEN).first()


def create(demo: DemoNamespace, spec: FaultSpec, broadcast: bool, user: Any) -> Fault:
    """Record a new fault and its targets (nothing is applied yet); Busy if one is still open."""
    with transaction.atomic():
        DemoNamespace.objects.select_for_update().get(pk=demo.pk)  # one creator at a time per demo
        current = open_fault(demo)
        if current is not None:
            raise Busy(current)
        fault = Fault.objects.create(
            demo=demo,
            created_by=user,
            target=spec.target,
            abort_percent=spec.abort_percent,
            abort_status=spec.abort_status,
            delay=spec.delay,
            delay_percent=spec.delay_percent,
            broadcast=broadcast,
            task_id=uuid.uuid4().hex,
        )
        names = [(demo.name, True)] + [(name, False) for name in (student_namespaces(demo) if broadcast else [])]
        FaultTarget.objects.bulk_create(
            FaultTarget(fault=fault, namespace=name, is_demo=is_demo, object_name=spec.object_name)
            for name, is_demo in names
        )
    events.announce_fault(fault)
    return fault


class NotRevertable(Exception):
    """The fault is reverted already, or its apply task is still at work."""


# An apply task that has not finished after this long is taken to have died with its worker.
APPLY_STALE = timedelta(minutes=2)


def start_revert(fault: Fault) -> None:
    """Hand the fault to a new revert task (NotRevertable with the reason when it cannot be)."""
    with transaction.atomic():
        current = Fault.objects.select_for_update().get(pk=fault.pk)
        if current.state == Fault.State.REVERTED:
            raise NotRevertable("This fault is reverted already.")
        if current.state == Fault.State.APPLYING and timezone.now() - current.created < APPLY_STALE:
            raise NotRevertable("The fault is still being applied; revert it once it is active.")
        current.state, current.task_id, current.message = Fault.State.REVERTING, uuid.uuid4().hex, "Reverting…"
        current.save(update_fields=["state", "task_id", "message"])
    fault.refresh_from_db()
    events.announce_fault(fault)


def _owned(fault_id: int, task_id: str) -> Fault | None:
    return (
        Fault.objects.select_related("demo__classroom", "demo__instructor").filter(pk=fault_id, task_id=task_id).first()
    )


def _set(fault: Fault, **fields: Any) -> bool:
    """Update the fault while this task owns it, and announce the change."""
    if not Fault.objects.filter(pk=fault.pk, task_id=fault.task_id).update(**fields):
        return False
    for key, value in fields.items():
        setattr(fault, key, value)
    events.announce_fault(fault)
    return True


def _mark(target: FaultTarget, state: str, error: str = "", **fields: Any) -> None:
    target.state, target.error, target.updated = state, error, timezone.now()
    for key, value in fields.items():
        setattr(target, key, value)
    target.save()


# ---- applying ----------------------------------------------------------------------------------------------
def _check_namespace(cluster: Cluster, fault: Fault, target: FaultTarget) -> str:
    """Why the namespace must not get the fault ("" when it may). The demo namespace is created if missing."""
    if target.is_demo:
        namespaces.ensure(fault.demo)
        return ""
    namespace = cluster.get("Namespace", None, target.namespace)
    if namespace is None:
        return "the namespace does not exist in the cluster"
    label = ((namespace.get("metadata") or {}).get("labels") or {}).get(CLASS_LABEL)
    if label != label_value(fault.demo.classroom.slug):
        return f"the namespace is not labelled as one of class {fault.demo.classroom.slug}; it was not touched"
    return ""


def _portable(vs: dict) -> dict:
    """What is needed to create the VirtualService again: name, labels, annotations, spec."""
    meta = vs.get("metadata") or {}
    kept: dict[str, Any] = {"name": meta["name"]}
    for key in ("labels", "annotations"):
        if meta.get(key):
            kept[key] = meta[key]
    return {"apiVersion": vs.get("apiVersion", "networking.istio.io/v1"), "kind": "VirtualService", "metadata": kept,
            "spec": vs.get("spec") or {}}  # fmt: skip


def _apply_one(cluster: Cluster, fault: Fault, spec: FaultSpec, target: FaultTarget) -> None:
    refusal = _check_namespace(cluster, fault, target)
    if refusal:
        _mark(target, TargetState.SKIPPED, refusal)
        return
    manifest = yaml.safe_dump(virtual_service(spec, fault.pk), sort_keys=False)
    objects = pipeline.validate(manifest, target.namespace)  # the lab's own checks, before anything changes
    others = [
        vs
        for vs in cluster.list("VirtualService", target.namespace)
        if vs["metadata"]["name"] != target.object_name and routes_host(vs, spec.target, target.namespace)
    ]
    if others:
        known = {d["metadata"]["name"] for d in target.displaced}
        target.displaced = target.displaced + [_portable(vs) for vs in others if vs["metadata"]["name"] not in known]
        target.save(update_fields=["displaced"])  # recorded before it is deleted
        for vs in others:
            cluster.delete("VirtualService", target.namespace, vs["metadata"]["name"])
    outcome = pipeline.apply_objects(cluster, target.namespace, objects)
    if outcome.error:
        _mark(target, TargetState.FAILED, outcome.error)
    else:
        _mark(target, TargetState.APPLIED)


def apply(fault_id: int, task_id: str) -> None:
    """The apply task's body."""
    fault = _owned(fault_id, task_id)
    if fault is None or fault.state not in (Fault.State.QUEUED, Fault.State.APPLYING):
        return
    if not _set(fault, state=Fault.State.APPLYING, message="Applying…"):
        return
    spec = events.spec_of(fault)
    try:
        with Cluster() as cluster:
            for target in fault.targets.all():
                if not Fault.objects.filter(pk=fault.pk, task_id=task_id).exists():
                    return  # a revert took over
                if target.state == TargetState.APPLIED:
                    continue  # a redelivered task: done already
                try:
                    _apply_one(cluster, fault, spec, target)
                except pipeline.Invalid as exc:
                    _mark(target, TargetState.FAILED, str(exc))
                except ClusterError as exc:
                    _mark(target, TargetState.FAILED, f"the cluster refused: {exc}")
                events.announce_fault(fault)
    except ClusterError as exc:  # no cluster configuration at all
        _set(fault, state=Fault.State.FAILED, message=f"The cluster could not be reached: {exc}")
        return
    targets = list(fault.targets.all())
    applied = [t for t in targets if t.state == TargetState.APPLIED]
    failed = [t for t in targets if t.state in (TargetState.FAILED, TargetState.SKIPPED)]
    if applied:
        message = f"Active: {spec.summary()} in {len(applied)} namespace(s)."
        if failed:
            message += f" Not applied in {len(failed)}: " + "; ".join(f"{t.namespace}: {t.error}" for t in failed)
        _set(fault, state=Fault.State.ACTIVE, message=message, applied_at=timezone.now())
    else:
        reasons = "; ".join(f"{t.namespace}: {t.error}" for t in failed) or "no namespace to apply to"
        _set(fault, state=Fault.State.FAILED, message=f"Not applied anywhere: {reasons}")


# ---- reverting ---------------------------------------------------------------------------------------------
def _revert_one(cluster: Cluster, fault: Fault, target: FaultTarget) -> None:
    current = cluster.get("VirtualService", target.namespace, target.object_name)
    labels = ((current or {}).get("metadata") or {}).get("labels") or {}
    if current is not None and labels.get(FAULT_LABEL) == str(fault.pk):
        cluster.delete("VirtualService", target.namespace, target.object_name)
    notes = []
    for original in target.displaced:
        name = original["metadata"]["name"]
        if cluster.get("VirtualService", target.namespace, name) is not None:
            notes.append(f"VirtualService/{name} exists again (someone re-created it), so it was left as it is")
            continue
        cluster.apply(original, target.namespace)
    _mark(target, TargetState.REVERTED, "; ".join(notes))


def revert(fault_id: int, task_id: str) -> None:
    """The revert task's body."""
    fault = _owned(fault_id, task_id)
    if fault is None or fault.state != Fault.State.REVERTING:
        return
    try:
        with Cluster() as cluster:
            for target in fault.targets.exclude(state__in=(TargetState.REVERTED, TargetState.SKIPPED)):
                try:
                    _revert_one(cluster, fault, target)
                except ClusterError as exc:
                    _mark(target, TargetState.REVERT_FAILED, f"the cluster refused: {exc}")
                events.announce_fault(fault)
    except ClusterError as exc:
        _set(fault, state=Fault.State.FAILED, message=f"Revert failed, the cluster could not be reached: {exc}")
        return
    left = list(fault.targets.filter(state=TargetState.REVERT_FAILED))
    if left:
        reasons = "; ".join(f"{t.namespace}: {t.error}" for t in left)
        _set(
            fault, state=Fault.State.FAILED, message=f"Revert failed in {len(left)} namespace(s): {reasons}. Try again."
        )
    else:
        _set(fault, state=Fault.State.REVERTED, message="Reverted everywhere.", reverted_at=timezone.now())
