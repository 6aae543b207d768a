"""Server time of the instructor dashboard for a class of 100 students × 8 steps.

Target (issue 7): the class page (matrix, totals) is served in ≤ 300 ms at p50 and p95. Also measured:
matrix.json (what the page loads on every websocket (re)connection) and the CSV export.

The lab has 7 steps; to measure 8 columns the dashboard's step list gets one extra step (a copy of the
last under another id), with progress rows like the others. Every student has a Progress row and three
attempts on every step (2,400 attempts in all). Requests go through Django's full stack in process
(middleware, session, ORM, template), on SQLite in a private runtime directory, with DEBUG off.
Wall time and CPU time of the process are both reported: the machine is shared, so wall time is noisy.
Run: .venv/bin/python benchmarks/dashboard_page.py [REQUESTS]
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STUDENTS = 100
TARGET_MS = 300


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def populate(steps) -> tuple[str, object]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from classroom.models import Classroom, Membership, StudentNamespace
    from labsteps.models import Attempt, Progress

    User = get_user_model()
    room = Classroom.objects.create(name="Bench class", slug="bench-class")
    password = make_password("bench-password-1")
    teacher = User.objects.create(username="teacher", password=password)
    Membership.objects.create(user=teacher, classroom=room, role="instructor")
    students = User.objects.bulk_create(User(username=f"student{i:03d}", password=password) for i in range(STUDENTS))
    Membership.objects.bulk_create(Membership(user=u, classroom=room, role="student") for u in students)
    StudentNamespace.objects.bulk_create(StudentNamespace(user=u, name=f"mc-{u.username}") for u in students)
    now = timezone.now()
    attempts = []
    for i, user in enumerate(students):
        for j, step in enumerate(steps):
            for k in range(3):
                status = "failed" if (i + j + k) % 5 == 0 else "passed"
                attempts.append(
                    Attempt(
                        user=user, classroom=room, step_id=step.id, kind="apply", namespace=f"mc-{user.username}",
                        manifests="kind: ConfigMap\n" * 20, status=status, task_id=uuid.uuid4().hex,
                        created=now, finished=now,
                    )
                )  # fmt: skip
    Attempt.objects.bulk_create(attempts, batch_size=500)
    last = {}
    for attempt in Attempt.objects.filter(classroom=room).order_by("id"):
        last[(attempt.user_id, attempt.step_id)] = attempt
    states = ["verified", "applied", "in_progress", "failed", "not_started"]
    Progress.objects.bulk_create(
        (
            Progress(
                user_id=user_id, classroom=room, step_id=step_id, state=states[(user_id + len(step_id)) % 5],
                attempts=3, last_attempt=attempt, updated=now,
            )
            for (user_id, step_id), attempt in last.items()
        ),
        batch_size=500,
    )  # fmt: skip
    return room.slug, teacher


def measure(client, url: str, requests: int) -> tuple[list[float], list[float], int]:
    walls, cpus = [], []
    size = 0
    for _ in range(3):  # warm-up: templates compiled, connections open
        client.get(url)
    for _ in range(requests):
        c0, w0 = time.process_time(), time.perf_counter()
        response = client.get(url)
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200, response.status_code
        size = len(response.content)
    return walls, cpus, size


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    var_dir = tempfile.mkdtemp(prefix="mc-dashboard-bench-")
    os.environ.update(MESHCONSOLE_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="meshconsole.settings", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from dashboard import matrix
    from labsteps.steps import all_steps
    from meshconsole import redis_embedded

    try:
        lab = all_steps()
        steps = (*lab, dataclasses.replace(lab[-1], id="extra-step", order=len(lab) + 1, title="Extra step"))
        matrix.all_steps = lambda: steps  # eight columns
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        slug, teacher = populate(steps)
        print(
            f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; SQLite; set-up {time.perf_counter() - t0:.1f} s"
        )
        print(f"class of {STUDENTS} students × {len(steps)} steps, 3 attempts per cell; {requests} requests each\n")
        plain = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        with override_settings(STORAGES={**django.conf.settings.STORAGES, **plain}):
            client = Client(HTTP_HOST="127.0.0.1")
            client.force_login(teacher)
            verdict = True
            for label, url in (
                ("class page /teach/<slug>/", f"/teach/{slug}/"),
                ("matrix.json", f"/teach/{slug}/matrix.json"),
                ("export.csv", f"/teach/{slug}/export.csv"),
            ):
                walls, cpus, size = measure(client, url, requests)
                p50, p95 = percentile(walls, 50), percentile(walls, 95)
                print(
                    f"{label:28s} wall p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(walls):6.1f} ms | "
                    f"CPU p50 {percentile(cpus, 50):6.1f} ms  p95 {percentile(cpus, 95):6.1f} ms | {size / 1024:.0f} KiB"
                )
                if label.startswith("class page"):
                    verdict = p50 <= TARGET_MS and p95 <= TARGET_MS
        print(f"\ngoal: class page p50 and p95 ≤ {TARGET_MS} ms: {'met' if verdict else 'NOT met'}")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        redis_embedded.stop(Path(var_dir))
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
