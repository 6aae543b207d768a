/* The live traffic panel (issue 5): one traffic run's windows as a plotly chart, with its controls.
 *
 * Contract (reused by the instructor's drill-down and projector views, issue 7):
 *
 *   const panel = MeshTraffic.mount(root, options);
 *
 * `root` holds the markup of templates/traffic/panel.html (parts found by data-role / data-action, so a
 * page may hold several panels). Options (the template embeds them as JSON in the root; mount() merges
 * its argument over those):
 *   runsUrl    GET: {"runs": [...]} of the viewer's runs; POST: start a run (the traffic REST API,
 *              traffic/views.py). Needed unless runId is given.
 *   wsPath     websocket path of a run, "{run}" standing for its id: "/ws/traffic/{run}/".
 *   targetUrl  GET: {target, via, streams} of the student's app (labsteps traffic_target); Start posts
 *              these to runsUrl. Without it there is no Start.
 *   controls   true: Start / Stop / per-stream rate controls (they act on the viewer's own runs only; the
 *              server refuses other users' runs). false: read-only (toggles and chart only).
 *   runId      watch this run and only this one (e.g. an instructor watching a student's run; the
 *              websocket checks that the viewer may). Without it the panel finds the viewer's running
 *              run through runsUrl, so it survives reloads.
 *   follow     true: when the viewer's lab starts a new run (an Apply replaces the generator), switch to
 *              it; the timeline keeps the earlier run's points.
 *   steps      {stepId: title}, for the markers' labels.
 *   plotlySrc  URL of plotly.js, loaded lazily after the page has loaded (the figures line works without).
 *   staleSeconds  no window for this long while a run is running: say the traffic worker may be down.
 *
 * Events in: `document` CustomEvents "meshconsole:event" whose detail is a console event as the lab
 * websocket sends it (static/js/lab.js re-dispatches every message; another page may do the same with its
 * own socket): {type: "attempt", attempt: {id, step, kind, status, created}} becomes a marker on the
 * timeline ("Apply: <step title>"), {type: "traffic.run", run: {...}} tells of started/stopped runs.
 * Methods: panel.watch(run | runId), panel.addMarker({id, time (ms), label, status}), panel.destroy().
 *
 * Plotly figure (the element with data-role="chart"; tests read its .data and .layout): steps of
 * requests/s per 1 s window, stacked areas by status class (2xx, 3xx, 4xx, 5xx, errors = connection errors and timeouts);
 * below them latency p50 / p95 / p99 (ms, percentiles of the merged histograms of the shown streams,
 * never averages of percentiles) and failed % (4xx + 5xx + errors, right axis). Windows are 1 s; a
 * missing sequence number leaves a gap, shaded and counted. Markers are layout shapes + annotations.
 *
 * Root data attributes, for pages and tests: data-state = idle | loading | running | stopped | stale |
 * error; data-run = the watched run id; data-windows = windows received; data-gaps = windows missing.
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const HISTORY_MS = 10 * 60 * 1000; // the server keeps 10 minutes; so does the chart
  const CLASSES = [
    { key: "2xx", label: "2xx", colour: "#16a34a" },
    { key: "3xx", label: "3xx", colour: "#2563eb" },
    { key: "4xx", label: "4xx", colour: "#d97706" },
    { key: "5xx", label: "5xx", colour: "#dc2626" },
    { key: "error", label: "errors", colour: "#7c3aed" },
  ];
  const PERCENTILES = [
    { p: 50, label: "p50", colour: "#0f766e", dash: "solid" },
    { p: 95, label: "p95", colour: "#b45309", dash: "solid" },
    { p: 99, label: "p99", colour: "#be123c", dash: "solid" },
  ];
  const KIND_LABELS = { apply: "Apply", check: "Check", reset: "Reset" };
  const MARKER_COLOURS = { passed: "#16a34a", failed: "#dc2626" };

  // --- Histograms as traffic/windows.py sends them: {n, sum, min, max, b: [key, count, ...]} ------------

  const SUB_BITS = 7;
  const SUB = 1 << SUB_BITS;
  const EXACT_BELOW = 2 * SUB;

  /* The highest value (µs) of bucket `key` (the inverse of windows.bucket_of). */
  function bucketHigh(key) {
    if (key < EXACT_BELOW) return key;
    const shift = (key >> SUB_BITS) - 1;
    const mantissa = (key & (SUB - 1)) + SUB;
    return (mantissa + 1) * 2 ** shift - 1;
  }

  /* Merge histograms; values at percentiles in ms, like Histogram.values_at (within min and max). */
  function percentiles(hists, wanted) {
    const counts = new Map();
    let n = 0;
    let min = Infinity;
    let max = 0;
    for (const h of hists) {
      if (!h || !h.n) continue;
      n += h.n;
      min = Math.min(min, h.min);
      max = Math.max(max, h.max);
      const flat = h.b || [];
      for (let i = 0; i + 1 < flat.length; i += 2) counts.set(flat[i], (counts.get(flat[i]) || 0) + flat[i + 1]);
    }
    if (!n) return wanted.map(() => null);
    const keys = [...counts.keys()].sort((a, b) => a - b);
    const ranks = wanted.map((p) => Math.max(1, Math.ceil((p / 100) * n)));
    const out = [];
    let seen = 0;
    for (const key of keys) {
      seen += counts.get(key);
      while (out.length < ranks.length && seen >= ranks[out.length]) {
        out.push(Math.max(min, Math.min(bucketHigh(key), max)) / 1000);
      }
      if (out.length === ranks.length) break;
    }
    while (out.length < ranks.length) out.push(max / 1000);
    return out;
  }

  function statusClass(code) {
    return /^[1-5][0-9][0-9]$/.test(code) ? `${code[0]}xx` : "error";
  }

  // --- Small helpers --------------------------------------------------------------------------------

  const requestJson = (...args) => window.MeshConsole.requestJson(...args); // static/js/request.js

  function describe({ status, data }) {
    if (data && data.error) return data.error;
    if (status === 0) return "The console could not be reached. Check your connection and try again.";
    if (status === 403) return "Not allowed: your session may have expired. Log in again, then retry.";
    if (status === 503) return "The traffic service cannot be reached right now; try again in a moment.";
    return `The traffic service could not do this (HTTP ${status}). Try again; if it keeps happening, tell your instructor.`;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value, digits = 1) {
    return value === null || value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits);
  }

  // --- plotly.js, loaded once per page, after the page itself has loaded -----------------------------

  let plotlyPromise = null;

  function loadPlotly(src) {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (plotlyPromise) return plotlyPromise;
    plotlyPromise = new Promise((resolve, reject) => {
      const inject = () => {
        const script = document.createElement("script");
        script.src = src;
        script.async = true;
        script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly")));
        script.onerror = () => reject(new Error(`could not load ${src}`));
        document.head.append(script);
      };
      const later = () => (window.requestIdleCallback ? requestIdleCallback(inject, { timeout: 500 }) : setTimeout(inject, 0));
      if (document.readyState === "complete") later();
      else window.addEventListener("load", later, { once: true });
    });
    return plotlyPromise;
  }

  // --- The panel ------------------------------------------------------------------------------------

  class TrafficPanel {
    constructor(root, options) {
      this.root = root;
      this.options = { wsPath: "/ws/traffic/{run}/", controls: false, follow: false, steps: {}, staleSeconds: 6, ...options };
      this.parts = {};
      for (const node of root.querySelectorAll("[data-role]")) this.parts[node.dataset.role] = node;
      this.run = null; // the watched run's record (as the API shows it) or {id}
      this.socket = null;
      this.lastSeq = 0;
      this.lastArrival = 0;
      this.points = []; // {t0, t1, streams} in time order, across the runs watched (one timeline)
      this.gaps = []; // {t0, t1, missing}
      this.gapCount = 0;
      this.windowCount = 0;
      this.markers = new Map(); // id -> {id, time, label, status}
      this.hidden = new Set(); // streams toggled off
      this.streamNames = [];
      this.plotly = null;
      this.frame = 0;
      this.busy = false;
      this.lastLookup = 0;
      this.onEvent = (event) => this.handleEvent(event.detail);
      document.addEventListener("meshconsole:event", this.onEvent);
      this.onVisible = () => !document.hidden && this.schedule();
      document.addEventListener("visibilitychange", this.onVisible);
      this.watchdog = setInterval(() => this.checkFresh(), 1000);

      root.querySelector("[data-action=start]")?.addEventListener("click", () => this.start());
      root.querySelector("[data-action=stop]")?.addEventListener("click", () => this.stop());
      if (!this.options.controls) for (const node of root.querySelectorAll("[data-controls]")) node.hidden = true;
      if (!this.options.targetUrl) root.querySelector("[data-action=start]")?.setAttribute("hidden", "");

      if (this.options.plotlySrc) {
        loadPlotly(this.options.plotlySrc).then(
          (Plotly) => {
            this.plotly = Plotly;
            this.schedule();
          },
          () => this.setChartNote("The chart library could not be loaded; the figures above still update."),
        );
      }
      this.updateButtons();
      if (this.options.runId) this.watch({ id: this.options.runId });
      else this.findRun();
    }

    destroy() {
      document.removeEventListener("meshconsole:event", this.onEvent);
      document.removeEventListener("visibilitychange", this.onVisible);
      clearInterval(this.watchdog);
      this.socket?.stop();
      if (this.plotly) this.plotly.purge(this.parts.chart);
    }

    // --- state shown ---------------------------------------------------------------------------------

    setState(state, message) {
      this.root.dataset.state = state;
      if (message !== undefined) this.parts.status.textContent = message;
      this.updateButtons();
    }

    showError(message) {
      const box = this.parts.error;
      if (!box) return;
      box.hidden = !message;
      box.textContent = message || "";
    }

    setChartNote(text) {
      if (this.parts.note) {
        this.parts.note.hidden = !text;
        this.parts.note.textContent = text || "";
      }
    }

    running() {
      return Boolean(this.run && this.run.state === "running");
    }

    updateButtons() {
      const start = this.root.querySelector("[data-action=start]");
      const stop = this.root.querySelector("[data-action=stop]");
      if (start) start.disabled = this.busy || this.running();
      if (stop) stop.disabled = this.busy || !this.running();
    }

    // --- finding and watching a run ------------------------------------------------------------------

    /* Ask the traffic API for the viewer's runs: at start (a reload finds its run), when the lab's socket
     * (re)connects and while the watched run is silent, in case a lab event was missed. */
    async findRun() {
      if (!this.options.runsUrl || this.options.runId) return;
      this.lastLookup = Date.now();
      if (!this.run) this.setState("loading", "Looking for your traffic…");
      const result = await requestJson(this.options.runsUrl);
      if (result.status !== 200 || !result.data) {
        if (!this.run) this.setState("error", `No traffic data: ${describe(result)}`);
        return;
      }
      const runs = result.data.runs || [];
      const mine = this.run && runs.find((r) => r.id === this.run.id);
      if (mine) this.updateRun(mine);
      const live = runs.find((r) => r.state === "running");
      if (live && (!this.run || (live.id !== this.run.id && (this.options.follow || !this.running())))) {
        this.watch(live);
      } else if (!this.run) {
        this.setState(
          "idle",
          this.options.controls && this.options.targetUrl
            ? "No traffic is running. Start sends the lab's requests to your app and draws what comes back."
            : "No traffic is running.",
        );
      }
    }

    /* Watch `run` (a record or {id}): its history first, then live windows. */
    watch(run) {
      const id = typeof run === "string" ? run : run.id;
      if (this.run && this.run.id === id) {
        if (typeof run === "object" && run.state) this.updateRun(run);
        return;
      }
      this.socket?.stop();
      this.run = typeof run === "object" ? { ...run } : { id };
      this.root.dataset.run = id;
      this.lastSeq = 0;
      this.lastArrival = Date.now();
      this.updateRun(this.run);
      this.setState(this.run.state === "stopped" ? "stopped" : "loading", "Connecting to the traffic stream…");
      const path = () => this.options.wsPath.replace("{run}", encodeURIComponent(id)) + (this.lastSeq ? `?since=${this.lastSeq}` : "");
      const socket = new NS.LiveSocket(path(), {
        indicator: this.parts.connection,
        onMessage: (message) => {
          if (this.socket === socket) this.receive(message);
        },
        onClose: () => {
          // Reconnect asking only for what this page has not got; the server sends the rest first.
          const scheme = location.protocol === "https:" ? "wss:" : "ws:";
          socket.url = `${scheme}//${location.host}${path()}`;
        },
      });
      this.socket = socket;
      socket.start();
    }

    updateRun(record) {
      if (!this.run || record.id !== this.run.id) return;
      Object.assign(this.run, record);
      if (this.parts.run) {
        this.parts.run.textContent = record.target ? `to ${record.target}${record.state === "stopped" ? " (stopped)" : ""}` : "";
      }
      if (record.streams) this.renderStreams(record.streams);
      if (record.state === "stopped") this.setState("stopped", "Traffic stopped. Start sends the lab's requests again.");
      this.updateButtons();
    }

    receive(message) {
      if (message.type === "history") {
        if (message.state) this.run.state = message.state;
        for (const w of message.windows || []) this.addWindow(w);
        if (this.run.state === "stopped") this.setState("stopped", "Traffic stopped. The chart shows its last minutes.");
        else this.setState("running", "Live: one point per second.");
        this.lastArrival = Date.now();
        this.updateButtons();
      } else if (message.type === "window") {
        this.addWindow(message);
        this.lastArrival = Date.now();
        if (this.root.dataset.state !== "running" && this.run.state !== "stopped") this.setState("running", "Live: one point per second.");
      }
      this.schedule();
    }

    addWindow(w) {
      if (!w || w.run !== this.run.id || typeof w.seq !== "number") return;
      if (w.seq <= this.lastSeq) return; // already drawn (history and live overlap)
      if (this.lastSeq && w.seq > this.lastSeq + 1) {
        const missing = w.seq - this.lastSeq - 1;
        const previous = this.points[this.points.length - 1];
        this.gapCount += missing;
        this.gaps.push({ t0: previous ? previous.t1 : w.start, t1: w.start, missing });
      }
      this.lastSeq = w.seq;
      this.windowCount += 1;
      const point = { t0: w.start * 1000, t1: w.end * 1000, streams: w.streams || {} };
      // Windows arrive in order; a window of an earlier run may interleave only at a switch.
      let i = this.points.length;
      while (i > 0 && this.points[i - 1].t0 > point.t0) i -= 1;
      this.points.splice(i, 0, point);
      const horizon = this.points[this.points.length - 1].t1 - HISTORY_MS;
      while (this.points.length && this.points[0].t1 < horizon) this.points.shift();
      this.gaps = this.gaps.filter((g) => g.t1 * 1000 >= horizon);
      for (const name of Object.keys(point.streams)) {
        if (!this.streamNames.includes(name)) {
          this.streamNames.push(name);
          this.renderStreams(this.run.streams || []);
        }
      }
      this.root.dataset.windows = String(this.windowCount);
      this.root.dataset.gaps = String(this.gapCount);
    }

    checkFresh() {
      if (!this.running() || !this.socket || !this.socket.isOpen()) return;
      const quiet = (Date.now() - this.lastArrival) / 1000;
      if (quiet > this.options.staleSeconds) {
        this.setState(
          "stale",
          `No measurements for ${Math.round(quiet)} s although the run is on: the traffic worker may not be running ` +
            "(make run starts it) or cannot reach your app.",
        );
        if (Date.now() - this.lastLookup > 5000) this.findRun(); // stopped or replaced unbeknown to us?
      }
    }

    // --- lab events: markers, and following the lab's runs ---------------------------------------------

    handleEvent(message) {
      if (!message || typeof message !== "object") return;
      if (message.type === "attempt" && message.attempt) {
        const a = message.attempt;
        const time = Date.parse(a.created);
        if (Number.isNaN(time)) return;
        const title = this.options.steps[a.step] || a.step;
        this.addMarker({ id: `attempt-${a.id}`, time, label: `${KIND_LABELS[a.kind] || a.kind}: ${title}`, status: a.status });
      } else if (message.type === "hello" && this.run) {
        this.findRun(); // the lab's socket (re)connected: events may have been missed meanwhile
      } else if (message.type === "traffic.run" && message.run) {
        const run = message.run;
        if (this.run && run.id === this.run.id) this.updateRun(run);
        else if (this.options.follow && !this.options.runId && run.state === "running") this.watch(run);
      }
    }

    addMarker(marker) {
      this.markers.set(marker.id, { ...this.markers.get(marker.id), ...marker });
      this.schedule();
    }

    // --- controls --------------------------------------------------------------------------------------

    async act(work) {
      if (this.busy) return;
      this.busy = true;
      this.updateButtons();
      this.showError(null);
      try {
        await work();
      } finally {
        this.busy = false;
        this.updateButtons();
      }
    }

    start() {
      return this.act(async () => {
        const target = await requestJson(this.options.targetUrl);
        if (target.status !== 200 || !target.data) {
          this.showError(describe(target));
          return;
        }
        const { target: url, streams } = target.data;
        const started = await requestJson(this.options.runsUrl, { method: "POST", body: { target: url, streams } });
        if (started.status !== 201 || !started.data) {
          this.showError(describe(started));
          return;
        }
        this.watch(started.data.run);
      });
    }

    stop() {
      if (!this.run) return Promise.resolve();
      const id = this.run.id;
      return this.act(async () => {
        const result = await requestJson(`${this.options.runsUrl}${encodeURIComponent(id)}/stop/`, { method: "POST" });
        if (result.status !== 200 || !result.data) this.showError(describe(result));
        else this.updateRun(result.data.run);
      });
    }

    setRate(stream, raw) {
      const text = String(raw).trim();
      if (!/^\d+(\.\d+)?$/.test(text)) {
        this.showError(`The rate of ${stream} must be a number of requests per second, 0 or more (0 pauses it).`);
        return Promise.resolve();
      }
      const id = this.run.id;
      return this.act(async () => {
        const url = `${this.options.runsUrl}${encodeURIComponent(id)}/rate/`;
        const result = await requestJson(url, { method: "POST", body: { stream, rate: Number(text) } });
        if (result.status !== 200 || !result.data) this.showError(describe(result));
        else this.updateRun(result.data.run);
      });
    }

    renderStreams(streams) {
      const box = this.parts.streams;
      if (!box) return;
      const rates = new Map(streams.map((s) => [s.name, s.rate]));
      const names = [...new Set([...streams.map((s) => s.name), ...this.streamNames])];
      const list = el("ul", "traffic-stream-list");
      for (const name of names) {
        const item = el("li");
        item.dataset.stream = name;
        const toggle = el("label", "traffic-toggle");
        const box = el("input");
        box.type = "checkbox";
        box.checked = !this.hidden.has(name);
        box.addEventListener("change", () => {
          if (box.checked) this.hidden.delete(name);
          else this.hidden.add(name);
          this.schedule();
        });
        toggle.append(box, document.createTextNode(` ${name}`));
        item.append(toggle);
        if (this.options.controls && rates.has(name) && this.running()) {
          const form = el("form", "traffic-rate");
          const input = el("input");
          input.type = "text";
          input.inputMode = "decimal";
          input.size = 5;
          input.value = String(rates.get(name));
          input.setAttribute("aria-label", `Rate of ${name}, requests per second`);
          const set = el("button", "button ghost small", "Set");
          set.type = "submit";
          form.append(input, el("span", "muted small", " req/s "), set);
          form.addEventListener("submit", (event) => {
            event.preventDefault();
            this.setRate(name, input.value);
          });
          item.append(form);
        } else if (rates.has(name)) {
          item.append(el("span", "muted small", ` ${rates.get(name)} req/s`));
        }
        list.append(item);
      }
      box.replaceChildren(list);
      box.hidden = names.length === 0;
    }

    // --- drawing -------------------------------------------------------------------------------------

    schedule() {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }

    /* One window's figures over the shown streams (cached until the shown streams change). */
    derive(point) {
      const key = [...this.hidden].sort().join("\n");
      if (point.derived && point.derived.key === key) return point.derived;
      const seconds = Math.max((point.t1 - point.t0) / 1000, 0.001);
      const counts = Object.fromEntries(CLASSES.map((c) => [c.key, 0]));
      const hists = [];
      for (const [name, w] of Object.entries(point.streams)) {
        if (this.hidden.has(name)) continue;
        for (const [code, n] of Object.entries(w.codes || {})) counts[statusClass(code)] += n;
        hists.push(w.hist ? w.hist.latency : null);
      }
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      point.derived = {
        key,
        rates: Object.fromEntries(CLASSES.map((c) => [c.key, counts[c.key] / seconds])),
        lat: percentiles(hists, PERCENTILES.map((p) => p.p)),
        failed: total ? (100 * (counts["4xx"] + counts["5xx"] + counts.error)) / total : null,
      };
      return point.derived;
    }

    /* The figure's arrays. Rates are steps (a value holds from its window's start to its end, drawn as
     * stacked areas: five paths rather than a rectangle per window and class); lines are at window
     * midpoints. Across a gap the rates drop to zero and the lines break. */
    series() {
      const steps = { x: [], y: Object.fromEntries(CLASSES.map((c) => [c.key, []])) };
      const lines = { x: [], lat: PERCENTILES.map(() => []), failed: [] };
      const stepTo = (x, rates) => {
        steps.x.push(x);
        for (const c of CLASSES) steps.y[c.key].push(rates ? rates[c.key] : 0);
      };
      let previous = null;
      for (const point of this.points) {
        const d = this.derive(point);
        if (previous && point.t0 - previous.t1 > 500) {
          // A hole in the timeline (a gap, or a run switch): zero rates there, broken lines.
          stepTo(previous.t1, null);
          lines.x.push((previous.t1 + point.t0) / 2);
          lines.lat.forEach((l) => l.push(null));
          lines.failed.push(null);
        }
        stepTo(point.t0, d.rates);
        lines.x.push((point.t0 + point.t1) / 2);
        d.lat.forEach((v, i) => lines.lat[i].push(v));
        lines.failed.push(d.failed);
        previous = point;
      }
      if (previous) stepTo(previous.t1, this.derive(previous).rates); // the last window's right edge
      return { steps, lines };
    }

    summary() {
      if (!this.parts.summary) return;
      const last = this.points[this.points.length - 1];
      if (!last) {
        this.parts.summary.textContent = "";
        return;
      }
      const d = this.derive(last);
      const rate = CLASSES.reduce((sum, c) => sum + d.rates[c.key], 0);
      this.parts.summary.textContent =
        `${fmt(rate)} req/s · 5xx ${fmt(d.rates["5xx"])}/s · errors ${fmt(d.rates.error)}/s · ` +
        `failed ${fmt(d.failed)}% · p50 ${fmt(d.lat[0])} ms · p99 ${fmt(d.lat[2])} ms`;
    }

    draw() {
      if (document.hidden) return; // drawn again when the tab is visible
      this.summary();
      if (!this.plotly || !this.points.length) return;
      const s = this.series();
      const t1 = this.points[this.points.length - 1].t1;
      const t0 = Math.max(this.points[0].t0, t1 - HISTORY_MS);
      const traces = CLASSES.map((c) => ({
        type: "scatter",
        mode: "lines",
        stackgroup: "rates",
        name: c.label,
        x: s.steps.x,
        y: s.steps.y[c.key],
        line: { color: c.colour, width: 0.5, shape: "hv" },
        fillcolor: c.colour,
        yaxis: "y",
        hovertemplate: `%{y:.1f} req/s ${c.label}<extra></extra>`,
      }));
      PERCENTILES.forEach((p, i) =>
        traces.push({
          type: "scatter",
          mode: "lines",
          name: `${p.label} latency`,
          x: s.lines.x,
          y: s.lines.lat[i],
          line: { color: p.colour, width: 1.5, dash: p.dash },
          yaxis: "y2",
          connectgaps: false,
          hovertemplate: `${p.label} %{y:.1f} ms<extra></extra>`,
        }),
      );
      traces.push({
        type: "scatter",
        mode: "lines",
        name: "failed %",
        x: s.lines.x,
        y: s.lines.failed,
        line: { color: "#dc2626", width: 1, dash: "dot" },
        yaxis: "y3",
        connectgaps: false,
        hovertemplate: "failed %{y:.1f}%<extra></extra>",
      });
      const shapes = [];
      const annotations = [];
      for (const gap of this.gaps) {
        shapes.push({
          type: "rect", xref: "x", yref: "paper", x0: gap.t0 * 1000, x1: gap.t1 * 1000, y0: 0, y1: 1,
          fillcolor: "rgba(127,127,127,0.15)", line: { width: 0 }, name: "gap",
        });
      }
      const markers = [...this.markers.values()].filter((m) => m.time >= t0 - 1000 && m.time <= t1 + 60000);
      markers.sort((a, b) => a.time - b.time);
      // Labels of markers close in time go on separate rows (greedy: the first row free at that point), so
      // three quick Applies stay readable. Widths are estimated from the text at ~6.5 px per character.
      const xMax = Math.max(t1 + 1000, ...markers.map((m) => m.time + 1000));
      const msPerPx = (xMax - t0) / Math.max(this.parts.chart.clientWidth - 96, 100);
      const rowEnds = [];
      const rowOf = (m) => {
        const end = m.time + (m.label.length * 6.5 + 8) * msPerPx;
        let row = rowEnds.findIndex((e) => e <= m.time);
        if (row < 0) row = rowEnds.length < 4 ? rowEnds.length : rowEnds.indexOf(Math.min(...rowEnds));
        rowEnds[row] = end;
        return row;
      };
      markers.forEach((m) => {
        const colour = MARKER_COLOURS[m.status] || "#475569";
        shapes.push({
          type: "line", xref: "x", yref: "paper", x0: m.time, x1: m.time, y0: 0, y1: 1,
          line: { color: colour, width: 1.5, dash: "dash" }, name: m.id,
        });
        annotations.push({
          x: m.time, xref: "x", y: 1 - 0.075 * rowOf(m), yref: "paper", yanchor: "bottom", xanchor: "left",
          text: m.label, showarrow: false, font: { size: 11, color: colour }, bgcolor: "rgba(255,255,255,0.8)",
          name: m.id,
        });
      });
      const layout = {
        uirevision: "traffic",
        margin: { l: 48, r: 48, t: 28, b: 32 },
        showlegend: true,
        legend: { orientation: "h", y: -0.12, font: { size: 11 } },
        hovermode: "x unified",
        xaxis: {
          type: "date", anchor: "y2", tickformat: "%H:%M:%S", hoverformat: "%H:%M:%S",
          range: [t0, xMax],
        },
        yaxis: { title: { text: "req/s" }, domain: [0.5, 1], rangemode: "tozero", fixedrange: true },
        yaxis2: { title: { text: "ms" }, domain: [0, 0.4], rangemode: "tozero", fixedrange: true },
        yaxis3: {
          title: { text: "failed %" }, overlaying: "y2", side: "right", range: [0, 100], fixedrange: true,
          showgrid: false, tickvals: [0, 50, 100],
        },
        shapes,
        annotations,
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: getComputedStyle(this.root).color },
      };
      this.setChartNote(null);
      this.plotly.react(this.parts.chart, traces, layout, { displaylogo: false, responsive: true });
    }
  }

  function optionsOf(root) {
    const script = root.querySelector("script[type='application/json']");
    let options = {};
    try {
      options = script ? JSON.parse(script.textContent) : {};
    } catch {
      options = {};
    }
    if (root.dataset.plotlySrc) options.plotlySrc = root.dataset.plotlySrc;
    return options;
  }

  const panels = [];
  const MeshTraffic = {
    mount(root, options = {}) {
      const panel = new TrafficPanel(root, { ...optionsOf(root), ...options });
      root.trafficPanel = panel;
      panels.push(panel);
      return panel;
    },
    panels,
    loadPlotly,
    percentiles, // exposed for tests of the histogram arithmetic
  };
  window.MeshTraffic = MeshTraffic;

  // Panels that ask for it (data-traffic-panel="auto", the template's default) mount themselves.
  const auto = () => {
    for (const root of document.querySelectorAll("[data-traffic-panel='auto']")) {
      if (!root.trafficPanel) MeshTraffic.mount(root);
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
  else auto();
})();
