"""The HTTP/1.1 proxy engine over real loopback sockets, on the default event loop and on uvloop.

Raw-socket clients and servers written here (parsed with httptools, independent of the engine's own
client) check what goes over the wire; the engine's ClientPool is checked against the engine's Server
and against raw servers that misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httptools
import pytest
import uvloop

from sandbox.mesh import http1, pki
from sandbox.mesh.http1 import ClientPool, ConnectError, Request, Response

LOCAL = "127.0.0.1"
DEADLINE = 10.0  # no test may take longer than this; each is expected to take milliseconds


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(asyncio.wait_for(coro, DEADLINE))

    return runner


@pytest.fixture(scope="module")
def ca() -> pki.MeshCA:
    return pki.MeshCA()


def listening_socket() -> socket.socket:
    sock = socket.create_server((LOCAL, 0), backlog=1024)  # as the sandbox listens: room for bursts
    sock.setblocking(False)
    return sock


async def start(handler: http1.Handler, **options: Any) -> tuple[http1.Server, int]:
    server = await http1.serve(listening_socket(), handler=handler, **options)
    return server, server.sockets[0].getsockname()[1]


async def echo(request: Request) -> Response:
    """Answers with the request line and body, so tests can see what arrived."""
    return Response(200, [("X-Method", request.method), ("X-Target", request.target)], request.body)


async def wait_until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Messages:
    """Responses parsed from a raw connection, one dict per message (interim 1xx ones included)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[dict] = []
        self.taken = 0
        self._current: dict = {}

    def on_message_begin(self) -> None:
        self._current = {"headers": {}, "body": b""}

    def on_header(self, name: bytes, value: bytes) -> None:
        self._current["headers"][name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self._current["status"] = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._current["body"] += body

    def on_message_complete(self) -> None:
        self.done.append(self._current)

    async def next(self) -> dict:
        while len(self.done) == self.taken:
            data = await self.reader.read(65536)
            assert data, "the server closed the connection before a complete response"
            self.parser.feed_data(data)
        self.taken += 1
        return self.done[self.taken - 1]


async def raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Messages]:
    reader, writer = await asyncio.open_connection(LOCAL, port)
    return reader, writer, Messages(reader)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Whether the peer closes the connection (sending nothing more) within the deadline."""
    return await asyncio.wait_for(reader.read(), 5.0) == b""


# ---- server: keep-alive, framing, limits -----------------------------------------------------------


def test_keep_alive_reuses_one_connection(run) -> None:
    async def scenario() -> None:
        peers: set[tuple[str, int]] = set()

        async def handler(request: Request) -> Response:
            peers.add(request.peer)
            return Response(200, body=request.target.encode())

        server, port = await start(handler)
        pool = ClientPool()
        responses = [await pool.request(LOCAL, port, "GET", f"/n/{i}", []) for i in range(20)]
        assert [r.body for r in responses] == [f"/n/{i}".encode() for i in range(20)]
        assert len(peers) == 1
        assert [r.reused for r in responses] == [False] + [True] * 19
        assert all(r.elapsed > 0 for r in responses)
        pool.close()
        server.close()
        await server.wait_closed()

    run(scenario())


def test_client_connection_close_is_honoured(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = await messages.next()
        assert response["status"] == 200
        assert response["headers"]["connection"] == "close"
        assert await closed_by_peer(reader)
        writer.close()
        server.close()

    run(scenario())


def test_handler_connection_close_ends_the_connection(run) -> None:
    async def scenario() -> None:
        peers: list[tuple[str, int]] = []

        async def handler(request: Request) -> Response:
            peers.append(request.peer)
            return Response(200, [("Connection", "close")], b"once")

        server, port = await start(handler)
        pool = ClientPool()
        first = await pool.request(LOCAL, port, "GET", "/", [])
        second = await pool.request(LOCAL, port, "GET", "/", [])
        assert (first.body, second.body) == (b"once", b"once")
        assert not second.reused
        assert len(set(peers)) == 2
        pool.close()
        server.close()

    run(scenario())


def test_pool_does_not_reuse_a_connection_it_asked_to_close(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        pool = ClientPool()
        first = await pool.request(LOCAL, port, "GET", "/", [("Connection", "close")])
        second = await pool.request(LOCAL, port, "GET", "/", [])
        assert (first.status, second.status) == (200, 200)
        assert not second.reused
        pool.close()
        server.close()

    run(scenario())


def test_http10_client_closes_unless_keep_alive(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")
        response = await messages.next()
        assert (response["status"], response["headers"]["x-target"]) == (200, "/old")
        assert response["headers"]["content-length"] == "0"
        assert await closed_by_peer(reader)
        writer.close()

        reader, writer, messages = await raw(port)
        for path in (b"/a", b"/b"):
            writer.write(b"GET " + path + b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = await messages.next()
            assert response["headers"]["connection"] == "keep-alive"
            assert response["headers"]["x-target"] == path.decode()
        writer.close()
        server.close()

    run(scenario())


def test_chunked_request_body_is_decoded(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        response = await messages.next()
        assert response["body"] == b"hello world"
        assert response["headers"]["content-length"] == "11"
        assert "transfer-encoding" not in response["headers"]
        writer.close()
        server.close()

    run(scenario())


def test_large_bodies_both_ways(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        pool = ClientPool()
        body = bytes(range(256)) * 4096  # 1 MiB
        response = await pool.request(LOCAL, port, "PUT", "/big", [], body)
        assert response.status == 200
        assert response.body == body
        again = await pool.request(LOCAL, port, "GET", "/small", [])
        assert again.reused and again.get("x-target") == "/small"
        pool.close()
        server.close()

    run(scenario())


def test_expect_100_continue_is_answered(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = await messages.next()
        assert interim["status"] == 100
        writer.write(b"data")
        final = await messages.next()
        assert (final["status"], final["body"]) == (200, b"data")
        writer.close()
        server.close()

    run(scenario())


def test_pipelined_requests_answered_in_order(run) -> None:
    async def scenario() -> None:
        release_first = asyncio.Event()

        async def handler(request: Request) -> Response:
            if request.target == "/first":
                await release_first.wait()
            return Response(200, body=request.target.encode())

        server, port = await start(handler)
        reader, writer, messages = await raw(port)
        writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        loop = asyncio.get_running_loop()
        loop.call_soon(release_first.set)
        first, second = await messages.next(), await messages.next()
        assert (first["body"], second["body"]) == (b"/first", b"/second")
        writer.close()
        server.close()

    run(scenario())


def test_malformed_request_gets_400_and_close(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"THIS IS NOT HTTP\r\n\r\n")
        response = await messages.next()
        assert response["status"] == 400
        assert await closed_by_peer(reader)
        writer.close()
        server.close()

    run(scenario())


def test_oversized_head_gets_431(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo, max_header_bytes=1024)
        reader, writer, messages = await raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n")
        assert (await messages.next())["status"] == 431
        assert await closed_by_peer(reader)
        writer.close()

        # A head that never ends is refused once enough of it has arrived, not buffered forever.
        reader, writer, messages = await raw(port)
        answer = asyncio.ensure_future(messages.next())
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        while not answer.done() and sent < 1_000_000:  # the head has no end: only a refusal ends this
            writer.write(b"a" * 256)
            sent += 256
            await writer.drain()
            await asyncio.sleep(0)  # let the answer, if any, be read
        assert (await asyncio.wait_for(answer, 5.0))["status"] == 431
        writer.close()
        server.close()

    run(scenario())


def test_oversized_body_gets_413(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo, max_body_bytes=1000)
        declared = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n"
        chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 1000 + b"\r\n"
        for head in (declared, chunked + b"1\r\na\r\n0\r\n\r\n"):
            reader, writer, messages = await raw(port)
            writer.write(head)
            response = await messages.next()
            assert response["status"] == 413  # the declared size is refused before any 100 Continue
            assert await closed_by_peer(reader)
            writer.close()
        pool = ClientPool()
        assert (await pool.request(LOCAL, port, "POST", "/", [], b"a" * 1000)).status == 200
        pool.close()
        server.close()

    run(scenario())


def test_handler_exception_gets_500_and_server_keeps_serving(run, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async def handler(request: Request) -> Response:
            if request.target == "/boom":
                raise RuntimeError("handler bug")
            return Response(200, body=b"fine")

        server, port = await start(handler)
        pool = ClientPool()
        failed = await pool.request(LOCAL, port, "GET", "/boom", [])
        after = await pool.request(LOCAL, port, "GET", "/ok", [])
        assert failed.status == 500
        assert (after.status, after.body, after.reused) == (200, b"fine", True)
        pool.close()
        server.close()

    run(scenario())
    assert "handler bug" in caplog.text


def test_idle_connection_is_closed_by_the_server(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo, idle_timeout=0.2)
        reader, writer, messages = await raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await messages.next())["status"] == 200
        assert await closed_by_peer(reader)
        writer.close()
        server.close()

    run(scenario())


def test_server_close_closes_listener_and_idle_connections(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo)
        reader, writer, messages = await raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await messages.next())["status"] == 200
        server.close()
        await server.wait_closed()
        assert await closed_by_peer(reader)
        with pytest.raises(OSError):
            await asyncio.open_connection(LOCAL, port)
        writer.close()

    run(scenario())


def test_server_close_lets_a_busy_connection_finish_its_response(run) -> None:
    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def handler(request: Request) -> Response:
            started.set()
            await release.wait()
            return Response(200, body=b"finished")

        server, port = await start(handler)
        reader, writer, messages = await raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await started.wait()
        server.close()
        closed = asyncio.ensure_future(server.wait_closed())
        release.set()
        response = await messages.next()
        assert (response["body"], response["headers"]["connection"]) == (b"finished", "close")
        assert await closed_by_peer(reader)
        await closed
        writer.close()

    run(scenario())


def test_head_response_keeps_its_length_and_the_connection(run) -> None:
    async def scenario() -> None:
        async def handler(request: Request) -> Response:
            if request.method == "HEAD":  # a proxy passes on the length of the body it has not got
                return Response(200, [("Content-Length", "1234")])
            return Response(200, body=b"body")

        server, port = await start(handler)
        pool = ClientPool()
        head = await pool.request(LOCAL, port, "HEAD", "/", [])
        get = await pool.request(LOCAL, port, "GET", "/", [])
        assert (head.status, head.body, head.get("content-length")) == (200, b"", "1234")
        assert (get.body, get.reused) == (b"body", True)
        pool.close()
        server.close()

    run(scenario())


# ---- client pool against raw servers --------------------------------------------------------------


async def raw_server(
    respond: Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]],
) -> tuple[asyncio.Server, int, list[int]]:
    """A server that calls `respond(reader, writer, n)` for its n-th connection; returns accept counts."""
    accepted: list[int] = []

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted))
        try:
            await respond(reader, writer, accepted[-1])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away first: the pool closes its idle connections at the end
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, LOCAL, 0)
    return server, server.sockets[0].getsockname()[1], accepted


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def test_chunked_and_close_delimited_responses_are_decoded(run) -> None:
    async def scenario() -> None:
        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
            await read_head(reader)
            writer.write(b"HTTP/1.1 201 Created\r\n\r\nuntil the end")  # no length: ends with the connection

        server, port, accepted = await raw_server(respond)
        pool = ClientPool()
        chunked = await pool.request(LOCAL, port, "GET", "/", [])
        until_close = await pool.request(LOCAL, port, "GET", "/", [])
        assert (chunked.status, chunked.body) == (200, b"abcdefg")
        assert (until_close.status, until_close.body, until_close.reused) == (201, b"until the end", True)
        assert len(accepted) == 1
        pool.close()
        server.close()

    run(scenario())


def test_pool_retries_once_when_a_reused_connection_closes_unanswered(run) -> None:
    async def scenario() -> None:
        seen: list[bytes] = []

        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            # Answers one request per connection, then closes on the next one unanswered: the race
            # of a server closing an idle keep-alive connection just as a request arrives.
            seen.append(await read_head(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await reader.readuntil(b"\r\n\r\n")

        server, port, accepted = await raw_server(respond)
        pool = ClientPool()
        first = await pool.request(LOCAL, port, "POST", "/1", [], b"")
        second = await pool.request(LOCAL, port, "POST", "/2", [], b"")
        assert (first.body, second.body) == (b"ok", b"ok")
        assert not second.reused  # it was answered on the fresh connection
        assert len(accepted) == 2
        assert [h.split(b" ")[1] for h in seen] == [b"/1", b"/2"]
        pool.close()
        server.close()

    run(scenario())


def test_pool_skips_connections_the_server_closed_while_idle(run) -> None:
    async def scenario() -> None:
        server, port = await start(echo, idle_timeout=0.1)
        pool = ClientPool()
        assert (await pool.request(LOCAL, port, "GET", "/", [])).status == 200
        await wait_until(lambda: server.open_connections == 0, "the server to close the idle connection")
        again = await pool.request(LOCAL, port, "GET", "/again", [])
        assert (again.status, again.reused) == (200, False)
        pool.close()
        server.close()

    run(scenario())


def test_unanswered_fresh_connection_is_a_connect_error(run) -> None:
    async def scenario() -> None:
        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_head(reader)  # and close without a word

        server, port, accepted = await raw_server(respond)
        pool = ClientPool()
        with pytest.raises(ConnectError):
            await pool.request(LOCAL, port, "GET", "/", [])
        assert len(accepted) == 1  # a fresh connection is not retried
        pool.close()
        server.close()

    run(scenario())


def test_truncated_response_is_a_protocol_error(run) -> None:
    async def scenario() -> None:
        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")

        server, port, _ = await raw_server(respond)
        pool = ClientPool()
        with pytest.raises(http1.ProtocolError):
            await pool.request(LOCAL, port, "GET", "/", [])
        pool.close()
        server.close()

    run(scenario())


def test_refused_port_is_a_connect_error(run) -> None:
    async def scenario() -> None:
        sock = listening_socket()
        port = sock.getsockname()[1]
        sock.close()
        pool = ClientPool()
        with pytest.raises(ConnectError):
            await pool.request(LOCAL, port, "GET", "/", [])
        pool.close()

    run(scenario())


def test_slow_upstream_times_out_and_the_pool_recovers(run) -> None:
    async def scenario() -> None:
        never = asyncio.Event()

        async def handler(request: Request) -> Response:
            if request.target == "/slow":
                await never.wait()
            return Response(200, body=b"quick")

        server, port = await start(handler)
        pool = ClientPool(max_per_host=1)
        with pytest.raises(TimeoutError):
            await pool.request(LOCAL, port, "GET", "/slow", [], timeout=0.1)
        quick = await pool.request(LOCAL, port, "GET", "/quick", [], timeout=5)
        assert (quick.body, quick.reused) == (b"quick", False)  # the timed-out connection was dropped
        pool.close()
        server.close()

    run(scenario())


# ---- TLS -------------------------------------------------------------------------------------------


async def first_byte(sock: socket.socket) -> bytes:
    """Wait for the client's first byte and peek at it, as the sidecar does to tell TLS from plaintext."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(sock.fileno())
    return sock.recv(1, socket.MSG_PEEK)


def test_mutual_tls_through_accept_connection(run, ca: pki.MeshCA) -> None:
    server_ctx = ca.identity("lab", "kvstore").server_context()
    client_ctx = ca.identity("lab", "splitdim").client_context()
    foreign_ctx = pki.MeshCA().identity("lab", "intruder").client_context()

    async def scenario() -> None:
        async def handler(request: Request) -> Response:
            assert request.ssl_object is not None
            return Response(200, body=(pki.peer_spiffe_id(request.ssl_object) or "").encode())

        loop = asyncio.get_running_loop()
        listener = listening_socket()
        port = listener.getsockname()[1]
        server = await http1.serve(handler=handler)
        handshakes: list[BaseException | None] = []

        async def accept_loop() -> None:
            while True:
                conn, _ = await loop.sock_accept(listener)
                assert await first_byte(conn) == b"\x16"  # a TLS ClientHello
                try:
                    await server.accept_connection(conn, ssl=server_ctx)
                    handshakes.append(None)
                except (OSError, TimeoutError) as e:
                    handshakes.append(e)

        acceptor = loop.create_task(accept_loop())
        pool = ClientPool()
        responses = [await pool.request(LOCAL, port, "GET", "/", [], ssl=client_ctx) for _ in range(3)]
        assert {r.body for r in responses} == {b"spiffe://cluster.local/ns/lab/sa/splitdim"}
        assert [r.reused for r in responses] == [False, True, True]
        with pytest.raises(ConnectError):
            await pool.request(LOCAL, port, "GET", "/", [], ssl=foreign_ctx)
        await wait_until(lambda: len(handshakes) == 2, "the failed handshake")
        assert handshakes[0] is None and isinstance(handshakes[1], OSError)
        acceptor.cancel()
        pool.close()
        server.close()
        await server.wait_closed()
        listener.close()

    run(scenario())


def test_tls_listener(run, ca: pki.MeshCA) -> None:
    identity = ca.identity("lab", "gateway")

    async def scenario() -> None:
        server, port = await start(echo, ssl=identity.server_context())
        pool = ClientPool()
        response = await pool.request(LOCAL, port, "POST", "/secure", [], b"x" * 100_000, ssl=identity.client_context())
        assert (response.status, len(response.body)) == (200, 100_000)
        pool.close()
        server.close()

    run(scenario())


# ---- a proxy built on the engine -------------------------------------------------------------------


def test_concurrent_requests_through_a_proxy(run) -> None:
    async def scenario() -> None:
        upstream, upstream_port = await start(echo)
        pool = ClientPool(max_per_host=16)  # fewer connections than requests: some wait for a slot

        async def proxy(request: Request) -> Response:
            headers = http1.strip_hop_by_hop(request.headers)
            answer = await pool.request(LOCAL, upstream_port, request.method, request.target, headers, request.body)
            return Response(answer.status, http1.strip_hop_by_hop(answer.headers), answer.body)

        proxy_server, proxy_port = await start(proxy)
        clients = ClientPool()
        responses = await asyncio.gather(
            *(clients.request(LOCAL, proxy_port, "POST", f"/r/{i}", [], str(i).encode()) for i in range(200))
        )
        assert [(r.status, r.get("x-target"), r.body) for r in responses] == [
            (200, f"/r/{i}", str(i).encode()) for i in range(200)
        ]
        assert upstream.open_connections <= 16
        for p in (pool, clients):
            p.close()
        for s in (proxy_server, upstream):
            s.close()

    run(scenario())


# ---- headers ---------------------------------------------------------------------------------------


def test_strip_hop_by_hop_drops_listed_headers_too() -> None:
    headers = [
        ("Host", "kvstore"),
        ("Connection", "keep-alive, X-Secret"),
        ("x-secret", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("X-Kept", "yes"),
    ]
    assert http1.strip_hop_by_hop(headers) == [("Host", "kvstore"), ("X-Kept", "yes")]


def test_header_helpers_are_case_insensitive_and_keep_order() -> None:
    response = Response(200, [("A", "1"), ("Set-Cookie", "x"), ("B", "2"), ("set-cookie", "y")])
    assert response.get("SET-COOKIE") == "x"
    assert response.get("missing", "default") == "default"
    response.set("set-cookie", "z")
    assert response.headers == [("A", "1"), ("set-cookie", "z"), ("B", "2")]
    response.remove("a")
    response.set("C", "3")
    assert response.headers == [("set-cookie", "z"), ("B", "2"), ("C", "3")]
    assert response.reason == "OK"
