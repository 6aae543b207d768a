/* The mesh graph's side panel: what a clicked node or edge is, its numbers now, and a short rate history.
 *
 * Like Kiali's side panel (research/kiali.md §3) it shows health, rates, p95 and the mTLS share, and for an
 * edge the breakdown by response code and Envoy response flag; the history is the last updates the page
 * received (kept client-side by meshgraph.js), drawn as a small SVG chart. Everything is built with DOM
 * calls and textContent: names come from the cluster and are never parsed as HTML.
 *
 * Public interface: new MeshConsole.MeshDetails(aside, {onClose}); show(element, history, graph);
 * refresh(cy, historyOf, graph) re-renders the element shown, or closes when it is gone; hide(); shownId.
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const { format, BADGES } = NS.meshElements;
  const SVG = "http://www.w3.org/2000/svg";
  const KINDS = { workload: "Workload", service: "Service", gateway: "Ingress gateway", unknown: "Unknown source" };
  // Envoy response flags that the lab can produce (research/kiali.md §2.2: responses.code.flags).
  const FLAGS = {
    "-": "no flag",
    FI: "fault injected (abort)",
    DI: "delay injected",
    UH: "no healthy upstream",
    UF: "upstream connection failure",
    UC: "upstream connection closed",
    URX: "retry limit reached",
    NR: "no route",
    UO: "upstream overflow (circuit breaker)",
    DC: "downstream connection closed",
    RL: "rate limited",
  };
  const CHART_WIDTH = 240;
  const CHART_HEIGHT = 54;

  class MeshDetails {
    constructor(aside, { onClose }) {
      this.aside = aside;
      this.onClose = onClose;
      this.shownId = null;
    }

    show(ele, history, graph) {
      this.shownId = ele.id();
      const close = tag("button", "link-button mg-close", "Close");
      close.type = "button";
      close.setAttribute("aria-label", "Close the details");
      close.addEventListener("click", () => this.onClose());
      const body = ele.isNode() ? nodeBody(ele, history) : edgeBody(ele, history);
      const when = graph && graph.timestamp ? new Date(Number(graph.timestamp) * 1000).toLocaleTimeString() : "";
      const footer = tag("p", "muted small", when ? `Numbers as of ${when}.` : "");
      this.aside.replaceChildren(close, ...body, footer);
      this.aside.dataset.kind = ele.isNode() ? "node" : "edge";
      this.aside.dataset.id = ele.id();
      this.aside.hidden = false;
    }

    refresh(cy, historyOf, graph) {
      if (this.shownId === null) return;
      const ele = cy.getElementById(this.shownId);
      if (ele.empty()) this.onClose();
      else this.show(ele, historyOf(this.shownId), graph);
    }

    hide() {
      this.shownId = null;
      this.aside.hidden = true;
      this.aside.replaceChildren();
    }
  }

  function nodeBody(node, history) {
    const d = node.data();
    const raw = d.raw;
    const incoming = node.incomers("edge");
    const outgoing = node.outgoers("edge");
    const rpsIn = sum(incoming, "rps");
    const errorsIn = rpsIn ? incoming.reduce((acc, e) => acc + e.data("rps") * e.data("errorPercent"), 0) / rpsIn : 0;
    const rows = [
      ["Type", KINDS[d.kind]],
      ["Namespace", raw.namespace],
      ["App", raw.app],
      ["Version", raw.version],
      ["Service", d.kind === "service" ? "" : raw.service],
      ["Pods", pods(raw)],
      ["Requests in", incoming.length ? `${format.rate(rpsIn)} rps, ${format.percent(errorsIn)} errors` : ""],
      ["Requests out", outgoing.length ? `${format.rate(sum(outgoing, "rps"))} rps` : ""],
      ["Sidecar", raw.isOutOfMesh ? "missing (outside the mesh)" : ""],
    ];
    const parts = [heading(d.name, d.tone, raw.healthStatus), definitions(rows)];
    if (d.badges.length) {
      const list = tag("ul", "mg-badge-list");
      for (const badge of d.badges) {
        const item = tag("li", "", "");
        item.append(tag("span", `mg-chip ${NS.meshElements.badgeColour(badge)}`, badge), ` ${BADGES[badge]}`);
        list.append(item);
      }
      parts.push(list);
    }
    if (d.kind === "unknown") {
      parts.push(
        tag(
          "p",
          "muted small",
          "Requests from clients without a sidecar (outside the mesh, or plaintext ones) have no known source.",
        ),
      );
    }
    parts.push(
      chart("Requests per second", history, [
        { key: "a", name: "in", className: "mg-series-a" },
        { key: "b", name: "out", className: "mg-series-b" },
      ]),
    );
    return parts;
  }

  function edgeBody(edge, history) {
    const d = edge.data();
    const title = `${edge.source().data("name")} → ${edge.target().data("name")}`;
    const tcp = d.protocol === "tcp";
    const rates = (d.raw.traffic && d.raw.traffic.rates) || {};
    const shareOf = rates[`${d.protocol}PercentReq`];
    const share = shareOf === undefined ? 100 : NS.meshElements.number(shareOf);
    const rows = [
      ["Protocol", d.protocol.toUpperCase()],
      tcp ? ["Throughput", `${format.bytes(d.bytes)}/s`] : ["Requests", `${format.rate(d.rps)} rps`],
      ["Share of the source's requests", share < 100 ? format.percent(share) : ""],
      ["Errors", tcp ? "" : format.percent(d.errorPercent)],
      ["p95 response time", tcp ? "" : format.millis(d.p95)],
      ["mTLS", `${format.percent(d.mtls)} of requests`],
    ];
    const parts = [heading(title, d.tone, d.raw.healthStatus), definitions(rows)];
    const responses = (d.raw.traffic && d.raw.traffic.responses) || {};
    const codes = Object.keys(responses).sort();
    if (codes.length) {
      const table = tag("table", "mg-responses");
      const head = tag("tr", "", "");
      for (const name of ["Code", "Share", "Flags"]) head.append(tag("th", "", name));
      table.append(tag("caption", "", "Responses"), head);
      for (const code of codes) {
        const flags = responses[code].flags || {};
        const share = Object.values(flags).reduce((acc, v) => acc + NS.meshElements.number(v), 0);
        const row = tag("tr", code.startsWith("5") || code === "-" ? "mg-bad" : "", "");
        const flagCell = tag("td", "", "");
        for (const [flag, pct] of Object.entries(flags)) {
          const chip = tag("span", "mg-flag", `${flag} ${format.percent(NS.meshElements.number(pct))}`);
          chip.title = FLAGS[flag] || flag;
          flagCell.append(chip, " ");
        }
        row.append(tag("td", "", code), tag("td", "", format.percent(share)), flagCell);
        table.append(row);
      }
      parts.push(table);
    }
    parts.push(
      chart(tcp ? "Bytes per second" : "Requests per second and error %", history, [
        { key: "a", name: tcp ? "B/s" : "rps", className: "mg-series-a" },
        ...(tcp ? [] : [{ key: "b", name: "err %", className: "mg-series-err" }]),
      ]),
    );
    return parts;
  }

  /* "2 of 2 available" from the workload's status (meshgraph's cluster appender), if the console sent it. */
  function pods(raw) {
    const status = raw.workloadStatus;
    if (raw.isDead) return "none running";
    if (!status) return "";
    return `${status.availableReplicas} of ${status.desiredReplicas} available`;
  }

  function heading(title, tone, health) {
    const header = tag("header", "mg-details-head", "");
    header.append(tag("h3", "", title), tag("span", "mg-health", health || "No traffic"));
    header.lastChild.dataset.tone = tone;
    return header;
  }

  function definitions(rows) {
    const list = tag("dl", "mg-facts", "");
    for (const [term, value] of rows) {
      if (!value) continue;
      list.append(tag("dt", "", term), tag("dd", "", value));
    }
    return list;
  }

  /* A small line chart of the history: each series scaled to its own maximum, its last value in the key. */
  function chart(title, history, series) {
    const figure = tag("figure", "mg-chart", "");
    const updates = `${history.length} update${history.length === 1 ? "" : "s"}`;
    const caption = tag("figcaption", "small", `${title}, last ${updates}`);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`);
    svg.setAttribute("role", "img");
    const key = tag("p", "mg-chart-key small", "");
    for (const { key: field, name, className } of series) {
      const values = history.map((point) => point[field]);
      const top = Math.max(...values, 0) || 1;
      const step = history.length > 1 ? CHART_WIDTH / (history.length - 1) : 0;
      const y = (v) => CHART_HEIGHT - 2 - (v / top) * (CHART_HEIGHT - 4); // 2 px clear at top and bottom
      const points = values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", className);
      line.dataset.points = String(values.length);
      svg.append(line);
      const last = values.length ? values[values.length - 1] : 0;
      key.append(tag("span", className, `${name} ${name === "err %" ? format.percent(last) : format.rate(last)}`), " ");
    }
    svg.setAttribute("aria-label", key.textContent);
    figure.append(caption, svg, key);
    return figure;
  }

  function sum(edges, field) {
    return edges.reduce((acc, e) => acc + e.data(field), 0);
  }

  function tag(name, className, text) {
    const node = document.createElement(name);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  NS.MeshDetails = MeshDetails;
})();
