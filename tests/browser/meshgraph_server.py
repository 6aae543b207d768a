"""A loopback stand-in for the console's graph endpoints, to test the mesh graph panel in a browser alone.

It serves a page holding the real panel template (templates/meshgraph/panel.html, rendered by Django's
template engine), the repository's static files, GET /graph/<namespace>.json and the websocket
/ws/graph/<namespace>/, on which the test pushes graphs. It runs its own event loop in a thread, since
Playwright's sync API owns the test thread.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from django.template import Context, Engine, Library

REPO = Path(__file__).resolve().parents[2]
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mesh graph</title>
<link rel="stylesheet" href="/static/css/console.css"><link rel="stylesheet" href="/static/css/lab.css"></head>
<body><main class="page">{panel}</main></body></html>"""


def render_panel(namespace: str) -> str:
    """The panel template as the console renders it, with static URLs under /static/ (no Django settings needed)."""
    static = Library()
    static.simple_tag(lambda path: f"/static/{path}", name="static")
    engine = Engine(dirs=[str(REPO / "templates")])
    engine.template_libraries["static"] = static
    return engine.get_template("meshgraph/panel.html").render(Context({"namespace": namespace}))


class GraphServer:
    """The page, static files, the graph JSON (`json_graph`, 404 while None) and a websocket to push graphs on."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.json_graph: dict[str, Any] | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> GraphServer:
        self.thread.start()
        port = self._call(self._start())
        self.url = f"http://127.0.0.1:{port}/"
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def push(self, graph: dict[str, Any]) -> int:
        """Send `graph` to every connected page; the number of pages it went to."""
        return self._call(self._send(json.dumps(graph)))

    def drop_connections(self) -> None:
        """Close every websocket from the server side, as a restarting console would."""
        self._call(self._close_all())

    def open_sockets(self) -> int:
        return len(self.sockets)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get(f"/graph/{self.namespace}.json", self._graph_json)
        app.router.add_get(f"/ws/graph/{self.namespace}/", self._websocket)
        app.router.add_static("/static/", REPO / "static")
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        await web.SockSite(self.runner, listener).start()
        return listener.getsockname()[1]

    async def _stop(self) -> None:
        await self._close_all()
        await self.runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        html = PAGE.format(panel=render_panel(self.namespace))
        return web.Response(text=html, content_type="text/html")

    async def _graph_json(self, request: web.Request) -> web.Response:
        if self.json_graph is None:
            return web.json_response({"detail": "no graph yet"}, status=404)
        return web.json_response(self.json_graph)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        self.connections += 1
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(ws)
        return ws

    async def _send(self, text: str) -> int:
        sockets = list(self.sockets)
        for ws in sockets:
            await ws.send_str(text)
        return len(sockets)

    async def _close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
