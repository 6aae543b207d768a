"""`python -m meshgraph.worker`: the graph pollers' process, started by `make run` beside the web server.

It polls every namespace someone watches (meshgraph.poller) and pushes its graph to the namespace's
websocket group every GRAPH_REFRESH_SECONDS. SIGTERM or Ctrl-C stops it cleanly; any number of
workers may run, Redis locks keep one poller per namespace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshconsole.settings")
    import django

    django.setup()
    asyncio.run(serve())


async def serve() -> None:
    from django.conf import settings
    from redis.asyncio import Redis

    from meshgraph.conf import graph_settings
    from meshgraph.live import publish_graph
    from meshgraph.memory import freeze_startup
    from meshgraph.pipeline import open_graph
    from meshgraph.poller import PollerManager

    log = logging.getLogger("meshgraph.worker")
    conf = graph_settings()
    where = f"Prometheus at {conf.prometheus_url}" if conf.prometheus_url else "the embedded source"
    redis = Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    manager = PollerManager(redis, open_graph, publish_graph, refresh_s=conf.refresh_s)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    freeze_startup()  # later full collections walk only what the pollers allocate
    log.info("graph worker ready: metrics from %s, refresh every %g s", where, conf.refresh_s)
    try:
        await manager.run()
    except asyncio.CancelledError:
        log.info("graph worker stopping")
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
