/* From the console's Kiali-shaped graph to Cytoscape elements: names, shapes, colours, labels, badges.
 *
 * Node data as sent (meshgraph/render.py): {id, nodeType: workload|service|unknown, label, namespace,
 * workload, app, version, service, badges: [GW, MS, VS, FI, RR, TS, RT, MI, CB, RO], healthStatus,
 * workloadStatus, and the flags isGateway, isOutOfMesh, hasVS, hasFaultInjection, ... when set}; edge data:
 * {id, source, target, traffic: {protocol, rates, responses}, responseTime, isMTLS (% of requests),
 * healthStatus}. A graph straight from Kiali has no `badges` (they are then read from the flags) and
 * sends rates as strings ("12.30"); both forms are read. Each element keeps the data as sent under `raw`
 * (side panel, JSON export) beside derived fields that the stylesheet selects on; every derived field is
 * always set, so one update fully replaces the last.
 *
 * Shapes follow Kiali's legend: workload ellipse, service rhombus; the ingress gateway is a hexagon and
 * the `unknown` source (clients outside the mesh) a dashed grey box. Colours come from the panel's CSS
 * (--mg-* properties), so the light and dark schemes are set in one place.
 *
 * Public interface (MeshConsole.meshElements): palette(element), stylesheet(palette), nodeData(raw),
 * edgeData(raw), format.{rate, percent, millis, bytes}, number(value), badgeColour(badge), BADGES.
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});

  const BADGES = {
    GW: "gateway: the mesh's entry point",
    MS: "missing sidecar: outside the mesh, no metrics of its own",
    VS: "a VirtualService routes its traffic",
    FI: "fault injection: a VirtualService injects delays or errors",
    RR: "request routing: a VirtualService picks the destination by request",
    TS: "traffic shifting: a VirtualService splits traffic by weight",
    RT: "request timeout set by a VirtualService",
    MI: "mirroring: a VirtualService copies traffic elsewhere",
    CB: "circuit breaker (DestinationRule)",
    RO: "root: a traffic source that nothing in the graph calls",
  };
  // Kiali's flag for each badge, for graphs that come without the `badges` list.
  const BADGE_FLAGS = { GW: "isGateway", MS: "isOutOfMesh", VS: "hasVS", FI: "hasFaultInjection" };
  const SHAPES = { workload: "ellipse", service: "diamond", gateway: "hexagon", unknown: "round-rectangle" };
  const TONES = { Healthy: "Healthy", Degraded: "Degraded", Failure: "Failure" }; // anything else: grey
  const PALETTE_FALLBACK = {
    healthy: "#15803d",
    degraded: "#d97706",
    failure: "#dc2626",
    idle: "#9ca3af",
    tcp: "#2563eb",
    surface: "#ffffff",
    text: "#1c2330",
    select: "#2563eb",
    lock: "#1c2330",
    "badge-gw": "#2563eb",
    "badge-vs": "#7c3aed",
    "badge-fi": "#be123c",
    "badge-ms": "#b45309",
    "badge-other": "#475569",
    "badge-text": "#ffffff",
  };
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

  function palette(element) {
    const style = getComputedStyle(element);
    const colours = {};
    for (const [name, fallback] of Object.entries(PALETTE_FALLBACK)) {
      colours[name] = style.getPropertyValue(`--mg-${name}`).trim() || fallback;
    }
    colours.font = FONT;
    return colours;
  }

  function number(value) {
    const parsed = typeof value === "number" ? value : parseFloat(value);
    return Number.isFinite(parsed) ? parsed : 0;
  }

  const format = {
    rate(rps) {
      if (rps === 0) return "0";
      if (rps < 0.01) return "<0.01";
      return rps.toFixed(rps < 10 ? 2 : rps < 100 ? 1 : 0);
    },
    percent(share) {
      if (share === 0) return "0%";
      if (share < 0.1) return "<0.1%";
      return `${share.toFixed(share < 10 ? 1 : 0)}%`;
    },
    millis(ms) {
      if (ms === null) return "–";
      if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
      return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
    },
    bytes(perSecond) {
      if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)} MB`;
      if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} kB`;
      return `${perSecond.toFixed(0)} B`;
    },
  };

  function kindOf(raw) {
    if (raw.isGateway) return "gateway";
    if (raw.nodeType === "service" || raw.nodeType === "unknown") return raw.nodeType;
    return "workload";
  }

  function nameOf(raw, kind) {
    if (kind === "unknown") return "unknown";
    if (kind === "service") return raw.service || raw.app || raw.id;
    return raw.workload || raw.app || raw.service || raw.id;
  }

  function nodeData(raw) {
    const kind = kindOf(raw);
    const name = raw.label || nameOf(raw, kind);
    const version = kind === "service" || kind === "unknown" ? "" : raw.version || "";
    const badges = Array.isArray(raw.badges)
      ? raw.badges.filter((badge) => badge in BADGES)
      : Object.keys(BADGE_FLAGS).filter((badge) => raw[BADGE_FLAGS[badge]]);
    return {
      id: raw.id,
      name,
      // Istio reports "unknown" (or "latest") when a workload has no version label: noise on the graph.
      label: version && !["unknown", "latest"].includes(version) ? `${name}\n${version}` : name,
      kind,
      shape: SHAPES[kind],
      tone: TONES[raw.healthStatus] || "idle",
      outOfMesh: Boolean(raw.isOutOfMesh) || kind === "unknown",
      badges,
      raw,
    };
  }

  function edgeData(raw) {
    const traffic = raw.traffic || {};
    const rates = traffic.rates || {};
    const protocol = String(traffic.protocol || "http").toLowerCase();
    const tcp = protocol === "tcp";
    const rps = number(protocol === "grpc" ? rates.grpc : rates.http);
    const errorPercent = number(protocol === "grpc" ? rates.grpcPercentErr : rates.httpPercentErr);
    const bytes = number(rates.tcp);
    const p95 = raw.responseTime === undefined || raw.responseTime === null ? null : number(raw.responseTime);
    const mtls = raw.isMTLS === true ? 100 : number(raw.isMTLS);
    const idle = tcp ? bytes === 0 : rps === 0;
    const label = tcp
      ? `${format.bytes(bytes)}/s`
      : `${format.rate(rps)} rps | ${format.percent(errorPercent)} | ${format.millis(p95)}`;
    let tone = TONES[raw.healthStatus] || "idle";
    if (tcp) tone = "tcp"; // TCP has no health (Kiali draws it blue)
    if (idle) tone = "idle";
    return {
      id: raw.id,
      source: raw.source,
      target: raw.target,
      protocol,
      rps,
      errorPercent,
      bytes,
      p95,
      mtls,
      label,
      tone,
      // Thicker lines for busier edges, on a log scale so 1 and 100 rps both read.
      width: Math.min(6, 1.5 + Math.log10(1 + (tcp ? bytes / 1000 : rps)) * 1.5),
      raw,
    };
  }

  function stylesheet(p) {
    const tones = { Healthy: p.healthy, Degraded: p.degraded, Failure: p.failure, idle: p.idle, tcp: p.tcp };
    const label = {
      "font-family": p.font,
      color: p.text,
      "text-background-color": p.surface,
      "text-background-opacity": 0.85,
      "text-background-shape": "round-rectangle",
      "min-zoomed-font-size": 5,
    };
    return [
      {
        selector: "node",
        style: {
          ...label,
          shape: "data(shape)",
          width: 42,
          height: 42,
          "background-color": p.surface,
          "border-width": 3,
          "border-color": p.idle,
          label: "data(label)",
          "text-valign": "bottom",
          "text-halign": "center",
          "text-margin-y": 5,
          "text-wrap": "wrap",
          "text-max-width": 150,
          "text-background-padding": 1,
          "font-size": 11,
          "line-height": 1.25,
        },
      },
      { selector: 'node[kind = "gateway"]', style: { width: 46, height: 40 } },
      { selector: "node[?outOfMesh]", style: { "border-style": "dashed" } },
      ...Object.entries(tones).map(([tone, colour]) => ({
        selector: `node[tone = "${tone}"]`,
        style: { "border-color": colour },
      })),
      {
        selector: "node:selected",
        style: { "underlay-color": p.select, "underlay-opacity": 0.25, "underlay-padding": 7 },
      },
      {
        selector: "edge",
        style: {
          ...label,
          "curve-style": "bezier",
          "target-arrow-shape": "triangle",
          "arrow-scale": 0.9,
          width: "data(width)",
          "line-color": p.idle,
          "target-arrow-color": p.idle,
          label: "data(label)",
          "font-size": 9,
          "text-margin-y": -11,
          "text-background-padding": 2,
        },
      },
      ...Object.entries(tones).map(([tone, colour]) => ({
        selector: `edge[tone = "${tone}"]`,
        style: { "line-color": colour, "target-arrow-color": colour },
      })),
      { selector: 'edge[tone = "idle"]', style: { "line-style": "dashed" } },
      {
        selector: "edge:selected",
        style: { "underlay-color": p.select, "underlay-opacity": 0.25, "underlay-padding": 5 },
      },
    ];
  }

  /* The palette entry (and CSS class suffix) of a badge: its own colour for the four the lab shows. */
  function badgeColour(badge) {
    return ["GW", "MS", "VS", "FI"].includes(badge) ? badge.toLowerCase() : "other";
  }

  NS.meshElements = { palette, stylesheet, nodeData, edgeData, format, number, badgeColour, BADGES };
})();
