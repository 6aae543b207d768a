"""Which built-in workload runs for a container image.

The lab's own images (`localhost/splitdim`, `localhost/kvstore`, any tag), the project's images
(`meshconsole/<app>`) and the few third-party images the lab needs (`curlimages/curl`, Istio's
proxy and pilot) are known; anything else cannot be pulled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from sandbox.apps import curl, kvstore, splitdim


@dataclass(frozen=True)
class Workload:
    kind: str  # "server", "command", "gateway" or "idle"
    name: str = ""  # the built-in app's name (its key in APPS), which app hosts run it by
    factory: Callable[[Mapping[str, str]], web.Application] | None = None
    port: int = 0
    run: Callable[[list[str], Mapping[str, str]], Awaitable[tuple[int, str]]] | None = None


SPLITDIM = Workload("server", "splitdim", splitdim.create_app, 8080)
KVSTORE = Workload("server", "kvstore", kvstore.create_app, 8081)
CURL = Workload("command", run=curl.run)
IDLE = Workload("idle")
GATEWAY = Workload("gateway")

APPS = {"splitdim": SPLITDIM, "kvstore": KVSTORE, "curl": CURL}
APP_REGISTRIES = {"localhost", "meshconsole", "docker.io/meshconsole", "ghcr.io/meshconsole"}
ISTIO_REGISTRIES = {"istio", "docker.io/istio", "gcr.io/istio-release", "gcr.io/istio-testing"}


def split_image(image: str) -> tuple[str, str, str]:
    """`docker.io/istio/proxyv2:1.28` → ("docker.io/istio", "proxyv2", "1.28")."""
    ref = image.split("@", 1)[0]
    registry_path, _, last = ref.rpartition("/")
    name, _, tag = last.partition(":")
    return registry_path, name, tag or "latest"


def workload_for(image: str, pod: dict | None = None) -> Workload | None:
    registry, name, _ = split_image(image)
    if name in APPS and registry in APP_REGISTRIES:
        return APPS[name]
    if name == "curl" and registry in ("curlimages", "docker.io/curlimages"):
        return CURL
    if registry in ISTIO_REGISTRIES and name in ("proxyv2", "pilot"):
        labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
        if name == "proxyv2" and "gateway.networking.k8s.io/gateway-name" in labels:
            return GATEWAY
        return IDLE
    return None
