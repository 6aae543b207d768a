"""Service forwarding (kube-proxy's part) over real loopback sockets, and the proxies' config view.

A forwarder hands a connection whose backend is served by a proxy of the same process straight to that
proxy (the client's own socket: no relay), relays bytes to any other backend, and refuses connections
when a Service has no ready endpoints.
"""

from __future__ import annotations

import asyncio
import socket
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


def test_a_connection_for_an_in_process_proxy_is_handed_over(run, network: Network) -> None:
    pod_ip, lb_ip = network.pods.take(), network.take_balancer_ip()

    async def scenario() -> None:
        handed: asyncio.Future[socket.socket] = asyncio.get_running_loop().create_future()
        network.serve_in_process(pod_ip, 8080, handed.set_result)
        fwd = TcpForwarder(network, lambda: [(pod_ip, 8080)])
        await fwd.start(network.listen(lb_ip, 8080))
        try:
            reader, writer = await asyncio.open_connection(lb_ip, 8080)
            conn = await handed
            # The proxy holds the client's own connection: its peer is the client, not a relay.
            assert conn.getpeername() == writer.get_extra_info("sockname")
            writer.write(b"hello")
            await writer.drain()
            loop = asyncio.get_running_loop()
            assert await loop.sock_recv(conn, 5) == b"hello"
            await loop.sock_sendall(conn, b"world")
            assert await reader.readexactly(5) == b"world"
            conn.close()
            writer.close()
        finally:
            await fwd.stop()

    run(scenario())


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


def test_a_stopped_proxy_leaves_a_newer_registration_alone(network: Network) -> None:
    def old(conn: socket.socket) -> None: ...

    def new(conn: socket.socket) -> None: ...

    network.serve_in_process("127.0.0.9", 80, old)
    network.serve_in_process("127.0.0.9", 80, new)
    network.stop_serving_in_process("127.0.0.9", 80, old)
    assert network.acceptor("127.0.0.9", 80) is new
    network.stop_serving_in_process("127.0.0.9", 80, new)
    assert network.acceptor("127.0.0.9", 80) is None


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
