"""The embedded sandbox cluster: a Kubernetes-API-compatible server that runs the lab on loopback."""
