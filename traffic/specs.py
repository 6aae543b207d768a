"""What a run is made of, checked: streams as users send them, the target URL, and their stored JSON form.

Everything a user types is validated here before it reaches Redis or the generator, and every refusal
says what is wrong in a sentence fit for the page (`TrafficError.message`). No Django here: limits come
in as a `Limits` value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from traffic.generator import Stream

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Printable ASCII, space and tab (no CR, LF, NUL or other controls: they would split the request).
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
_PATH = re.compile(r"^/[\x21-\x7e]*$")
# Framing and connection headers belong to the client; letting users set them would corrupt requests.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "expect",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NAME = re.compile(r"^[\w .:/\-\[\]()#,=+@]{1,80}$")


class TrafficError(ValueError):
    """A request to the traffic service was refused; `message` says why, for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidStream(TrafficError):
    pass


class InvalidTarget(TrafficError):
    pass


@dataclass(frozen=True)
class Limits:
    max_streams: int = 8
    max_rate: float = 200.0  # per stream; the per-student and per-class caps are checked by control
    max_body_bytes: int = 64 * 1024
    max_headers: int = 32
    max_header_bytes: int = 4096
    max_path_bytes: int = 2048


def parse_rate(value: object, limits: Limits, where: str = "rate") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidStream(f"{where} must be a number of requests per second")
    rate = float(value)
    if not math.isfinite(rate) or rate < 0:
        raise InvalidStream(f"{where} must be zero or a positive number, not {value!r}")
    if rate > limits.max_rate:
        raise InvalidStream(f"{where} {rate:g} req/s is above the limit of {limits.max_rate:g} req/s per stream")
    return rate


def parse_headers(value: object, limits: Limits, where: str) -> tuple[tuple[str, str], ...]:
    """Headers as a {name: value} object or a list of [name, value] pairs."""
    if value is None:
        return ()
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        pairs = [tuple(p) for p in value]
    else:
        raise InvalidStream(f"{where}: headers must be an object of name: value or a list of [name, value] pairs")
    if len(pairs) > limits.max_headers:
        raise InvalidStream(f"{where}: at most {limits.max_headers} headers are allowed")
    out = []
    for name, val in pairs:
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidStream(f"{where}: {name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidStream(f"{where}: the {name} header is set by the generator itself")
        if isinstance(val, int | float) and not isinstance(val, bool):
            val = str(val)
        if not isinstance(val, str) or not _HEADER_VALUE.match(val):
            raise InvalidStream(f"{where}: the value of {name} must be printable ASCII text on one line")
        if len(name) + len(val) > limits.max_header_bytes:
            raise InvalidStream(f"{where}: the {name} header is longer than {limits.max_header_bytes} bytes")
        out.append((name, val))
    return tuple(out)


def parse_stream(raw: object, limits: Limits, position: int) -> Stream:
    where = f"stream {position}"
    if not isinstance(raw, dict):
        raise InvalidStream(f"{where} must be an object with method, path, headers, body and rate")
    unknown = set(raw) - {"name", "method", "path", "headers", "body", "rate"}
    if unknown:
        raise InvalidStream(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidStream(f"{where}: method must be one of {', '.join(METHODS)}")
    method = method.upper()
    path = raw.get("path", "/")
    if not isinstance(path, str) or not _PATH.match(path) or path.startswith("//") or "#" in path:
        raise InvalidStream(f"{where}: path must start with a single / and contain no spaces, controls or #")
    if len(path) > limits.max_path_bytes:
        raise InvalidStream(f"{where}: path is longer than {limits.max_path_bytes} characters")
    headers = parse_headers(raw.get("headers"), limits, where)
    body = raw.get("body", "")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise InvalidStream(f"{where}: body must be text")
    encoded = body.encode()
    if len(encoded) > limits.max_body_bytes:
        raise InvalidStream(f"{where}: body is {len(encoded)} bytes, over the limit of {limits.max_body_bytes}")
    rate = parse_rate(raw.get("rate", 1), limits, f"{where}: rate")
    name = raw.get("name") or default_name(method, path, headers)
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidStream(f"{where}: name must be 1-80 letters, digits, spaces or simple punctuation")
    return Stream(name=name, method=method, path=path, headers=headers, body=encoded, rate=rate)


def default_name(method: str, path: str, headers: tuple[tuple[str, str], ...]) -> str:
    name = f"{method} {path.split('?')[0]}"
    if headers:
        name += " [" + ", ".join(f"{k}: {v}" for k, v in headers) + "]"
    name = re.sub(r"[^\w .:/\-\[\]()#,=+@]", "_", name)
    return name[:80]


def parse_streams(raw: object, limits: Limits) -> list[Stream]:
    """Validate a list of stream objects; names are made unique by numbering repeats."""
    if not isinstance(raw, list) or not raw:
        raise InvalidStream("streams must be a non-empty list")
    if len(raw) > limits.max_streams:
        raise InvalidStream(f"at most {limits.max_streams} streams are allowed in one run")
    streams = [parse_stream(item, limits, i + 1) for i, item in enumerate(raw)]
    seen: set[str] = set()
    unique = []
    for stream in streams:
        name, n = stream.name, 1
        while name in seen:
            n += 1
            name = f"{stream.name[:75]} #{n}"
        seen.add(name)
        unique.append(Stream(name, stream.method, stream.path, stream.headers, stream.body, stream.rate))
    return unique


def parse_target(target: object) -> str:
    """The normalised base URL `scheme://host:port` of a target; anything beyond an origin is refused."""
    if not isinstance(target, str) or not target or len(target) > 300:
        raise InvalidTarget("target must be a URL such as http://10.96.0.12:80")
    try:
        parts = urlsplit(target.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidTarget(f"target is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidTarget("target must start with http:// or https://")
    if not parts.hostname:
        raise InvalidTarget("target must name a host")
    if parts.username or parts.password:
        raise InvalidTarget("target must not contain credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidTarget("target must be just scheme://host:port; put paths in the streams")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname.lower()
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


def total_rate(streams: list[dict[str, Any]] | list[Stream]) -> float:
    return sum(float(s.rate if isinstance(s, Stream) else s["rate"]) for s in streams)


def stream_to_json(stream: Stream) -> dict[str, Any]:
    return {
        "name": stream.name,
        "method": stream.method,
        "path": stream.path,
        "headers": [list(p) for p in stream.headers],
        "body": stream.body.decode(),
        "rate": stream.rate,
    }


def stream_from_json(data: dict[str, Any]) -> Stream:
    """A stored stream (already validated when it was stored)."""
    return Stream(
        name=data["name"],
        method=data["method"],
        path=data["path"],
        headers=tuple((str(k), str(v)) for k, v in data.get("headers", [])),
        body=data.get("body", "").encode(),
        rate=float(data["rate"]),
    )


def lab_streams(transfer_rate: float = 1.0) -> list[dict[str, Any]]:
    """The lab's background traffic: clear at 5/s, the same as the test user (canary route), transfers."""
    return [
        {"name": "clear", "method": "GET", "path": "/api/clear", "rate": 5},
        {"name": "clear (user: test)", "method": "GET", "path": "/api/clear", "headers": {"user": "test"}, "rate": 5},
        {
            "name": "transfer",
            "method": "POST",
            "path": "/api/transfer",
            "headers": {"Content-Type": "application/json"},
            "body": '{"sender": "a", "receiver": "b", "amount": 1}',
            "rate": transfer_rate,
        },
    ]
