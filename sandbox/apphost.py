"""App hosts: worker processes that run pods' server apps, so the data plane uses more than one core.

On a real node every container is its own process. The sandbox runs the built-in apps (SplitDim,
kvstore) as aiohttp applications; in one process they share its event loop with the API server, the
controllers and every mesh proxy, and the lab's request path spends about a third of its CPU in them.
With `--app-workers N` the kubelet hands each server container to one of N app-host processes
instead: the kubelet still binds the container's address (so addressing, single-address mode and
port conflicts stay its business), passes the listening socket over a Unix socket (SCM_RIGHTS)
with the app's name and environment, and waits for the host to say it serves before it reports the
container ready. Traffic then reaches the app as before, over loopback TCP from its sidecar or
clients, and the app reaches cluster names through its `HTTP_PROXY` (the sidecar or egress proxy in
the main process). Apps need nothing from the sandbox but their environment, so nothing else crosses.
The price is CPU: each request now wakes two processes, about a quarter more CPU per request in all
(benchmarks/mesh_cpu.py), against about 40% less on the proxies' event loop. Hence off by default.

Messages are JSON, one per SEQPACKET datagram: `{"op": "start", "seq", "id", "app", "env"}` with one
file descriptor, `{"op": "stop", "seq", "id"}`; the host handles them one at a time, in order, and
answers each `{"seq", "id", "ok", "error"?}`. A host exits when the kubelet closes its end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from sandbox import images

log = logging.getLogger(__name__)

MAX_MESSAGE = 256 * 1024
ROOT = Path(__file__).resolve().parent.parent


class AppHostError(Exception):
    """An app host could not start or stop an app (the message says why)."""


class AppHost:
    """The kubelet's handle on one app-host process."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)  # apps
        self._seq = itertools.count(1)  # requests: a stop may be on its way while its app's start is
        self._waiting: dict[int, asyncio.Future[dict]] = {}
        self._live: set[int] = set()  # apps placed here and not stopped (starting ones included)

    @property
    def apps(self) -> int:
        """How many apps this host serves or is starting (the kubelet places new ones on the least busy)."""
        return len(self._live)

    def start_process(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sandbox.apphost", str(theirs.fileno())],
                cwd=ROOT,
                pass_fds=[theirs.fileno()],
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable)

    def place(self) -> int:
        """Reserve an id for an app about to start here: whoever holds it can stop the app even while it starts."""
        app_id = next(self._ids)
        self._live.add(app_id)
        return app_id

    async def start_app(self, app_id: int, app: str, env: dict[str, str], sock: socket.socket) -> None:
        """Serve app `app` (an `images.APPS` name) with `env` on the listening `sock`."""
        try:
            await self._call({"op": "start", "id": app_id, "app": app, "env": env}, sock)
        except BaseException:
            self._live.discard(app_id)
            raise

    async def stop_app(self, app_id: int) -> None:
        """Stop serving; returns once the host has closed the app's listening socket. The host handles
        messages in order, so a stop sent while the app starts takes effect after the start."""
        try:
            await self._call({"op": "stop", "id": app_id})
        finally:
            self._live.discard(app_id)

    async def _call(self, message: dict, sock: socket.socket | None = None) -> dict:
        if self._sock is None or self.process is None or self.process.poll() is not None:
            raise AppHostError(f"app host {self.index} is not running")
        fut = asyncio.get_running_loop().create_future()
        seq = message["seq"] = next(self._seq)
        self._waiting[seq] = fut
        data = json.dumps(message).encode()
        try:
            if sock is not None:
                socket.send_fds(self._sock, [data], [sock.fileno()])
            else:
                self._sock.send(data)
        except OSError as e:
            self._waiting.pop(seq, None)
            raise AppHostError(f"app host {self.index}: {e}") from None
        reply = await fut
        if not reply.get("ok"):
            raise AppHostError(reply.get("error") or "failed")
        return reply

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the host is gone: nothing it was asked will be answered
            log.error("app host %d (pid %s) exited: the apps it served are gone", self.index, self.process.pid)
            self._close_channel()
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_result({"ok": False, "error": f"app host {self.index} exited"})
            self._waiting.clear()
            return
        reply = json.loads(data)
        fut = self._waiting.pop(reply.get("seq"), None)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def _close_channel(self) -> None:
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:
                pass
            self._sock.close()
            self._sock = None

    def stop_process(self, timeout: float = 10.0) -> None:
        """Close the channel (the host then stops its apps and exits) and wait for it."""
        self._close_channel()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# ---- the host process ----------------------------------------------------------------------------


async def serve(channel: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    runners: dict[int, web.AppRunner] = {}
    done = loop.create_future()
    channel.setblocking(False)

    async def handle(message: dict, fds: list[int]) -> dict:
        app_id = message.get("id")
        if message.get("op") == "start":
            sock = socket.socket(fileno=fds[0]) if fds else None
            try:
                workload = images.APPS.get(message.get("app", ""))
                if sock is None or workload is None or workload.factory is None:
                    raise ValueError(f"cannot run app {message.get('app')!r}")
                runner = web.AppRunner(workload.factory(message.get("env") or {}), access_log=None)
                await runner.setup()
                await web.SockSite(runner, sock).start()
            except Exception as e:  # a bad environment (KVSTORE_MODE=redis) fails the container, not the host
                if sock is not None:
                    sock.close()
                return {"id": app_id, "ok": False, "error": f"{type(e).__name__}: {e}"}
            runners[app_id] = runner
            return {"id": app_id, "ok": True}
        if message.get("op") == "stop":
            runner = runners.pop(app_id, None)
            if runner is not None:
                await runner.cleanup()
            return {"id": app_id, "ok": True}
        return {"id": app_id, "ok": False, "error": f"unknown op {message.get('op')!r}"}

    inbox: asyncio.Queue[tuple[dict, list[int]]] = asyncio.Queue()

    async def answer() -> None:
        # One message at a time, in order: a stop that follows a start finds the app started.
        while True:
            message, fds = await inbox.get()
            reply = {**await handle(message, fds), "seq": message.get("seq")}
            try:
                channel.send(json.dumps(reply).encode())
            except OSError:
                pass

    def readable() -> None:
        try:
            data, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE, 4)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            if not done.done():
                done.set_result(None)
            return
        inbox.put_nowait((json.loads(data), fds))

    worker = loop.create_task(answer())
    loop.add_reader(channel.fileno(), readable)
    await done
    loop.remove_reader(channel.fileno())
    worker.cancel()
    for runner in runners.values():
        await runner.cleanup()


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=os.environ.get("SANDBOX_LOG_LEVEL", "INFO"), format="%(asctime)s apphost %(levelname)s %(message)s"
    )
    channel = socket.socket(fileno=int(argv[0]))
    # Ctrl-C in a terminal reaches the whole process group: the kubelet stops this host by closing the channel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(channel))
    else:
        uvloop.run(serve(channel))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
