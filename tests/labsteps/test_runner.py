"""The runner in-process on the sandbox: a refusal by the cluster says what was and was not applied."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from classroom.models import StudentNamespace
from classroom.namespaces import provision_namespace
from labsteps import attempts, runner
from labsteps.models import Attempt, Progress

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

# Valid to the console's own checks; the cluster (Istio's webhook, here the sandbox) refuses the weights.
REFUSED_IN_THE_MIDDLE = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split}
spec:
  hosts: [kvstore]
  http:
    - route:
        - destination: {host: kvstore}
          weight: 50
        - destination: {host: splitdim}
          weight: 20
---
apiVersion: v1
kind: ConfigMap
metadata: {name: first}
data: {a: b}
"""


def test_a_refused_object_stops_the_apply_and_the_attempt_lists_both_sides(on_sandbox, make_student, api_client):
    student = make_student()
    assert provision_namespace(student).created
    namespace = StudentNamespace.objects.get(user=student)
    attempt = attempts.new_attempt(student, namespace, "security", Attempt.Kind.APPLY, REFUSED_IN_THE_MIDDLE)
    runner.run(attempt.id, attempt.task_id)
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.FAILED and attempt.finished
    assert attempt.applied == ["ConfigMap/first"]
    assert attempt.not_applied == ["VirtualService/split", "PeerAuthentication/default"]
    assert attempt.message.startswith("Applying stopped: the cluster refused VirtualService/split: ")
    assert "Applied: ConfigMap/first. Not applied: VirtualService/split, PeerAuthentication/default." in attempt.message
    assert Progress.objects.get(user=student, step_id="security").state == Progress.State.FAILED
    names = [cm.metadata.name for cm in k8s.CoreV1Api(api_client).list_namespaced_config_map(namespace.name).items]
    assert "first" in names
    # Running the same delivery again changes nothing: the attempt is finished.
    assert runner.claim(attempt.id, attempt.task_id) is None
