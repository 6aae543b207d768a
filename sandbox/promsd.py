"""A Prometheus `file_sd` target list of every mesh proxy's metrics endpoint, kept current.

Prometheus re-reads the file when it changes, so a stock Prometheus with a generated config scrapes
the sandbox's sidecars and gateways as it would scrape Istio's on a real cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sandbox import catalog
from sandbox.network import Network
from sandbox.store import Event, Store

PODS = catalog.get("", "pods")
METRICS_PORT = 15020  # Istio's merged metrics port on every proxy


def has_proxy(pod: dict) -> bool:
    return any(c.get("name") == "istio-proxy" for c in pod.get("spec", {}).get("containers") or [])


class PrometheusSD:
    def __init__(self, store: Store, network: Network, path: Path) -> None:
        self.store = store
        self.network = network
        self.path = path
        self._last = ""
        store.add_listener(self._on_event)

    def _on_event(self, ev: Event) -> None:
        if ev.rt is PODS:
            self.write()

    def targets(self) -> list[dict]:
        out = []
        for pod in sorted(self.store.list(PODS), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
            ip = pod.get("status", {}).get("podIP")
            if not ip or not has_proxy(pod) or pod.get("status", {}).get("phase") != "Running":
                continue
            host, port = self.network.real(ip, METRICS_PORT)
            meta = pod["metadata"]
            labels = {"namespace": meta["namespace"], "pod": meta["name"], "pod_ip": ip}
            for k, v in (meta.get("labels") or {}).items():
                if k in ("app", "version"):
                    labels[k] = v
            out.append({"targets": [f"{host}:{port}"], "labels": labels})
        return out

    def write(self) -> None:
        text = json.dumps(self.targets(), indent=1)
        if text == self._last:
            return
        self._last = text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)
