"""One namespace's graph pipeline as the settings configure it: metrics source, cluster reader, options."""

from __future__ import annotations

from classroom.cluster import ClusterError, api_client
from meshgraph.build import GraphOptions, graph_for
from meshgraph.cluster import ClusterReader, Reader, UnavailableCluster, scrape_targets
from meshgraph.conf import GraphSettings, graph_settings
from meshgraph.live import graph_text
from meshgraph.sources import EmbeddedSource, MetricsSource, PrometheusSource, Target, load_address_map


class NamespaceGraph:
    """Builds one namespace's graph on demand; in embedded mode it scrapes while open (a GraphSession)."""

    def __init__(self, namespace: str, conf: GraphSettings) -> None:
        self.namespace = namespace
        self.conf = conf
        self.options = GraphOptions(window_s=conf.window_s, inject_services=conf.service_nodes)
        self._api = None
        try:
            self._api = api_client()
            self.reader: Reader = ClusterReader(self._api, namespace, max_age=conf.config_s)
        except ClusterError as exc:
            self.reader = UnavailableCluster(namespace, str(exc))
        self.source: MetricsSource
        if conf.prometheus_url:
            self.source = PrometheusSource(conf.prometheus_url, scrape_interval=conf.prometheus_scrape_s)
        else:
            retention = max(60.0, 3.0 * conf.window_s)
            self.source = EmbeddedSource(
                self._targets, interval=conf.scrape_s, retention=retention, quiet_s=conf.window_s
            )

    async def _targets(self) -> list[Target]:
        snapshot = await self.reader.snapshot()
        if snapshot.error:
            raise RuntimeError(snapshot.error)
        address_map = load_address_map(self.conf.targets_file) if self.conf.targets_file else None
        return scrape_targets(snapshot, address_map)

    async def start(self) -> NamespaceGraph:
        """Start scraping (embedded source); a Prometheus source needs nothing."""
        if isinstance(self.source, EmbeddedSource):
            await self.source.__aenter__()
        return self

    async def build(self) -> str:
        return graph_text(await graph_for(self.namespace, self.source, self.reader, self.options))

    async def news(self) -> None:
        """Return when the metrics changed enough for a graph before the next period (embedded source only)."""
        await self.source.news()

    async def aclose(self) -> None:
        await self.source.aclose()
        if self._api is not None:
            self._api.close()


async def open_graph(namespace: str) -> NamespaceGraph:
    """A started pipeline for `namespace` (what the poller opens per watched namespace)."""
    return await NamespaceGraph(namespace, graph_settings()).start()
