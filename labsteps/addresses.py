"""Where the console reaches a student's app from outside the cluster, as the lab's `curl` does.

A `service/NAME` reference is the Service's load-balancer address (`status.loadBalancer.ingress[0]`);
a `gateway/NAME` reference is the Gateway's first status address. Port 80 (the listener or Service
port) is used when it answers there; otherwise the matching node port on the same address, which is
how the sandbox serves load balancers where low ports cannot be bound.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

from labsteps.cluster import Cluster

CONNECT_TIMEOUT = 0.5
_OPEN_FOR = 30.0  # seconds a successful connection check is trusted
_recently_open: dict[tuple[str, int], float] = {}


class AddressError(Exception):
    """The object has no reachable external address (yet)."""


def base_url(cluster: Cluster, namespace: str, via: str) -> str:
    """`http://address:port` for a `service/NAME` or `gateway/NAME` reference; AddressError if none."""
    kind, _, name = via.partition("/")
    if kind == "service":
        service = cluster.get("Service", namespace, name)
        if service is None:
            raise AddressError(f"Service {name} does not exist")
        address = _ingress_address(service)
        if not address:
            raise AddressError(f"Service {name} has no external address (type {service['spec'].get('type')})")
        port = _service_port(service, 80)
        return _reachable(address, port, name)
    if kind == "gateway":
        gateway = cluster.get("Gateway", namespace, name)
        if gateway is None:
            raise AddressError(f"Gateway {name} does not exist")
        addresses = (gateway.get("status") or {}).get("addresses") or []
        if not addresses:
            raise AddressError(f"Gateway {name} has no address yet")
        listeners = gateway["spec"].get("listeners") or []
        wanted = next((lst["port"] for lst in listeners if lst.get("protocol") == "HTTP"), 80)
        # Istio names the gateway's Service `<gateway>-<class>`; its node port is the fallback.
        service = cluster.get("Service", namespace, f"{name}-{gateway['spec'].get('gatewayClassName', 'istio')}")
        port = _service_port(service, wanted) if service else {"port": wanted}
        return _reachable(addresses[0]["value"], port, name)
    raise AddressError(f"cannot send requests via {via!r}")


def _ingress_address(service: Mapping[str, Any]) -> str:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return (ingress[0].get("ip") or ingress[0].get("hostname") or "") if ingress else ""


def _service_port(service: Mapping[str, Any], wanted: int) -> dict:
    ports = service["spec"].get("ports") or []
    return next((p for p in ports if p.get("port") == wanted), ports[0] if ports else {"port": wanted})


def _reachable(address: str, port: Mapping[str, Any], name: str) -> str:
    candidates = [port["port"]] + ([port["nodePort"]] if port.get("nodePort") else [])
    for number in candidates:
        if is_open(address, number):
            return f"http://{address}:{number}"
    tried = " or ".join(str(n) for n in candidates)
    raise AddressError(f"{name} does not answer at {address} on port {tried}")


def is_open(address: str, port: int) -> bool:
    """Whether a TCP connection to address:port succeeds (remembered briefly: checks call this often)."""
    key = (address, port)
    if time.monotonic() - _recently_open.get(key, -_OPEN_FOR) < _OPEN_FOR:
        return True
    try:
        with socket.create_connection(key, timeout=CONNECT_TIMEOUT):
            pass
    except OSError:
        _recently_open.pop(key, None)
        return False
    _recently_open[key] = time.monotonic()
    return True
