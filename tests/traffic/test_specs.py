"""Validation of streams and targets: every refusal is a TrafficError with a message for the user."""

from __future__ import annotations

import pytest

from traffic.generator import Stream
from traffic.specs import (
    InvalidStream,
    InvalidTarget,
    Limits,
    TrafficError,
    lab_streams,
    parse_streams,
    parse_target,
    stream_from_json,
    stream_to_json,
)

LIMITS = Limits(max_streams=4, max_rate=100, max_body_bytes=1000)


def test_lab_streams_are_valid_and_named() -> None:
    streams = parse_streams(lab_streams(), LIMITS)
    assert [s.name for s in streams] == ["clear", "clear (user: test)", "transfer"]
    assert streams[1].headers == (("user", "test"),) and streams[1].rate == 5
    assert streams[2].method == "POST" and streams[2].body.startswith(b"{")


def test_defaults_names_and_round_trip() -> None:
    raw = [
        {"path": "/api/clear", "rate": 5},
        {"path": "/api/clear", "rate": 5},
        {"method": "post", "path": "/api/transfer", "headers": [["user", "test"]], "body": "{}", "rate": 0.5},
    ]
    streams = parse_streams(raw, LIMITS)
    assert [s.name for s in streams] == ["GET /api/clear", "GET /api/clear #2", "POST /api/transfer [user: test]"]
    assert streams[2] == Stream(
        "POST /api/transfer [user: test]", "POST", "/api/transfer", (("user", "test"),), b"{}", 0.5
    )
    assert [stream_from_json(stream_to_json(s)) for s in streams] == streams


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ([], "non-empty list"),
        ("GET /", "non-empty list"),
        ([{"rate": 1}] * 5, "at most 4 streams"),
        (["GET /"], "must be an object"),
        ([{"rate": 1, "color": "red"}], "unknown field(s) color"),
        ([{"method": "TRACE"}], "method must be one of"),
        ([{"path": "api"}], "path must start with a single /"),
        ([{"path": "//evil.example/x"}], "path must start with a single /"),
        ([{"path": "/a b"}], "path must start"),
        ([{"headers": {"bad name": "x"}}], "'bad name' is not a valid header name"),
        ([{"headers": {"x-ok": "line\r\nInjected: 1"}}], "printable ASCII text on one line"),
        ([{"headers": {"Content-Length": "5"}}], "set by the generator itself"),
        ([{"headers": "user: test"}], "headers must be an object"),
        ([{"rate": -1}], "zero or a positive number"),
        ([{"rate": float("nan")}], "zero or a positive number"),
        ([{"rate": float("inf")}], "zero or a positive number"),
        ([{"rate": "fast"}], "must be a number"),
        ([{"rate": True}], "must be a number"),
        ([{"rate": 1e9}], "above the limit of 100 req/s"),
        ([{"method": "POST", "body": "x" * 1001}], "over the limit of 1000"),
        ([{"body": {"json": "object"}}], "body must be text"),
        ([{"name": "x" * 81}], "name must be"),
    ],
)
def test_invalid_streams_are_refused_with_a_message(streams: object, message: str) -> None:
    with pytest.raises(InvalidStream) as refused:
        parse_streams(streams, LIMITS)
    assert message in refused.value.message
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, TrafficError)


@pytest.mark.parametrize(
    ("target", "normalised"),
    [
        ("http://127.2.0.5:8080", "http://127.2.0.5:8080"),
        ("http://10.96.0.12/", "http://10.96.0.12:80"),
        ("https://Gateway.Example", "https://gateway.example:443"),
        ("http://splitdim.lab-ann:80", "http://splitdim.lab-ann:80"),
    ],
)
def test_targets_are_normalised(target: str, normalised: str) -> None:
    assert parse_target(target) == normalised


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://10.0.0.1", "http:// or https://"),
        ("10.0.0.1:80", "http:// or https://"),
        ("http://user:pw@10.0.0.1", "credentials"),
        ("http://10.0.0.1/api/clear", "just scheme://host:port"),
        ("http://10.0.0.1?x=1", "just scheme://host:port"),
        ("http://10.0.0.1:99999", "not a valid URL"),
        ("http://", "must name a host"),
        (None, "must be a URL"),
    ],
)
def test_bad_targets_are_refused(target: object, message: str) -> None:
    with pytest.raises(InvalidTarget) as refused:
        parse_target(target)
    assert message in refused.value.message
