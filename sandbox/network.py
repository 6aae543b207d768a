"""Loopback addressing: pod, Service and LoadBalancer addresses, and where they really listen.

On Linux the whole 127.0.0.0/8 block is routed to the loopback interface, so every pod gets its own
127.x.y.z address and its ports really listen there. Where only 127.0.0.1 can be bound (macOS
without aliases), the sandbox runs in single-address mode: addresses stay distinct in the API, and
each (address, port) pair is mapped to its own real port on 127.0.0.1. Everything that connects
inside the sandbox goes through `real()` so both modes behave the same.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
NODE_PORTS = range(30000, 32768)
KUBELET_PORT = 10250
# Each sandbox takes a block of four /16 networks (pods, Services, load balancers, and the pods'
# private addresses where apps listen behind their sidecar), chosen so that several sandboxes (a
# classroom server and a test run, say) can share one machine.
BLOCK_BASES = range(10, 250, 4)


def loopback_aliases_work() -> bool:
    """Whether addresses other than 127.0.0.1 can be bound on this machine."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.1.255.254", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Pool:
    """Hands out addresses of one network in order, skipping .0 and .255 host parts."""

    def __init__(self, net: ipaddress.IPv4Network) -> None:
        self._hosts = (str(ip) for ip in net.hosts() if ip.packed[3] not in (0, 255))
        self._free: list[str] = []
        self._used: set[str] = set()

    def take(self) -> str:
        while self._free:
            ip = self._free.pop()
            if ip not in self._used:
                self._used.add(ip)
                return ip
        for ip in self._hosts:
            if ip not in self._used:
                self._used.add(ip)
                return ip
        raise RuntimeError("address pool exhausted")

    def reserve(self, ip: str) -> None:
        self._used.add(ip)

    def release(self, ip: str) -> None:
        if ip in self._used and ip != LOCALHOST:
            self._used.discard(ip)
            self._free.append(ip)


class Network:
    def __init__(self, single_address: bool | None = None, block: int | None = None) -> None:
        self.single_address = (not loopback_aliases_work()) if single_address is None else single_address
        self._marker: socket.socket | None = None
        self.block = 1 if self.single_address else self._claim_block(block)
        b = self.block
        self.node_ip = LOCALHOST if self.single_address else f"127.{b}.0.1"
        self.pods = Pool(ipaddress.ip_network(f"127.{b}.0.0/16"))
        self.pods.reserve(f"127.{b}.0.1")
        self.services = Pool(ipaddress.ip_network(f"127.{b + 1}.0.0/16"))
        self.balancers = Pool(ipaddress.ip_network(f"127.{b + 2}.0.0/16"))
        self._node_ports: set[int] = set()
        self._next_node_port = NODE_PORTS.start
        self._mapped: dict[tuple[str, int], int] = {}

    def _claim_block(self, preferred: int | None) -> int:
        """Take the first free address block; the node's kubelet port marks a block as taken."""
        candidates = [preferred] if preferred else []
        candidates += [b for b in BLOCK_BASES if b != preferred]
        for b in candidates:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((f"127.{b}.0.1", KUBELET_PORT))
                sock.listen(1)
            except OSError:
                sock.close()
                continue
            self._marker = sock
            return b
        raise RuntimeError("every loopback address block is taken by another sandbox")

    def close(self) -> None:
        if self._marker is not None:
            self._marker.close()
            self._marker = None

    # ---- node ports ----------------------------------------------------------------------------
    def take_node_port(self) -> int:
        for _ in range(len(NODE_PORTS)):
            port = self._next_node_port
            self._next_node_port = port + 1 if port + 1 < NODE_PORTS.stop else NODE_PORTS.start
            if port not in self._node_ports and (not self.single_address or _free(LOCALHOST, port)):
                self._node_ports.add(port)
                return port
        raise RuntimeError("node ports exhausted")

    def reserve_node_port(self, port: int) -> None:
        self._node_ports.add(port)

    def release_node_port(self, port: int) -> None:
        self._node_ports.discard(port)

    # ---- sockets -------------------------------------------------------------------------------
    def inner(self, pod_ip: str) -> str:
        """The pod's private address (its `localhost`), where apps listen when a sidecar fronts them."""
        a, _, c, d = pod_ip.split(".")
        return f"{a}.{self.block + 3}.{c}.{d}"

    def take_balancer_ip(self) -> str:
        """A LoadBalancer address; in single-address mode every balancer is 127.0.0.1 (node ports only)."""
        return LOCALHOST if self.single_address else self.balancers.take()

    def listen(self, ip: str, port: int) -> socket.socket:
        """A listening socket for (ip, port); raises OSError when it cannot be bound.

        In single-address mode, 127.0.0.1 itself (node ports of load balancers) binds the real port.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if self.single_address and ip != LOCALHOST:
                sock.bind((LOCALHOST, 0))
                self._mapped[(ip, port)] = sock.getsockname()[1]
            else:
                sock.bind((ip, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def forget(self, ip: str, port: int) -> None:
        self._mapped.pop((ip, port), None)

    def real(self, ip: str, port: int) -> tuple[str, int]:
        """Where a connection to (ip, port) must really go."""
        if self.single_address:
            mapped = self._mapped.get((ip, port))
            if mapped is not None:
                return LOCALHOST, mapped
        return ip, port

    def external_port(self, ip: str, port: int) -> int:
        """The port a host client uses for (ip, port); differs only in single-address mode."""
        return self.real(ip, port)[1]


def _free(ip: str, port: int) -> bool:
    """Whether (ip, port) can be bound now (node ports on a shared 127.0.0.1)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()
