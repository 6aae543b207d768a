"""The graph's settings: Django setting, else environment, else default; nonsense is refused."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from meshgraph.conf import graph_settings


def test_a_setting_wins_over_the_environment(settings, monkeypatch):
    monkeypatch.setenv("GRAPH_REFRESH_SECONDS", "5")
    monkeypatch.setenv("GRAPH_WINDOW_SECONDS", "30")
    settings.GRAPH_REFRESH_SECONDS = 0.5
    del settings.GRAPH_SCRAPE_TARGETS_FILE
    conf = graph_settings()
    assert (conf.refresh_s, conf.window_s, conf.source) == (0.5, 30, "embedded")
    settings.PROMETHEUS_URL = "http://prometheus:9090"
    assert graph_settings().source == "prometheus"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("GRAPH_REFRESH_SECONDS", "soon", "is not a number"),
        ("GRAPH_REFRESH_SECONDS", "0", "must be at least 0.2"),
        ("GRAPH_WINDOW_SECONDS", "1", "must be at least 2"),
    ],
)
def test_nonsense_is_refused(settings, name, value, problem):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=problem):
        graph_settings()


def test_the_window_must_hold_two_scrapes(settings):
    settings.PROMETHEUS_URL = "http://prometheus:9090"
    settings.PROMETHEUS_SCRAPE_SECONDS = 15  # Istio's Prometheus addon
    with pytest.raises(ImproperlyConfigured, match="shorter than two scrape intervals"):
        graph_settings()
    settings.GRAPH_WINDOW_SECONDS = 30
    assert graph_settings().window_s == 30
