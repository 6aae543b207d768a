"""The lab's pages and JSON API in-process: who may use what, bad input, hints, solution, pages."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from classroom.models import StudentNamespace
from classroom.namespaces import provision_namespace
from labsteps import urls
from labsteps.models import Attempt, Progress
from labsteps.pipeline import MAX_MANIFEST_BYTES
from labsteps.steps import get_step

pytestmark = pytest.mark.django_db

STEP = "deploy-splitdim"


def logged_in(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def post_json(client: Client, url: str, data: object, **extra: str):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def make_attempt(user, **fields) -> Attempt:
    namespace = StudentNamespace.objects.get(user=user).name
    values = {"step_id": STEP, "kind": "apply", "namespace": namespace, "task_id": uuid.uuid4().hex}
    return Attempt.objects.create(user=user, **{**values, **fields})


# ---- authorization: a table that must cover every URL pattern of the app --------------------------------
# name → (HTTP method, what another student gets when they ask for the owner's thing there)
AUTHZ = {
    "index": ("GET", "own"),
    "step": ("GET", "own"),
    "apply": ("POST", "own"),
    "check": ("POST", "own"),
    "reset": ("POST", "own"),
    "solution": ("GET", "own"),
    "hint": ("GET", "own"),
    "attempt": ("GET", 404),
    "progress": ("GET", "own"),
    "traffic-target": ("GET", "own"),
}
JSON_NAMES = {"apply", "check", "reset", "solution", "hint", "attempt", "progress", "traffic-target"}


def test_the_authz_table_covers_every_url_of_the_app() -> None:
    assert {pattern.name for pattern in urls.urlpatterns} == set(AUTHZ)


def url_for(name: str, attempt_id: int) -> str:
    pattern = next(p for p in urls.urlpatterns if p.name == name)
    samples = {"step_id": STEP, "n": 1, "attempt_id": attempt_id}
    return reverse(f"labsteps:{name}", kwargs={key: samples[key] for key in pattern.pattern.converters})


@pytest.mark.parametrize("name", sorted(AUTHZ))
def test_anonymous_users_are_sent_to_log_in(name: str) -> None:
    method = AUTHZ[name][0]
    response = getattr(Client(), method.lower())(url_for(name, 1))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", sorted(AUTHZ))
def test_users_without_a_lab_namespace_are_refused(name: str, make_student) -> None:
    owner = make_student()
    instructor = make_student(role="instructor")
    attempt = make_attempt(owner)
    client = logged_in(instructor)
    response = getattr(client, AUTHZ[name][0].lower())(url_for(name, attempt.id))
    assert response.status_code == 403
    if name in JSON_NAMES:
        assert "no lab namespace" in response.json()["error"]
    else:
        assert b"no lab namespace" in response.content


@pytest.mark.parametrize("name", sorted(AUTHZ))
def test_another_student_never_reaches_the_owners_namespace_or_attempts(name: str, make_student) -> None:
    owner, other = make_student(), make_student()
    owner_ns = StudentNamespace.objects.get(user=owner).name
    other_ns = StudentNamespace.objects.get(user=other).name
    attempt = make_attempt(owner, message="owner's secret message")
    Progress.objects.create(user=owner, step_id=STEP, state="verified", last_attempt=attempt)
    method, expected = AUTHZ[name]
    client = logged_in(other)
    url = url_for(name, attempt.id)
    response = post_json(client, url, {"manifests": ""}) if method == "POST" else client.get(url)
    body = response.content.decode()
    if expected == 404:
        assert response.status_code == 404 and "owner's secret message" not in body
        return
    # The traffic panel's target: the other student's own app (no cluster here: 503 saying so).
    assert response.status_code in ((503,) if name == "traffic-target" else (200, 202)), body
    assert owner_ns not in body and "owner's secret message" not in body
    if method == "POST":  # acting always means acting on one's own namespace
        created = Attempt.objects.get(pk=response.json()["attempt"])
        assert created.user == other and created.namespace == other_ns
    if name == "progress":
        assert {s["state"] for s in response.json()["steps"]} == {"not_started"}


def test_json_endpoints_answer_wrong_methods_with_405(make_student) -> None:
    client = logged_in(make_student())
    response = client.get(reverse("labsteps:apply", args=[STEP]))
    assert response.status_code == 405 and response["Allow"] == "POST" and "Use POST" in response.json()["error"]
    response = client.post(reverse("labsteps:progress"))
    assert response.status_code == 405 and response["Allow"] == "GET"


# ---- bad input: a clear message, and nothing reaches the cluster ------------------------------------------
def bad_configmap(name: str, namespace: str | None = None) -> str:
    meta = f"{{name: {name}{', namespace: ' + namespace if namespace else ''}}}"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {meta}\ndata: {{a: b}}\n"


BAD_INPUT = {
    "malformed YAML": (STEP, bad_configmap("bad-yaml").replace("data: {a: b}", "data: {a: b"), 400, "YAML syntax"),
    "a Secret": (STEP, "apiVersion: v1\nkind: Secret\nmetadata: {name: bad-secret}\n", 400, "Secrets are not allowed"),
    "a ClusterRole": (
        STEP,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: bad-role}\n",
        400,
        "cluster-wide kind",
    ),
    "an object naming kube-system": (
        STEP,
        bad_configmap("bad-system", "kube-system"),
        400,
        "objects must stay in your namespace",
    ),
    "a 5 MB body": (STEP, "# " + "x" * (5 * 1024 * 1024), 413, "too large; the limit is 256 KiB"),
    "manifests over the limit": (STEP, "# " + "x" * MAX_MANIFEST_BYTES, 413, "the limit is 256 KiB"),
    "a missing CSRF token": (STEP, bad_configmap("bad-csrf"), 403, "no valid CSRF token"),
    "an unknown step": ("no-such-step", bad_configmap("bad-step"), 404, "no step 'no-such-step'"),
}


@pytest.mark.cluster
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gets_a_clear_message_and_nothing_is_applied(case: str, on_sandbox, make_student, api_client) -> None:
    step_id, manifests, status, fragment = BAD_INPUT[case]
    student = make_student()
    namespace = provision_namespace(student)
    assert namespace.created, namespace.last_error
    client = logged_in(student, csrf=True)
    client.get(reverse("labsteps:step", args=[STEP]))  # sets the csrftoken cookie, as the page does
    headers = {} if case == "a missing CSRF token" else {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    response = post_json(client, reverse("labsteps:apply", args=[step_id]), {"manifests": manifests}, **headers)
    assert response.status_code == status
    assert fragment in response.json()["error"]
    attempts = list(Attempt.objects.filter(user=student))
    if status == 400:  # a refused Apply is still recorded, as failed
        assert [a.status for a in attempts] == ["failed"] and fragment in attempts[0].message
        problem = response.json()["problems"][0]
        assert problem["message"] and (problem["line"] or 0) >= 1
    else:
        assert attempts == []
    core = k8s.CoreV1Api(api_client)
    for ns in (namespace.name, "kube-system"):
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(ns).items}
        assert not any(name.startswith("bad-") for name in names), names
        assert not any(s.metadata.name.startswith("bad-") for s in core.list_namespaced_secret(ns).items)
    with pytest.raises(ApiException) as missing:
        k8s.RbacAuthorizationV1Api(api_client).read_cluster_role("bad-role")
    assert missing.value.status == 404


def test_a_body_that_is_not_the_expected_json_is_refused(make_student) -> None:
    client = logged_in(make_student())
    url = reverse("labsteps:apply", args=[STEP])
    for body in ("not json", json.dumps({"yaml": "x"}), json.dumps({"manifests": 5}), json.dumps(["a"])):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400 and '{"manifests"' in response.json()["error"]
    assert not Attempt.objects.exists()


def test_only_one_attempt_runs_at_a_time(make_student) -> None:
    student = make_student()
    running = make_attempt(student, status=Attempt.Status.APPLYING, heartbeat=timezone.now())
    response = post_json(logged_in(student), reverse("labsteps:check", args=[STEP]), {})
    assert response.status_code == 409
    assert response.json() == {
        "error": "Another attempt is still running; wait for it to finish.",
        "attempt": running.id,
        "status": "applying",
    }


# ---- hints, solution, progress, pages ----------------------------------------------------------------------
def test_hints_are_released_in_order(make_student) -> None:
    student = make_student()
    client = logged_in(student)
    total = len(get_step(STEP).hints)
    hint = lambda n: client.get(reverse("labsteps:hint", args=[STEP, n]))  # noqa: E731
    assert hint(2).status_code == 403 and hint(2).json()["error"] == "Open hint 1 first."
    first = hint(1).json()
    assert first["index"] == 1 and first["total"] == total and first["html"].startswith("<p>")
    namespace = StudentNamespace.objects.get(user=student).name
    assert namespace in first["html"]  # hints are rendered for the student's namespace
    assert hint(2).status_code == 200 and hint(1).status_code == 200  # going back is fine
    assert hint(0).status_code == 404 and hint(total + 1).status_code == 404
    assert Progress.objects.get(user=student, step_id=STEP).hints_released == 2


def test_solution_is_rendered_markdown_and_the_students_manifests(make_student) -> None:
    student = make_student()
    namespace = StudentNamespace.objects.get(user=student).name
    data = logged_in(student).get(reverse("labsteps:solution", args=[STEP])).json()
    assert "<pre><code" in data["html"] and f"kubectl -n {namespace} apply" in data["html"]
    assert f'KVSTORE_ADDR: "kvstore.{namespace}:8081"' in data["manifests"]
    assert Progress.objects.get(user=student, step_id=STEP).solution_viewed


def test_progress_lists_every_step_in_order(make_student) -> None:
    student = make_student()
    attempt = make_attempt(student)
    Progress.objects.create(user=student, step_id=STEP, state="verified", last_attempt=attempt)
    steps = logged_in(student).get(reverse("labsteps:progress")).json()["steps"]
    assert [s["step"] for s in steps][:3] == ["preliminaries", STEP, "observability"]
    assert steps[1]["state"] == "verified" and steps[1]["updated"]
    assert steps[0] == {"step": "preliminaries", "state": "not_started", "updated": None}


def test_attempt_detail_is_the_contracts_json(make_student) -> None:
    student = make_student()
    attempt = make_attempt(student, status="passed", checks=[{"name": "n", "ok": True, "message": "", "debug": "d"}])
    data = logged_in(student).get(reverse("labsteps:attempt", args=[attempt.id])).json()
    assert data["id"] == attempt.id and data["status"] == "passed" and data["checks"][0]["ok"] is True
    assert set(data) == {
        "id", "step", "kind", "status", "message", "progress", "applied", "not_applied", "checks", "created", "finished"
    }  # fmt: skip


def test_step_page_has_the_text_the_editor_and_the_page_config(make_student) -> None:
    student = make_student()
    namespace = StudentNamespace.objects.get(user=student).name
    client = logged_in(student)
    response = client.get(reverse("labsteps:step", args=[STEP]))
    assert response.status_code == 200
    page = response.content.decode()
    for element in ('id="apply"', 'id="check"', 'id="reset"', 'id="solution"', 'id="hint"', 'id="editor"'):
        assert element in page
    assert f"kvstore.{namespace}:8081" in page  # the editor holds the manifests for this student
    assert "<strong>kvstore</strong>" in page  # the Markdown text is rendered on the server
    config = response.context["lab_config"]
    assert config["urls"]["apply"] == f"/lab/{STEP}/apply" and config["urls"]["hint"] == f"/lab/{STEP}/hint/0"
    assert config["hintsTotal"] == len(get_step(STEP).hints) and config["attempt"] is None
    assert client.get(reverse("labsteps:step", args=["nope"])).status_code == 404
    index = client.get(reverse("labsteps:index"))
    assert index.status_code == 200 and [s["id"] for s in index.context["steps"]][1] == STEP


def test_the_traffic_target_says_plainly_when_the_cluster_is_unreachable(make_student) -> None:
    response = logged_in(make_student()).get(reverse("labsteps:traffic-target"))
    assert response.status_code == 503
    assert response.json()["error"].startswith("The cluster cannot be reached to find your app")


def test_the_traffic_target_says_plainly_when_the_app_is_not_deployed(on_sandbox, make_student) -> None:
    response = logged_in(make_student()).get(reverse("labsteps:traffic-target"))
    assert response.status_code == 409
    data = response.json()
    assert data["error"].startswith("Your app has no external address yet")
    assert any("does not exist" in reason for reason in data["reasons"]), data


def test_the_step_page_holds_the_traffic_panel_and_the_graph_only_on_graph_steps(make_student) -> None:
    client = logged_in(make_student())
    page = client.get(reverse("labsteps:step", args=["fault-injection"])).content.decode()
    assert 'id="traffic"' in page and "data-traffic-panel" in page and "vendor/plotly/plotly.min.js" in page
    assert '<div class="observe with-graph">' in page and "data-meshgraph" in page
    page = client.get(reverse("labsteps:step", args=[STEP])).content.decode()
    assert 'id="traffic"' in page and '<div class="observe">' in page and "data-meshgraph" not in page
