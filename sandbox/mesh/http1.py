"""A small, fast HTTP/1.1 engine for the sandbox's proxies: a server and a keep-alive client pool.

The mesh path of one lab request crosses several proxy hops, so each hop must cost little CPU.
This engine parses with `httptools` (llhttp) on plain asyncio Protocols and Transports (uvloop or the
default loop) and handles whole messages only: request and response bodies are read completely,
chunked bodies are decoded, and every message it writes carries a Content-Length (never chunked).
That is all a proxy that inspects, routes and records whole exchanges needs.

Header names and values are text decoded as Latin-1, which maps every byte to one character, so
headers pass through a proxy byte for byte (a head holding text outside Latin-1 is sent as UTF-8).
The engine owns message framing: Content-Length, Transfer-Encoding and Connection headers given to it
are replaced by its own (a HEAD response may keep the Content-Length of the body it stands for).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

import httptools

log = logging.getLogger(__name__)

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_CONNECTION_OPTIONS = frozenset({"close", "keep-alive"})  # Connection values that name no header to drop
_HOP_BY_HOP_LENGTHS = frozenset(len(name) for name in HOP_BY_HOP)
DEFAULT_IDLE_TIMEOUT = 75.0  # longer than ClientPool's 30 s, so that clients drop idle connections first
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
BACKLOG = 1024
_MAX_PIPELINE = 32  # queued requests per connection before the server stops reading from it
_SEPARATE_BODY = 16 * 1024  # bodies at least this large are written without copying them after the head
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_FRAMING_LENGTHS = frozenset(len(name) for name in _FRAMING)
_NO_BODY_STATUSES = frozenset({204, 304})
_REQUEST_SPECIAL = frozenset({"host", "connection", "content-length", "transfer-encoding"})
_REQUEST_SPECIAL_LENGTHS = frozenset(len(name) for name in _REQUEST_SPECIAL)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_LINGER = 2.0  # seconds a refused client has to read the refusal before the connection closes
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeaderList:
    """Case-insensitive helpers over a `headers` list of (name, value) pairs kept in order and case."""

    __slots__ = ()
    headers: list[tuple[str, str]]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name`, or `default`."""
        name = name.lower()
        size = len(name)
        for k, v in self.headers:
            if len(k) == size and k.lower() == name:  # most names differ in length: no need to lower them
                return v
        return default

    def set(self, name: str, value: str) -> None:
        """Replace every `name` header by one with `value`, where the first one was (else at the end)."""
        lname = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for k, v in self.headers:
            if k.lower() != lname:
                out.append((k, v))
            elif not placed:
                out.append((name, value))
                placed = True
        if not placed:
            out.append((name, value))
        self.headers[:] = out

    def remove(self, name: str) -> None:
        """Drop every `name` header."""
        name = name.lower()
        self.headers[:] = [(k, v) for k, v in self.headers if k.lower() != name]


@dataclass(slots=True)
class Request(_HeaderList):
    """One complete request as the server received it, with where it came from."""

    method: str
    target: str  # raw path and query, or an absolute URL when the client talks to a forward proxy
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str  # "1.1" or "1.0"
    peer: tuple[str, int]
    sockname: tuple[str, int]
    ssl_object: _ssl.SSLObject | None = None  # the TLS session; its peer certificate names the client


@dataclass(slots=True)
class Response(_HeaderList):
    """A complete response; from ClientPool also how long the exchange took and if it reused a connection."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    elapsed: float = 0.0  # seconds from ClientPool.request() to the last byte of the response
    reused: bool = False  # whether ClientPool sent the request on an already open connection

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "Unknown")


Handler = Callable[[Request], Awaitable[Response]]


class ConnectError(ConnectionError):
    """No response at all: refused, reset or closed before any response byte, or a failed TLS handshake."""


class ProtocolError(ConnectionError):
    """The upstream sent a malformed response, or closed the connection in the middle of one."""


def strip_hop_by_hop(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` without hop-by-hop headers, including those the Connection header lists."""
    out = []
    listed: set[str] = set()
    for k, v in headers:
        if len(k) in _HOP_BY_HOP_LENGTHS:  # cheaper than lowering every name
            lk = k.lower()
            if lk in HOP_BY_HOP:
                if lk == "connection":
                    listed.update(t.strip().lower() for t in v.split(","))
                    listed -= _CONNECTION_OPTIONS
                continue
        out.append((k, v))
    if listed:
        out = [(k, v) for k, v in out if k.lower() not in listed]
    return out


def _encode_head(lines: list[str], body: bytes) -> bytes:
    """Join a message head (each line ending in CRLF), refusing header text that would split lines."""
    head = "".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError("header names and values must not contain CR or LF")
    try:
        data = head.encode("latin-1")
    except UnicodeEncodeError:
        data = head.encode("utf-8")
    return data + body if len(body) < _SEPARATE_BODY else data


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- server --------------------------------------------------------------------------------------


# What the client of a handler that raised gets.
_SERVER_ERROR = Response(500, [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error\n")


class _Reject(Exception):
    """Raised inside a parser callback to answer the current request with an error and close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class Server:
    """Serves HTTP/1.1 with one handler on listening sockets and on connections handed over to it.

    Keep-alive follows HTTP (1.1 keeps, 1.0 only on request, `Connection: close` either way),
    pipelined requests are answered in order, a handler that raises gets a 500 (and is logged),
    malformed requests get 400, oversized heads 431 and bodies 413, each followed by a close.
    A connection with no request in progress closes after `idle_timeout` seconds of silence.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl: _ssl.SSLContext | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.handler = handler
        self.ssl = ssl
        self.idle_timeout = idle_timeout
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._listeners: list[asyncio.AbstractServer] = []
        self._connections: set[_ServerConnection] = set()
        self._closing = False
        self._all_gone: asyncio.Future[None] | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets (e.g. to learn an ephemeral port)."""
        return [s for listener in self._listeners for s in listener.sockets]

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        return len(self._connections)

    async def listen(self, sock: socket.socket) -> None:
        """Accept connections on the bound, listening `sock` (TLS with this server's context, if any)."""
        loop = asyncio.get_running_loop()
        tls = {"ssl": self.ssl, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT} if self.ssl else {}
        # asyncio listens again with its own backlog (100 by default): keep room for bursts of connections.
        listener = await loop.create_server(lambda: _ServerConnection(self), sock=sock, backlog=BACKLOG, **tls)
        self._listeners.append(listener)

    async def accept_connection(self, conn: socket.socket, ssl: _ssl.SSLContext | None = None) -> None:
        """Serve an already accepted connection, with TLS when `ssl` is given (the server's own context
        is for its listeners: a sidecar decides per connection, after peeking at its first byte).

        Returns once the connection is set up (after the TLS handshake); raises OSError (ssl.SSLError
        included) or TimeoutError when the handshake fails, having closed `conn`.
        """
        loop = asyncio.get_running_loop()
        tls = {"ssl": ssl, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT} if ssl else {}
        try:
            await loop.connect_accepted_socket(lambda: _ServerConnection(self), conn, **tls)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Stop listening and close idle connections; busy ones close after their current response."""
        self._closing = True
        for listener in self._listeners:
            listener.close()
        for conn in list(self._connections):
            conn.shut_down()

    async def wait_closed(self) -> None:
        """Wait until every connection is gone (after `close()`)."""
        for listener in self._listeners:
            await listener.wait_closed()
        if self._connections:
            if self._all_gone is None:
                self._all_gone = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._all_gone)

    def _added(self, conn: _ServerConnection) -> None:
        self._connections.add(conn)
        if self._closing:
            conn.shut_down()

    def _removed(self, conn: _ServerConnection) -> None:
        self._connections.discard(conn)
        if not self._connections and self._all_gone is not None and not self._all_gone.done():
            self._all_gone.set_result(None)


async def serve(
    sock: socket.socket | None = None,
    *,
    handler: Handler,
    ssl: _ssl.SSLContext | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Server:
    """A Server for `handler`, listening on `sock` when given; without it, it only serves connections
    handed over with `Server.accept_connection`."""
    server = Server(
        handler,
        ssl=ssl,
        idle_timeout=idle_timeout,
        max_header_bytes=max_header_bytes,
        max_body_bytes=max_body_bytes,
    )
    if sock is not None:
        await server.listen(sock)
    return server


# One queued exchange: the request (None for a rejection), whether the connection may stay open,
# and the response when it is already known (a rejection).
_Item = tuple[Request | None, bool, Response | None]


class _ServerConnection(asyncio.Protocol):
    """One server-side connection: parses requests as they arrive and answers them in order."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: tuple[str, int] = ("", 0)
        self._sockname: tuple[str, int] = ("", 0)
        self._ssl_object: _ssl.SSLObject | None = None
        self._queue: deque[_Item] = deque()
        # One task per connection answers its requests (a task per request would cost more).
        self._worker: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None  # what the idle worker waits on
        self._busy = False  # a request is being answered or waits to be
        self._stopped = False  # reads nothing more: rejected, closing or closed
        self._closing = False  # the server is closing: answer what is in progress, then close
        self._reading_paused = False
        self._drained: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        # the message being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._in_head = False
        # Counting header bytes one by one would cost every request; chunk sizes bound them instead.
        self._chunk_bytes = 0  # size of the chunk being parsed
        self._head_bound = 0  # head bytes in earlier chunks, or more (counts all of the first one)
        self._head_sure = 0  # head bytes in earlier chunks, or fewer (skips the first one)
        self._body_bytes = 0
        self._content_length = 0
        self._expect_continue = False
        self._continue_wanted = False
        self._keep_alive = True

    # -- transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        _set_nodelay(transport)
        self._peer = transport.get_extra_info("peername")
        self._sockname = transport.get_extra_info("sockname")
        self._ssl_object = transport.get_extra_info("ssl_object")
        self._last_activity = self._loop.time()
        self._idle_timer = self._loop.call_at(self._last_activity + self._server.idle_timeout, self._on_idle_timer)
        self._server._added(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stopped = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._worker is not None:
            self._worker.cancel()  # the client is gone: so is the point of its requests
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._server._removed(self)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        self._last_activity = self._loop.time()
        self._chunk_bytes = len(data)
        in_head_before = self._in_head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Protocol switches are not supported: the request was delivered; close after answering it.
            self._stopped = True
        except httptools.HttpParserCallbackError as e:
            reject = e.__context__
            if isinstance(reject, _Reject):
                self._reject(reject.status, str(reject))
            else:
                log.warning("unparsable request from %s", self._peer, exc_info=reject)
                self._reject(400, "Bad Request")
            return
        except httptools.HttpParserError as e:
            self._reject(400, f"Bad Request: {e}")
            return
        if self._in_head:  # the head goes on in the next chunk: do not buffer an endless one
            self._head_bound += len(data)
            if in_head_before:
                self._head_sure += len(data)
                if self._head_sure > self._server.max_header_bytes:
                    self._reject(431, "Request Header Fields Too Large")
                    return
        if self._continue_wanted and not self._busy:
            self._send_continue()

    def eof_received(self) -> bool:
        # A half-closed client may still read the answers to what it sent; close once they are out.
        self._stopped = True
        return self._busy

    def shut_down(self) -> None:
        self._closing = True
        if not self._busy and self._transport is not None:
            self._stopped = True
            self._transport.close()

    def _on_idle_timer(self) -> None:
        now = self._loop.time()
        deadline = self._last_activity + self._server.idle_timeout
        if not self._busy and now >= deadline and self._transport is not None:
            self._stopped = True
            self._transport.close()
            return
        self._idle_timer = self._loop.call_at(
            deadline if deadline > now else now + self._server.idle_timeout, self._on_idle_timer
        )

    # -- parser callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._in_head = True
        self._head_bound = self._head_sure = self._body_bytes = self._content_length = 0
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
        size = len(name)
        if size == 14 or size == 6:  # cheaper than lowering every name
            lname = name.lower()
            if lname == b"content-length":
                self._content_length = int(value)
            elif lname == b"expect" and value.lower() == b"100-continue":
                self._expect_continue = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        limit = self._server.max_header_bytes
        if self._head_bound + self._chunk_bytes > limit and self._head_size() > limit:
            raise _Reject(431, "Request Header Fields Too Large")
        if self._content_length > self._server.max_body_bytes:
            raise _Reject(413, "Content Too Large")
        self._keep_alive = self._parser.should_keep_alive() and not self._parser.should_upgrade()
        if self._expect_continue and self._parser.get_http_version() == "1.1":
            self._continue_wanted = True

    def _head_size(self) -> int:
        return len(self._url) + sum(len(k) + len(v) + 4 for k, v in self._headers)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._server.max_body_bytes:
            raise _Reject(413, "Content Too Large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._continue_wanted = False
        parser = self._parser
        request = Request(
            parser.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            self._headers,
            b"".join(self._body),
            parser.get_http_version(),
            self._peer,
            self._sockname,
            self._ssl_object,
        )
        self._dispatch((request, self._keep_alive, None))

    # -- answering
    def _reject(self, status: int, text: str) -> None:
        self._stopped = True
        self._continue_wanted = False
        response = Response(status, [("Content-Type", "text/plain; charset=utf-8")], text.encode() + b"\n")
        self._dispatch((None, False, response))

    def _send_continue(self) -> None:
        self._continue_wanted = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_CONTINUE)

    def _dispatch(self, item: _Item) -> None:
        queue = self._queue
        queue.append(item)
        self._busy = True
        if self._worker is None:
            self._worker = self._loop.create_task(self._work())
        elif self._wakeup is not None:
            self._wakeup.set_result(None)
            self._wakeup = None
        if len(queue) >= _MAX_PIPELINE and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    async def _work(self) -> None:
        """Answer queued requests in order, for as long as the connection lasts."""
        transport = self._transport
        assert transport is not None
        queue = self._queue
        try:
            while True:
                if not queue:
                    self._busy = False
                    if self._stopped:  # the client half-closed, or asked for a protocol switch
                        transport.close()
                        return
                    if self._continue_wanted:
                        self._send_continue()
                    self._wakeup = self._loop.create_future()
                    await self._wakeup
                    continue
                request, keep_alive, response = queue.popleft()
                if self._reading_paused and len(queue) < _MAX_PIPELINE // 2:
                    self._reading_paused = False
                    transport.resume_reading()
                if request is None:  # a refusal
                    assert response is not None
                    data, body, keep_alive = _response_bytes(response, False, "1.1", False)
                else:
                    head_request = request.method == "HEAD"
                    try:
                        response = await self._server.handler(request)
                        data, body, keep_alive = _response_bytes(
                            response, head_request, request.http_version, keep_alive and not self._closing
                        )
                    except Exception:
                        log.exception("HTTP handler failed on %s %s", request.method, request.target)
                        data, body, keep_alive = _response_bytes(
                            _SERVER_ERROR, head_request, request.http_version, keep_alive and not self._closing
                        )
                if transport.is_closing():
                    return
                transport.write(data)
                if len(body) >= _SEPARATE_BODY:
                    transport.write(body)
                self._last_activity = self._loop.time()
                if not keep_alive:
                    self._stopped = True
                    if request is None and transport.can_write_eof():
                        self._linger(transport)
                    else:
                        transport.close()
                    return
                if self._drained is not None:
                    await self._drained
        except Exception:  # a bug here must not leave the connection open with no one answering it
            log.exception("HTTP server connection from %s failed", self._peer)
            transport.abort()

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close after a refusal without losing it: closing a socket with unread input sends a reset that
        can destroy the refusal on its way, so first end the output and discard input for a while."""
        transport.write_eof()
        if self._reading_paused:
            transport.resume_reading()
        self._loop.call_later(_LINGER, transport.close)


def _response_bytes(
    response: Response, head_request: bool, http_version: str, keep_alive: bool
) -> tuple[bytes, bytes, bool]:
    """The bytes to write for `response` (head, maybe with the body; the body) and whether to keep the
    connection open afterwards (a handler's `Connection: close` closes it)."""
    status = response.status
    body = response.body
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
    length: str | None = None
    for name, value in response.headers:
        if len(name) not in _FRAMING_LENGTHS:
            lines.append(f"{name}: {value}\r\n")
            continue
        lname = name.lower()
        if lname in _FRAMING:
            if lname == "connection" and "close" in value.lower():
                keep_alive = False
            elif lname == "content-length" and head_request and not body:
                length = value
            continue
        lines.append(f"{name}: {value}\r\n")
    if status < 200 or status in _NO_BODY_STATUSES:
        body = b""
    else:
        lines.append(f"Content-Length: {length if length is not None else len(body)}\r\n")
        if head_request:
            body = b""
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif http_version == "1.0":
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    return _encode_head(lines, body), body, keep_alive


# ---- client --------------------------------------------------------------------------------------


class _Unanswered(Exception):
    """The connection ended before any byte of the response: the request may be sent again."""


_PoolKey = tuple[str, int, _ssl.SSLContext | None]


class _ClientConnection(asyncio.Protocol):
    """One client-side connection: sends one request at a time and parses its response."""

    def __init__(self, pool: ClientPool, key: _PoolKey) -> None:
        self.pool = pool
        self.key = key
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._received = False
        self._head_request = False
        self._headers_done = False
        self._framed = False  # the response has Content-Length or Transfer-Encoding (not ended by close)
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        _set_nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if not self._received:
                waiter.set_exception(_Unanswered())
            elif self._headers_done and not self._framed and self._status_has_body():
                self._finish(reusable=False)  # a response delimited by the end of the connection
            else:
                waiter.set_exception(ProtocolError("the connection closed in the middle of the response"))
        self.pool._lost(self)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Nothing was asked: whatever this is (a 408 before closing, say), the connection is spent.
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reusable = False
            if not waiter.done():
                self._finish(reusable=False)
        except httptools.HttpParserError as e:
            if not waiter.done():
                waiter.set_exception(ProtocolError(f"malformed response: {e}"))
            self.close()

    def eof_received(self) -> bool:
        return False

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes, body: bytes, head_request: bool) -> asyncio.Future[Response]:
        """Send one request; the future of its complete response."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise _Unanswered()
        waiter = self._waiter = self._loop.create_future()
        self._received = False
        self._head_request = head_request
        self.reusable = False
        transport.write(data)
        if len(body) >= _SEPARATE_BODY:
            transport.write(body)
        return waiter

    # -- parser callbacks
    def on_message_begin(self) -> None:
        self._headers_done = False
        self._framed = False
        self._headers = []
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
        size = len(name)
        if size == 14 or size == 17:
            lname = name.lower()
            if lname == b"content-length" or lname == b"transfer-encoding":
                self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()
        if self._head_request and self._status >= 200:
            # The parser cannot know that no body follows a HEAD response: finish here and start a
            # fresh parser for the next exchange on this connection.
            self._finish(reusable=self._parser.should_keep_alive())
            self._parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200 and self._status != 101:
            return  # an interim response (100 Continue): the real one follows
        if self._waiter is not None and not self._waiter.done():
            self._finish(reusable=self._parser.should_keep_alive())

    def _status_has_body(self) -> bool:
        return not self._head_request and self._status >= 200 and self._status not in _NO_BODY_STATUSES

    def _finish(self, reusable: bool) -> None:
        self.reusable = reusable
        assert self._waiter is not None
        self._waiter.set_result(Response(self._status, self._headers, b"".join(self._body)))


class _Host:
    """The connections of one (host, port, TLS context): idle ones, all open ones, and waiters for a slot."""

    __slots__ = ("idle", "open", "connecting", "waiters")

    def __init__(self) -> None:
        self.idle: list[_ClientConnection] = []  # oldest first; reused from the end (most recent)
        self.open: set[_ClientConnection] = set()
        self.connecting = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class ClientPool:
    """HTTP/1.1 client with keep-alive connections per (host, port, TLS context), at most
    `max_per_host` open at once (more requests wait for one); idle ones close after `idle_timeout`.

    A request on a reused connection that ends before any response byte (the server closed it while
    idle, in a race with the request) is sent once more on a fresh connection, as browsers do.
    """

    def __init__(self, max_per_host: int = 256, idle_timeout: float = 30.0) -> None:
        self.max_per_host = max_per_host
        self.idle_timeout = idle_timeout
        self._hosts: dict[_PoolKey, _Host] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        host: str,
        port: int,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        ssl: _ssl.SSLContext | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One exchange with (host, port); `timeout` bounds all of it, connecting included.

        Adds Host (when absent) and Content-Length. Raises ConnectError, ProtocolError, TimeoutError.
        """
        if timeout is not None:
            async with asyncio.timeout(timeout):
                return await self.request(host, port, method, target, headers, body, ssl=ssl)
        if self._closed:
            raise RuntimeError("the ClientPool is closed")
        started = time.perf_counter()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        data, keep = _request_bytes(method, target, headers, body, host, port)
        head = method == "HEAD"
        key = (host, port, ssl)
        entry = self._hosts.get(key)
        if entry is None:
            entry = self._hosts[key] = _Host()
        idle = entry.idle
        while idle:  # the fast path: the most recently used idle connection
            conn = idle.pop()
            if not conn.closed:
                reused = True
                break
        else:
            conn, reused = await self._acquire(entry, key, fresh=False)
        while True:
            try:
                response = await conn.send(data, body, head)
                break
            except _Unanswered:
                self._release(conn)
                if not reused:
                    raise ConnectError(f"{host}:{port} closed the connection without answering") from None
                conn, reused = await self._acquire(entry, key, fresh=True)  # once: this one is fresh
            except BaseException:
                conn.abort()  # a timeout or cancellation leaves a response pending: the connection is spent
                self._release(conn)
                raise
        if not keep:
            conn.close()
        self._release(conn)
        response.elapsed = time.perf_counter() - started
        response.reused = reused
        return response

    def close(self) -> None:
        """Close every connection; requests in progress fail."""
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        for host in self._hosts.values():
            for conn in list(host.open):
                conn.close()
            for waiter in host.waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._hosts.clear()

    async def _acquire(self, host: _Host, key: _PoolKey, fresh: bool) -> tuple[_ClientConnection, bool]:
        """An idle connection (unless `fresh`) or a new one, once the host has a free slot."""
        assert self._loop is not None
        while True:
            if self._closed:
                raise ConnectError("the ClientPool was closed")
            if not fresh:
                while host.idle:
                    conn = host.idle.pop()
                    if not conn.closed:
                        return conn, True
            if len(host.open) + host.connecting < self.max_per_host:
                break
            if fresh and host.idle:
                self._discard(host, host.idle.pop(0))  # make room for the fresh connection
                continue
            waiter = self._loop.create_future()
            host.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(host)  # woken but leaving: pass the free slot on
                raise
        return await self._connect(host, key), False

    async def _connect(self, host: _Host, key: _PoolKey) -> _ClientConnection:
        assert self._loop is not None
        address, port, ssl = key
        host.connecting += 1
        conn = _ClientConnection(self, key)
        connected = False
        try:
            await self._loop.create_connection(lambda: conn, address, port, ssl=ssl)
            connected = True
        except OSError as e:  # refused, unreachable, reset or a failed TLS handshake (ssl.SSLError)
            raise ConnectError(f"cannot connect to {address}:{port}: {e}") from e
        finally:
            host.connecting -= 1
            if not connected:
                self._wake(host)
        host.open.add(conn)
        return conn

    def _release(self, conn: _ClientConnection) -> None:
        host = self._hosts.get(conn.key)
        if host is None:  # the pool was closed meanwhile
            conn.close()
            return
        if conn.reusable and not conn.closed and not self._closed:
            assert self._loop is not None
            conn.idle_since = self._loop.time()
            host.idle.append(conn)
            if self._sweep_timer is None:
                self._sweep_timer = self._loop.call_at(conn.idle_since + self.idle_timeout, self._sweep)
        else:
            self._discard(host, conn)
        self._wake(host)

    def _discard(self, host: _Host, conn: _ClientConnection) -> None:
        conn.close()
        host.open.discard(conn)

    def _lost(self, conn: _ClientConnection) -> None:
        host = self._hosts.get(conn.key)
        if host is None:
            return
        if conn in host.open:
            host.open.discard(conn)
            if conn in host.idle:
                host.idle.remove(conn)
            self._wake(host)

    @staticmethod
    def _wake(host: _Host) -> None:
        while host.waiters:
            waiter = host.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle for `idle_timeout`; come back when the next one will have been."""
        assert self._loop is not None
        self._sweep_timer = None
        expired = self._loop.time() - self.idle_timeout
        oldest: float | None = None
        for host in self._hosts.values():
            while host.idle and host.idle[0].idle_since <= expired:
                self._discard(host, host.idle.pop(0))
            if host.idle:
                first = host.idle[0].idle_since
                oldest = first if oldest is None else min(oldest, first)
        if oldest is not None:
            self._sweep_timer = self._loop.call_at(oldest + self.idle_timeout, self._sweep)


def _request_bytes(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, host: str, port: int
) -> tuple[bytes, bool]:
    """The bytes to write for a request (head, maybe with the body), and whether the connection may be
    kept afterwards (not if the caller sent `Connection: close`)."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    has_host = False
    keep = True
    for name, value in headers:
        if len(name) not in _REQUEST_SPECIAL_LENGTHS:
            lines.append(f"{name}: {value}\r\n")
            continue
        lname = name.lower()
        if lname in _REQUEST_SPECIAL:  # one set lookup for the common header instead of four comparisons
            if lname == "host":
                has_host = True
            elif lname == "connection":
                if "close" in value.lower():
                    keep = False
            else:
                continue  # the engine frames the body itself
        lines.append(f"{name}: {value}\r\n")
    if not has_host:
        lines.insert(1, f"Host: {host}:{port}\r\n")
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return _encode_head(lines, body), keep
