"""SplitDim's API conformance suites, run over HTTP against a student's deployment.

The course checks SplitDim with Go tests tagged httphandler, api, reset, transfer, accounts and clear;
these are the same expectations (status codes, 405 for wrong methods, 400 for bad transfers, balances
and settling transfers compared without regard to order) written against the HTTP API, so they can be
run through the student's gateway. They reset the balances, as the Go tests do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import httpx

SUITES = ("httphandler", "api", "reset", "transfer", "accounts", "clear")
TIMEOUT = 5.0


class _Run:
    """One run of some suites: a client and the failures collected so far."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.failures: list[str] = []

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> httpx.Response | None:
        try:
            if raw is not None:
                return self.client.request(method, path, content=raw, headers={"Content-Type": "application/json"})
            return self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.failures.append(f"{method} {path}: no answer ({type(exc).__name__})")
            return None

    def expect(
        self, suite: str, method: str, path: str, status: int, body: Any = None, raw: bytes | None = None
    ) -> Any:
        """Send a request, record a failure unless it answers `status`; the decoded JSON body (or None)."""
        response = self.call(method, path, body, raw)
        if response is None:
            return None
        if response.status_code != status:
            self.failures.append(f"{suite}: {method} {path} answered {response.status_code}, expected {status}")
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def transfers(self, suite: str, moves: Iterable[tuple[str, str, int]]) -> None:
        self.expect(suite, "GET", "/api/reset", 200)
        for sender, receiver, amount in moves:
            self.expect(suite, "POST", "/api/transfer", 200, {"sender": sender, "receiver": receiver, "amount": amount})

    def balances(self, suite: str) -> dict[str, int] | None:
        accounts = self.expect(suite, "GET", "/api/accounts", 200)
        if not isinstance(accounts, list) or not all(
            isinstance(a, dict) and isinstance(a.get("holder"), str) and isinstance(a.get("balance"), int)
            for a in accounts
        ):
            if accounts is not None:
                self.failures.append(f"{suite}: /api/accounts is not a list of {{holder, balance}}: {accounts!r}")
            return None
        return {a["holder"]: a["balance"] for a in accounts}

    def same(self, suite: str, what: str, got: Any, expected: Any) -> None:
        if got != expected:
            self.failures.append(f"{suite}: {what} is {got!r}, expected {expected!r}")


def _multiset(transfers: Any) -> Counter | None:
    if not isinstance(transfers, list):
        return None
    try:
        return Counter(json.dumps(t, sort_keys=True) for t in transfers)
    except TypeError:
        return None


def _expected_transfers(*moves: tuple[str, str, int]) -> Counter:
    return Counter(json.dumps({"sender": s, "receiver": r, "amount": a}, sort_keys=True) for s, r, a in moves)


def _httphandler(run: _Run) -> None:
    run.expect("httphandler", "GET", "/", 200)
    for method, path in (
        ("GET", "/api/transfer"),
        ("PUT", "/api/transfer"),
        ("POST", "/api/accounts"),
        ("DELETE", "/api/accounts"),
        ("POST", "/api/clear"),
        ("POST", "/api/reset"),
    ):
        run.expect("httphandler", method, path, 405)


def _api(run: _Run) -> None:
    run.expect("api", "GET", "/api/reset", 200)
    run.expect("api", "POST", "/api/transfer", 200, {"sender": "a", "receiver": "b", "amount": 1})
    run.balances("api")
    if not isinstance(run.expect("api", "GET", "/api/clear", 200), list):
        run.failures.append("api: /api/clear did not return a JSON list")


def _reset(run: _Run) -> None:
    run.transfers("reset", [("x", "y", 5)])
    run.expect("reset", "GET", "/api/reset", 200)
    run.same("reset", "the balances after a reset", run.balances("reset"), {})


def _transfer(run: _Run) -> None:
    run.expect("transfer", "GET", "/api/reset", 200)
    run.expect("transfer", "POST", "/api/transfer", 200, {"sender": "a", "receiver": "b", "amount": 2})
    run.expect("transfer", "POST", "/api/transfer", 400, raw=b"dummy")
    run.expect("transfer", "POST", "/api/transfer", 400, raw=b'{"a":12')
    run.expect("transfer", "POST", "/api/transfer", 400, {"sender": "a", "receiver": "a", "amount": 1})
    run.same("transfer", "the balances after a transfer of 2 from a to b", run.balances("transfer"), {"a": 2, "b": -2})


def _accounts(run: _Run) -> None:
    for moves, expected in (
        ([("a", "b", 2), ("b", "c", 1)], {"a": 2, "b": -1, "c": -1}),
        ([("p", "q", 4), ("q", "r", 1), ("r", "p", 2)], {"p": 2, "q": -3, "r": 1}),
    ):
        run.transfers("accounts", moves)
        run.same("accounts", f"the balances after {moves}", run.balances("accounts"), expected)


def _clear(run: _Run) -> None:
    run.expect("clear", "GET", "/api/reset", 200)
    run.same("clear", "/api/clear with no balances", run.expect("clear", "GET", "/api/clear", 200), [])
    for moves, expected in (
        ([("a", "b", 2), ("b", "c", 1)], _expected_transfers(("b", "a", 1), ("c", "a", 1))),
        ([("p", "q", 4), ("q", "r", 1), ("r", "p", 2)], _expected_transfers(("q", "p", 2), ("q", "r", 1))),
    ):
        run.transfers("clear", moves)
        before = run.balances("clear")
        got = _multiset(run.expect("clear", "GET", "/api/clear", 200))
        run.same("clear", f"the settling transfers after {moves}", got, expected)
        run.same("clear", "the balances after /api/clear (it must change nothing)", run.balances("clear"), before)


_SUITES: dict[str, Callable[[_Run], None]] = {
    "httphandler": _httphandler,
    "api": _api,
    "reset": _reset,
    "transfer": _transfer,
    "accounts": _accounts,
    "clear": _clear,
}


def run_suites(base_url: str, suites: Iterable[str]) -> list[str]:
    """Run the named suites against SplitDim at `base_url`; the failures (empty when all pass)."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False) as client:
        run = _Run(client)
        for suite in suites:
            _SUITES[suite](run)
    return run.failures
