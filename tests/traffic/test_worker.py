"""`python -m traffic.worker` processes driven through the control API: windows, changes, stop,
failover after SIGKILL, and load sharing."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model

from traffic import control
from traffic.store import Keys

from .support import EchoTarget, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(prefix: str, settings):
    settings.TRAFFIC_MAX_RATE_PER_STUDENT = 1000
    return get_user_model().objects.create_user("ann")


def start(owner, echo: EchoTarget, rate: float = 50, **stream) -> str:
    streams = [{"name": "s", "rate": rate, **stream}]
    return control.start_run(owner.pk, "lab-ann", echo.url, streams, allow_target=lambda ns, url: url == echo.url)


def windows(run_id: str) -> list[dict]:
    return [json.loads(text) for text in control.history_texts(run_id)]


def lease_holder(prefix: str, run_id: str) -> str | None:
    return control.client().get(Keys(prefix).lease(run_id))


def test_worker_runs_changes_and_stops_a_run(owner, echo: EchoTarget, start_worker, prefix: str) -> None:
    worker = start_worker()
    run_id = start(owner, echo, rate=50, path="/api/clear")
    wait_for(lambda: len(windows(run_id)) >= 4, 20, "four windows")
    got = windows(run_id)
    assert [w["seq"] for w in got] == list(range(1, len(got) + 1))
    assert all(w["run"] == run_id and w["type"] == "window" for w in got)
    full = [w["streams"]["s"] for w in got[1:4]]
    assert all(w["codes"] == {"200": w["completed"]} and w["end"] - w["start"] == 1 for w in full)
    assert sum(w["sent"] for w in full) == pytest.approx(150, rel=0.05)
    assert lease_holder(prefix, run_id).startswith(f"w{worker.pid}-")

    control.set_rate(run_id, owner.pk, "s", 80)
    wait_for(lambda: any(w["streams"]["s"]["rate"] == 80 for w in windows(run_id)[-2:]), 10, "the new rate")
    wait_for(lambda: abs(windows(run_id)[-1]["streams"]["s"]["sent"] - 80) <= 3, 10, "80 sends in a window")

    control.stop_run(run_id, owner.pk)
    # The worker hands the lease back only after its generator ended and flushed a last, partial window;
    # without the lease nothing more can be appended.
    wait_for(lambda: lease_holder(prefix, run_id) is None, 10, "the lease to be released")
    last = windows(run_id)[-1]["streams"]["s"]
    assert last["end"] - last["start"] < 1
    assert worker.stop() == 0, worker.log()


def test_another_worker_resumes_a_run_within_5_s_after_sigkill(owner, echo, start_worker, prefix) -> None:
    workers = {w.pid: w for w in (start_worker(), start_worker())}
    run_id, other_run = start(owner, echo, rate=40), start(owner, echo, rate=5)
    wait_for(lambda: len(windows(run_id)) >= 2 and windows(other_run), 20, "windows of both runs")
    holder = int(lease_holder(prefix, run_id)[1:].split("-")[0])
    before = windows(run_id)[-1]["seq"]

    workers.pop(holder).kill()
    killed_at = time.time()
    [(survivor_pid, survivor)] = workers.items()
    resumed = wait_for(
        lambda: next((w for w in windows(run_id) if w["worker"].startswith(f"w{survivor_pid}-")), None),
        10,
        "a window from the surviving worker",
    )
    # The new generator's first window starts when it started sending.
    assert resumed["streams"]["s"]["start"] - killed_at <= 5.0, survivor.log()
    assert resumed["seq"] > before
    seqs = [w["seq"] for w in windows(run_id)]
    assert seqs == sorted(set(seqs))  # numbering continues, never repeats
    wait_for(lambda: abs(windows(run_id)[-1]["streams"]["s"]["sent"] - 40) <= 2, 5, "full windows again")
    # The survivor now runs both (whichever worker had the other run before).
    assert lease_holder(prefix, other_run).startswith(f"w{survivor_pid}-")


def test_workers_share_the_runs(owner, echo, start_worker, prefix) -> None:
    workers = [start_worker(), start_worker()]
    run_ids = [start(owner, echo, rate=5) for _ in range(4)]

    def holders() -> dict[int, int]:
        counts = {w.pid: 0 for w in workers}
        for run_id in run_ids:
            holder = lease_holder(prefix, run_id) or ""
            for w in workers:
                if holder.startswith(f"w{w.pid}-"):
                    counts[w.pid] += 1
        return counts

    wait_for(lambda: list(holders().values()) == [2, 2], 15, "two runs on each worker")
    for run_id in run_ids:
        wait_for(lambda run_id=run_id: windows(run_id), 10, "windows of every run")
