"""Service forwarding (kube-proxy's part) over real loopback sockets, and the proxies' config view.

A forwarder relays bytes to a backend and refuses connections when a Service has no ready endpoints. (Handing
accepted sockets straight to in-process proxies was tried and dropped: uvloop then left some handed-over
connections unread after a rollout, and once aborted on a reused descriptor.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from sandbox import catalog
from sandbox.mesh.config import ConfigView
from sandbox.network import Network
from sandbox.proxies import TcpForwarder
from sandbox.store import Store

DEADLINE = 10.0
CONFIGMAPS = catalog.get("", "configmaps")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(asyncio.wait_for(coro, DEADLINE))

    return runner


@pytest.fixture
def network() -> Network:
    net = Network()
    if net.single_address:
        net.close()
        pytest.skip("needs loopback addresses other than 127.0.0.1")
    yield net
    net.close()


def test_other_backends_get_a_relayed_connection(run, network: Network) -> None:
    pod_ip, lb_ip = network.pods.take(), network.take_balancer_ip()

    async def scenario() -> None:
        peers: list[tuple[str, int]] = []

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, sock=network.listen(pod_ip, 8081))
        fwd = TcpForwarder(network, lambda: [(pod_ip, 8081)])
        await fwd.start(network.listen(lb_ip, 8081))
        try:
            reader, writer = await asyncio.open_connection(lb_ip, 8081)
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"
            assert await reader.read() == b""  # the backend's close reaches the client
            assert peers and peers[0] != writer.get_extra_info("sockname")  # a relay connected, not the client
            writer.close()
        finally:
            await fwd.stop()
            server.close()

    run(scenario())


def test_no_ready_endpoint_refuses_the_connection(run, network: Network) -> None:
    lb_ip = network.take_balancer_ip()

    async def scenario() -> None:
        fwd = TcpForwarder(network, list)
        await fwd.start(network.listen(lb_ip, 8082))
        try:
            reader, writer = await asyncio.open_connection(lb_ip, 8082)
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass  # refused either way
            writer.close()
        finally:
            await fwd.stop()

    run(scenario())


def test_config_answers_are_reused_until_the_store_changes() -> None:
    store = Store()
    view = ConfigView.of(store)
    assert ConfigView.of(store) is view
    calls: list[int] = []

    def compute() -> int:
        calls.append(store.rv)
        return len(store.list(CONFIGMAPS))

    assert view.get("count", compute) == 0
    assert view.get("count", compute) == 0
    assert len(calls) == 1
    store.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}})
    assert view.get("count", compute) == 1
    assert len(calls) == 2
