"""The graph's settings: a Django setting of the same name wins, else the environment, else the default.

PROMETHEUS_URL              Prometheus' base URL; unset or empty means the embedded source
PROMETHEUS_SCRAPE_SECONDS   that Prometheus' scrape interval (1, as `make run` sets it up; Istio's
                            Prometheus addon scrapes every 15)
GRAPH_REFRESH_SECONDS       how often a watched namespace's graph is pushed (2); the embedded source
                            also pushes right after a scrape in which a rate starts
GRAPH_WINDOW_SECONDS        the rate window of edges, like Kiali's "duration" (10); at least two
                            scrape intervals, since a rate needs two samples
GRAPH_SCRAPE_SECONDS        the embedded source's scrape interval (1)
GRAPH_CONFIG_SECONDS        how long a read of the namespace's objects is reused (4)
GRAPH_SERVICE_NODES         service nodes between callers and workloads (true)
GRAPH_SCRAPE_TARGETS_FILE   a Prometheus file_sd list mapping pod IPs to reachable metrics
                            addresses (the sandbox's --prometheus-sd file, in single-address mode)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from meshconsole.config import env_bool


def _value(name: str, default: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value)


def _number(name: str, default: float, minimum: float) -> float:
    raw = _value(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class GraphSettings:
    prometheus_url: str
    prometheus_scrape_s: float
    refresh_s: float
    window_s: int
    scrape_s: float
    config_s: float
    service_nodes: bool
    targets_file: str

    @property
    def source(self) -> str:
        """What the page says feeds the graph."""
        return "prometheus" if self.prometheus_url else "embedded"


def graph_settings() -> GraphSettings:
    service_nodes = getattr(settings, "GRAPH_SERVICE_NODES", None)
    if service_nodes is None:
        service_nodes = env_bool("GRAPH_SERVICE_NODES", True)
    conf = GraphSettings(
        prometheus_url=_value("PROMETHEUS_URL", "").strip(),
        prometheus_scrape_s=_number("PROMETHEUS_SCRAPE_SECONDS", 1.0, 0.1),
        refresh_s=_number("GRAPH_REFRESH_SECONDS", 2.0, 0.2),
        window_s=int(_number("GRAPH_WINDOW_SECONDS", 10, 2)),
        scrape_s=_number("GRAPH_SCRAPE_SECONDS", 1.0, 0.1),
        config_s=_number("GRAPH_CONFIG_SECONDS", 4.0, 0.0),
        service_nodes=bool(service_nodes),
        targets_file=_value("GRAPH_SCRAPE_TARGETS_FILE", "").strip(),
    )
    scrape = conf.prometheus_scrape_s if conf.prometheus_url else conf.scrape_s
    if conf.window_s < 2 * scrape:
        raise ImproperlyConfigured(
            f"GRAPH_WINDOW_SECONDS={conf.window_s} is shorter than two scrape intervals ({scrape:g} s each), "
            "so every rate would be empty"
        )
    return conf
