"""Assembles the sandbox: store, network, API server, controllers, kubelet and kube-proxy.

`Sandbox.start()` brings everything up on one event loop and returns when the API is serving;
`Sandbox.kubeconfig()` is what clients need to reach it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import yaml
from aiohttp import web

from sandbox import catalog
from sandbox.api import Api
from sandbox.controllers import ISTIO_CONTROLLER, Controllers
from sandbox.kubelet import Kubelet
from sandbox.kubeproxy import KubeProxy
from sandbox.mesh.pki import MeshCA
from sandbox.network import Network
from sandbox.registry import Registry
from sandbox.store import Store

log = logging.getLogger(__name__)

NS = catalog.get("", "namespaces")
DEPLOY = catalog.get("apps", "deployments")
SERVICES = catalog.get("", "services")
SA = catalog.get("", "serviceaccounts")
GWC = catalog.get("gateway.networking.k8s.io", "gatewayclasses")
CLUSTER_NAME = "sandbox"

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "istio-system")


class Sandbox:
    def __init__(
        self,
        state_dir: Path | None = None,
        single_address: bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app_workers: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        if self.state_dir:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.network = Network(single_address, block=self._saved_block())
        self.store = Store(self.state_dir / "objects.json" if self.state_dir else None)
        self.registry = Registry(self.store, self.network)
        # Volumes outlive pods: in the state directory, or for the sandbox's lifetime in a temporary one.
        self._tmp = None if self.state_dir else tempfile.TemporaryDirectory(prefix="sandbox-volumes-")
        volumes = self.state_dir / "volumes" if self.state_dir else Path(self._tmp.name)
        self.ca = MeshCA(self.state_dir / "pki" if self.state_dir else None)
        self.kubelet = Kubelet(self.store, self.network, volumes, self.ca, app_workers)
        self.proxy = KubeProxy(self.store, self.registry, self.network)
        self.controllers = Controllers(self.store, self.registry, self.proxy.sync)
        self.api = Api(self.store, self.registry)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _saved_block(self) -> int | None:
        """A restarted sandbox keeps its addresses, so stored pod and Service IPs stay valid."""
        if self.state_dir and (self.state_dir / "network-block").exists():
            return int((self.state_dir / "network-block").read_text())
        return None

    async def start(self) -> None:
        if self.state_dir:
            (self.state_dir / "network-block").write_text(str(self.network.block))
        restored = self.store.load()
        if restored:
            self.registry.restore_allocations()
            log.info("restored %d objects from %s", restored, self.state_dir)
        self._bootstrap()
        await self.kubelet.start()
        await self.controllers.start()
        self._runner = web.AppRunner(self.api.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self.api.server_address = f"{self.host}:{self.port}"
        await self._wait_ready()

    async def _wait_ready(self, timeout: float = 60.0) -> None:
        """Ready means the control plane's own workloads run (istiod Ready, as on a real cluster)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self.controllers.settle()
            istiod = self.store.get(DEPLOY, "istio-system", "istiod")
            if istiod and istiod.get("status", {}).get("readyReplicas") == istiod["spec"].get("replicas", 1):
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the sandbox's control plane did not become ready")

    async def stop(self) -> None:
        self.api.stop_watches()
        if self._runner:
            await self._runner.cleanup()
        await self.controllers.stop()
        await self.proxy.stop()
        await self.kubelet.stop()
        self.store.save()
        if self._tmp is not None:
            self._tmp.cleanup()
        self.network.close()

    def kubeconfig(self) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox-admin", "user": {}}],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {"cluster": CLUSTER_NAME, "user": "sandbox-admin", "namespace": "default"},
                }
            ],
            "current-context": CLUSTER_NAME,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        tmp.replace(path)

    # ---- built-in objects --------------------------------------------------------------------
    def _ensure(self, rt, obj: dict) -> None:
        meta = obj["metadata"]
        if self.store.get(rt, meta.get("namespace"), meta["name"]) is None:
            self.registry.create(rt, obj)

    def _bootstrap(self) -> None:
        for name in BOOTSTRAP_NAMESPACES:
            self._ensure(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for name in BOOTSTRAP_NAMESPACES:
            self._ensure(
                SA, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
            )
        self._ensure(
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            },
        )
        labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": "default"}
        self._ensure(
            DEPLOY,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "istiod", "namespace": "istio-system", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
                    "template": {
                        "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                        "spec": {
                            "serviceAccountName": "istiod",
                            "containers": [
                                {
                                    "name": "discovery",
                                    "image": "docker.io/istio/pilot:1.28.0",
                                    "ports": [
                                        {"containerPort": 15010, "protocol": "TCP"},
                                        {"containerPort": 15014, "protocol": "TCP"},
                                    ],
                                }
                            ],
                        },
                    },
                },
            },
        )
        self._ensure(
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "istiod", "namespace": "istio-system", "labels": labels},
                "spec": {
                    "selector": {"app": "istiod", "istio": "pilot"},
                    "ports": [{"name": "grpc-xds", "port": 15010}, {"name": "http-monitoring", "port": 15014}],
                },
            },
        )
        self._ensure(
            GWC,
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": "istio"},
                "spec": {"controllerName": ISTIO_CONTROLLER, "description": "The default Istio GatewayClass"},
            },
        )

    # ---- Prometheus service discovery ------------------------------------------------------------
    def enable_prometheus_sd(self, path: Path) -> None:
        """Keep a Prometheus `file_sd` list of every proxy's metrics endpoint current at `path`."""
        from sandbox.promsd import PrometheusSD

        self.prometheus_sd = PrometheusSD(self.store, self.network, Path(path))
        self.prometheus_sd.write()
