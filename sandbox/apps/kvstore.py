"""The lab's versioned key-value store as an aiohttp app (HTTP API on port 8081 by default).

Every key holds a string value and a version. A write names the version it was based on, so
concurrent read-modify-write clients (SplitDim) detect lost updates and retry on 428. With
`KVSTORE_DATA_DIR` set, every applied write is appended to a JSON-lines log in that directory and
replayed on start, so the content survives restarts like the course's kvstore on its volume.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

LOG_NAME = "kvstore.log"
# Rewrite the log as a snapshot once it holds this many more lines than there are keys.
COMPACT_SLACK = 10_000

_dumps = functools.partial(json.dumps, separators=(",", ":"))


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    version: int

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "version": self.version}


class VersionConflict(Exception):
    """A write named a version other than the stored one."""


class Store:
    """The key-value map, plus its optional append-only log.

    All methods are synchronous and run on the event loop thread, so a transaction is checked and
    applied without any other request interleaving.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data: dict[str, Entry] = {}
        self._log_path = data_dir / LOG_NAME if data_dir is not None else None
        self._log_file: Any = None
        self._log_lines = 0
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._replay()
            self._compact()

    def get(self, key: str) -> Entry:
        return self._data.get(key) or Entry(key, "", 0)

    def entries(self) -> list[Entry]:
        return [self._data[key] for key in sorted(self._data)]

    def apply(self, writes: Iterable[Entry]) -> list[Entry]:
        """Apply writes in order, all or nothing; return the resulting entries.

        A new key is created at version 1 whatever version the write names; writing the stored value
        again changes nothing; any other write must name the stored version and bumps it by one.
        """
        staged: dict[str, Entry] = {}
        results: list[Entry] = []
        for write in writes:
            current = staged.get(write.key) or self._data.get(write.key)
            if current is None:
                result = Entry(write.key, write.value, 1)
            elif current.value == write.value:
                result = current
            elif current.version == write.version:
                result = Entry(write.key, write.value, current.version + 1)
            else:
                raise VersionConflict(f"key {write.key!r} is at version {current.version}, not {write.version}")
            if result is not current:
                staged[write.key] = result
            results.append(result)
        if staged:
            # Log before changing memory: if the disk write fails, the request fails and nothing changed.
            self._append({"set": [entry.as_json() for entry in staged.values()]})
            self._data.update(staged)
        return results

    def reset(self) -> None:
        self._data.clear()
        if self._log_path is not None:
            self._compact()

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _replay(self) -> None:
        assert self._log_path is not None
        if not self._log_path.exists():
            return
        with self._log_path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    for item in json.loads(line)["set"]:
                        entry = Entry(str(item["key"]), str(item["value"]), int(item["version"]))
                        self._data[entry.key] = entry
                except (ValueError, KeyError, TypeError):
                    # Typically the last line, cut short by a crash mid-write.
                    log.warning(
                        "kvstore: skipping unreadable log line %d of %s",
                        number,
                        self._log_path,
                    )

    def _compact(self) -> None:
        """Replace the log with a one-line snapshot of the current content (atomically)."""
        assert self._log_path is not None
        self.close()
        tmp = self._log_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            if self._data:
                out.write(_dumps({"set": [entry.as_json() for entry in self.entries()]}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._log_path)
        self._log_lines = 1 if self._data else 0
        self._log_file = self._log_path.open("a", encoding="utf-8")

    def _append(self, record: dict[str, Any]) -> None:
        if self._log_file is None:
            return
        self._log_file.write(_dumps(record) + "\n")
        self._log_file.flush()
        self._log_lines += 1
        if self._log_lines > len(self._data) + COMPACT_SLACK:
            self._compact()


STORE = web.AppKey("store", Store)


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


def _parse_entry(item: Any) -> Entry:
    """A write from a request body; `value` and `version` default to "" and 0 like the Go original."""
    if not isinstance(item, dict):
        raise TypeError("expected an object with key, value and version")
    key, value, version = item.get("key"), item.get("value", ""), item.get("version", 0)
    if not isinstance(key, str) or not key:
        raise TypeError("key must be a non-empty string")
    if not isinstance(value, str):
        raise TypeError("value must be a string")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError("version must be an integer")
    return Entry(key, value, version)


def _write(request: web.Request, writes: list[Entry]) -> list[Entry] | web.Response:
    try:
        return request.app[STORE].apply(writes)
    except VersionConflict as exc:
        return _error(428, str(exc))
    except OSError as exc:
        log.error("kvstore: cannot write the log: %s", exc)
        return _error(500, "cannot write the transaction log")


async def handle_get(request: web.Request) -> web.Response:
    key = request.query.get("id", "")
    if not key:
        return _error(400, "missing id")
    entry = request.app[STORE].get(key)
    return _json({"value": entry.value, "version": entry.version})


async def handle_put(request: web.Request) -> web.Response:
    try:
        write = _parse_entry(json.loads(await request.read()))
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    result = _write(request, [write])
    return result if isinstance(result, web.Response) else _json(result[0].as_json())


async def handle_list(request: web.Request) -> web.Response:
    return _json([entry.as_json() for entry in request.app[STORE].entries()])


async def handle_transaction(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
        if not isinstance(body, list):
            raise TypeError("expected a list of writes")
        writes = [_parse_entry(item) for item in body]
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    result = _write(request, writes)
    return result if isinstance(result, web.Response) else _json([entry.as_json() for entry in result])


async def handle_reset(request: web.Request) -> web.Response:
    try:
        request.app[STORE].reset()
    except OSError as exc:
        log.error("kvstore: cannot reset the log: %s", exc)
        return _error(500, "cannot reset the transaction log")
    return _json({})


def create_app(env: Mapping[str, str]) -> web.Application:
    """Build the kvstore app; `KVSTORE_DATA_DIR` (optional) is where the transaction log lives."""
    data_dir = env.get("KVSTORE_DATA_DIR")
    store = Store(Path(data_dir) if data_dir else None)
    app = web.Application(middlewares=[_json_errors])
    app[STORE] = store

    async def close_store(_app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    app.router.add_get("/api/get", handle_get, allow_head=False)
    app.router.add_post("/api/put", handle_put)
    app.router.add_get("/api/list", handle_list, allow_head=False)
    app.router.add_post("/api/transaction", handle_transaction)
    app.router.add_get("/api/reset", handle_reset, allow_head=False)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(os.environ)
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8081"))
    web.run_app(app, host=host, port=port, access_log=None)


if __name__ == "__main__":
    main()
