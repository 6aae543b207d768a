/* The projector view of a class's demo (templates/demo/projector.html).
 *
 * One LiveSocket on /ws/demo/<class>/ brings the demo's state (hello), the prepare's progress ("demo")
 * and the fault's state per namespace ("demo.fault"). A second one follows the demo's traffic run on
 * /ws/traffic/<run>/ and shows requests/s, the 5xx share of the last 5 s and p95 latency, big enough
 * for a projector; the traffic chart (traffic-chart.js) is pointed at the same run. The graph panel
 * (meshgraph.js) runs on its own. Actions are POSTs with the CSRF token.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("demo-config").textContent);
  const $ = (id) => document.getElementById(id);
  const PREPARE_STATES = { empty: "Not prepared yet.", preparing: "Preparing…", ready: "Ready.", failed: "Failed." };
  const SHARE_SECONDS = 5;
  const BARS = 60;
  let demoId = config.state.demo.id;
  let currentFault = null;
  let runId = null;
  let trafficSocket = null;
  let windows = []; // [{end, total, errors, rate, p95}]
  let lastSeq = 0; // a reconnect sends the history again: windows already shown are skipped

  async function post(url, body) {
    const { status, data } = await MeshConsole.requestJson(url, { method: "POST", body: body || {} });
    const ok = status >= 200 && status < 300;
    const fallback = status ? `The console answered ${status}.` : "The console could not be reached.";
    return { ok, status, data: data || { error: fallback } };
  }

  // ---- the prepare --------------------------------------------------------------------------------
  function showDemo(demo) {
    if (demo.id !== demoId) return; // another instructor's demo of the same class
    const status = $("prepare-status");
    const bar = $("prepare-progress");
    status.dataset.state = demo.state;
    $("demo").dataset.state = demo.state;
    let text = demo.message || PREPARE_STATES[demo.state] || demo.state;
    const p = demo.progress;
    if (demo.state === "preparing" && p) {
      text = `Step ${p.index} of ${p.total}: ${p.title} — ${p.status}${p.detail ? ", " + p.detail : ""}`;
      bar.max = p.total;
      bar.value = p.index - (p.status === "passed" ? 0 : 0.5);
    }
    bar.hidden = demo.state !== "preparing";
    status.textContent = text;
    $("prepare").disabled = demo.state === "preparing";
    if (demo.state === "ready") refreshState();
  }

  // ---- the fault ----------------------------------------------------------------------------------
  function showFault(fault) {
    if (fault && fault.demo !== demoId) return;
    currentFault = fault && fault.state !== "reverted" ? fault : null;
    const status = $("fault-status");
    const list = $("fault-targets");
    list.replaceChildren();
    if (!fault) {
      status.dataset.state = "none";
      status.textContent = "No fault injected.";
    } else {
      status.dataset.state = fault.state;
      status.textContent = `${fault.summary}: ${fault.state}. ${fault.message || ""}`.trim();
      for (const target of fault.targets) {
        const item = document.createElement("li");
        item.dataset.state = target.state;
        item.dataset.namespace = target.namespace;
        const where = target.is_demo ? `${target.namespace} (demo)` : target.namespace;
        item.textContent = `${where}: ${target.state}${target.error ? " — " + target.error : ""}`;
        list.append(item);
      }
    }
    $("revert").disabled = !currentFault;
    $("inject").disabled = !!currentFault;
  }

  function showProblems(problems) {
    const list = $("fault-problems");
    list.replaceChildren();
    for (const message of Object.values(problems || {})) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
    }
    list.hidden = !list.children.length;
  }

  async function inject(event) {
    event.preventDefault();
    const form = event.target;
    const body = {
      target: form.target.value,
      abort_percent: form.abort_percent.value,
      abort_status: form.abort_status.value,
      delay: form.delay.value,
      delay_percent: form.delay_percent.value,
      broadcast: form.broadcast.checked,
    };
    if (body.broadcast) {
      const count = $("student-count").textContent;
      if (!window.confirm(`Inject this fault into every student namespace of the class (${count}) as well?`)) return;
      body.confirm = true;
    }
    // The new state comes over the websocket, in order; the answer may arrive after newer events.
    const answer = await post(config.urls.faults, body);
    showProblems(answer.ok ? null : answer.data.problems || { error: answer.data.error });
  }

  async function revert() {
    if (!currentFault) return;
    const answer = await post(`${config.urls.faults}${currentFault.id}/revert/`);
    showProblems(answer.ok ? null : { error: answer.data.error });
  }

  // ---- traffic ------------------------------------------------------------------------------------
  function addWindow(message) {
    if (message.seq && message.seq <= lastSeq) return;
    lastSeq = Math.max(lastSeq, message.seq || 0);
    let total = 0;
    let errors = 0;
    let sent = 0;
    const hists = [];
    for (const stream of Object.values(message.streams || {})) {
      for (const [code, count] of Object.entries(stream.codes || {})) {
        total += count;
        if (code.startsWith("5")) errors += count;
      }
      sent += stream.sent || 0;
      hists.push(stream.hist ? stream.hist.latency : null);
    }
    // p95 of the streams' merged histograms (traffic-chart.js's arithmetic; never a max or mean of percentiles).
    const p95 = window.MeshTraffic ? window.MeshTraffic.percentiles(hists, [95])[0] : null;
    const seconds = Math.max(message.end - message.start, 0.001);
    windows.push({ end: message.end, total, errors, rate: sent / seconds, p95 });
    windows = windows.slice(-BARS);
  }

  function drawTraffic() {
    const last = windows.slice(-SHARE_SECONDS);
    const total = last.reduce((sum, w) => sum + w.total, 0);
    const errors = last.reduce((sum, w) => sum + w.errors, 0);
    const share = total ? (100 * errors) / total : null;
    const newest = windows[windows.length - 1];
    $("fig-rate").textContent = newest ? newest.rate.toFixed(1) : "–";
    const figure = $("fig-5xx");
    figure.textContent = share === null ? "–" : `${share.toFixed(0)}%`;
    figure.dataset.share = share === null ? "" : share.toFixed(2);
    figure.dataset.level = share === null ? "" : share >= 10 ? "bad" : share > 0 ? "some" : "none";
    $("fig-p95").textContent = newest && newest.p95 !== null ? `${newest.p95.toFixed(newest.p95 < 10 ? 1 : 0)} ms` : "–";
    const bars = $("demo-bars");
    bars.replaceChildren(
      ...windows.map((w) => {
        const bar = document.createElement("li");
        const part = w.total ? w.errors / w.total : 0;
        bar.style.height = `${Math.max(part * 100, 1)}%`;
        bar.className = part ? "" : "ok";
        bar.title = `${w.errors} of ${w.total} failed`;
        return bar;
      }),
    );
  }

  function followRun(run) {
    const id = run && run.state === "running" ? run.id : null;
    if (id === runId) return;
    runId = id;
    windows = [];
    drawTraffic();
    if (trafficSocket) trafficSocket.stop();
    trafficSocket = null;
    const chart = document.getElementById("demo-chart");
    if (id && chart && chart.trafficPanel) chart.trafficPanel.watch(id);
    lastSeq = 0;
    $("demo-traffic").dataset.run = id || "";
    $("demo-run").textContent = id ? `run ${id}` : "";
    $("traffic-note").textContent = id ? "" : "No traffic running: prepare the lab, its steps start the generator.";
    if (!id) return;
    trafficSocket = new window.MeshConsole.LiveSocket(`/ws/traffic/${id}/`, {
      onMessage(message) {
        if (runId !== id) return;
        if (message.type === "history") (message.windows || []).forEach(addWindow);
        else if (message.type === "window") addWindow(message);
        else return;
        drawTraffic();
      },
    }).start();
  }

  async function refreshState() {
    const response = await fetch(config.urls.state, { credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    followRun(state.run);
    $("student-count").textContent = state.students;
  }

  // ---- wiring -------------------------------------------------------------------------------------
  function onMessage(message) {
    if (message.type === "hello") {
      demoId = message.demo.id;
      showDemo(message.demo);
      showFault(message.fault);
      followRun(message.run);
    } else if (message.type === "demo") {
      showDemo(message.demo);
    } else if (message.type === "demo.fault") {
      showFault(message.fault);
    }
  }

  $("prepare").addEventListener("click", async () => {
    $("prepare").disabled = true;
    const answer = await post(config.urls.prepare);
    if (!answer.ok) {
      $("prepare-status").textContent = answer.data.error;
      $("prepare").disabled = false;
    }
  });
  $("fault-form").addEventListener("submit", inject);
  $("revert").addEventListener("click", revert);
  showDemo(config.state.demo);
  showFault(config.state.fault);
  followRun(config.state.run);
  new window.MeshConsole.LiveSocket(config.urls.ws, { onMessage, indicator: $("connection") }).start();
  // A run can start or stop without a demo event (a traffic action in a step); look again now and then.
  setInterval(refreshState, 15000);
})();
