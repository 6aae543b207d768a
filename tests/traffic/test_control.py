"""The control API against the real Redis: ownership, caps, validation, target checks, stop."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from classroom.models import Classroom, Membership
from traffic import control
from traffic.specs import InvalidStream, InvalidTarget
from traffic.store import Keys

pytestmark = pytest.mark.django_db

TARGET = "http://127.0.0.1:8080"


def allow_all(namespace: str, target: str) -> bool:
    return True


def stream(rate: float = 10, **extra) -> dict:
    return {"path": "/api/clear", "rate": rate, **extra}


@pytest.fixture
def users(prefix: str, settings):
    """Two students of one class, one of another class, and the first class's instructor."""
    settings.TRAFFIC_MAX_RATE_PER_STUDENT = 50
    settings.TRAFFIC_MAX_RATE_PER_CLASS = 80
    make = get_user_model().objects.create_user
    ann, bob, cid, teacher = make("ann"), make("bob"), make("cid"), make("teacher")
    mesh, other = Classroom.objects.create(name="Mesh", slug="mesh"), Classroom.objects.create(name="B", slug="b")
    for user, room, role in [
        (ann, mesh, "student"),
        (bob, mesh, "student"),
        (cid, other, "student"),
        (teacher, mesh, "instructor"),
    ]:
        Membership.objects.create(user=user, classroom=room, role=role)
    return ann, bob, cid, teacher


def start(user, *streams: dict) -> str:
    return control.start_run(user.pk, "lab-" + user.username, TARGET, list(streams), allow_target=allow_all)


def test_start_list_and_stop(users) -> None:
    ann, bob, *_ = users
    run_id = start(ann, stream(5), stream(5, headers={"user": "test"}))
    [run] = control.runs(ann.pk)
    assert run["id"] == run_id and run["state"] == "running" and run["total_rate"] == 10
    assert run["namespace"] == "lab-ann" and run["target"] == TARGET
    assert [s["name"] for s in run["streams"]] == ["GET /api/clear", "GET /api/clear [user: test]"]
    assert control.runs(bob.pk) == []
    r, k = control.client(), control.keys()
    assert r.sismember(k.active, run_id)

    control.stop_run(run_id, ann.pk)
    assert control.runs(ann.pk)[0]["state"] == "stopped"
    assert not r.sismember(k.active, run_id) and r.ttl(k.run(run_id)) > 0


def test_another_owner_can_neither_see_nor_control_a_run(users) -> None:
    ann, bob, *_ = users
    run_id = start(ann, stream())
    for call in (
        lambda: control.stop_run(run_id, bob.pk),
        lambda: control.set_rate(run_id, bob.pk, "GET /api/clear", 1),
        lambda: control.set_streams(run_id, bob.pk, [stream()]),
        lambda: control.history(run_id, bob.pk),
    ):
        with pytest.raises(control.RunNotFound) as refused:
            call()
        assert run_id in refused.value.message
    assert control.stop_owner_runs(bob.pk) == 0
    assert control.runs(ann.pk)[0]["state"] == "running" and control.runs(ann.pk)[0]["total_rate"] == 10
    with pytest.raises(control.RunNotFound):
        control.stop_run("no-such-run", ann.pk)


def test_rate_changes_and_stream_changes(users) -> None:
    ann, *_ = users
    run_id = start(ann, stream(10, name="a"), stream(10, name="b"))
    version = control.get_run(run_id).version
    control.set_rate(run_id, ann.pk, "a", 30)
    record = control.get_run(run_id)
    assert [s["rate"] for s in record.streams] == [30, 10] and record.version == version + 1
    with pytest.raises(InvalidStream, match="no stream named 'c'"):
        control.set_rate(run_id, ann.pk, "c", 1)
    with pytest.raises(InvalidStream, match="zero or a positive number"):
        control.set_rate(run_id, ann.pk, "a", -5)
    control.set_streams(run_id, ann.pk, [stream(2, name="only")])
    assert [(s["name"], s["rate"]) for s in control.get_run(run_id).streams] == [("only", 2)]


def test_per_student_cap(users) -> None:
    ann, *_ = users
    first = start(ann, stream(30))
    with pytest.raises(control.RateLimitExceeded) as refused:
        start(ann, stream(30))
    assert "60 req/s" in refused.value.message and "limit per student is 50" in refused.value.message
    second = start(ann, stream(15))
    with pytest.raises(control.RateLimitExceeded):
        control.set_rate(first, ann.pk, "GET /api/clear", 40)
    control.set_rate(first, ann.pk, "GET /api/clear", 35)
    with pytest.raises(InvalidStream, match="above the limit"):  # one stream alone over the cap
        start(ann, stream(60))
    control.stop_run(first, ann.pk)
    control.stop_run(second, ann.pk)
    assert start(ann, stream(50))  # capacity is freed when a run stops


def test_per_class_cap_counts_every_student_of_the_class(users) -> None:
    ann, bob, cid, _ = users
    start(ann, stream(45))
    with pytest.raises(control.RateLimitExceeded) as refused:
        start(bob, stream(40))
    assert "class is already sending 45 req/s" in refused.value.message
    assert start(bob, stream(35))
    assert start(cid, stream(50))  # another class has its own budget
    assert control.stop_owner_runs(ann.pk) == 1
    assert start(bob, stream(15))


def test_targets_are_checked(users, settings) -> None:
    ann, *_ = users
    asked = []

    def only_gateway(namespace: str, target: str) -> bool:
        asked.append((namespace, target))
        return target == "http://127.3.0.1:80"

    assert control.start_run(ann.pk, "lab-ann", "http://127.3.0.1", [stream()], allow_target=only_gateway)
    with pytest.raises(control.TargetRefused, match="not an address of a Service in namespace lab-ann"):
        control.start_run(ann.pk, "lab-ann", "http://127.0.0.1:6379", [stream()], allow_target=only_gateway)
    assert asked == [("lab-ann", "http://127.3.0.1:80"), ("lab-ann", "http://127.0.0.1:6379")]
    with pytest.raises(InvalidTarget):
        control.start_run(ann.pk, "lab-ann", "file:///etc/passwd", [stream()], allow_target=allow_all)


def test_default_target_check_refuses_when_the_cluster_cannot_be_asked(users, settings, tmp_path) -> None:
    ann, *_ = users
    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    with pytest.raises(control.TargetRefused) as refused:
        control.start_run(ann.pk, "lab-ann", TARGET, [stream()])
    assert "could not check that http://127.0.0.1:8080 belongs to lab-ann" in refused.value.message
    assert control.runs(ann.pk) == []


def test_history_reads_the_kept_windows(users, prefix: str) -> None:
    ann, *_ = users
    run_id = start(ann, stream())
    r, k = control.client(), Keys(prefix)
    for seq in (1, 2, 3):
        r.xadd(k.history(run_id), {"w": f'{{"seq":{seq},"type":"window"}}'}, id=f"{seq}-0")
    assert [w["seq"] for w in control.history(run_id, ann.pk)] == [1, 2, 3]
    assert [w["seq"] for w in control.history(run_id, ann.pk, since_seq=1)] == [2, 3]
    assert control.history_texts(run_id, since_seq=3) == []
