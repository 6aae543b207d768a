"""The lab's workload apps (kvstore, SplitDim, curl probe) served for real on loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from sandbox.apps import curl, kvstore, splitdim

REPO_ROOT = Path(__file__).resolve().parents[2]
KVSTORE_NAME = "kvstore.lab:8081"  # the service name SplitDim is told to use when behind the proxy


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free 127.0.0.1 port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ForwardProxy:
    """A minimal HTTP forward proxy: records absolute request URLs and maps host:port to upstreams.

    `abort_paths` answers 500 without forwarding, like the lab's fault-injection VirtualService.
    """

    def __init__(self, upstreams: dict[str, str]) -> None:
        self.upstreams = upstreams
        self.seen: list[str] = []
        self.abort_paths: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.cleanup_ctx.append(self._session)
        return app

    async def _session(self, _app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as self.session:
            yield

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.raw_path)
        target = URL(request.raw_path)
        if not target.is_absolute():
            return web.Response(status=400, text="not a proxy request")
        if target.path in self.abort_paths:
            return web.Response(status=500, text="fault filter abort")
        upstream = self.upstreams.get(f"{target.host}:{target.port}")
        if upstream is None:
            return web.Response(status=502, text="unknown host")
        async with self.session.request(
            request.method,
            upstream + target.raw_path_qs,
            data=await request.read(),
            headers={"Content-Type": request.headers.get("Content-Type", "application/octet-stream")},
        ) as response:
            return web.Response(status=response.status, body=await response.read(), content_type=response.content_type)


@asynccontextmanager
async def splitdim_stack(mode: str) -> AsyncIterator[tuple[str, str | None, ForwardProxy | None]]:
    """SplitDim in `mode` (local, kvstore, proxied); yields (splitdim URL, kvstore URL, proxy)."""
    if mode == "local":
        async with serve(splitdim.create_app({})) as base:
            yield base, None, None
        return
    async with serve(kvstore.create_app({})) as kv_url:
        if mode == "kvstore":
            env = {"KVSTORE_MODE": "kvstore", "KVSTORE_ADDR": kv_url.removeprefix("http://")}
            async with serve(splitdim.create_app(env)) as base:
                yield base, kv_url, None
            return
        proxy = ForwardProxy({KVSTORE_NAME: kv_url})
        async with serve(proxy.app()) as proxy_url:
            env = {"KVSTORE_MODE": "kvstore", "KVSTORE_ADDR": KVSTORE_NAME, "HTTP_PROXY": proxy_url}
            async with serve(splitdim.create_app(env)) as base:
                yield base, kv_url, proxy


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    async with session.request(method, url, data=data) as response:
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text)
        return response.status, text


def transfer(sender: str, receiver: str, amount: Any) -> dict[str, Any]:
    return {"sender": sender, "receiver": receiver, "amount": amount}


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it returns True, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)


# --- SplitDim ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["local", "kvstore", "proxied"])
async def test_lab_sequence(mode: str) -> None:
    async with splitdim_stack(mode) as (base, kv_url, proxy), aiohttp.ClientSession() as session:
        assert await call(session, "GET", base + "/api/reset") == (200, {})
        assert (await call(session, "POST", base + "/api/transfer", transfer("a", "b", 2)))[0] == 200
        assert (await call(session, "POST", base + "/api/transfer", transfer("b", "c", 1)))[0] == 200
        status, accounts = await call(session, "GET", base + "/api/accounts")
        assert status == 200
        assert accounts == [
            {"holder": "a", "balance": 2},
            {"holder": "b", "balance": -1},
            {"holder": "c", "balance": -1},
        ]
        status, clear = await call(session, "GET", base + "/api/clear")
        assert status == 200
        assert sorted(clear, key=lambda t: t["sender"]) == [transfer("b", "a", 1), transfer("c", "a", 1)]
        # clear only suggests: nothing changed
        assert (await call(session, "GET", base + "/api/accounts"))[1] == accounts

        if kv_url is not None:
            status, stored = await call(session, "GET", kv_url + "/api/list")
            assert {item["key"]: item["value"] for item in stored} == {"a": "2", "b": "-1", "c": "-1"}
        if proxy is not None:
            assert proxy.seen, "SplitDim bypassed HTTP_PROXY"
            assert all(url.startswith(f"http://{KVSTORE_NAME}/api/") for url in proxy.seen)
            assert f"http://{KVSTORE_NAME}/api/list" in proxy.seen

        assert await call(session, "GET", base + "/api/reset") == (200, {})
        assert await call(session, "GET", base + "/api/accounts") == (200, [])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/transfer"),
        ("PUT", "/api/transfer"),
        ("POST", "/api/accounts"),
        ("DELETE", "/api/accounts"),
        ("HEAD", "/api/accounts"),
        ("POST", "/api/clear"),
        ("PUT", "/api/clear"),
        ("POST", "/api/reset"),
    ],
)
async def test_splitdim_wrong_method_is_405(method: str, path: str) -> None:
    async with serve(splitdim.create_app({})) as base, aiohttp.ClientSession() as session:
        response = await session.request(method, base + path)
        assert response.status == 405
        assert "Allow" in response.headers
        response.release()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        b"dummy",
        b'{"a":12',
        b"",
        b"[]",
        b'"a"',
        json.dumps(transfer("a", "a", 1)).encode(),
        json.dumps(transfer("a", "b", "2")).encode(),
        json.dumps(transfer("a", "b", 2.5)).encode(),
        json.dumps(transfer("a", "b", 2.0)).encode(),
        json.dumps(transfer("a", "b", True)).encode(),
        json.dumps(transfer("a", "b", None)).encode(),
        json.dumps(transfer("a", "b", 2**63)).encode(),
        json.dumps(transfer("", "b", 1)).encode(),
        json.dumps(transfer("a", 7, 1)).encode(),
        json.dumps({"sender": "a", "amount": 1}).encode(),
        json.dumps({"sender": "a", "receiver": "b"}).encode(),
    ],
)
async def test_splitdim_bad_transfer_is_400(body: bytes) -> None:
    async with serve(splitdim.create_app({})) as base, aiohttp.ClientSession() as session:
        status, answer = await call(session, "POST", base + "/api/transfer", raw=body)
        assert status == 400
        assert "error" in answer
        assert await call(session, "GET", base + "/api/accounts") == (200, [])


@pytest.mark.asyncio
async def test_splitdim_index_page() -> None:
    async with serve(splitdim.create_app({})) as base, aiohttp.ClientSession() as session:
        response = await session.get(base + "/")
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "api/transfer" in page and "/api/clear" in page


def test_settle_zeroes_every_balance() -> None:
    balances = {"a": 7, "b": -3, "c": -5, "d": 4, "e": -3, "f": 0}
    transfers = splitdim.settle(balances)
    after = dict(balances)
    for t in transfers:
        assert after[t["sender"]] < 0 < after[t["receiver"]] and t["amount"] > 0
        after[t["sender"]] += t["amount"]
        after[t["receiver"]] -= t["amount"]
    assert set(after.values()) == {0}
    assert splitdim.settle({"a": 2, "b": -1, "c": -1}) == [transfer("b", "a", 1), transfer("c", "a", 1)]
    with pytest.raises(ValueError):
        splitdim.settle({"a": 1, "b": -2})


def test_unknown_kvstore_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        splitdim.create_app({"KVSTORE_MODE": "redis"})


@pytest.mark.asyncio
async def test_clear_is_500_when_balances_do_not_sum_to_zero() -> None:
    async with splitdim_stack("kvstore") as (base, kv_url, _), aiohttp.ClientSession() as session:
        assert (await call(session, "POST", kv_url + "/api/put", {"key": "a", "value": "5"}))[0] == 200
        assert await call(session, "GET", base + "/api/accounts") == (200, [{"holder": "a", "balance": 5}])
        status, answer = await call(session, "GET", base + "/api/clear")
        assert status == 500 and "error" in answer
        # an unreadable balance is a data-layer failure
        assert (await call(session, "POST", kv_url + "/api/put", {"key": "b", "value": "x"}))[0] == 200
        assert (await call(session, "GET", base + "/api/accounts"))[0] == 500


@pytest.mark.asyncio
async def test_unreachable_kvstore_is_500() -> None:
    env = {"KVSTORE_MODE": "kvstore", "KVSTORE_ADDR": f"127.0.0.1:{closed_port()}"}
    async with serve(splitdim.create_app(env)) as base, aiohttp.ClientSession() as session:
        for method, path, body in [
            ("POST", "/api/transfer", transfer("a", "b", 1)),
            ("GET", "/api/accounts", None),
            ("GET", "/api/clear", None),
            ("GET", "/api/reset", None),
        ]:
            status, answer = await call(session, method, base + path, body)
            assert status == 500, path
            assert "error" in answer, path
        # bad input is still reported as such, before the store is touched
        assert (await call(session, "POST", base + "/api/transfer", raw=b"dummy"))[0] == 400


@pytest.mark.asyncio
async def test_fault_injected_list_fails_clear_but_not_transfers() -> None:
    async with splitdim_stack("proxied") as (base, _, proxy), aiohttp.ClientSession() as session:
        assert proxy is not None
        proxy.abort_paths.add("/api/list")
        assert (await call(session, "POST", base + "/api/transfer", transfer("a", "b", 3)))[0] == 200
        assert (await call(session, "GET", base + "/api/clear"))[0] == 500
        assert (await call(session, "GET", base + "/api/accounts"))[0] == 500
        proxy.abort_paths.clear()
        assert await call(session, "GET", base + "/api/clear") == (200, [transfer("b", "a", 3)])


@pytest.mark.asyncio
async def test_concurrent_transfers_from_two_replicas_are_not_lost() -> None:
    """Identical transfers race inside each replica; the two replicas race on holder a's version."""
    async with serve(kvstore.create_app({})) as kv_url, aiohttp.ClientSession() as session:
        env = {"KVSTORE_MODE": "kvstore", "KVSTORE_ADDR": kv_url.removeprefix("http://")}
        async with serve(splitdim.create_app(env)) as one, serve(splitdim.create_app(env)) as two:
            results = await asyncio.gather(
                *(call(session, "POST", one + "/api/transfer", transfer("a", "b", 1)) for _ in range(20)),
                *(call(session, "POST", two + "/api/transfer", transfer("c", "a", 2)) for _ in range(15)),
            )
            assert [status for status, _ in results] == [200] * 35
            expected = [
                {"holder": "a", "balance": -10},
                {"holder": "b", "balance": -20},
                {"holder": "c", "balance": 30},
            ]
            assert await call(session, "GET", one + "/api/accounts") == (200, expected)
            assert await call(session, "GET", two + "/api/accounts") == (200, expected)


# --- kvstore ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_kvstore_versioning() -> None:
    async with serve(kvstore.create_app({})) as base, aiohttp.ClientSession() as session:
        assert await call(session, "GET", base + "/api/get?id=k") == (200, {"value": "", "version": 0})
        # a new key starts at version 1 whatever the write says
        put = await call(session, "POST", base + "/api/put", {"key": "k", "value": "x", "version": 7})
        assert put == (200, {"key": "k", "value": "x", "version": 1})
        # the same value again is a no-op, even with a stale version
        assert (await call(session, "POST", base + "/api/put", {"key": "k", "value": "x", "version": 0}))[0] == 200
        assert await call(session, "GET", base + "/api/get?id=k") == (200, {"value": "x", "version": 1})
        # a change needs the stored version and bumps it
        put = await call(session, "POST", base + "/api/put", {"key": "k", "value": "y", "version": 1})
        assert put == (200, {"key": "k", "value": "y", "version": 2})
        status, _ = await call(session, "POST", base + "/api/put", {"key": "k", "value": "z", "version": 1})
        assert status == 428
        assert await call(session, "GET", base + "/api/get?id=k") == (200, {"value": "y", "version": 2})

        assert (await call(session, "POST", base + "/api/put", {"key": "a", "value": "1", "version": 0}))[0] == 200
        assert await call(session, "GET", base + "/api/list") == (
            200,
            [{"key": "a", "value": "1", "version": 1}, {"key": "k", "value": "y", "version": 2}],
        )
        assert await call(session, "GET", base + "/api/reset") == (200, {})
        assert await call(session, "GET", base + "/api/list") == (200, [])
        assert await call(session, "GET", base + "/api/get?id=k") == (200, {"value": "", "version": 0})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/get?id=a"),
        ("GET", "/api/put"),
        ("POST", "/api/list"),
        ("GET", "/api/transaction"),
        ("POST", "/api/reset"),
        ("DELETE", "/api/reset"),
    ],
)
async def test_kvstore_wrong_method_is_405(method: str, path: str) -> None:
    async with serve(kvstore.create_app({})) as base, aiohttp.ClientSession() as session:
        status, answer = await call(session, method, base + path)
        assert status == 405
        assert "error" in answer


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/put", b"dummy"),
        ("/api/put", b'{"key":"a"'),
        ("/api/put", b'{"key":"","value":"x","version":0}'),
        ("/api/put", b'{"value":"x","version":0}'),
        ("/api/put", b'{"key":"a","value":5,"version":0}'),
        ("/api/put", b'{"key":"a","value":"x","version":"1"}'),
        ("/api/put", b'["a","x",0]'),
        ("/api/transaction", b"dummy"),
        ("/api/transaction", b'{"key":"a","value":"x","version":0}'),
        ("/api/transaction", b'[{"key":"a","value":"x","version":0},{"key":"","value":"y","version":0}]'),
    ],
)
async def test_kvstore_bad_input_is_400_and_changes_nothing(path: str, body: bytes) -> None:
    async with serve(kvstore.create_app({})) as base, aiohttp.ClientSession() as session:
        status, answer = await call(session, "POST", base + path, raw=body)
        assert status == 400
        assert "error" in answer
        assert await call(session, "GET", base + "/api/list") == (200, [])


@pytest.mark.asyncio
async def test_kvstore_get_without_id_is_400() -> None:
    async with serve(kvstore.create_app({})) as base, aiohttp.ClientSession() as session:
        assert (await call(session, "GET", base + "/api/get"))[0] == 400
        assert (await call(session, "GET", base + "/api/get?id="))[0] == 400


@pytest.mark.asyncio
async def test_kvstore_transaction_is_all_or_nothing() -> None:
    async with serve(kvstore.create_app({})) as base, aiohttp.ClientSession() as session:
        seed = [{"key": "a", "value": "1", "version": 0}, {"key": "b", "value": "1", "version": 0}]
        assert (await call(session, "POST", base + "/api/transaction", seed))[0] == 200
        before = await call(session, "GET", base + "/api/list")
        # the first write is fine, the second is stale: nothing is applied
        mixed = [{"key": "a", "value": "2", "version": 1}, {"key": "b", "value": "2", "version": 9}]
        assert (await call(session, "POST", base + "/api/transaction", mixed))[0] == 428
        assert await call(session, "GET", base + "/api/list") == before

        good = [
            {"key": "a", "value": "2", "version": 1},
            {"key": "b", "value": "2", "version": 1},
            {"key": "a", "value": "3", "version": 2},  # later writes see earlier ones
        ]
        status, results = await call(session, "POST", base + "/api/transaction", good)
        assert status == 200
        assert [r["version"] for r in results] == [2, 2, 3]
        assert await call(session, "GET", base + "/api/list") == (
            200,
            [{"key": "a", "value": "3", "version": 3}, {"key": "b", "value": "2", "version": 2}],
        )


@pytest.mark.asyncio
async def test_kvstore_log_survives_restart(tmp_path: Path) -> None:
    env = {"KVSTORE_DATA_DIR": str(tmp_path / "data")}
    async with aiohttp.ClientSession() as session:
        async with serve(kvstore.create_app(env)) as base:
            await call(session, "POST", base + "/api/put", {"key": "a", "value": "1", "version": 0})
            await call(session, "POST", base + "/api/put", {"key": "a", "value": "2", "version": 1})
            txn = [{"key": "b", "value": "x", "version": 0}, {"key": "c", "value": "y", "version": 0}]
            await call(session, "POST", base + "/api/transaction", txn)
            before = await call(session, "GET", base + "/api/list")
        assert len(before[1]) == 3

        # a line cut short by a crash mid-write is skipped, not fatal
        with (tmp_path / "data" / kvstore.LOG_NAME).open("a") as log:
            log.write('{"set":[{"key":"d","val')
        async with serve(kvstore.create_app(env)) as base:
            assert await call(session, "GET", base + "/api/list") == before
            assert await call(session, "GET", base + "/api/get?id=a") == (200, {"value": "2", "version": 2})
            assert (await call(session, "POST", base + "/api/put", {"key": "a", "value": "3", "version": 1}))[0] == 428
            assert await call(session, "GET", base + "/api/reset") == (200, {})

        async with serve(kvstore.create_app(env)) as base:
            assert await call(session, "GET", base + "/api/list") == (200, [])


# --- curl -------------------------------------------------------------------------------------------


async def echo(request: web.Request) -> web.Response:
    """Describes the request it got; /status/N answers with status N."""
    status = int(request.match_info.get("code", 200))
    answer = {
        "method": request.method,
        "headers": dict(request.headers),
        "body": (await request.read()).decode(),
    }
    return web.json_response(answer, status=status)


def echo_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/status/{code}", echo)
    app.router.add_route("*", "/echo", echo)
    return app


@pytest.mark.asyncio
async def test_curl_runs_the_lab_commands() -> None:
    async with serve(splitdim.create_app({})) as base:
        assert await curl.run(["curl", f"{base}/api/reset"], {}) == (0, "{}")
        for body in ('{"sender":"a","receiver":"b","amount":2}', '{"sender":"b","receiver":"c","amount":1}'):
            code, _ = await curl.run(
                [
                    "curl",
                    "-H",
                    "Content-Type: application/json",
                    "--request",
                    "POST",
                    "--data",
                    body,
                    f"{base}/api/transfer",
                ],
                {},
            )
            assert code == 0
        code, out = await curl.run(["-s", f"{base}/api/clear"], {})
        assert code == 0
        assert sorted(json.loads(out), key=lambda t: t["sender"]) == [
            transfer("b", "a", 1),
            transfer("c", "a", 1),
        ]
        assert await curl.run(["curl", "-o", "/dev/null", "-s", f"{base}/api/clear"], {}) == (0, "")


@pytest.mark.asyncio
async def test_curl_request_options() -> None:
    async with serve(echo_app()) as base:
        code, out = await curl.run(["curl", "-s", "--header", "user:test", "-HX-Two: 2", f"{base}/echo"], {})
        assert code == 0
        seen = json.loads(out)
        assert seen["method"] == "GET"
        assert seen["headers"]["user"] == "test" and seen["headers"]["X-Two"] == "2"
        assert seen["headers"]["User-Agent"].startswith("curl/")

        code, out = await curl.run(["-sd", "a=1", "-d", "b=2", f"{base}/echo"], {})
        seen = json.loads(out)
        assert (code, seen["method"], seen["body"]) == (0, "POST", "a=1&b=2")
        assert seen["headers"]["Content-Type"] == "application/x-www-form-urlencoded"

        code, out = await curl.run(["-XPUT", f"{base}/echo"], {})
        assert (code, json.loads(out)["method"]) == (0, "PUT")

        code, out = await curl.run(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", f"{base}/status/201"], {})
        assert (code, out) == (0, "201\n")

        code, out = await curl.run(["-si", f"{base}/status/202"], {})
        assert code == 0 and out.startswith("HTTP/1.1 202 Accepted\r\n") and '"method":' in out

        # a URL without a scheme is http, as in curl
        assert (await curl.run(["-s", f"{base.removeprefix('http://')}/echo"], {}))[0] == 0


@pytest.mark.asyncio
async def test_curl_fail_flag_gives_22() -> None:
    async with serve(echo_app()) as base:
        code, out = await curl.run(["curl", "-s", f"{base}/status/404"], {})
        assert code == 0 and json.loads(out)["method"] == "GET"
        assert await curl.run(["curl", "-sf", f"{base}/status/404"], {}) == (22, "")
        code, out = await curl.run(["curl", "--fail", f"{base}/status/503"], {})
        assert code == 22 and "returned error: 503" in out
        assert (await curl.run(["curl", "-f", f"{base}/status/200"], {}))[0] == 0


@pytest.mark.asyncio
async def test_curl_connection_refused_gives_7() -> None:
    code, out = await curl.run(["curl", f"http://127.0.0.1:{closed_port()}/"], {})
    assert code == 7 and out.startswith("curl: (7) Failed to connect")
    assert await curl.run(["curl", "-s", f"http://127.0.0.1:{closed_port()}/"], {}) == (7, "")
    # an unreachable proxy is a connection failure as well
    assert (await curl.run(["curl", "-s", "http://x/"], {"HTTP_PROXY": f"127.0.0.1:{closed_port()}"}))[0] == 7


@pytest.mark.asyncio
async def test_curl_stalled_server_gives_28() -> None:
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        code, out = await curl.run(["curl", "-sS", "--max-time", "0.3", f"http://127.0.0.1:{port}/"], {})
        assert code == 28 and "timed out" in out
        assert time.monotonic() - started < 3
    finally:
        release.set()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_curl_unresolvable_host_gives_6() -> None:
    code, out = await curl.run(["curl", "-m", "5", "http://no-such-host.invalid/"], {})
    assert code == 6 and "Could not resolve host: no-such-host.invalid" in out
    code, out = await curl.run(["curl", "-m", "5", "http://x/"], {"HTTP_PROXY": "no-such-proxy.invalid:3128"})
    assert code == 5 and "Could not resolve proxy" in out


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["curl"],
        ["curl", "-s"],
        ["curl", "-X"],
        ["curl", "--bogus", "http://x/"],
        ["curl", "-q", "http://x/"],
        ["curl", "-o", "/tmp/out", "http://x/"],
        ["curl", "-d", "@/etc/passwd", "http://x/"],
        ["curl", "--max-time", "soon", "http://x/"],
        ["curl", "http://x/", "http://y/"],
    ],
)
async def test_curl_bad_usage_gives_2(args: list[str]) -> None:
    code, out = await curl.run(args, {})
    assert code == 2 and out.startswith("curl: ")


@pytest.mark.asyncio
async def test_curl_uses_http_proxy() -> None:
    async with serve(kvstore.create_app({})) as kv_url:
        proxy = ForwardProxy({KVSTORE_NAME: kv_url})
        async with serve(proxy.app()) as proxy_url:
            code, out = await curl.run(["curl", "-s", f"http://{KVSTORE_NAME}/api/list"], {"HTTP_PROXY": proxy_url})
            assert (code, out) == (0, "[]")
            assert proxy.seen == [f"http://{KVSTORE_NAME}/api/list"]


# --- container entry points -------------------------------------------------------------------------


async def start_module(module: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    await process.wait()


@pytest.mark.asyncio
async def test_modules_run_as_container_entry_points() -> None:
    kv_port, sd_port = closed_port(), closed_port()
    kv = await start_module("sandbox.apps.kvstore", {"HOST": "127.0.0.1", "PORT": str(kv_port)})
    sd = await start_module(
        "sandbox.apps.splitdim",
        {
            "HOST": "127.0.0.1",
            "PORT": str(sd_port),
            "KVSTORE_MODE": "kvstore",
            "KVSTORE_ADDR": f"127.0.0.1:{kv_port}",
        },
    )
    try:
        base = f"http://127.0.0.1:{sd_port}"

        async def serving() -> bool:
            for process in (kv, sd):
                if process.returncode is not None:
                    pytest.fail(f"exited early: {(await process.stderr.read()).decode()}")
            code, _ = await curl.run(["curl", "-sf", f"{base}/api/reset"], {})
            return code == 0

        await wait_for(serving)
        probe = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox.apps.curl",
            "-s",
            "-X",
            "POST",
            "-d",
            '{"sender":"a","receiver":"b","amount":2}',
            f"{base}/api/transfer",
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await probe.communicate()
        assert probe.returncode == 0, out
        code, out = await curl.run(["curl", "-s", f"http://127.0.0.1:{kv_port}/api/get?id=b"], {})
        assert (code, json.loads(out)) == (0, {"value": "-2", "version": 1})

        refused = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox.apps.curl",
            "-s",
            f"http://127.0.0.1:{closed_port()}/",
            cwd=REPO_ROOT,
        )
        assert await refused.wait() == 7
    finally:
        await stop(sd)
        await stop(kv)
