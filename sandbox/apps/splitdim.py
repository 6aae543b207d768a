"""SplitDim, the lab's bill-splitting web app, as an aiohttp app (HTTP API on port 8080 by default).

A transfer S→R of N raises S's balance by N and lowers R's by N (R now owes S). Balances live in
memory (`KVSTORE_MODE=local`, the default) or in the kvstore at `KVSTORE_ADDR` (`KVSTORE_MODE=kvstore`),
one key per holder whose value is the balance as a decimal string. When `HTTP_PROXY` is set, every
kvstore request goes through that forward proxy, which is how the sandbox resolves service names and
how its sidecars see the egress traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_KVSTORE_ADDR = "kvstore:8081"
# Transfers from other replicas touching the same holders conflict on versions; retry this often.
MAX_ATTEMPTS = 16
KVSTORE_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=2)
INT64_MAX = 2**63 - 1  # the Go original decodes amounts into an int

_dumps = functools.partial(json.dumps, separators=(",", ":"))


class DataLayerError(Exception):
    """The balances could not be read or written."""


class Balances(Protocol):
    async def transfer(self, sender: str, receiver: str, amount: int) -> None: ...

    async def read(self) -> dict[str, int]: ...

    async def reset(self) -> None: ...


class LocalBalances:
    """Balances in this process's memory."""

    def __init__(self) -> None:
        self._balances: dict[str, int] = {}

    async def transfer(self, sender: str, receiver: str, amount: int) -> None:
        self._balances[sender] = self._balances.get(sender, 0) + amount
        self._balances[receiver] = self._balances.get(receiver, 0) - amount

    async def read(self) -> dict[str, int]:
        return dict(self._balances)

    async def reset(self) -> None:
        self._balances.clear()


class HolderLocks:
    """One asyncio lock per holder, alive only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, *holders: str) -> AsyncIterator[None]:
        ordered = sorted(set(holders))  # one global order, so two transfers never deadlock
        for holder in ordered:
            self._users[holder] = self._users.get(holder, 0) + 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                for holder in ordered:
                    await stack.enter_async_context(self._locks.setdefault(holder, asyncio.Lock()))
                yield
        finally:
            for holder in ordered:
                self._users[holder] -= 1
                if not self._users[holder]:
                    del self._users[holder], self._locks[holder]


class KvstoreBalances:
    """Balances in the kvstore, one key per holder, updated with optimistic versioning."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, proxy: str | None) -> None:
        self._session = session
        self._base_url = base_url
        self._proxy = proxy
        self._locks = HolderLocks()

    async def transfer(self, sender: str, receiver: str, amount: int) -> None:
        # The kvstore treats a write of the value already stored as a successful no-op whatever its
        # version, so two identical read-modify-writes racing from one base would both "succeed" and
        # one would be lost. Transfers of this process touching a holder therefore run one at a
        # time; versions still catch conflicts with other replicas.
        async with self._locks.hold(sender, receiver):
            for attempt in range(MAX_ATTEMPTS):
                (s_balance, s_version), (r_balance, r_version) = await asyncio.gather(
                    self._get(sender), self._get(receiver)
                )
                # Both keys change in one kvstore transaction, so readers never see money
                # half-moved (which would make /api/clear fail on a non-zero sum).
                writes = [
                    {"key": sender, "value": str(s_balance + amount), "version": s_version},
                    {"key": receiver, "value": str(r_balance - amount), "version": r_version},
                ]
                status, _ = await self._call("POST", "/api/transaction", writes)
                if status == 200:
                    return
                if status != 428:
                    raise DataLayerError(f"kvstore answered {status} to /api/transaction")
                # Jittered backoff so that replicas contending for the same holders spread out.
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
        raise DataLayerError("kvstore: too many version conflicts")

    async def read(self) -> dict[str, int]:
        status, body = await self._call("GET", "/api/list")
        if status != 200:
            raise DataLayerError(f"kvstore answered {status} to /api/list")
        try:
            return {item["key"]: _parse_balance(item["value"]) for item in body}
        except (TypeError, KeyError, ValueError) as exc:
            raise DataLayerError(f"kvstore sent an unreadable list: {exc}") from exc

    async def reset(self) -> None:
        status, _ = await self._call("GET", "/api/reset")
        if status != 200:
            raise DataLayerError(f"kvstore answered {status} to /api/reset")

    async def _get(self, holder: str) -> tuple[int, int]:
        status, body = await self._call("GET", "/api/get", params={"id": holder})
        if status != 200:
            raise DataLayerError(f"kvstore answered {status} to /api/get")
        try:
            return _parse_balance(body["value"]), int(body["version"])
        except (TypeError, KeyError, ValueError) as exc:
            raise DataLayerError(f"kvstore sent an unreadable value: {exc}") from exc

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One kvstore request; returns (status, decoded JSON body or None when not 200)."""
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                json=body,
                params=params,
                proxy=self._proxy,
            ) as response:
                if response.status != 200:
                    await response.read()
                    return response.status, None
                return 200, json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DataLayerError(f"kvstore {path}: {type(exc).__name__}: {exc}") from exc


def _parse_balance(value: Any) -> int:
    if not isinstance(value, str):
        raise TypeError(f"balance {value!r} is not a string")
    return int(value) if value else 0


def settle(balances: Mapping[str, int]) -> list[dict[str, Any]]:
    """Transfers that bring every balance to zero: each pays a debtor's debt to a creditor.

    Debtors and creditors are taken in holder order, each step settling the smaller of the two
    magnitudes, so the answer is deterministic. Raises ValueError if the balances do not sum to zero.
    """
    if sum(balances.values()) != 0:
        raise ValueError("balances do not sum to zero")
    debtors = [[holder, -balance] for holder, balance in sorted(balances.items()) if balance < 0]
    creditors = [[holder, balance] for holder, balance in sorted(balances.items()) if balance > 0]
    transfers: list[dict[str, Any]] = []
    d = c = 0
    while d < len(debtors) and c < len(creditors):
        amount = min(debtors[d][1], creditors[c][1])
        transfers.append({"sender": debtors[d][0], "receiver": creditors[c][0], "amount": amount})
        debtors[d][1] -= amount
        creditors[c][1] -= amount
        if debtors[d][1] == 0:
            d += 1
        if creditors[c][1] == 0:
            c += 1
    return transfers


def parse_transfer(raw: bytes) -> tuple[str, str, int]:
    """(sender, receiver, amount) from a request body; ValueError/TypeError say why it is unacceptable."""
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    sender, receiver, amount = (
        body.get("sender"),
        body.get("receiver"),
        body.get("amount"),
    )
    if not isinstance(sender, str) or not sender or not isinstance(receiver, str) or not receiver:
        raise ValueError("sender and receiver must be non-empty strings")
    if not isinstance(amount, int) or isinstance(amount, bool) or abs(amount) > INT64_MAX:
        raise ValueError("amount must be an integer")
    if sender == receiver:
        raise ValueError("sender and receiver must differ")
    return sender, receiver, amount


BALANCES = web.AppKey("balances", Balances)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Render the router's own 404/405 as JSON like every other answer (keeping `Allow`)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(exc.status, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except DataLayerError as exc:
        log.warning("splitdim: %s", exc)
        return _error(500, str(exc))


async def handle_transfer(request: web.Request) -> web.Response:
    try:
        sender, receiver, amount = parse_transfer(await request.read())
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    await request.app[BALANCES].transfer(sender, receiver, amount)
    return _json({"sender": sender, "receiver": receiver, "amount": amount})


async def handle_accounts(request: web.Request) -> web.Response:
    balances = await request.app[BALANCES].read()
    return _json([{"holder": holder, "balance": balances[holder]} for holder in sorted(balances)])


async def handle_clear(request: web.Request) -> web.Response:
    try:
        return _json(settle(await request.app[BALANCES].read()))
    except ValueError as exc:
        return _error(500, str(exc))


async def handle_reset(request: web.Request) -> web.Response:
    await request.app[BALANCES].reset()
    return _json({})


async def handle_index(_request: web.Request) -> web.Response:
    return web.Response(text=INDEX_HTML, content_type="text/html")


def _proxy_url(env: Mapping[str, str]) -> str | None:
    proxy = env.get("HTTP_PROXY") or env.get("http_proxy")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _kvstore_base_url(env: Mapping[str, str]) -> str:
    addr = env.get("KVSTORE_ADDR") or DEFAULT_KVSTORE_ADDR
    return (addr if "://" in addr else f"http://{addr}").rstrip("/")


def create_app(env: Mapping[str, str]) -> web.Application:
    """Build SplitDim from `KVSTORE_MODE` (local|kvstore), `KVSTORE_ADDR` and `HTTP_PROXY`."""
    mode = env.get("KVSTORE_MODE") or "local"
    if mode not in ("local", "kvstore"):
        raise ValueError(f"KVSTORE_MODE must be 'local' or 'kvstore', not {mode!r}")
    app = web.Application(middlewares=[_json_errors])
    if mode == "local":
        app[BALANCES] = LocalBalances()
    else:
        base_url, proxy = _kvstore_base_url(env), _proxy_url(env)

        async def kvstore_session(app: web.Application) -> AsyncIterator[None]:
            # One pooled session for the app's lifetime: this path carries hundreds of requests a second.
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
            async with aiohttp.ClientSession(
                connector=connector, timeout=KVSTORE_TIMEOUT, json_serialize=_dumps
            ) as session:
                app[BALANCES] = KvstoreBalances(session, base_url, proxy)
                yield

        app.cleanup_ctx.append(kvstore_session)
    app.router.add_post("/api/transfer", handle_transfer)
    app.router.add_get("/api/accounts", handle_accounts, allow_head=False)
    app.router.add_get("/api/clear", handle_clear, allow_head=False)
    app.router.add_get("/api/reset", handle_reset, allow_head=False)
    app.router.add_get("/", handle_index)
    return app


INDEX_HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>SplitDim</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}input{width:6em}pre{background:#eee;padding:1em}</style>
</head>
<body>
<h1>SplitDim</h1>
<p>A transfer from <em>sender</em> to <em>receiver</em> means the receiver now owes the sender.</p>
<form id="transfer">
  <input name="sender" placeholder="sender" required>
  <input name="receiver" placeholder="receiver" required>
  <input name="amount" type="number" step="1" placeholder="amount" required>
  <button>Transfer</button>
</form>
<p>
  <button data-path="/api/accounts">Accounts</button>
  <button data-path="/api/clear">Clear</button>
  <button data-path="/api/reset">Reset</button>
</p>
<pre id="out"></pre>
<script>
const out = document.getElementById("out");
async function show(response) {
  out.textContent = response.status + " " + await response.text();
}
document.getElementById("transfer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {sender: form.get("sender"), receiver: form.get("receiver"), amount: Number(form.get("amount"))};
  await show(await fetch("api/transfer", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)}));
});
for (const button of document.querySelectorAll("button[data-path]")) {
  button.addEventListener("click", async () => show(await fetch(button.dataset.path.slice(1))));
}
</script>
</body>
</html>
"""


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(os.environ)
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))
    web.run_app(app, host=host, port=port, access_log=None)


if __name__ == "__main__":
    main()
