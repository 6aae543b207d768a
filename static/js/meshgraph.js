/* The live mesh graph panel (issue 6): a Kiali-style workload graph of one namespace, updated in place.
 *
 * Why Cytoscape.js (vendored, static/vendor/cytoscape) with dagre (static/vendor/dagre) and not plotly:
 * - Bundle size: cytoscape.min.js is 443 kB (138 kB gzip) and dagre 49 kB (17 kB gzip); plotly's Python
 *   package ships only the full plotly.min.js, 4.8 MB (1.47 MB gzip), and even its basic bundle is 394 kB
 *   gzip without any graph features (research/realtime.md §3.2–3.4).
 * - A graph library: directed edges with arrowheads, edge labels, shapes per node type, styles selected on
 *   element data, hit-testing for clicks, pan/zoom/drag and PNG export are built in. Plotly has no arrows
 *   (one annotation per edge, re-laid-out on every update) and no edge hover.
 * - Layered layout: dagre computes Kiali's default left-to-right layered layout; plotly has no layout at all.
 * - Stable positions: Cytoscape updates element data in place (`cy.batch`) without running a layout, so only
 *   new nodes get a position (meshgraph-layout.js) and nothing else moves; Kiali's users complain of
 *   jumping layouts (research/kiali.md §5.3). Positions also survive a reload (localStorage, per namespace).
 * Kiali itself drew this graph with Cytoscape.js for six years.
 *
 * Data: GET data-json-url once for a fast first draw, then the graphs pushed on the data-ws-path websocket
 * (static/js/live.js reconnects and shows the state). Each graph is Kiali-shaped: {timestamp, duration,
 * graphType, source, status: {ok, message}, elements: {nodes, edges}}; element ids are stable across updates.
 * A graph older than the one drawn is ignored (the first fetch can race the socket). When the metrics source
 * fails, the panel says so and keeps the last graph, dimmed; an empty graph says that there is no traffic.
 *
 * Markup: templates/meshgraph/panel.html (elements found by data-role). The root's data-state is waiting |
 * ok | empty | error, data-kept is "true" while a failed update leaves the last graph on screen, and
 * data-updates counts the graphs received. Instances: MeshConsole.meshGraphs (by namespace).
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const { nodeData, edgeData, palette, stylesheet } = NS.meshElements;
  const HISTORY = 60; // updates kept per element for the side panel: 2 minutes at the 2 s push interval
  const REMEMBERED = 400; // positions kept per namespace, including nodes that have left the graph for now
  const STALE_MS = 15000;
  const EXPORT_SCALE = 2;
  const EXPORT_MARGIN = 24; // model pixels around the picture, for badges above the topmost nodes
  const SOURCES = { prometheus: "Prometheus", embedded: "embedded metrics" };

  class MeshGraph {
    constructor(root) {
      this.root = root;
      this.namespace = root.dataset.namespace;
      this.parts = {};
      for (const el of root.querySelectorAll("[data-role]")) this.parts[el.dataset.role] = el;
      this.palette = palette(root);
      this.cy = cytoscape({
        container: this.parts.canvas,
        style: stylesheet(this.palette),
        layout: { name: "preset" },
        minZoom: 0.2,
        maxZoom: 3,
        boxSelectionEnabled: false,
      });
      this.overlay = new NS.MeshOverlay(this.cy, this.parts.overlay, this.palette);
      // The page's layout can resize the panel (window, step grid); Cytoscape only watches the window.
      new ResizeObserver(() => this.cy.resize()).observe(this.parts.canvas);
      this.details = new NS.MeshDetails(this.parts.details, { onClose: () => this.closeDetails() });
      this.history = new Map();
      this.graph = null; // the last graph received
      this.drawn = null; // the last graph drawn (a failed answer is received but not drawn)
      this.receivedAt = 0;
      this.updates = 0;
      this.viewMovedByUser = false;
      this.storageKey = `meshconsole.meshgraph.positions.${this.namespace}`;
      this.remembered = this.loadPositions(); // id -> position of settled nodes, including gone ones
      this.settled = new Set(); // ids on screen whose position is final
      this.bindEvents();
    }

    start() {
      this.fetchFirst();
      new NS.LiveSocket(this.root.dataset.wsPath, {
        onMessage: (message) => this.receive(message),
        indicator: this.parts.connection,
      }).start();
      setInterval(() => this.showSource(), 5000);
      return this;
    }

    async fetchFirst() {
      try {
        const response = await fetch(this.root.dataset.jsonUrl, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.ok && (response.headers.get("Content-Type") || "").includes("json")) {
          this.receive(await response.json());
        }
      } catch {
        // the websocket delivers the graph anyway
      }
    }

    /* A pushed message is the graph itself, or an envelope holding it under `graph`. */
    receive(message) {
      const graph = message && message.elements ? message : message && message.graph;
      if (graph && graph.elements) this.update(graph);
    }

    update(graph) {
      if (this.graph && Number(graph.timestamp) < Number(this.graph.timestamp)) return;
      this.graph = graph;
      this.receivedAt = Date.now();
      const nodes = (graph.elements.nodes || []).map((n) => n.data).filter((d) => d && d.id);
      const nodeIds = new Set(nodes.map((d) => d.id));
      const edges = (graph.elements.edges || [])
        .map((e) => e.data)
        .filter((d) => d && d.id && nodeIds.has(d.source) && nodeIds.has(d.target));
      // A failed answer with nothing in it keeps the last graph on screen, dimmed.
      const kept = graph.status && graph.status.ok === false && !nodes.length;
      if (!kept) {
        this.drawn = graph;
        this.draw(nodes, edges);
      }
      this.root.dataset.kept = String(kept && this.cy.nodes().nonempty());
      this.updates += 1;
      this.root.dataset.updates = String(this.updates);
      this.showStatus(nodes.length, edges.length);
      this.showSource();
      this.details.refresh(this.cy, (id) => this.history.get(id) || [], this.graph);
    }

    /* Settled nodes never move. A node is settled once it has been drawn with traffic (or dragged): a
     * node seen only idle (the metrics source warming up, a workload nobody calls yet) is laid out again
     * when its first edge arrives, so the first seconds of a namespace do not freeze a one-column layout. */
    draw(nodes, edges) {
      const cy = this.cy;
      const nodeIds = nodes.map((d) => d.id);
      const linked = new Set(edges.flatMap((d) => [d.source, d.target]));
      const fixed = new Map();
      const preferred = new Map();
      for (const id of nodeIds) {
        const ele = cy.getElementById(id);
        if (ele.nonempty() && this.settled.has(id)) fixed.set(id, { ...ele.position() });
        else if (ele.nonempty() && !linked.has(id)) preferred.set(id, { ...ele.position() });
        else if (ele.empty() && this.remembered.has(id)) preferred.set(id, this.remembered.get(id));
      }
      const placed = NS.meshLayout.placeNew(nodeIds, edges, fixed, preferred);
      const onScreen = new Set(cy.nodes().map((n) => n.id()));
      const keep = new Set([...nodeIds, ...edges.map((d) => d.id)]);
      const gone = cy.elements().filter((ele) => !keep.has(ele.id()));
      gone.nodes().forEach((n) => this.settled.delete(n.id())); // its remembered spot stays, for its return
      cy.batch(() => {
        gone.remove();
        for (const raw of nodes) {
          const ele = cy.getElementById(raw.id);
          if (ele.empty()) cy.add({ group: "nodes", data: nodeData(raw), position: placed.get(raw.id) });
          else {
            ele.data(nodeData(raw));
            if (placed.has(raw.id)) ele.position(placed.get(raw.id));
          }
        }
        for (const raw of edges) {
          const ele = cy.getElementById(raw.id);
          if (ele.nonempty()) ele.data(edgeData(raw));
          else cy.add({ group: "edges", data: edgeData(raw) });
        }
      });
      for (const id of linked) this.settled.add(id);
      this.record();
      this.savePositions();
      const added = cy.collection(nodeIds.filter((id) => !onScreen.has(id)).map((id) => cy.getElementById(id)));
      if (!onScreen.size || (added.nonempty() && !this.viewMovedByUser && !this.inView(added))) this.fit();
    }

    /* One history point per element and graph: rps in/out for nodes, rps (or B/s) and error % for edges. */
    record() {
      const t = Number(this.graph.timestamp) || Date.now() / 1000;
      const add = (id, point) => {
        const series = this.history.get(id) || [];
        if (series.length && series[series.length - 1].t === t) series.pop();
        series.push({ t, ...point });
        if (series.length > HISTORY) series.shift();
        this.history.set(id, series);
      };
      this.cy.edges().forEach((e) => {
        add(e.id(), { a: e.data("protocol") === "tcp" ? e.data("bytes") : e.data("rps"), b: e.data("errorPercent") });
      });
      this.cy.nodes().forEach((n) => {
        const total = (edges) => edges.reduce((acc, e) => acc + e.data("rps"), 0);
        add(n.id(), { a: total(n.incomers("edge")), b: total(n.outgoers("edge")) });
      });
      for (const id of this.history.keys()) if (this.cy.getElementById(id).empty()) this.history.delete(id);
    }

    showStatus(nodeCount, edgeCount) {
      const status = this.graph.status || {};
      const source = SOURCES[this.graph.source] || "the metrics source";
      let state;
      let text;
      if (status.ok === false) {
        state = "error";
        text = status.message || `No answer from ${source}: the graph cannot be updated.`;
        if (this.cy.nodes().nonempty()) text += " The graph shown is the last one received.";
      } else if (!nodeCount) {
        state = "empty";
        text =
          status.message ||
          `No traffic in ${this.namespace} over the last ${duration(this.graph.duration)}: the graph fills in ` +
            "as soon as requests flow (start the traffic generator or send some requests).";
      } else {
        state = "ok";
        const failing = this.cy.edges('[tone = "Failure"]').length;
        const degraded = this.cy.edges('[tone = "Degraded"]').length;
        text = `${nodeCount} node${nodeCount === 1 ? "" : "s"}, ${edgeCount} edge${edgeCount === 1 ? "" : "s"}`;
        if (failing) text += `, ${failing} failing`;
        if (degraded) text += `, ${degraded} degraded`;
        text += ".";
        if (status.message) text += ` ${status.message}`;
      }
      this.root.dataset.state = state;
      this.parts.status.dataset.state = state;
      this.parts.status.textContent = text;
      this.parts.canvas.setAttribute("aria-label", `Mesh graph of ${this.namespace}: ${text}`);
    }

    showSource() {
      if (!this.graph) return;
      const source = SOURCES[this.graph.source] || this.graph.source || "";
      const when = new Date(this.receivedAt).toLocaleTimeString();
      const stale = Date.now() - this.receivedAt > STALE_MS;
      this.parts.source.textContent = `${source} · last ${duration(this.graph.duration)} · updated ${when}`;
      this.parts.source.dataset.stale = String(stale);
      const location = this.graph.sourceLocation ? `${source}: ${this.graph.sourceLocation}` : source;
      this.parts.source.title = stale ? "No update for a while: is the console's graph poller running?" : location;
    }

    bindEvents() {
      const cy = this.cy;
      cy.on("tap", "node, edge", (event) => this.openDetails(event.target));
      cy.on("tap", (event) => {
        if (event.target === cy) this.closeDetails();
      });
      cy.on("dragfree", "node", (event) => {
        this.settled.add(event.target.id()); // placed by hand: it stays there
        this.savePositions();
      });
      cy.on("dragpan scrollzoom pinchzoom", () => {
        this.viewMovedByUser = true;
      });
      const actions = {
        fit: () => this.fit(),
        relayout: () => this.relayout(),
        png: () => this.exportPng(),
        json: () => this.exportJson(),
      };
      for (const button of this.root.querySelectorAll("[data-action]")) {
        button.addEventListener("click", () => actions[button.dataset.action]());
      }
    }

    openDetails(ele) {
      this.cy.elements().unselect();
      ele.select();
      this.details.show(ele, this.history.get(ele.id()) || [], this.graph);
    }

    closeDetails() {
      this.cy.elements().unselect();
      this.details.hide();
    }

    fit() {
      this.cy.fit(undefined, 30);
      if (this.cy.zoom() > 1.5) this.cy.zoom({ level: 1.5, renderedPosition: this.center() });
      this.viewMovedByUser = false;
    }

    center() {
      return { x: this.cy.width() / 2, y: this.cy.height() / 2 };
    }

    inView(nodes) {
      const view = this.cy.extent();
      const box = nodes.boundingBox();
      return box.x1 >= view.x1 && box.x2 <= view.x2 && box.y1 >= view.y1 && box.y2 <= view.y2;
    }

    /* The one action that moves existing nodes, on the user's request: a fresh layered layout. */
    relayout() {
      const cy = this.cy;
      const ids = cy.nodes().map((n) => n.id());
      const positions = NS.meshLayout.layered(
        ids,
        cy.edges().map((e) => ({ source: e.source().id(), target: e.target().id() })),
      );
      cy.batch(() => cy.nodes().forEach((n) => n.position(positions.get(n.id()))));
      cy.nodes().forEach((n) => this.settled.add(n.id()));
      this.remembered.clear();
      this.savePositions();
      this.fit();
    }

    loadPositions() {
      try {
        const saved = JSON.parse(localStorage.getItem(this.storageKey) || "{}");
        return new Map(Object.entries(saved).map(([id, [x, y]]) => [id, { x, y }]));
      } catch {
        return new Map(); // storage disabled or garbled: start from a fresh layout
      }
    }

    /* Remember (and store) where the settled nodes are; ids seen longest ago are dropped first. */
    savePositions() {
      this.cy.nodes().forEach((n) => {
        if (!this.settled.has(n.id())) return;
        this.remembered.delete(n.id());
        this.remembered.set(n.id(), { ...n.position() });
      });
      while (this.remembered.size > REMEMBERED) this.remembered.delete(this.remembered.keys().next().value);
      const saved = {};
      for (const [id, { x, y }] of this.remembered) saved[id] = [Math.round(x), Math.round(y)];
      try {
        localStorage.setItem(this.storageKey, JSON.stringify(saved));
      } catch {
        // storage full or disabled: positions then last as long as the page
      }
    }

    /* The graph as received, each node with its position (Cytoscape's element JSON: {data, position}). */
    exportJson() {
      if (!this.drawn) return;
      const nodes = (this.drawn.elements.nodes || []).map((n) => {
        const ele = this.cy.getElementById(n.data && n.data.id);
        return ele.nonempty() ? { ...n, position: { ...ele.position() } } : n;
      });
      const graph = { ...this.drawn, elements: { ...this.drawn.elements, nodes } };
      download(new Blob([JSON.stringify(graph, null, 2)], { type: "application/json" }), this.fileName("json"));
    }

    /* The whole graph at twice the screen's resolution, with the locks and badges of the overlay. */
    async exportPng() {
      const cy = this.cy;
      if (cy.nodes().empty()) return;
      const box = cy.elements().boundingBox();
      const image = new Image();
      const selected = cy.$(":selected").unselect(); // the picture shows the graph, not the click
      image.src = cy.png({ full: true, scale: EXPORT_SCALE, bg: this.palette.surface });
      selected.select();
      await image.decode();
      const k = image.width / Math.ceil(box.w); // model pixels to image pixels (scale × device pixel ratio)
      const margin = EXPORT_MARGIN * k;
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(image.width + 2 * margin);
      canvas.height = Math.round(image.height + 2 * margin);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = this.palette.surface;
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(image, margin, margin);
      ctx.setTransform(k, 0, 0, k, margin - box.x1 * k, margin - box.y1 * k);
      this.overlay.paint(ctx);
      canvas.toBlob((blob) => download(blob, this.fileName("png")), "image/png");
    }

    fileName(extension) {
      const stamp = new Date(Number(this.graph.timestamp) * 1000 || Date.now()).toISOString().replace(/[:.]/g, "-");
      return `meshgraph-${this.namespace}-${stamp}.${extension}`;
    }
  }

  function duration(seconds) {
    const s = Number(seconds);
    if (!Number.isFinite(s) || s <= 0) return "window";
    return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  }

  function download(blob, name) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  NS.MeshGraph = MeshGraph;
  NS.meshGraphs = NS.meshGraphs || new Map();
  for (const root of document.querySelectorAll("[data-meshgraph]")) {
    if (!NS.meshGraphs.has(root.dataset.namespace)) {
      NS.meshGraphs.set(root.dataset.namespace, new MeshGraph(root).start());
    }
  }
})();
