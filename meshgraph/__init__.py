"""The Kiali-style mesh graph: metrics sources, Kiali's graph pipeline, live pollers and their websocket."""
