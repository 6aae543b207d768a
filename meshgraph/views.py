"""GET /graph/<namespace>/: the graph on a page of its own (a projector view, say);
GET /graph/<namespace>.json: the namespace's current graph (what the page exports as JSON).

The graph the poller pushed last, if it is fresh; otherwise one built now. A graph built now from
the embedded source has nodes but no rates yet (that source needs a few seconds of scraping), and its
status says so. `?download` makes the browser save the file.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from meshgraph.access import may_view
from meshgraph.conf import graph_settings
from meshgraph.live import redis_client
from meshgraph.pipeline import NamespaceGraph
from meshgraph.poller import Latest


async def graph_json(request: HttpRequest, namespace: str) -> HttpResponse:
    user = await request.auser()
    if not await sync_to_async(may_view)(user, namespace):
        return JsonResponse({"error": f"You may not see the graph of namespace {namespace}."}, status=403)
    text = await Latest(redis_client()).get(namespace)
    if text is None:
        session = NamespaceGraph(namespace, graph_settings())
        try:
            text = await session.build()
        finally:
            await session.aclose()
    response = HttpResponse(text, content_type="application/json")
    response["Cache-Control"] = "no-store"
    if "download" in request.GET:
        response["Content-Disposition"] = f'attachment; filename="graph-{namespace}.json"'
    return response


def graph_page(request: HttpRequest, namespace: str) -> HttpResponse:
    if not may_view(request.user, namespace):
        raise PermissionDenied(f"You may not see the graph of namespace {namespace}.")
    return render(request, "meshgraph/page.html", {"namespace": namespace})
