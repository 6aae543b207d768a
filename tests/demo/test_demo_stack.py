"""The demo end to end on the whole console as `make run` starts it (sandbox, Celery worker, traffic worker,
graph worker, Prometheus when installed, uvicorn), driven over HTTP and real websockets as the projector
page is, with the cluster read back through the kubernetes client.

- A broadcast fault reaches the demo namespace and every student namespace of the class (a student's own
  VirtualService for the host is taken out and put back), never a namespace of another class; revert
  removes it everywhere.
- The demo namespace is prepared with the whole lab; abort 50% on kvstore shows as a 5xx share of 50%
  (within binomial bounds) in the traffic windows of the 5 s after the task finished, and the graph's
  splitdim → kvstore edge turns Failure; revert brings both back to healthy.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import pytest
from kubernetes import client, config
from websockets.asyncio.client import connect

from benchmarks._console import ConsoleDidNotStart, RunningConsole, running_console
from tests.meshgraph.lab import KVSTORE_SVC, SPLITDIM, binomial_bounds, eventually, index

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ISTIO = ("networking.istio.io", "v1")
RATE = 20.0  # req/s of the demo's traffic during the test (the lab's 5/s gives too few samples in 5 s)
LAB_FAULT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: kvstore-500}
spec:
  hosts: [kvstore]
  http:
    - match: [{uri: {exact: /api/list}}]
      fault: {abort: {httpStatus: 500, percentage: {value: 10}}}
      route: [{destination: {host: kvstore}}]
    - route: [{destination: {host: kvstore}}]
"""


@dataclass
class Stack:
    console: RunningConsole
    slug: str
    instructor: httpx.Client
    students: list[str]  # their namespaces
    other_namespace: str  # a student namespace of another class
    cookie: str
    custom: client.CustomObjectsApi = field(repr=False)

    @property
    def ws_base(self) -> str:
        return "ws" + self.console.url.removeprefix("http")

    def virtual_services(self, namespace: str) -> dict[str, dict]:
        items = self.custom.list_namespaced_custom_object(*ISTIO, namespace, "virtualservices")["items"]
        return {vs["metadata"]["name"]: vs for vs in items}


def login(url: str, username: str, password: str) -> httpx.Client:
    session = httpx.Client(base_url=url, timeout=30, trust_env=False)
    session.get("/accounts/login/")
    answer = session.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
    )
    assert answer.status_code == 302, f"login of {username}: {answer.status_code}"
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        with running_console(tmp_path_factory.mktemp("demo-console")) as console:
            tag = uuid.uuid4().hex[:6]
            pw = uuid.uuid4().hex
            students = [f"d{tag}s{i}" for i in (1, 2)]
            console.manage(
                "createclass",
                f"Demo {tag}",
                "--instructor",
                f"d{tag}i:{pw}",
                *(f"--student={s}:{pw}" for s in students),
            )
            console.manage("createclass", f"Other {tag}", "--instructor", f"o{tag}i:{pw}", "--student", f"o{tag}s:{pw}")
            api = config.new_client_from_config(config_file=str(console.kubeconfig))
            namespaces = []
            for username in [*students, f"o{tag}s"]:  # the first login creates the namespace in the cluster
                login(console.url, username, pw).close()
                found = client.CoreV1Api(api).list_namespace(label_selector=f"meshconsole.io/student={username}")
                namespaces.append(found.items[0].metadata.name)
            instructor = login(console.url, f"d{tag}i", pw)
            yield Stack(
                console,
                f"demo-{tag}",
                instructor,
                namespaces[:2],
                namespaces[2],
                f"sessionid={instructor.cookies['sessionid']}",
                client.CustomObjectsApi(api),
            )
            instructor.close()
            api.close()
    except ConsoleDidNotStart as error:
        pytest.fail(f"the console did not start: {error}")


class Socket:
    """A websocket read in the background: every message with the time it arrived."""

    def __init__(self, stack: Stack, path: str) -> None:
        self.url = stack.ws_base + path
        self.headers = {"Cookie": stack.cookie}
        self.origin = stack.console.url
        self.messages: list[tuple[float, dict]] = []
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Socket:
        self.connection = await connect(
            self.url, additional_headers=self.headers, origin=self.origin, open_timeout=15, max_size=2**24
        )
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for text in self.connection:
            self.messages.append((time.time(), json.loads(text)))

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()
        if self.task is not None:
            self.task.cancel()

    def of(self, kind: str) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in self.messages if m.get("type") == kind]


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def fault_reaches(demo: Socket, fault_id: int, state: str, timeout: float) -> dict:
    def reached() -> dict | None:
        for _, message in reversed(demo.of("demo.fault")):
            if message["fault"]["id"] == fault_id and message["fault"]["state"] == state:
                return message["fault"]
        return None

    return await eventually(reached, timeout, lambda: f"fault {fault_id} {state}: {demo.messages[-3:]}")


def post(stack: Stack, path: str, body: dict | None = None) -> httpx.Response:
    return stack.instructor.post(f"/demo/{stack.slug}/{path}", json=body or {})


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_broadcast_reaches_every_student_namespace_of_the_class_and_is_reverted(stack: Stack) -> None:
    first = stack.students[0]
    # The first student did the lab's step 6: their own VirtualService routes kvstore.
    await asyncio.to_thread(
        stack.custom.create_namespaced_custom_object, *ISTIO, first, "virtualservices", _yaml(LAB_FAULT)
    )
    state = stack.instructor.get(f"/demo/{stack.slug}/state.json").json()
    assert state["students"] == 2
    demo_ns = state["demo"]["namespace"]
    async with Socket(stack, f"/ws/demo/{stack.slug}/") as demo:
        answer = post(stack, "faults/", {"target": "kvstore", "abort_percent": 30, "broadcast": True, "confirm": True})
        assert answer.status_code == 202, answer.text
        fault = await fault_reaches(demo, answer.json()["fault"]["id"], "active", 60)
        assert {t["namespace"]: t["state"] for t in fault["targets"]} == dict.fromkeys(
            [demo_ns, *stack.students], "applied"
        )
        displaced = {t["namespace"]: t["displaced"] for t in fault["targets"]}
        assert displaced[first] == ["VirtualService/kvstore-500"]
        for namespace in [demo_ns, *stack.students]:
            found = stack.virtual_services(namespace)
            assert set(found) == {"demo-fault-kvstore"}, namespace  # the student's own one is out of the way
            abort = found["demo-fault-kvstore"]["spec"]["http"][0]["fault"]["abort"]
            assert abort == {"httpStatus": 500, "percentage": {"value": 30.0}}
        assert stack.virtual_services(stack.other_namespace) == {}  # another class: never touched
        assert stack.other_namespace not in {t["namespace"] for t in fault["targets"]}

        # A second fault while this one is open is refused, and changes nothing.
        busy = post(stack, "faults/", {"target": "splitdim", "abort_percent": 10})
        assert busy.status_code == 409 and "revert it first" in busy.json()["error"]

        assert post(stack, f"faults/{fault['id']}/revert/").status_code == 202
        reverted = await fault_reaches(demo, fault["id"], "reverted", 60)
    assert {t["state"] for t in reverted["targets"]} == {"reverted"}
    for namespace in [demo_ns, *stack.students[1:]]:
        assert stack.virtual_services(namespace) == {}, namespace
    restored = stack.virtual_services(first)
    assert set(restored) == {"kvstore-500"}
    assert restored["kvstore-500"]["spec"] == _yaml(LAB_FAULT)["spec"]
    assert stack.virtual_services(stack.other_namespace) == {}
    await asyncio.to_thread(
        stack.custom.delete_namespaced_custom_object, *ISTIO, first, "virtualservices", "kvstore-500"
    )


def _yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


def share_5xx(windows: list[dict]) -> tuple[int, int]:
    total = errors = 0
    for window in windows:
        for stream in window["streams"].values():
            for code, count in stream["codes"].items():
                total += count
                errors += count if code.startswith("5") else 0
    return errors, total


def store_edge(graph_socket: Socket, after: float) -> list[tuple[float, dict]]:
    """(arrival, splitdim → kvstore edge) of the graphs that arrived after `after`."""
    found = []
    for arrived, message in graph_socket.of("graph"):
        if arrived >= after:
            edge = index(message["graph"])[1].get((SPLITDIM, KVSTORE_SVC))
            if edge is not None:
                found.append((arrived, edge))
    return found


@pytest.mark.asyncio
@pytest.mark.timeout(1200)
async def test_prepare_then_abort_half_shows_on_the_projector_streams_and_revert_heals(stack: Stack) -> None:
    async with Socket(stack, f"/ws/demo/{stack.slug}/") as demo:
        answer = post(stack, "prepare/")
        assert answer.status_code == 202, answer.text
        assert post(stack, "prepare/").status_code == 409  # one prepare at a time

        def prepared() -> dict | None:
            last = [m["demo"] for _, m in demo.of("demo")]
            if last and last[-1]["state"] == "failed":
                raise AssertionError(f"the prepare failed: {last[-1]['message']}")
            return last[-1] if last and last[-1]["state"] == "ready" else None

        ready = await eventually(prepared, 900, lambda: f"the demo is ready: {demo.messages[-2:]}", interval=1)
        seen_steps = {m["demo"]["progress"]["step"] for _, m in demo.of("demo") if m["demo"]["progress"]}
        assert len(seen_steps) == 7  # live progress through every step (the reset is step 6 again)
        namespace = ready["namespace"]

        state = stack.instructor.get(f"/demo/{stack.slug}/state.json").json()
        run = state["run"]
        assert run is not None and run["state"] == "running" and run["namespace"] == namespace
        stream = run["streams"][0]["name"]
        raised = stack.instructor.post(f"/traffic/runs/{run['id']}/rate/", json={"stream": stream, "rate": RATE})
        assert raised.status_code == 200, raised.text

        async with (
            Socket(stack, f"/ws/traffic/{run['id']}/") as traffic,
            Socket(stack, f"/ws/graph/{namespace}/") as graph,
        ):

            def healthy_since(moment: float) -> bool:
                windows = [m for t, m in traffic.of("window") if m["start"] >= moment]
                edges = store_edge(graph, moment)
                return (
                    len(windows) >= 3
                    and share_5xx(windows[-3:])[0] == 0
                    and bool(edges)
                    and edges[-1][1]["healthStatus"] == "Healthy"
                )

            start = time.time()
            await eventually(lambda: healthy_since(start), 60, "a healthy baseline on the traffic and the graph")

            answer = post(stack, "faults/", {"target": "kvstore", "abort_percent": 50, "abort_status": 500})
            assert answer.status_code == 202, answer.text
            fault = await fault_reaches(demo, answer.json()["fault"]["id"], "active", 30)
            done = iso_seconds(fault["applied_at"])

            def five_seconds_of_windows() -> list[dict] | None:
                windows = [m for _, m in traffic.of("window") if done <= m["start"] and m["end"] <= done + 5]
                return windows if windows and windows[-1]["end"] >= done + 4 else None

            windows = await eventually(five_seconds_of_windows, 10, "traffic windows of the 5 s after the fault")
            errors, total = share_5xx(windows)
            low, high = binomial_bounds(total, 0.5)
            assert total >= 2 * RATE, f"only {total} requests in the 5 s after the fault"
            assert low <= 100 * errors / total <= high, (
                f"{errors} of {total} failed; expected 50% ({low:.0f}..{high:.0f})"
            )

            def red() -> float | None:
                return next((t for t, e in store_edge(graph, done) if e["healthStatus"] == "Failure"), None)

            turned_red = await eventually(red, 15, "the splitdim → kvstore edge turns Failure")
            print(f"\nedge red {turned_red - done:.1f} s after the fault task finished")

            assert post(stack, f"faults/{fault['id']}/revert/").status_code == 202
            reverted = await fault_reaches(demo, fault["id"], "reverted", 30)
            healed = iso_seconds(reverted["reverted_at"])
            await eventually(lambda: healthy_since(healed), 40, "traffic and graph healthy again after the revert")
            assert stack.virtual_services(namespace) == {}
