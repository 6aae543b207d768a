"""Service addresses that really listen: ClusterIPs, LoadBalancer IPs (as MetalLB would give) and node ports.

For each Service the proxy keeps one TCP forwarder per (address, port) it should listen on and
forwards each connection to a ready endpoint. A LoadBalancer Service gets its own loopback address
and listens there on its service ports when the process may bind them (ports below 1024 need root
or CAP_NET_BIND_SERVICE) and always on its node ports.
"""

from __future__ import annotations

import logging

from sandbox import catalog, dns
from sandbox.network import Network
from sandbox.proxies import TcpForwarder
from sandbox.registry import Registry
from sandbox.store import Store

log = logging.getLogger(__name__)

SERVICES = catalog.get("", "services")


class KubeProxy:
    def __init__(self, store: Store, registry: Registry, network: Network) -> None:
        self.store = store
        self.reg = registry
        self.network = network
        self._listeners: dict[tuple[str, str], dict[tuple[str, int], TcpForwarder]] = {}
        self.warnings: list[str] = []

    async def stop(self) -> None:
        for listeners in self._listeners.values():
            for fwd in listeners.values():
                await fwd.stop()
        self._listeners.clear()

    async def sync(self, ns: str, name: str) -> None:
        svc = self.store.get(SERVICES, ns, name)
        if svc is not None and svc["spec"].get("type") == "LoadBalancer":
            svc = self._assign_balancer_ip(svc)
        want = self._desired(svc) if svc is not None else {}
        have = self._listeners.setdefault((ns, name), {})
        for addr in [a for a in have if a not in want]:
            await have.pop(addr).stop()
            self.network.forget(*addr)
        for addr, service_port in want.items():
            if addr in have:
                continue
            try:
                sock = self.network.listen(*addr)
            except OSError as e:
                msg = f"service {ns}/{name}: cannot listen on {addr[0]}:{addr[1]} ({e.strerror}); use the node port"
                if msg not in self.warnings:
                    self.warnings.append(msg)
                    log.warning("%s", msg)
                continue
            fwd = TcpForwarder(self.network, self._picker(ns, name, service_port))
            await fwd.start(sock)
            have[addr] = fwd
        if not have:
            self._listeners.pop((ns, name), None)

    def _picker(self, ns: str, name: str, port: int):
        def pick() -> list[tuple[str, int]]:
            svc = self.store.get(SERVICES, ns, name)
            return dns.endpoint_addresses(self.store, ns, svc, port) if svc else []

        return pick

    def _assign_balancer_ip(self, svc: dict) -> dict:
        ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress")
        if ingress:
            return svc
        ip = self.network.take_balancer_ip()
        status = {**svc.get("status", {}), "loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
        return self.reg.write_status(SERVICES, svc["metadata"]["namespace"], svc["metadata"]["name"], status)

    def _desired(self, svc: dict) -> dict[tuple[str, int], int]:
        """(listen address, listen port) → the service port it serves."""
        spec = svc.get("spec", {})
        out: dict[tuple[str, int], int] = {}
        cluster_ip = spec.get("clusterIP")
        for p in spec.get("ports") or []:
            port = p.get("port")
            if cluster_ip and cluster_ip != "None":
                out[(cluster_ip, port)] = port
            if p.get("nodePort") and not self.network.single_address:
                out[(self.network.node_ip, p["nodePort"])] = port
        for ing in svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
            ip = ing.get("ip")
            if not ip:
                continue
            for p in spec.get("ports") or []:
                if not self.network.single_address:
                    out[(ip, p["port"])] = p["port"]
                if p.get("nodePort"):
                    out[(ip, p["nodePort"])] = p["port"]
        return out
