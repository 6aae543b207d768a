"""The object store: every object of every type, one global resourceVersion, watch history, snapshots.

Everything runs on one asyncio event loop, so the store needs no locks. Objects handed out by `get`
and `list` are the stored dicts themselves: callers that change them must copy first (the API layer
copies on the way out; controllers build new dicts and write them back through `update`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sandbox import catalog
from sandbox.catalog import ResourceType

log = logging.getLogger(__name__)

HISTORY = 20000  # watch events kept for resourceVersion-based resumption


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    rt: ResourceType
    obj: dict
    old: dict | None = None


@dataclass(eq=False)
class Watcher:
    """A subscriber to the events of one resource type (optionally one namespace)."""

    rt: ResourceType
    namespace: str | None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


Key = tuple[str, str]  # (namespace or "", name)


class Store:
    def __init__(self, state_file: Path | None = None) -> None:
        self.rv = 0
        self._objects: dict[tuple[str, str], dict[Key, dict]] = {(rt.group, rt.plural): {} for rt in catalog.RESOURCES}
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._state_file = state_file
        self._save_handle: asyncio.TimerHandle | None = None

    # ---- reads ---------------------------------------------------------------------------------
    def _table(self, rt: ResourceType) -> dict[Key, dict]:
        return self._objects[(rt.group, rt.plural)]

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        return self._table(rt).get((namespace or "", name))

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[dict]:
        table = self._table(rt)
        if namespace is None:
            return list(table.values())
        return [o for (ns, _), o in table.items() if ns == namespace]

    def count(self, rt: ResourceType) -> int:
        return len(self._table(rt))

    def oldest_rv(self) -> int:
        return self._history[0].rv if self._history else self.rv

    def events_since(self, rv: int) -> Iterable[Event]:
        return (e for e in self._history if e.rv > rv)

    # ---- writes --------------------------------------------------------------------------------
    def _bump(self, obj: dict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def create(self, rt: ResourceType, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_iso())
        meta["generation"] = 1
        if not rt.namespaced:
            meta.pop("namespace", None)
        self._bump(obj)
        self._table(rt)[(meta.get("namespace", ""), meta["name"])] = obj
        self._emit(Event(self.rv, "ADDED", rt, obj))
        return obj

    def update(self, rt: ResourceType, obj: dict, keep_generation: bool = False) -> dict:
        """Replace the stored object; bumps `generation` when anything but metadata/status changed
        (unless a system component, like the scheduler binding a pod, asks to keep it)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        old = self._table(rt)[key]
        om = old["metadata"]
        for k in ("uid", "creationTimestamp"):
            meta[k] = om[k]
        gen = om.get("generation", 1)
        if not keep_generation and _spec_part(old) != _spec_part(obj):
            gen += 1
        meta["generation"] = gen
        self._bump(obj)
        self._table(rt)[key] = obj
        self._emit(Event(self.rv, "MODIFIED", rt, obj, old))
        return obj

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        obj = self._table(rt).pop((namespace or "", name), None)
        if obj is None:
            return None
        obj = copy.copy(obj)
        obj["metadata"] = dict(obj["metadata"])
        self._bump(obj)
        self._emit(Event(self.rv, "DELETED", rt, obj))
        return obj

    # ---- subscriptions -------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """In-process subscribers (controllers). Called synchronously for every event."""
        self._listeners.append(fn)

    def watch(self, rt: ResourceType, namespace: str | None) -> Watcher:
        w = Watcher(rt, namespace)
        self._watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def _emit(self, ev: Event) -> None:
        self._history.append(ev)
        ns = ev.obj["metadata"].get("namespace")
        for w in self._watchers:
            if w.rt is ev.rt and (w.namespace is None or w.namespace == ns):
                w.queue.put_nowait(ev)
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:  # a controller bug must never break the write that caused the event
                log.exception("listener failed on %s %s", ev.type, ev.rt.kind)
        self._schedule_save()

    # ---- persistence ---------------------------------------------------------------------------
    def _schedule_save(self) -> None:
        if self._state_file is None or self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._save_handle = loop.call_later(0.2, self.save)

    def save(self) -> None:
        self._save_handle = None
        if self._state_file is None:
            return
        data = {
            "resourceVersion": self.rv,
            "objects": {f"{g}/{p}": list(table.values()) for (g, p), table in self._objects.items() if table},
        }
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, self._state_file)

    def load(self) -> int:
        """Restore a snapshot without emitting events; returns how many objects were loaded."""
        if self._state_file is None or not self._state_file.exists():
            return 0
        data = json.loads(self._state_file.read_text())
        self.rv = int(data.get("resourceVersion", 0))
        n = 0
        for gp, items in data.get("objects", {}).items():
            group, _, plural = gp.partition("/")
            table = self._objects.get((group, plural))
            if table is None:
                continue
            for obj in items:
                meta = obj["metadata"]
                table[(meta.get("namespace", ""), meta["name"])] = obj
                n += 1
        return n

    def all_objects(self) -> Iterable[tuple[ResourceType, dict]]:
        for rt in catalog.RESOURCES:
            for obj in self._table(rt).values():
                yield rt, obj


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
