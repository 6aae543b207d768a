"""How runs live in Redis: key names, the run record, and the scripts that keep workers honest.

Shared by the control API (sync client, web processes) and the workers (asyncio client):

  <p>:run:<id>        JSON run record (owner, class, namespace, target, streams, options, state, version)
  <p>:active          set of ids of running runs
  <p>:owner:<owner>   set of an owner's run ids (running, and stopped ones until their record expires)
  <p>:class:<class>   set of a class's running run ids (for the per-class rate cap)
  <p>:lease:<id>      id of the worker running the run; expires unless renewed (PX)
  <p>:workers         sorted set worker id -> last heartbeat (ms)
  <p>:seq:<id>        last window sequence number of the run
  <p>:hist:<id>       stream of the run's window messages, entry id `<seq>-0`, capped to the history length
  <p>:control         pub/sub channel: a run id whose record changed (workers also poll)
  <p>:lock:<scope>    lock around check-and-write of rate caps
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

RUNNING = "running"
STOPPED = "stopped"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.active = f"{prefix}:active"
        self.workers = f"{prefix}:workers"
        self.control = f"{prefix}:control"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def owner(self, owner_id: int) -> str:
        return f"{self.prefix}:owner:{owner_id}"

    def klass(self, class_id: int) -> str:
        return f"{self.prefix}:class:{class_id}"

    def lease(self, run_id: str) -> str:
        return f"{self.prefix}:lease:{run_id}"

    def seq(self, run_id: str) -> str:
        return f"{self.prefix}:seq:{run_id}"

    def history(self, run_id: str) -> str:
        return f"{self.prefix}:hist:{run_id}"

    def lock(self, scope: str) -> str:
        return f"{self.prefix}:lock:{scope}"


@dataclass
class RunRecord:
    id: str
    owner: int
    class_id: int | None
    namespace: str
    target: str
    streams: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    state: str = RUNNING
    version: int = 1
    created: float = field(default_factory=time.time)
    stopped: float | None = None

    @property
    def total_rate(self) -> float:
        return sum(float(s["rate"]) for s in self.streams)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord:
        return cls(**json.loads(raw))

    def public(self) -> dict[str, Any]:
        """What the owner sees about the run."""
        return {
            "id": self.id,
            "namespace": self.namespace,
            "target": self.target,
            "streams": self.streams,
            "state": self.state,
            "created": self.created,
            "stopped": self.stopped,
            "total_rate": self.total_rate,
        }


# Append one window message to the history, numbered, but only while the caller holds the run's lease
# (a worker that lost its lease must not publish). ARGV[2] is the message JSON without its sequence
# number; it is spliced in as the first member. Returns the message, or false without the lease.
APPEND_WINDOW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local seq = redis.call('INCR', KEYS[2])
local text = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], seq .. '-0', 'w', text)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return {seq, text}
"""

# Extend a lease held by ARGV[1] to ARGV[2] ms; 0 if someone else holds it (or nobody).
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Give up a lease only if ARGV[1] still holds it.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
