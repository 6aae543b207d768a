"""The mesh graph's two performance targets (issue 6).

1. Build time: the graph of 200 workloads with 1,000 caller/callee pairs, from recorded Prometheus
   answers (JSON decoding, traffic map, appenders, badges from a cluster snapshot, JSON encoding);
   target <= 200 ms.
2. Fault applied -> edge red: the lab deployed in the sandbox with traffic through the gateway, the
   lab's fault VirtualService applied at a random moment, and the time until a graph refreshed on the
   poller's schedule (meshgraph.poller.refresh_schedule: every 2 s, and at once when the embedded
   source has news) shows the splitdim -> kvstore edge no longer green, for a real Prometheus (1 s
   scrape; skipped without the `prometheus` binary) and the embedded source, side by side on the same
   traffic; targets <= 10 s and <= 5 s. A third watcher reads the same embedded scrapes every 2 s only
   (the schedule before news), so the two schedules are compared on the same failures. The time
   splits in two: from the fault to the first failed request (the lab fails 10% of reads at random:
   at 5 req/s a median of about 1.4 s and a long tail, which no graph can shorten) and from that
   request to the red edge (what the graph pipeline adds). Both are printed. The browser only adds
   the websocket hop.

Run: .venv/bin/python benchmarks/graph_build.py [TRIALS] [RATE]   (defaults 5 trials, 5 req/s as the lab;
     0 trials: the build time only). Build times are CPU (process_time) and wall p50/p95: on a shared
     machine the CPU figure is the honest one.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import client, wait_ready  # noqa: E402
from labsteps.content import load_steps  # noqa: E402
from meshgraph.build import GraphOptions, Telemetry, build_graph, graph_for  # noqa: E402
from meshgraph.cluster import ClusterReader, Snapshot, Workload, scrape_targets  # noqa: E402
from meshgraph.memory import paused_gc  # noqa: E402
from meshgraph.poller import refresh_schedule  # noqa: E402
from meshgraph.sources import EmbeddedSource, PrometheusSource, vector_samples  # noqa: E402
from sandbox import process  # noqa: E402

NS = "bench"
WORKLOADS = 200
CALLEES = 5  # per workload: 1,000 caller/callee pairs
REFRESH = 2.0  # GRAPH_REFRESH_SECONDS' default
MANAGER = "meshconsole-bench"


# ---- 1. build time ---------------------------------------------------------------------------------
def _ends(source: str, dest: str) -> dict[str, str]:
    labels = {}
    for side, name in (("source", source), ("destination", dest)):
        labels.update({f"{side}_cluster": "Kubernetes", f"{side}_workload": name,
                       f"{side}_workload_namespace": NS, f"{side}_canonical_service": name,
                       f"{side}_canonical_revision": "v1"})  # fmt: skip
    labels.update({"destination_service": f"{dest}.{NS}.svc.cluster.local", "destination_service_name": dest,
                   "destination_service_namespace": NS, "request_protocol": "http"})  # fmt: skip
    return labels


def recorded_answers() -> list[bytes]:
    """Prometheus' JSON answers to the graph's seven queries, as the HTTP API sends them."""
    incoming, outgoing, times, security = [], [], [], []
    for i in range(WORKLOADS):
        for k in range(1, CALLEES + 1):
            ends = _ends(f"wl-{i}", f"wl-{(i + 37 * k) % WORKLOADS}")
            codes = {"200": 9.5, "503": 0.5} if (i + k) % 7 == 0 else {"200": 10.0}
            for code, value in codes.items():
                series = {"metric": {**ends, "response_code": code, "response_flags": "-"}, "value": [0, str(value)]}
                incoming.append(series)
                outgoing.append(series)  # the caller's proxy saw the same requests
            times.append({"metric": ends, "value": [0, "12.5"]})
            policy = {"source_principal": "spiffe://a", "destination_principal": "spiffe://b",
                      "connection_security_policy": "mutual_tls"}  # fmt: skip
            security.append({"metric": {**ends, **policy}, "value": [0, "10"]})
    answers = [[], incoming, outgoing, times, [], [], security]
    return [orjson.dumps({"status": "success", "data": {"resultType": "vector", "result": r}}) for r in answers]


def snapshot() -> Snapshot:
    snap = Snapshot(NS, taken=time.time())
    for i in range(WORKLOADS):
        snap.workloads[f"wl-{i}"] = Workload(f"wl-{i}", "Deployment", {"app": f"wl-{i}"}, 1, 1, 1, 0, 1)
        snap.services[f"wl-{i}"] = {"app": f"wl-{i}"}
    snap.virtual_services = [{"spec": {"hosts": [f"wl-{i}"], "http": [{"fault": {"abort": {}}, "route": [{}]}]}}
                             for i in range(0, WORKLOADS, 10)]  # fmt: skip
    snap.destination_rules = [{"spec": {"host": f"wl-{i}", "trafficPolicy": {"outlierDetection": {}}}}
                              for i in range(0, WORKLOADS, 20)]  # fmt: skip
    return snap


def build_once(bodies: list[bytes], snap: Snapshot) -> tuple[bytes, dict]:
    vectors = []
    for body in bodies:  # as PrometheusSource decodes each answer
        with paused_gc():
            vectors.append(vector_samples(orjson.loads(body)))
    telemetry = Telemetry(vectors[0:3], vectors[3:5], vectors[5:7])
    graph = build_graph(NS, telemetry, snap, GraphOptions(), source="prometheus", source_location="recorded",
                        at=time.time())  # fmt: skip
    return orjson.dumps(graph), graph


def reference_loop() -> float:
    """Seconds for sum(range(10**6)), best of five: about 0.01 s on a current laptop core, to scale by."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - start)
    return best


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} / p95 {p95 * 1000:.1f} ms"


def bench_build(runs: int = 100) -> None:
    bodies, snap = recorded_answers(), snapshot()
    build_once(bodies, snap)  # warm up
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        text, graph = build_once(bodies, snap)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    nodes, edges = graph["elements"]["nodes"], graph["elements"]["edges"]
    series = sum(len(orjson.loads(b)["data"]["result"]) for b in bodies)
    print(
        f"graph build from recorded answers: {WORKLOADS} workloads, {WORKLOADS * CALLEES} caller/callee pairs, "
        f"{series} series -> {len(nodes)} nodes, {len(edges)} edges, {len(text) // 1024} KiB of JSON"
    )
    print(
        f"  CPU {_percentiles(cpu)}, wall {_percentiles(wall)} over {runs} builds (target <= 200 ms); "
        f"this machine's reference loop: {reference_loop() * 1000:.0f} ms, load average {os.getloadavg()[0]:.1f}"
    )


# ---- 2. fault -> edge red ---------------------------------------------------------------------------
def manifests(step_id: str) -> list[dict]:
    step = next(s for s in load_steps() if s.id == step_id)
    return step.render_manifests(NS)


def apply(dyn, objects: list[dict]) -> None:
    for obj in objects:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        api.server_side_apply(body=obj, namespace=NS, field_manager=MANAGER, force_conflicts=True)


class Traffic:
    """Open-loop GETs at a fixed rate from a thread of its own, remembering when failed answers came back."""

    def __init__(self, url: str, rate: float, seconds: float) -> None:
        self.url, self.rate, self.seconds = url, rate, seconds
        self.failures: list[float] = []  # wall-clock times of 5xx answers and failed requests
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def one() -> None:
                try:
                    async with session.get(self.url) as response:
                        await response.read()
                        failed = response.status >= 500
                except (aiohttp.ClientError, TimeoutError):
                    failed = True
                if failed:
                    self.failures.append(time.time())

            tasks: set[asyncio.Task] = set()
            start = time.monotonic()
            while not self._stop.is_set() and self.sent < self.rate * self.seconds:
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.sent += 1
                await asyncio.sleep(max(0.0, start + self.sent / self.rate - time.monotonic()))
            await asyncio.gather(*tasks, return_exceptions=True)

    def first_failure(self, after: float) -> float | None:
        return next((t for t in list(self.failures) if t > after), None)


class Watcher:
    """Refreshes a graph as a poller does and records the splitdim -> kvstore edge's health.

    `news=True`: the poller's own schedule (meshgraph.poller.refresh_schedule: every REFRESH seconds, and at
    once when the source has news); `news=False`: every REFRESH seconds only, as the poller did before.
    """

    def __init__(self, name: str, source, reader: ClusterReader, news: bool) -> None:
        self.name, self.source, self.reader, self.news = name, source, reader, news
        self.seen: list[tuple[float, str]] = []  # (time the graph was ready, edge health)

    async def refresh(self) -> None:
        graph = await graph_for(NS, self.source, self.reader, GraphOptions())
        names = {n["data"]["id"]: (n["data"]["label"], n["data"]["nodeType"]) for n in graph["elements"]["nodes"]}
        status = "absent"
        for e in graph["elements"]["edges"]:
            if names[e["data"]["source"]] == ("splitdim", "workload") and names[e["data"]["target"]][0] == "kvstore":
                status = e["data"]["healthStatus"]
        self.seen.append((time.time(), status))

    async def run(self) -> None:
        await refresh_schedule(self.refresh, REFRESH, self.source.news if self.news else None)

    def first(self, after: float, healthy: bool) -> float | None:
        for stamp, status in self.seen:
            if stamp > after and (status == "Healthy") == healthy and status != "absent":
                return stamp
        return None


async def all_seen(watchers: list[Watcher], after: float, healthy: bool, timeout: float) -> None:
    """Wait until every watcher has shown the edge healthy (or not) in a graph made after `after`."""
    deadline = time.monotonic() + timeout
    while not all(w.first(after, healthy) is not None for w in watchers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the store edge did not turn {'green' if healthy else 'red'} within {timeout} s")
        await asyncio.sleep(0.05)


Results = dict[str, list[tuple[float, float]]]  # watcher -> per trial (applied -> red, first failure -> red)


async def fault_trials(dyn, api, traffic: Traffic, prometheus: str | None, trials: int) -> tuple[Results, list]:
    reader = ClusterReader(api, NS)
    options = GraphOptions()

    async def targets():
        return scrape_targets(await reader.snapshot())

    async with EmbeddedSource(targets, quiet_s=options.window_s) as embedded:
        # Both embedded watchers read the same scrapes: the difference between them is the schedule alone.
        watchers = [Watcher("embedded", embedded, reader, news=True)]
        watchers.append(Watcher("embedded, every 2 s only", embedded, reader, news=False))
        if prometheus:
            watchers.append(Watcher("prometheus", PrometheusSource(prometheus), reader, news=True))
        tasks = [asyncio.create_task(w.run()) for w in watchers]
        vs_api = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
        results: Results = {w.name: [] for w in watchers}
        dice: list[float] = []  # applied -> first failed request (the fault's 10% chance per request)
        try:
            for trial in range(trials):
                since = time.time()
                await all_seen(watchers, since, healthy=True, timeout=60)
                await asyncio.sleep(random.uniform(0, REFRESH))  # a random phase against the refreshes
                await asyncio.to_thread(apply, dyn, manifests("fault-injection"))
                applied = time.time()
                await all_seen(watchers, applied, healthy=False, timeout=30)
                failed = traffic.first_failure(applied)
                if failed is None:
                    raise RuntimeError("an edge turned red but the client saw no failed request")
                dice.append(failed - applied)
                for w in watchers:
                    red = w.first(applied, healthy=False)
                    results[w.name].append((red - applied, red - failed))
                print(
                    f"  trial {trial + 1}: first failed request {failed - applied:.1f} s after the fault; red after "
                    + ", ".join(f"{n} {v[-1][0]:.1f} s ({v[-1][1]:.1f} s after it)" for n, v in results.items())
                )
                await asyncio.to_thread(vs_api.delete, name="kvstore-500", namespace=NS)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return results, dice


def bench_fault(trials: int, rate: float) -> None:
    from tests.prometheus import start_prometheus

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        targets = tmp_path / "prometheus-targets.json"
        sb = process.start(tmp_path, "--prometheus-sd", str(targets))
        prom = None
        try:
            if shutil.which("prometheus"):
                (tmp_path / "prometheus").mkdir()
                prom = start_prometheus(tmp_path / "prometheus", targets)
            else:
                print("  (no prometheus binary: the Prometheus half is skipped)")
            dyn = client(sb.kubeconfig, tmp_path / "discovery.json")
            dyn.resources.get(api_version="v1", kind="Namespace").server_side_apply(
                body={
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": NS, "labels": {"istio-injection": "enabled"}},
                },  # fmt: skip
                field_manager=MANAGER,
            )
            apply(dyn, manifests("deploy-splitdim") + manifests("ingress-gateway"))
            wait_ready(dyn, NS, 3)
            svc = dyn.resources.get(api_version="v1", kind="Service").get(name="splitdim-istio", namespace=NS)
            port = next(p.nodePort for p in svc.spec.ports if p.port == 80)
            base = f"http://{svc.status.loadBalancer.ingress[0].ip}:{port}"
            with Traffic(f"{base}/api/clear", rate, seconds=trials * 40 + 60) as traffic:
                results, dice = asyncio.run(fault_trials(dyn, dyn.client, traffic, prom.url if prom else None, trials))
        finally:
            if prom is not None:
                prom.stop()
            sb.stop()
    print(
        f"fault applied -> first failed request (chance: 10% of reads fail): median {statistics.median(dice):.1f} s, "
        f"max {max(dice):.1f} s over {len(dice)} trials at {rate:g} req/s"
    )
    for name, values in results.items():
        target = 10.0 if name == "prometheus" else 5.0
        total, after = [v[0] for v in values], [v[1] for v in values]
        print(
            f"fault applied -> edge red ({name}): median {statistics.median(total):.1f} s, max {max(total):.1f} s "
            f"(target <= {target:g} s); first failed request -> red: median {statistics.median(after):.1f} s, "
            f"max {max(after):.1f} s"
        )


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    bench_build()
    if trials > 0:
        bench_fault(trials, rate)


if __name__ == "__main__":
    main()
