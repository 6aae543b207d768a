"""The instructor demo: preparing the whole lab, injecting and reverting faults, and how soon a fault shows.

Targets (issue 7): after the fault task finishes, the projector's traffic shows the 5xx share and the
graph's splitdim → kvstore edge turns red within 5 s. No target is set for the task latencies; they are
reported (POST → the websocket event saying "active" / "reverted"), for the demo namespace alone and
broadcast to every student namespace of a class of STUDENTS. The console runs as `make run` starts it
(uvicorn, prefork Celery worker, traffic and graph workers, Prometheus when installed, the sandbox).
CPU time is that of all the console's processes (from its run/children.json) during each phase: the
machine is shared, so wall times are noisy and CPU time is the steadier figure.
Run: .venv/bin/python benchmarks/demo_fault.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import psutil
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._console import RunningConsole, running_console  # noqa: E402
from benchmarks._lab import percentile  # noqa: E402

STUDENTS = 10
RUNS = 10
RATE = 20.0


class Socket:
    """A websocket read by a thread: every message with its arrival time."""

    def __init__(self, console: RunningConsole, path: str, cookie: str) -> None:
        url = "ws" + console.url.removeprefix("http") + path
        self.connection = connect(url, additional_headers={"Cookie": cookie}, origin=console.url, max_size=2**24)
        self.messages: list[tuple[float, dict]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for text in self.connection:
                self.messages.append((time.time(), json.loads(text)))
        except Exception:
            pass

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, message in list(self.messages):
                if predicate(message):
                    return arrived, message
            time.sleep(0.01)
        raise SystemExit(f"timed out waiting for {what}")

    def close(self) -> None:
        self.connection.close()


def console_cpu(console: RunningConsole) -> float:
    """CPU seconds used so far by every process of the console (its children and their children)."""
    total = 0.0
    for child in json.loads((console.var_dir / "run" / "children.json").read_text()):
        try:
            root = psutil.Process(child["pid"])
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


def log_in(console: RunningConsole, username: str, password: str) -> httpx.Client:
    session = httpx.Client(base_url=console.url, timeout=60, trust_env=False)
    session.get("/accounts/login/")
    session.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
    )
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def fault_event(fault_id: int, state: str):
    return lambda m: m.get("type") == "demo.fault" and m["fault"]["id"] == fault_id and m["fault"]["state"] == state


def inject_and_revert(session: httpx.Client, demo: Socket, slug: str, body: dict) -> tuple[float, float, dict]:
    """(POST → active, POST → reverted) in seconds, and the active fault."""
    start = time.time()
    answer = session.post(f"/demo/{slug}/faults/", json=body)
    assert answer.status_code == 202, answer.text
    fault_id = answer.json()["fault"]["id"]
    active_at, message = demo.wait(fault_event(fault_id, "active"), 120, "the fault to be active")
    applied = active_at - start
    start = time.time()
    assert session.post(f"/demo/{slug}/faults/{fault_id}/revert/").status_code == 202
    reverted_at, _ = demo.wait(fault_event(fault_id, "reverted"), 120, "the fault to be reverted")
    return applied, reverted_at - start, message["fault"]


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"  {label}: median {statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms over {len(ms)} runs"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp, running_console(Path(tmp)) as console:
        tag, password = uuid.uuid4().hex[:6], uuid.uuid4().hex
        students = [f"b{tag}s{i}" for i in range(STUDENTS)]
        console.manage(
            "createclass",
            f"Bench {tag}",
            "--instructor",
            f"b{tag}i:{password}",
            *(f"--student={s}:{password}" for s in students),
        )
        for student in students:
            log_in(console, student, password).close()  # creates the namespace
        slug = f"bench-{tag}"
        session = log_in(console, f"b{tag}i", password)
        cookie = f"sessionid={session.cookies['sessionid']}"
        demo = Socket(console, f"/ws/demo/{slug}/", cookie)
        print(f"Demo benchmark: a class of {STUDENTS} students; {RUNS} runs per measurement")

        cpu, start = console_cpu(console), time.time()
        assert session.post(f"/demo/{slug}/prepare/").status_code == 202
        ready_at, _ = demo.wait(lambda m: m.get("type") == "demo" and m["demo"]["state"] == "ready", 900, "ready")
        print(f"  prepare the whole lab (7 steps + reset of step 6): {ready_at - start:.1f} s wall, "
              f"{console_cpu(console) - cpu:.1f} s CPU of the console")  # fmt: skip

        state = session.get(f"/demo/{slug}/state.json").json()
        run, namespace = state["run"], state["demo"]["namespace"]
        stream = run["streams"][0]["name"]
        session.post(f"/traffic/runs/{run['id']}/rate/", json={"stream": stream, "rate": RATE})

        for label, body in (
            ("demo namespace", {"target": "kvstore", "abort_percent": 50}),
            (f"broadcast to 1 + {STUDENTS} namespaces", {"target": "kvstore", "abort_percent": 50, "broadcast": True, "confirm": True}),
        ):  # fmt: skip
            applied, reverted = [], []
            cpu = console_cpu(console)
            for _ in range(RUNS):
                a, r, _fault = inject_and_revert(session, demo, slug, body)
                applied.append(a)
                reverted.append(r)
            used = (console_cpu(console) - cpu) / RUNS
            print(f" {label} ({used * 1000:.0f} ms CPU of the console per inject + revert):")
            print(summary("inject POST → active event", applied))
            print(summary("revert POST → reverted event", reverted))

        traffic = Socket(console, f"/ws/traffic/{run['id']}/", cookie)
        graph = Socket(console, f"/ws/graph/{namespace}/", cookie)
        shows, reds = [], []
        for _ in range(3):
            time.sleep(15)  # let the graph's 10 s window forget the previous fault (and its revert)
            answer = session.post(f"/demo/{slug}/faults/", json={"target": "kvstore", "abort_percent": 50})
            fault_id = answer.json()["fault"]["id"]
            _, message = demo.wait(fault_event(fault_id, "active"), 60, "active")
            done = datetime.fromisoformat(message["fault"]["applied_at"]).timestamp()

            def failing_window(m: dict, done: float = done) -> bool:
                if m.get("type") != "window" or m["start"] < done:
                    return False
                codes = [c for s in m["streams"].values() for c in s["codes"].items()]
                return sum(n for c, n in codes if c.startswith("5")) > 0

            def red_edge(m: dict) -> bool:
                if m.get("type") != "graph":
                    return False
                data = m["graph"]["elements"]
                names = {n["data"]["id"]: (n["data"]["label"], n["data"]["nodeType"]) for n in data["nodes"]}
                return any(
                    names.get(e["data"]["source"]) == ("splitdim", "workload")
                    and names.get(e["data"]["target"]) == ("kvstore", "service")
                    and e["data"].get("healthStatus") == "Failure"
                    for e in data["edges"]
                )

            seen, _ = traffic.wait(failing_window, 30, "a window with 5xx")
            red, _ = graph.wait(lambda m, done=done: red_edge(m) and graph_after(m, done), 30, "a red edge")
            shows.append(seen - done)
            reds.append(red - done)
            session.post(f"/demo/{slug}/faults/{fault_id}/revert/")
            demo.wait(fault_event(fault_id, "reverted"), 60, "reverted")
            traffic.messages.clear()
            graph.messages.clear()
        print(" after the fault task finished (target: both within 5 s):")
        print(f"  first traffic window with 5xx delivered: {', '.join(f'{s:.1f}' for s in shows)} s")
        print(f"  splitdim → kvstore edge Failure on the graph: {', '.join(f'{r:.1f}' for r in reds)} s")
        for socket in (demo, traffic, graph):
            socket.close()


def graph_after(message: dict, moment: float) -> bool:
    """Whether the graph was built after `moment` (its timestamp, seconds)."""
    return float(message["graph"].get("timestamp", 0)) >= int(moment)  # whole seconds


if __name__ == "__main__":
    main()
