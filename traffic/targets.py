"""Which addresses belong to a namespace: the default check that a run's target is the student's own app.

A target is accepted when its host and port are those of a Service in the namespace, as seen through the
kubernetes client: a cluster IP and service port, a load-balancer address (the Istio gateway's
`<gateway>-istio` Service included) and port or node port, a node address and node port, or the
Service's cluster DNS name (`name.namespace`, `name.namespace.svc`, `name.namespace.svc.cluster.local`)
and port. Anything else, including a cluster that cannot be asked, is refused.

Only addresses the cluster assigns count. A Service's `externalIPs` are typed in by whoever writes the
Service and an ExternalName Service's name resolves to any host it likes, so neither would keep a
student's traffic inside the cluster. Where a Service forwards to (its endpoints) is left to the cluster
and its network policies, as for any other client of the Service.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from classroom.cluster import ClusterError, api_client


def namespace_endpoints(namespace: str) -> set[tuple[str, int]]:
    """Every (host, port) at which a Service of `namespace` answers."""
    endpoints: set[tuple[str, int]] = set()
    try:
        with api_client() as api:
            core = client.CoreV1Api(api)
            services = core.list_namespaced_service(namespace, _request_timeout=settings.KUBERNETES_TIMEOUT).items
            node_ports = [p.node_port for s in services for p in (s.spec.ports or []) if p.node_port]
            nodes = _nodes(core) if node_ports else []
    except (ApiException, Urllib3Error, OSError) as exc:
        raise ClusterError(f"cannot list the Services of {namespace}: {exc}") from exc
    for service in services:
        name = service.metadata.name
        spec = service.spec
        if spec.type == "ExternalName":
            continue
        hosts = {ip for ip in (spec.cluster_ips or [spec.cluster_ip]) if ip and ip != "None"}
        hosts |= {f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"}
        balancers = {
            ingress.ip or ingress.hostname
            for ingress in ((service.status.load_balancer.ingress if service.status.load_balancer else None) or [])
            if ingress.ip or ingress.hostname
        }
        for port in spec.ports or []:
            endpoints |= {(host.lower(), port.port) for host in hosts | balancers}
            if port.node_port:
                endpoints |= {(host.lower(), port.node_port) for host in balancers}
    node_addresses = {a.address.lower() for n in nodes for a in (n.status.addresses or []) if a.address}
    endpoints |= {(address, port) for address in node_addresses for port in node_ports}
    return endpoints


def _nodes(core: client.CoreV1Api) -> list[client.V1Node]:
    """The nodes, for node-port targets; a cluster may not serve them to us (RBAC, the sandbox)."""
    try:
        return core.list_node(_request_timeout=settings.KUBERNETES_TIMEOUT).items
    except ApiException as exc:
        if exc.status in (403, 404):
            return []
        raise


def belongs_to_namespace(namespace: str, target: str) -> bool:
    """The default target check for `traffic.control.start_run` (`target` is already normalised)."""
    parts = urlsplit(target)
    return (parts.hostname or "", parts.port or 0) in namespace_endpoints(namespace)
