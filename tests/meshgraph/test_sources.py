"""Both metrics sources against real loopback HTTP servers: what they send, and how they fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiohttp import web

from meshgraph.build import GraphOptions, graph_for
from meshgraph.promql import extrapolated_rate
from meshgraph.queries import REQUESTS, request_queries
from meshgraph.sources import EmbeddedSource, PrometheusSource, SourceError, Target, load_address_map

Handler = Callable[[web.Request], web.StreamResponse]


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable]:
    """Start an aiohttp app on a free loopback port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def prometheus_answer(result: list[dict]) -> web.Response:
    return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.mark.asyncio
async def test_prometheus_source_sends_kialis_queries_at_one_instant(serve):
    received: list[dict] = []

    async def query(request: web.Request) -> web.Response:
        received.append(dict(request.query))
        if 'destination_workload_namespace="lab"}' in request.query["query"]:
            sample = {"metric": {"destination_workload": "kvstore", "response_code": "200"}, "value": [1, "2.5"]}
            return prometheus_answer([sample, {"metric": {}, "value": [1, "NaN"]}])
        return prometheus_answer([])

    source = PrometheusSource(await serve({"/api/v1/query": query}))
    incoming = request_queries("lab")[1]
    [sample] = await source.rates(incoming, 10, at=1234.5)
    await source.aclose()
    assert received == [{"query": incoming.promql(10), "time": "1234.500"}]
    assert sample.labels == {"destination_workload": "kvstore", "response_code": "200"} and sample.value == 2.5


@pytest.mark.asyncio
async def test_prometheus_errors_become_plain_sentences(serve, closed_port):
    async def bad(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "errorType": "bad_data", "error": "parse error"}, status=400)

    query = request_queries("lab")[2]
    broken = PrometheusSource(await serve({"/api/v1/query": bad}))
    with pytest.raises(SourceError, match=r"answered HTTP 400: parse error$"):
        await broken.rates(query, 10, at=1.0)
    await broken.aclose()
    down = PrometheusSource(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(SourceError, match=rf"^Prometheus at http://127.0.0.1:{closed_port} is unreachable: "):
        await down.rates(query, 10, at=1.0)
    graph = await graph_for("lab", down, None, GraphOptions())
    await down.aclose()
    assert graph["status"]["ok"] is False and "unreachable" in graph["status"]["message"]
    assert graph["elements"] == {"nodes": [], "edges": []}


@pytest.mark.asyncio
async def test_an_empty_prometheus_says_it_has_no_istio_metrics(serve):
    async def empty(request: web.Request) -> web.Response:
        return prometheus_answer([])

    source = PrometheusSource(await serve({"/api/v1/query": empty}))
    graph = await graph_for("lab", source, None, GraphOptions())
    await source.aclose()
    assert graph["status"]["ok"] is True
    assert graph["status"]["message"].startswith(f"Prometheus at {source.location} holds no Istio request metrics")


def exposition(counts: dict[str, int]) -> str:
    labels = (
        'reporter="destination",source_workload="splitdim",source_workload_namespace="lab",'
        'source_canonical_service="splitdim",destination_workload="kvstore",destination_workload_namespace="lab",'
        'destination_service_name="kvstore",response_code="{}"'
    )
    lines = [f"{REQUESTS}{{{labels.format(code)}}} {count}" for code, count in counts.items()]
    return "# TYPE istio_requests_total counter\n" + "\n".join(lines) + "\nenvoy_other 1\n"


@pytest.mark.asyncio
async def test_embedded_source_scrapes_and_computes_prometheus_rates(serve):
    answers = iter([{"200": 100}, {"200": 150}, {"200": 250, "500": 3}])

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=exposition(next(answers)))

    base = await serve({"/stats/prometheus": stats})
    targets = [Target("lab", "kvstore-0", f"{base}/stats/prometheus")]

    async def listed() -> list[Target]:
        return targets

    source = EmbeddedSource(listed, interval=0.05)
    for _ in range(3):
        await source.scrape()
    ok, errors = source.series()
    assert [value for _, value in ok.points] == [100, 150, 250]
    # A series new in a proxy's answer was 0 at that proxy's previous scrape.
    assert errors.points[0] == (ok.points[1][0], 0.0) and errors.points[1] == (ok.points[2][0], 3)
    first, last = ok.points[0][0], ok.points[-1][0]
    assert source.instant() == last  # answers are for the end of the last complete round
    by_code = {s.labels["response_code"]: s.value for s in await source.rates(request_queries("lab")[1], 1, at=last)}
    assert by_code["200"] == pytest.approx(extrapolated_rate(list(ok.points), last - 1, last), abs=0.001)
    assert by_code["200"] > 0 and by_code["500"] > 0 and first < last
    await source.aclose()


@pytest.mark.asyncio
async def test_embedded_source_explains_what_it_cannot_see(serve, closed_port):
    async def nothing() -> list[Target]:
        return []

    idle = EmbeddedSource(nothing)
    for _ in range(2):
        await idle.scrape()
    assert (await idle.explain_empty("lab", 10)).startswith("No pod in namespace lab has a sidecar yet")
    await idle.aclose()

    async def unreachable() -> list[Target]:
        return [Target("lab", "kvstore-0", f"http://127.0.0.1:{closed_port}/stats/prometheus")]

    failing = EmbeddedSource(unreachable)
    await failing.scrape()
    with pytest.raises(SourceError, match="could not be scraped: kvstore-0: "):
        await failing.rates(request_queries("lab")[1], 10, at=1.0)
    await failing.aclose()


def test_address_map_from_the_sandbox_file_sd(tmp_path):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps([{"targets": ["127.0.0.1:31001"], "labels": {"pod_ip": "127.9.0.3", "pod": "p"}}]))
    assert load_address_map(str(path)) == {"127.9.0.3": "127.0.0.1:31001"}
    assert load_address_map(str(tmp_path / "missing.json")) == {}


def test_prometheus_vectors_are_decoded_without_nan_values():
    from meshgraph.sources import vector_samples

    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [1, "0.5"]}, {"metric": {"a": "2"}, "value": [1, "NaN"]},
        {"metric": {}, "value": [1, "+Inf"]},
    ]}}  # fmt: skip
    assert [(s.labels, s.value) for s in vector_samples(answer)] == [({"a": "1"}, 0.5), ({}, float("inf"))]


async def has_news(source: EmbeddedSource) -> bool:
    try:
        await asyncio.wait_for(source.news(), 0.2)
    except TimeoutError:
        return False
    return True


@pytest.mark.asyncio
async def test_embedded_source_has_news_when_a_rate_starts_not_while_traffic_is_steady(serve):
    rounds = [
        {"200": 100},  # first scrape: nothing known to have changed
        {"200": 150},  # the 200 rate becomes positive
        {"200": 200},  # steady
        {"200": 250, "500": 1},  # a new response code: the first failure of a fault
        {"200": 300, "500": 1},  # steady, the failure still in the window
        {"200": 350, "500": 2},  # another failure within the window: not news
    ]
    answers = iter(rounds)

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=exposition(next(answers)))

    base = await serve({"/stats/prometheus": stats})

    async def listed() -> list[Target]:
        return [Target("lab", "kvstore-0", f"{base}/stats/prometheus")]

    source = EmbeddedSource(listed, quiet_s=60)
    news = []
    for _ in rounds:
        await source.scrape()
        news.append(await has_news(source))
    await source.aclose()
    assert news == [False, True, False, True, False, False]


@pytest.mark.asyncio
async def test_a_series_quiet_for_longer_than_the_window_is_news_when_it_moves(serve):
    answers = iter([{"200": 100, "500": 1}, {"200": 150, "500": 1}, {"200": 200, "500": 2}])

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=exposition(next(answers)))

    base = await serve({"/stats/prometheus": stats})

    async def listed() -> list[Target]:
        return [Target("lab", "kvstore-0", f"{base}/stats/prometheus")]

    # quiet_s=0: every change comes after a quiet time as long, so every moving round is news.
    source = EmbeddedSource(listed, quiet_s=0)
    news = []
    for _ in range(3):
        await source.scrape()
        news.append(await has_news(source))
    await source.aclose()
    assert news == [False, True, True]
    # Of a source with no scrape (Prometheus), news never comes.
    prometheus = PrometheusSource("http://127.0.0.1:9")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(prometheus.news(), 0.2)
    await prometheus.aclose()
