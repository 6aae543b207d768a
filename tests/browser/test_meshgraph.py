"""The mesh graph panel (static/js/meshgraph*.js, templates/meshgraph/panel.html) in Chromium.

The renderer is tested without the console: a loopback aiohttp server (meshgraph_server.py) serves the
real panel template and static files, answers GET /graph/<ns>.json, and pushes the graphs each test
builds on the websocket /ws/graph/<ns>/. Graphs are Kiali-shaped, as the console's meshgraph app sends them.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.graph_page_weight import SCRIPT_BUDGET, panel_assets, script_weight
from tests.browser.meshgraph_server import GraphServer

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser

NS = "student-7"
HEALTHY_RGB = (21, 128, 61)  # --mg-healthy in meshgraph.css (light scheme)
FAILURE_RGB = (220, 38, 38)  # --mg-failure
NODE_ROOM = (90, 84)  # meshgraph-layout.js: NODE_WIDTH, NODE_HEIGHT


# --- Graphs as the console sends them (meshgraph/render.py), one node and one edge as Kiali sends them --


def workload(name: str, version: str = "v1", badges: tuple[str, ...] = (), **flags: Any) -> dict:
    data = {"id": f"wl-{name}", "nodeType": "workload", "label": name, "namespace": NS, "workload": name}
    status = {"kind": "Deployment", "desiredReplicas": 1, "currentReplicas": 1, "availableReplicas": 1}
    more = {"app": name.split("-")[0], "version": version, "service": "", "workloadStatus": status}
    return {"data": data | more | {"healthStatus": "Healthy", "badges": list(badges)} | flags}


def service(name: str, badges: tuple[str, ...] = (), **flags: Any) -> dict:
    data = {"id": f"svc-{name}", "nodeType": "service", "label": name, "namespace": NS, "service": name}
    return {"data": data | {"app": name, "healthStatus": "Healthy", "badges": list(badges)} | flags}


UNKNOWN = {"data": {"id": "unknown", "nodeType": "unknown", "label": "unknown", "healthStatus": "NA", "badges": ["RO"]}}
# Kiali's form: no label, no badges list, only the flag.
GATEWAY = {
    "data": {
        "id": "wl-splitdim-istio",
        "nodeType": "workload",
        "namespace": NS,
        "workload": "splitdim-istio",
        "app": "splitdim-istio",
        "healthStatus": "Healthy",
        "isGateway": {"gatewayAPIInfo": {"hostnames": ["*"]}},
    }
}


def edge(source: str, target: str, rps: float, err: float = 0.0, p95: float = 4.0, mtls: float = 100.0, share=100.0):
    codes = {"200": {"flags": {"-": 100.0 - err}, "hosts": {"kvstore": 100.0 - err}}}
    if err:
        codes["500"] = {"flags": {"FI": err}, "hosts": {"kvstore": err}}
    rates = {"http": rps, "httpPercentErr": err, "httpPercentReq": share}
    if err:
        rates["http5xx"] = rps * err / 100
    data = {
        "id": f"{source}>{target}",
        "source": source,
        "target": target,
        "traffic": {"protocol": "http", "rates": rates, "responses": codes},
        "responseTime": p95,
        "healthStatus": "Failure" if err >= 10 else "Degraded" if err else "Healthy",
    }
    return {"data": data | ({"isMTLS": mtls} if mtls else {})}


def kiali_edge(source: str, target: str, rps: float) -> dict:
    """Kiali's form: rates as strings with two decimals, no error percentage when there are no errors."""
    data = edge(source, target, rps, mtls=0)["data"]
    data["traffic"]["rates"] = {"http": f"{rps:.2f}"}
    data["traffic"]["responses"] = {"200": {"flags": {"-": "100.0"}, "hosts": {"splitdim": "100.0"}}}
    return {"data": data}


def graph(nodes: list[dict], edges: list[dict], timestamp: int, **status: Any) -> dict:
    return {
        "timestamp": timestamp,
        "duration": 60,
        "graphType": "workload",
        "source": "prometheus",
        "status": {"ok": True, "message": ""} | status,
        "elements": {"nodes": nodes, "edges": edges},
    }


def lab_graph(timestamp: int, rps: float = 5.0) -> dict:
    """Step 4 of the lab: outside clients → ingress gateway → splitdim → kvstore, mTLS inside the mesh."""
    nodes = [UNKNOWN, GATEWAY, service("splitdim"), workload("splitdim"), service("kvstore"), workload("kvstore")]
    edges = [
        kiali_edge("unknown", "wl-splitdim-istio", rps),
        edge("wl-splitdim-istio", "svc-splitdim", rps),
        edge("svc-splitdim", "wl-splitdim", rps),
        edge("wl-splitdim", "svc-kvstore", rps),
        edge("svc-kvstore", "wl-kvstore", rps),
    ]
    return graph(nodes, edges, timestamp)


def routed_faulty_graph(timestamp: int) -> dict:
    """Steps 5 and 6: a second splitdim version appears, and kvstore aborts 10% of requests (fault injection)."""
    g = lab_graph(timestamp)
    nodes = g["elements"]["nodes"]
    flags = {"hasVS": {"hostnames": ["kvstore"]}, "hasFaultInjection": True, "healthStatus": "Failure"}
    nodes[4] = service("kvstore", badges=("VS", "FI"), **flags)
    nodes.append(workload("splitdim-2", version="v2"))
    edges = g["elements"]["edges"]
    edges[3] = edge("wl-splitdim", "svc-kvstore", 5.0, err=10.0, p95=12.0)
    edges[2] = edge("svc-splitdim", "wl-splitdim", 5.0, share=83.3)
    edges += [edge("svc-splitdim", "wl-splitdim-2", 1.0, share=16.7), edge("wl-splitdim-2", "svc-kvstore", 1.0)]
    return g


# --- Fixtures and page helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[GraphServer]:
    graph_server = GraphServer(NS).start()
    yield graph_server
    graph_server.stop()


@pytest.fixture
def graph_page(page, server: GraphServer):
    """The panel showing lab_graph (from the JSON endpoint), with its websocket live."""
    server.json_graph = lab_graph(1000)
    page.goto(server.url)
    wait_updates(page, 1)
    expect(page.locator("[data-meshgraph] [data-role=connection]")).to_have_attribute("data-state", "live")
    wait_until(lambda: server.open_sockets() == 1, "the page's websocket on the server")
    return page


def wait_until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_updates(page, count: int) -> None:
    page.wait_for_function(f"Number(document.querySelector('[data-meshgraph]').dataset.updates) >= {count}")


def updates(page) -> int:
    return int(page.locator("[data-meshgraph]").get_attribute("data-updates"))


def push(page, server: GraphServer, g: dict) -> None:
    """Send one graph on the websocket and wait until the page has drawn it."""
    before = updates(page)
    assert server.push(g) == 1
    wait_updates(page, before + 1)


def cy(page, expression: str, arg: Any = None) -> Any:
    """Evaluate `expression` (a function of cy and arg) against the panel's Cytoscape instance."""
    return page.evaluate(f"([arg]) => ({expression})(MeshConsole.meshGraphs.get({json.dumps(NS)}).cy, arg)", [arg])


def positions(page) -> dict[str, dict[str, float]]:
    return cy(page, "c => Object.fromEntries(c.nodes().map(n => [n.id(), n.position()]))")


# Pixels of the graph's canvases within a small distance of an RGB colour: what the student actually sees.
COUNT_PIXELS = """([r, g, b]) => {
    let count = 0;
    for (const canvas of document.querySelectorAll("[data-role=canvas] canvas")) {
        if (!canvas.width || !canvas.height) continue;
        const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < d.length; i += 4) {
            const distance = Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b);
            if (d[i + 3] > 200 && distance < 40) count++;
        }
    }
    return count;
}"""


def coloured_pixels(page, rgb: tuple[int, int, int]) -> int:
    return page.evaluate(COUNT_PIXELS, list(rgb))


def wait_pixels(page, rgb: tuple[int, int, int], minimum: int = 50) -> None:
    """Wait until the canvases show at least `minimum` pixels of the colour (drawing is asynchronous)."""
    page.wait_for_function(f"rgb => ({COUNT_PIXELS})(rgb) >= {minimum}", arg=list(rgb))


def click_element(page, element_id: str) -> None:
    """A real mouse click on a node (its centre) or an edge (its midpoint); the side panel is closed if in the way."""
    where = "(c, id) => (e => e.isNode() ? e.renderedPosition() : e.renderedMidpoint())(c.getElementById(id))"
    point = cy(page, where, element_id)
    box = page.locator("[data-role=canvas]").bounding_box()
    x, y = box["x"] + point["x"], box["y"] + point["y"]
    on_canvas = "([x, y]) => document.elementFromPoint(x, y).closest('[data-role=canvas]') !== null"
    if not page.evaluate(on_canvas, [x, y]):
        page.get_by_role("button", name="Close the details").click()  # as a user would
    page.mouse.click(x, y)


# --- Tests ----------------------------------------------------------------------------------------------


def test_graph_renders_left_to_right_with_shapes_labels_and_marks(graph_page) -> None:
    page = graph_page
    assert cy(page, "c => c.nodes().length") == 6
    assert cy(page, "c => c.edges().length") == 5
    chain = ["unknown", "wl-splitdim-istio", "svc-splitdim", "wl-splitdim", "svc-kvstore", "wl-kvstore"]
    xs = [positions(page)[node]["x"] for node in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), f"not laid out left to right: {xs}"

    shapes = cy(page, "c => Object.fromEntries(c.nodes().map(n => [n.id(), n.style('shape')]))")
    assert shapes["wl-splitdim"] == "ellipse" and shapes["svc-splitdim"] == "diamond"
    assert shapes["wl-splitdim-istio"] == "hexagon" and shapes["unknown"] == "round-rectangle"
    assert cy(page, "c => c.getElementById('unknown').style('border-style')") == "dashed"
    assert cy(page, "c => c.getElementById('wl-splitdim').style('label')") == "splitdim\nv1"
    assert cy(page, "c => c.getElementById('wl-splitdim>svc-kvstore').style('label')") == "5.00 rps | 0% | 4.0 ms"

    # Locks on the four mTLS edges (not on the plaintext one from outside), the gateway's GW badge.
    locks = page.locator("[data-role=overlay] .mg-lock")
    expect(locks).to_have_count(4)
    assert "unknown>wl-splitdim-istio" not in [locks.nth(i).get_attribute("data-for") for i in range(4)]
    badge = page.locator("[data-role=overlay] .mg-badge[data-badge=GW]")
    expect(badge).to_have_count(1)
    assert badge.get_attribute("data-for") == "wl-splitdim-istio"

    status = page.locator("[data-meshgraph] [data-role=status]")
    expect(status).to_have_text("6 nodes, 5 edges.")
    expect(page.locator("[data-meshgraph] [data-role=source]")).to_contain_text("Prometheus · last 1 min")
    wait_pixels(page, HEALTHY_RGB)  # healthy edges and nodes are drawn in green...
    assert coloured_pixels(page, FAILURE_RGB) == 0  # ...and nothing is red


def test_update_without_reload_keeps_positions_and_places_the_new_node(graph_page, server) -> None:
    page = graph_page
    before = positions(page)
    page.evaluate("window.sameDocument = true")

    push(page, server, routed_faulty_graph(1002))

    after = positions(page)
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    for node, spot in before.items():
        assert after[node] == spot, f"{node} moved from {spot} to {after[node]}"
    new = after["wl-splitdim-2"]
    assert after["svc-splitdim"]["x"] < new["x"] < after["svc-kvstore"]["x"], "not between its neighbours"
    for node, spot in before.items():
        overlaps = abs(spot["x"] - new["x"]) < NODE_ROOM[0] and abs(spot["y"] - new["y"]) < NODE_ROOM[1]
        assert not overlaps, f"the new node lies on {node}"

    # The update itself shows: the faulty edge is red with its new numbers, kvstore got its VS and FI badges.
    faulty = "c => c.getElementById('wl-splitdim>svc-kvstore')"
    assert cy(page, f"c => ({faulty})(c).style('label')") == "5.00 rps | 10% | 12 ms"
    assert cy(page, f"c => ({faulty})(c).style('line-color')") == "rgb({},{},{})".format(*FAILURE_RGB)
    wait_pixels(page, FAILURE_RGB)
    for badge in ("VS", "FI"):
        expect(page.locator(f".mg-badge[data-badge={badge}][data-for=svc-kvstore]")).to_have_count(1)
    expect(page.locator("[data-role=status]")).to_have_text("7 nodes, 7 edges, 1 failing.")


def test_positions_survive_a_node_leaving_and_a_reload(graph_page, server) -> None:
    page = graph_page
    push(page, server, routed_faulty_graph(1002))
    placed = positions(page)

    push(page, server, lab_graph(1004))  # splitdim-2 scaled down: its node leaves
    assert "wl-splitdim-2" not in positions(page)
    push(page, server, routed_faulty_graph(1006))  # ...and comes back where it was
    assert positions(page) == placed

    server.json_graph = routed_faulty_graph(1008)
    page.reload()
    wait_updates(page, 1)
    assert positions(page) == {node: {"x": round(p["x"]), "y": round(p["y"])} for node, p in placed.items()}


def test_nodes_seen_idle_first_are_laid_out_when_their_traffic_arrives(page, server) -> None:
    """The metrics source warming up sends the workloads before any rate: no one-column layout may stick."""
    warming = lab_graph(1000)
    warming["elements"]["edges"] = []
    server.json_graph = warming
    page.goto(server.url)
    wait_updates(page, 1)
    wait_until(lambda: server.open_sockets() == 1, "the page's websocket on the server")
    assert cy(page, "c => c.nodes().length") == 6

    push(page, server, lab_graph(1002))
    chain = ["unknown", "wl-splitdim-istio", "svc-splitdim", "wl-splitdim", "svc-kvstore", "wl-kvstore"]
    laid_out = positions(page)
    xs = [laid_out[node]["x"] for node in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), f"not laid out left to right: {xs}"
    push(page, server, lab_graph(1004, rps=9.0))
    assert positions(page) == laid_out  # settled now: further updates move nothing


def test_a_returning_node_does_not_land_on_one_that_took_its_place(graph_page) -> None:
    spots = graph_page.evaluate(
        """() => {
            const fixed = new Map([["a", {x: 100, y: 100}]]);
            const preferred = new Map([["b", {x: 100, y: 100}], ["c", {x: 400, y: 100}]]);
            return Object.fromEntries(MeshConsole.meshLayout.placeNew(["a", "b", "c"], [], fixed, preferred));
        }"""
    )
    assert spots["c"] == {"x": 400, "y": 100}  # its own spot, free: kept
    assert spots["b"]["x"] == 100 and abs(spots["b"]["y"] - 100) >= NODE_ROOM[1]  # taken: slid along its column
    assert "a" not in spots


def test_says_plainly_when_metrics_fail_or_no_traffic(graph_page, server) -> None:
    page = graph_page
    root = page.locator("[data-meshgraph]")
    status = root.locator("[data-role=status]")
    message = "Prometheus at http://127.0.0.1:9090 is unreachable: connection refused."

    push(page, server, graph([], [], 1002, ok=False, message=message))
    expect(root).to_have_attribute("data-state", "error")
    expect(status).to_have_text(f"{message} The graph shown is the last one received.")
    assert cy(page, "c => c.nodes().length") == 6  # kept on screen, dimmed

    push(page, server, graph([], [], 1004))
    expect(root).to_have_attribute("data-state", "empty")
    expect(status).to_contain_text(f"No traffic in {NS} over the last 1 min")
    assert cy(page, "c => c.nodes().length") == 0

    # A graph older than the one drawn (a slow JSON answer racing the socket) is ignored.
    count = updates(page)
    assert server.push(lab_graph(1003)) == 1
    push(page, server, graph([], [], 1006, ok=False, message="Prometheus answered with no data."))
    assert updates(page) == count + 1
    assert cy(page, "c => c.nodes().length") == 0
    expect(status).to_have_text("Prometheus answered with no data.")


def test_side_panel_shows_details_and_rate_history(graph_page, server) -> None:
    page = graph_page
    for i, rps in enumerate([6.0, 7.0]):
        push(page, server, lab_graph(1002 + 2 * i, rps=rps))
    push(page, server, routed_faulty_graph(1006))
    details = page.locator("[data-meshgraph] [data-role=details]")
    expect(details).to_be_hidden()

    click_element(page, "wl-kvstore")
    expect(details).to_be_visible()
    expect(details.locator("h3")).to_have_text("kvstore")
    expect(details).to_contain_text("Requests in5.00 rps, 0% errors")
    expect(details).to_contain_text("Pods1 of 1 available")
    expect(details.locator("polyline.mg-series-a")).to_have_attribute("data-points", "4")  # one per update

    click_element(page, "wl-splitdim>svc-kvstore")
    expect(details).to_have_attribute("data-kind", "edge")
    expect(details.locator("h3")).to_have_text("splitdim → kvstore")
    expect(details.locator(".mg-facts")).to_contain_text("mTLS100% of requests")
    expect(details.locator(".mg-responses tr.mg-bad")).to_contain_text("500")
    expect(details.locator(".mg-responses tr.mg-bad .mg-flag")).to_have_text("FI 10%")
    expect(details.locator(".mg-chart-key .mg-series-err")).to_have_text("err % 10%")

    click_element(page, "svc-splitdim>wl-splitdim-2")
    expect(details.locator(".mg-facts")).to_contain_text("Share of the source's requests17%")
    click_element(page, "svc-kvstore")
    expect(details.locator(".mg-badge-list")).to_contain_text("FI fault injection")

    click_element(page, "wl-splitdim>svc-kvstore")
    push(page, server, routed_faulty_graph(1008))  # the open panel follows the updates
    expect(details.locator("polyline.mg-series-a")).to_have_attribute("data-points", "5")
    details.get_by_role("button", name="Close the details").click()
    expect(details).to_be_hidden()


def test_exports_png_and_json(graph_page) -> None:
    page = graph_page
    with page.expect_download() as download_info:
        page.get_by_role("button", name="JSON").click()
    download = download_info.value
    assert download.suggested_filename.startswith(f"meshgraph-{NS}-") and download.suggested_filename.endswith(".json")
    exported = json.loads(open(download.path()).read())
    on_screen = positions(page)
    assert {n["data"]["id"]: n["position"] for n in exported["elements"]["nodes"]} == on_screen
    assert len(exported["elements"]["edges"]) == 5 and exported["source"] == "prometheus"

    with page.expect_download() as download_info:
        page.get_by_role("button", name="PNG").click()
    png = open(download_info.value.path(), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    xs = [p["x"] for p in on_screen.values()]
    assert width > 2 * (max(xs) - min(xs)), f"{width}×{height} is smaller than the graph at twice its size"


def test_reconnects_and_shows_the_connection_state(graph_page, server) -> None:
    page = graph_page
    indicator = page.locator("[data-meshgraph] [data-role=connection]")
    connections = server.connections

    server.drop_connections()
    expect(indicator).to_have_attribute("data-state", "reconnecting")
    expect(indicator).to_have_attribute("data-state", "live")
    assert server.connections == connections + 1
    wait_until(lambda: server.open_sockets() == 1, "the page's new websocket")
    push(page, server, routed_faulty_graph(1002))
    assert "wl-splitdim-2" in positions(page)


def test_panel_scripts_stay_within_the_page_weight_budget() -> None:
    assets = panel_assets()
    assert {"vendor/cytoscape/cytoscape.min.js", "js/meshgraph.js"} <= {a.path for a in assets}
    assert 0 < script_weight(assets) <= SCRIPT_BUDGET


# --- On the real console (tests/browser/conftest.py: lab_console, student_page) -------------------------


def open_step_panel(page, url: str, step_id: str):
    """Open a lab step page; its graph panel, checked to be the student's namespace."""
    page.goto(f"{url}/lab/{step_id}/")
    namespace = page.locator(".step-head .meta code").text_content()
    panel = page.locator("[data-meshgraph]")
    expect(panel).to_have_attribute("data-namespace", namespace)
    return panel, namespace


@pytest.mark.slow
def test_graph_panel_is_on_the_graph_steps_of_the_lab(student_page, lab_console) -> None:
    page = student_page
    for step_id in ("observability", "request-routing", "fault-injection", "security"):
        panel, namespace = open_step_panel(page, lab_console.url, step_id)
        expect(panel).to_be_visible()
        assert page.evaluate("ns => MeshConsole.meshGraphs.get(ns).cy.container() !== null", namespace)
        expect(panel.locator("[data-role=canvas] canvas").first).to_be_attached()  # Cytoscape is running
    for step_id in ("preliminaries", "deploy-splitdim", "ingress-gateway"):
        page.goto(f"{lab_console.url}/lab/{step_id}/")
        expect(page.locator("#step-title")).to_be_visible()
        expect(page.locator("[data-meshgraph]")).to_have_count(0)


@pytest.mark.slow
def test_real_console_feeds_the_panel(student_page, lab_console) -> None:
    page = student_page
    panel, namespace = open_step_panel(page, lab_console.url, "observability")
    wait_updates(page, 1)
    expect(panel.locator("[data-role=connection]")).to_have_attribute("data-state", "live")
    # The student has deployed nothing: the graph is empty, and the status line says why in words.
    expect(panel).to_have_attribute("data-state", "empty")
    assert len(panel.locator("[data-role=status]").text_content().strip()) > 20
    assert page.evaluate("ns => MeshConsole.meshGraphs.get(ns).cy.nodes().length", namespace) == 0


@pytest.mark.slow
def test_graph_page_of_its_own(student_page, lab_console) -> None:
    page = student_page
    _, namespace = open_step_panel(page, lab_console.url, "observability")
    if page.request.get(f"{lab_console.url}/graph/{namespace}/").status == 404:
        pytest.skip("GET /graph/<namespace>/ (templates/meshgraph/page.html) has no view in meshgraph/urls.py yet")
    page.goto(f"{lab_console.url}/graph/{namespace}/")
    expect(page.locator("[data-meshgraph]")).to_have_attribute("data-namespace", namespace)
    wait_updates(page, 1)
    expect(page.locator("[data-meshgraph] [data-role=connection]")).to_have_attribute("data-state", "live")
