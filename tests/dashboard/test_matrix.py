"""The progress matrix, its live updates' rule, the drill-down and the exports, against the database."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import matrix
from dashboard.matrix import cell_state
from labsteps.models import Attempt, Progress
from labsteps.steps import all_steps, get_step, manifests_text
from tests.dashboard.conftest import make_class
from tests.dashboard.support import record

pytestmark = pytest.mark.django_db
STEPS = [step.id for step in all_steps()]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("progress", "status", "shown"),
    [
        (None, None, "not_started"),
        ("not_started", "queued", "in_progress"),
        ("not_started", "applying", "in_progress"),
        ("in_progress", "checking", "in_progress"),
        ("applied", "checking", "applied"),
        ("verified", "passed", "verified"),
        ("verified", "failed", "failed"),  # a newer attempt failed validation
        ("failed", "failed", "failed"),
        ("not_started", "passed", "not_started"),  # after a step reset
    ],
)
def test_cell_state(progress, status, shown) -> None:
    assert cell_state(progress, status) == shown


def test_matrix_cells_totals_and_a_fixed_number_of_queries(world) -> None:
    ann, bob = world.students_a
    now = timezone.now()
    record(ann, STEPS[0], "verified", "passed", now - timedelta(minutes=3))
    record(ann, STEPS[1], "failed", "failed", now - timedelta(minutes=1))
    record(bob, STEPS[0], "applied", "checking", now)
    with CaptureQueriesContext(connection) as small:
        table = matrix.build(world.a)
    rows = {row.username: row for row in table.rows}
    assert [c.state for c in rows[ann.username].cells[:3]] == ["verified", "failed", "not_started"]
    assert rows[ann.username].cells[1].attempts == 1
    assert rows[ann.username].last == now - timedelta(minutes=1)
    assert rows[bob.username].cells[0].state == "applied"
    totals = table.totals()
    assert totals[0] == {"not_started": 0, "in_progress": 0, "applied": 1, "verified": 1, "failed": 0}
    assert totals[1]["failed"] == 1 and totals[1]["not_started"] == 1
    assert world.students_b[0].pk not in {row.id for row in table.rows}

    big, _, pupils = make_class(students=30)
    for pupil in pupils:
        for step in STEPS[:3]:
            record(pupil, step, "verified", "passed")
    with CaptureQueriesContext(connection) as large:
        assert len(matrix.build(big).rows) == 30
    assert len(large) == len(small) <= 4


def test_class_page_renders_the_matrix(world) -> None:
    ann = world.students_a[0]
    record(ann, STEPS[0], "verified", "passed")
    page = logged_in(world.teacher_a).get(reverse("dashboard:class", args=[world.a.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-student="{ann.pk}"' in html
    assert f'data-step="{STEPS[0]}" data-state="verified"' in html
    assert 'id="stuck-minutes"' in html and "/ws/teach/" in html


def test_matrix_json_matches_the_page(world) -> None:
    ann = world.students_a[0]
    progress = record(ann, STEPS[2], "applied", "passed")
    data = logged_in(world.teacher_a).get(reverse("dashboard:matrix", args=[world.a.slug])).json()
    row = next(s for s in data["students"] if s["id"] == ann.pk)
    cell = row["cells"][2]
    assert cell["state"] == "applied" and cell["attempts"] == 1 and cell["attempt"] == progress.last_attempt_id
    assert data["totals"][2]["applied"] == 1


def test_csv_export_matches_the_database(world) -> None:
    ann, bob = world.students_a
    record(ann, STEPS[0], "failed", "failed", timezone.now() - timedelta(minutes=5))
    record(ann, STEPS[0], "verified", "passed")
    record(bob, STEPS[1], "applied", "passed")
    response = logged_in(world.teacher_a).get(reverse("dashboard:export-csv", args=[world.a.slug]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(world.students_a) * len(STEPS)
    seen = set()
    for row in rows:
        user = next(u for u in world.students_a if u.username == row["username"])
        progress = Progress.objects.filter(user=user, step_id=row["step"]).first()
        attempts = Attempt.objects.filter(user=user, step_id=row["step"]).order_by("created")
        seen.add((row["username"], row["step"]))
        if progress is None:
            assert row["state"] == "not_started" and row["attempts"] == "0" and row["first_attempt"] == ""
            continue
        assert row["progress_state"] == progress.state
        assert int(row["attempts"]) == progress.attempts == attempts.count()
        assert row["first_attempt"] == attempts.first().created.isoformat()
        assert row["last_attempt"] == attempts.last().created.isoformat()
        assert row["last_status"] == progress.last_attempt.status
    assert len(seen) == len(rows)
    assert {r["state"] for r in rows if r["username"] == ann.username and r["step"] == STEPS[0]} == {"verified"}


def test_json_export_has_the_same_records(world) -> None:
    record(world.students_a[0], STEPS[3], "verified", "passed")
    client = logged_in(world.teacher_a)
    data = json.loads(client.get(reverse("dashboard:export-json", args=[world.a.slug])).content)
    rows = list(
        csv.DictReader(io.StringIO(client.get(reverse("dashboard:export-csv", args=[world.a.slug])).content.decode()))
    )
    assert data["slug"] == world.a.slug and len(data["rows"]) == len(rows)
    for from_json, from_csv in zip(data["rows"], rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in from_json.items()} == from_csv


def test_drilldown_shows_attempts_checks_and_an_escaped_diff(world) -> None:
    ann = world.students_a[0]
    step = get_step("deploy-splitdim")
    namespace = ann.namespace.name
    lab = manifests_text(step, namespace)
    edited = lab.replace("replicas: 1", "replicas: 3", 1) + "\n# <script>alert(1)</script>\n"
    progress = record(ann, step.id, "failed", "failed", manifests=edited)
    attempt = progress.last_attempt
    attempt.checks = [{"name": "pods ready", "ok": False, "message": "0 of 1 ready", "debug": "<b>kubectl says</b>"}]
    attempt.message = "Some checks failed"
    attempt.save()
    page = logged_in(world.teacher_a).get(reverse("dashboard:student", args=[world.a.slug, ann.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;kubectl says&lt;/b&gt;" in html and "0 of 1 ready" in html
    assert '<span class="diff-add">+# &lt;script&gt;' in html
    if "replicas: 1" in lab:
        assert '<span class="diff-del">-' in html
    assert 'data-meshgraph data-namespace="' + namespace in html
    assert "data-traffic-panel" in html and f"/teach/{world.a.slug}/students/{ann.pk}/runs.json" in html


def test_student_runs_are_the_students_and_read_only(world, settings, traffic_prefix) -> None:
    from traffic import control

    ann = world.students_a[0]
    run_id = control.start_run(
        ann.pk,
        ann.namespace.name,
        "http://127.0.0.1:9/",
        [{"name": "a", "path": "/", "rate": 1}],
        allow_target=lambda ns, target: True,
    )
    try:
        teacher = logged_in(world.teacher_a)
        runs = teacher.get(reverse("dashboard:student-runs", args=[world.a.slug, ann.pk])).json()
        assert [r["id"] for r in runs["runs"]] == [run_id] and runs["controls"] is False
        # Watching is not controlling: the traffic API knows only the caller's own runs.
        assert teacher.post(f"/traffic/runs/{run_id}/stop/", {}, content_type="application/json").status_code == 404
        assert (
            teacher.post(
                f"/traffic/runs/{run_id}/rate/", {"stream": "a", "rate": 5}, content_type="application/json"
            ).status_code
            == 404
        )
        assert control.get_run(run_id).state == "running"
        other = logged_in(world.teacher_b)
        assert other.get(reverse("dashboard:student-runs", args=[world.a.slug, ann.pk])).status_code == 403
    finally:
        control.stop_run(run_id, ann.pk)
