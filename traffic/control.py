"""The traffic control API for the web side and the lab console: start, change, stop and read runs.

Runs live in Redis (see `traffic.store`); workers (`python -m traffic.worker`) pick them up from there,
so these calls return as soon as Redis has the new state and never talk to a generator directly.

Every call that names a run takes the caller's `owner_id`, and a run of another owner is reported as not
found, exactly like a missing one. Refusals raise `TrafficError` subclasses (ValueErrors with a
`.message` for the user):

- `InvalidStream` / `InvalidTarget`: malformed streams (bad header names, negative or absurd rates,
  bodies over the size limit...) or target URL;
- `TargetRefused`: the target is not the student's own app. By default the target must be an address
  of a Service in the given namespace, asked of the cluster through the kubernetes client
  (`traffic.targets.belongs_to_namespace`); callers may pass their own `allow_target(namespace, target)`
  predicate instead (an allow-list, e.g. the lab console's known gateway address, or tests);
- `RateLimitExceeded`: the owner's running runs would exceed TRAFFIC_MAX_RATE_PER_STUDENT req/s in
  total, or the owner's class would exceed TRAFFIC_MAX_RATE_PER_CLASS;
- `RunNotFound`: no such run for this owner.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import redis
from django.conf import settings

from classroom.cluster import ClusterError
from traffic import conf
from traffic.specs import (
    InvalidStream,
    Limits,
    TrafficError,
    parse_rate,
    parse_streams,
    parse_target,
    stream_to_json,
    total_rate,
)
from traffic.store import RUNNING, STOPPED, Keys, RunRecord

TargetCheck = Callable[[str, str], bool]
log = logging.getLogger(__name__)


class TargetRefused(TrafficError):
    pass


class RateLimitExceeded(TrafficError):
    pass


class RunNotFound(TrafficError):
    pass


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def keys() -> Keys:
    return Keys(conf.get("TRAFFIC_KEY_PREFIX"))


def limits() -> Limits:
    return Limits(
        max_streams=conf.get("TRAFFIC_MAX_STREAMS"),
        max_rate=conf.get("TRAFFIC_MAX_RATE_PER_STUDENT"),
        max_body_bytes=conf.get("TRAFFIC_MAX_BODY_BYTES"),
    )


def class_of(owner_id: int) -> int | None:
    """The class whose cap an owner's traffic counts against: their most recent membership."""
    from classroom.models import Membership

    membership = Membership.objects.filter(user_id=owner_id).order_by("-joined_at", "-pk").first()
    return membership.classroom_id if membership else None


# --- runs


def start_run(
    owner_id: int,
    namespace: str,
    target: str,
    streams: list[dict[str, Any]],
    *,
    allow_target: TargetCheck | None = None,
) -> str:
    """Validate and store a new run; a worker starts sending within a second. Returns the run id."""
    parsed = parse_streams(streams, limits())
    origin = parse_target(target)
    _check_target(namespace, origin, allow_target)
    record = RunRecord(
        id=secrets.token_hex(8),
        owner=owner_id,
        class_id=class_of(owner_id),
        namespace=namespace,
        target=origin,
        streams=[stream_to_json(s) for s in parsed],
        options={
            "timeout": conf.get("TRAFFIC_TIMEOUT"),
            "max_in_flight": conf.get("TRAFFIC_MAX_IN_FLIGHT"),
            "window": conf.get("TRAFFIC_WINDOW"),
            "transport": conf.get("TRAFFIC_TRANSPORT"),
        },
    )
    k, r = keys(), client()
    with _cap_lock(record):
        _check_caps(record, total_rate(parsed))
        pipe = r.pipeline()
        pipe.set(k.run(record.id), record.to_json())
        pipe.sadd(k.active, record.id)
        pipe.sadd(k.owner(owner_id), record.id)
        if record.class_id is not None:
            pipe.sadd(k.klass(record.class_id), record.id)
        pipe.publish(k.control, record.id)
        pipe.execute()
    _announce(record)
    return record.id


def stop_run(run_id: str, owner_id: int) -> None:
    record = _owned(run_id, owner_id)
    with _cap_lock(record):
        _stop(_owned(run_id, owner_id))


def stop_owner_runs(owner_id: int) -> int:
    """Stop every running run of the owner; returns how many were stopped."""
    stopped = 0
    for record in _records(client().smembers(keys().owner(owner_id))):
        if record.owner == owner_id and record.state == RUNNING:
            with _cap_lock(record):
                fresh = get_run(record.id)
                if fresh is not None and fresh.state == RUNNING:
                    _stop(fresh)
                    stopped += 1
    return stopped


def set_rate(run_id: str, owner_id: int, stream: str, rate: float) -> None:
    """Change one stream's rate (0 pauses it)."""
    new_rate = parse_rate(rate, limits(), f"the rate of {stream}")
    record = _owned(run_id, owner_id)
    with _cap_lock(record):
        record = _running(run_id, owner_id)
        if not any(s["name"] == stream for s in record.streams):
            raise InvalidStream(f"the run has no stream named {stream!r}")
        streams = [{**s, "rate": new_rate} if s["name"] == stream else s for s in record.streams]
        _check_caps(record, total_rate(streams))
        _save(record, streams)


def set_streams(run_id: str, owner_id: int, streams: list[dict[str, Any]]) -> None:
    """Replace a run's streams (same rules as at start); unchanged streams keep their schedule."""
    parsed = parse_streams(streams, limits())
    record = _owned(run_id, owner_id)
    with _cap_lock(record):
        record = _running(run_id, owner_id)
        _check_caps(record, total_rate(parsed))
        _save(record, [stream_to_json(s) for s in parsed])


def runs(owner_id: int) -> list[dict[str, Any]]:
    """The owner's runs, running and recently stopped, newest first."""
    k, r = keys(), client()
    ids = r.smembers(k.owner(owner_id))
    records = _records(ids)
    gone = ids - {rec.id for rec in records}
    if gone:
        r.srem(k.owner(owner_id), *gone)
    return [rec.public() for rec in sorted(records, key=lambda rec: -rec.created) if rec.owner == owner_id]


def history(run_id: str, owner_id: int, since_seq: int | None = None) -> list[dict[str, Any]]:
    """The run's kept windows (the last TRAFFIC_HISTORY_SECONDS), oldest first, each with its `seq`."""
    _owned(run_id, owner_id)
    return [json.loads(text) for text in history_texts(run_id, since_seq)]


# --- for the websocket consumer, which does its own authorisation


def get_run(run_id: str) -> RunRecord | None:
    raw = client().get(keys().run(run_id))
    return RunRecord.from_json(raw) if raw else None


def history_texts(run_id: str, since_seq: int | None = None) -> list[str]:
    """Window messages as stored (JSON text), after `since_seq` if given."""
    start = f"{since_seq + 1}-0" if since_seq is not None else "-"
    return [fields["w"] for _, fields in client().xrange(keys().history(run_id), min=start)]


# --- internals


def _check_target(namespace: str, origin: str, allow_target: TargetCheck | None) -> None:
    if allow_target is None:
        from traffic.targets import belongs_to_namespace

        allow_target = belongs_to_namespace
    try:
        allowed = allow_target(namespace, origin)
    except ClusterError as exc:
        raise TargetRefused(f"could not check that {origin} belongs to {namespace}: {exc}") from exc
    if not allowed:
        raise TargetRefused(
            f"{origin} is not an address of a Service in namespace {namespace}; "
            "use your gateway's or your Service's address and port"
        )


def _cap_lock(record: RunRecord) -> redis.lock.Lock:
    """Cap checks read every run of the class (or owner) and then write: one writer at a time."""
    scope = f"class:{record.class_id}" if record.class_id is not None else f"owner:{record.owner}"
    return client().lock(keys().lock(scope), timeout=10, blocking_timeout=10)


def _check_caps(record: RunRecord, new_total: float) -> None:
    """Refuse if the owner's, or the class's, running runs would exceed their caps with `record` at
    `new_total` req/s."""
    k, r = keys(), client()
    per_student = conf.get("TRAFFIC_MAX_RATE_PER_STUDENT")
    owner_runs = [rec for rec in _records(r.smembers(k.owner(record.owner))) if rec.state == RUNNING]
    owner_total = sum(rec.total_rate for rec in owner_runs if rec.id != record.id) + new_total
    if owner_total > per_student:
        raise RateLimitExceeded(
            f"that makes {owner_total:g} req/s across your runs; the limit per student is {per_student:g} req/s"
        )
    if record.class_id is None:
        return
    per_class = conf.get("TRAFFIC_MAX_RATE_PER_CLASS")
    class_runs = _records(r.smembers(k.klass(record.class_id)))
    class_total = sum(rec.total_rate for rec in class_runs if rec.id != record.id and rec.state == RUNNING)
    if class_total + new_total > per_class:
        raise RateLimitExceeded(
            f"your class is already sending {class_total:g} req/s; the limit per class is {per_class:g} req/s"
        )


def _records(ids: set[str]) -> list[RunRecord]:
    if not ids:
        return []
    k = keys()
    ordered = sorted(ids)
    return [RunRecord.from_json(raw) for raw in client().mget([k.run(i) for i in ordered]) if raw]


def _owned(run_id: str, owner_id: int) -> RunRecord:
    record = get_run(run_id) if isinstance(run_id, str) and run_id.isalnum() else None
    if record is None or record.owner != owner_id:
        raise RunNotFound(f"there is no traffic run {run_id!r}")
    return record


def _running(run_id: str, owner_id: int) -> RunRecord:
    record = _owned(run_id, owner_id)
    if record.state != RUNNING:
        raise RunNotFound(f"traffic run {run_id} has stopped")
    return record


def _save(record: RunRecord, streams: list[dict[str, Any]]) -> None:
    record.streams = streams
    record.version += 1
    k = keys()
    pipe = client().pipeline()
    pipe.set(k.run(record.id), record.to_json())
    pipe.publish(k.control, record.id)
    pipe.execute()
    _announce(record)


def _stop(record: RunRecord) -> None:
    if record.state == STOPPED:
        return
    record.state = STOPPED
    record.stopped = time.time()
    record.version += 1
    k, ttl = keys(), conf.get("TRAFFIC_STOPPED_TTL")
    pipe = client().pipeline()
    pipe.set(k.run(record.id), record.to_json(), ex=ttl)
    pipe.srem(k.active, record.id)
    if record.class_id is not None:
        pipe.srem(k.klass(record.class_id), record.id)
    pipe.expire(k.history(record.id), ttl)
    pipe.expire(k.seq(record.id), ttl)
    pipe.publish(k.control, record.id)
    pipe.execute()
    _announce(record)


def _announce(record: RunRecord) -> None:
    """Best effort: the run's state is in Redis either way, and pages also poll `runs()`."""
    from traffic.stream import publish_run_event

    try:
        publish_run_event(record.owner, record.public())
    except Exception:
        log.warning("could not announce traffic run %s", record.id, exc_info=True)
