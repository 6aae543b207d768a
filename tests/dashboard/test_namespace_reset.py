"""Resetting a student's namespace end to end: the instructor's POST queues a Celery task, a real worker
deletes the namespace in the sandbox through the kubernetes client, waits until it is gone, creates it
again with the console's labels, and the student's progress starts over."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from classroom.models import StudentNamespace
from classroom.namespaces import CLASS_LABEL, STUDENT_LABEL, provision_namespace
from labsteps.models import Progress
from tests.conftest import wait_for
from tests.dashboard.conftest import make_class
from tests.dashboard.support import record

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def config_map_exists(core: k8s.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_reset_namespace_through_a_celery_task(settings, sandbox, api_client, celery_worker) -> None:
    settings.KUBECONFIG = str(sandbox.kubeconfig)
    room, teacher, (student,) = make_class(students=1)
    namespace = provision_namespace(student)
    assert namespace is not None and not namespace.last_error
    core = k8s.CoreV1Api(api_client)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leftover"}, "data": {"a": "b"}}
    core.create_namespaced_config_map(namespace.name, body)
    first = record(student, "preliminaries", "verified", "passed")
    old_uid = core.read_namespace(namespace.name).metadata.uid

    client = Client()
    client.force_login(teacher)
    response = client.post(reverse("classroom:reset-namespace", args=[room.slug, student.pk]))
    assert response.status_code == 302

    def recreated() -> bool:
        current = core.read_namespace(namespace.name)
        return current.metadata.uid != old_uid and current.status.phase == "Active"

    wait_for(recreated, timeout=90, interval=0.2, what="the namespace deleted and created again")
    labels = core.read_namespace(namespace.name).metadata.labels
    assert labels[STUDENT_LABEL] == student.username and labels[CLASS_LABEL] == room.slug
    assert not config_map_exists(core, namespace.name, "leftover")
    wait_for(
        lambda: Progress.objects.get(pk=first.pk).state == "not_started", timeout=30, what="progress starting over"
    )
    row = StudentNamespace.objects.get(pk=namespace.pk)
    assert row.created and row.last_error == ""


def test_reset_of_an_unreachable_cluster_is_recorded(world) -> None:
    """Without a cluster the task fails cleanly and says why on the namespace row (run in process)."""
    from classroom.cluster import ClusterError
    from classroom.resets import reset_namespace

    student = world.students_a[0]
    with pytest.raises(ClusterError):
        reset_namespace(student.pk)
    assert StudentNamespace.objects.get(user=student).last_error.startswith("reset failed:")
