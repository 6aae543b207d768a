"""The sandbox's mesh data plane: sidecar and gateway proxies, routing, mTLS and Istio telemetry."""
