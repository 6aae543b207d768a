/* The instructor's progress matrix, kept live (templates/dashboard/class.html).
 *
 * The page arrives rendered. The websocket /ws/teach/<slug>/ then forwards every lab event of the
 * class's students ("progress" and "attempt", each naming its `student`); on every (re)connection the
 * page also loads matrix.json, so nothing published between render and connection is missed. A cell
 * only moves forward: an event about an older attempt than the one shown is ignored.
 *
 * Stuck: a student whose latest step failed, or who has not verified every step and whose latest
 * event is older than the threshold on the page, is highlighted; a one-second timer re-evaluates this
 * as time passes. The threshold is kept per class in localStorage.
 */
(function () {
  "use strict";

  const STATES = ["not_started", "in_progress", "applied", "verified", "failed"];
  const LABELS = {
    not_started: "not started",
    in_progress: "in progress",
    applied: "applied",
    verified: "verified",
    failed: "failed",
  };
  const ACTIVE = new Set(["queued", "validating", "applying", "waiting", "checking"]);

  /* Same rule as dashboard/matrix.py cell_state. */
  function cellState(progress, lastStatus) {
    if (lastStatus === "failed" || progress === "failed") return "failed";
    if (ACTIVE.has(lastStatus) && (!progress || progress === "not_started")) return "in_progress";
    return progress || "not_started";
  }

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const table = document.getElementById("matrix");
  const tbody = table.querySelector("tbody");
  const thresholdInput = document.getElementById("stuck-minutes");
  const stuckCount = document.getElementById("stuck-count");
  const storageKey = `meshconsole.stuckMinutes.${config.slug}`;
  let snapshotPending = null;

  const timeOf = (iso) => (iso ? Date.parse(iso) : 0);
  const two = (n) => String(n).padStart(2, "0");
  const clock = (ms) => {
    const d = new Date(ms);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };

  function rowOf(studentId) {
    return tbody.querySelector(`tr[data-student="${CSS.escape(String(studentId))}"]`);
  }

  function cellOf(studentId, step) {
    const row = rowOf(studentId);
    return row ? row.querySelector(`td.cell[data-step="${CSS.escape(step)}"]`) : null;
  }

  function render(td) {
    const d = td.dataset;
    d.state = cellState(d.progress, d.lastStatus);
    td.querySelector(".cell-state").textContent = LABELS[d.state];
    td.querySelector(".cell-time").textContent = d.last ? clock(timeOf(d.last)) : "";
    const n = Number(d.attempts || 0);
    td.querySelector(".cell-attempts").textContent = n ? `×${n}` : "";
    td.title = d.last ? `${LABELS[d.state]}, last event ${new Date(timeOf(d.last)).toLocaleString()}` : LABELS[d.state];
  }

  function touch(td, iso) {
    if (iso && timeOf(iso) > timeOf(td.dataset.last)) td.dataset.last = iso;
  }

  /* An event about attempt `id` may update the cell unless the cell already shows a newer attempt. */
  function current(td, id) {
    const shown = Number(td.dataset.attempt || 0);
    return id === null || id === undefined || Number(id) >= shown;
  }

  function onProgress(m) {
    const td = cellOf(m.student, m.step);
    if (!td) return unknown();
    if (!current(td, m.attempt)) return;
    td.dataset.progress = m.state;
    if (m.attempts !== undefined) td.dataset.attempts = m.attempts;
    if (m.attempt) td.dataset.attempt = m.attempt;
    if (m.last_status !== undefined) td.dataset.lastStatus = m.last_status || "";
    touch(td, m.updated);
    render(td);
    refresh();
  }

  function onAttempt(m) {
    const a = m.attempt;
    const td = cellOf(m.student, a.step);
    if (!td) return unknown();
    if (!current(td, a.id)) return;
    td.dataset.attempt = a.id;
    td.dataset.lastStatus = a.status;
    touch(td, a.finished || a.created);
    render(td);
    refresh();
  }

  /* An event of a student the page does not show yet (they joined meanwhile): reload the matrix. */
  function unknown() {
    loadSnapshot();
  }

  function newRow(student) {
    const tr = document.createElement("tr");
    tr.dataset.student = student.id;
    tr.dataset.stuck = "false";
    const th = document.createElement("th");
    th.scope = "row";
    const link = document.createElement("a");
    link.href = `${location.pathname}students/${encodeURIComponent(student.id)}/`;
    link.textContent = student.username;
    const reason = document.createElement("span");
    reason.className = "stuck-reason";
    reason.hidden = true;
    th.append(link, " ", reason);
    tr.append(th);
    for (const step of config.steps) {
      const td = document.createElement("td");
      td.className = "cell";
      td.dataset.step = step;
      td.dataset.stuck = "false";
      const state = document.createElement("span");
      state.className = "cell-state";
      td.append(state);
      const meta = document.createElement("span");
      meta.className = "cell-meta";
      for (const cls of ["cell-time", "cell-attempts"]) {
        const span = document.createElement("span");
        span.className = cls;
        meta.append(span, " ");
      }
      td.append(meta);
      tr.append(td);
    }
    tbody.querySelector("tr.no-students")?.remove();
    tbody.append(tr);
    return tr;
  }

  function applySnapshot(snapshot) {
    for (const student of snapshot.students) {
      if (!rowOf(student.id)) newRow(student);
      for (const c of student.cells) {
        const td = cellOf(student.id, c.step);
        if (!td) continue;
        const newer = Number(c.attempt || 0) > Number(td.dataset.attempt || 0);
        const later = timeOf(c.last) >= timeOf(td.dataset.last);
        if (!newer && !later) continue;
        td.dataset.progress = c.progress || "";
        td.dataset.attempts = c.attempts;
        td.dataset.attempt = c.attempt || "";
        td.dataset.lastStatus = c.last_status || "";
        td.dataset.last = c.last || "";
        render(td);
      }
    }
    refresh();
  }

  function loadSnapshot() {
    if (snapshotPending) return snapshotPending;
    snapshotPending = fetch(config.matrixUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`matrix: ${r.status}`))))
      .then(applySnapshot)
      .catch(() => {})
      .finally(() => {
        snapshotPending = null;
      });
    return snapshotPending;
  }

  function updateTotals() {
    config.steps.forEach((step) => {
      const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
      tbody.querySelectorAll(`td.cell[data-step="${CSS.escape(step)}"]`).forEach((td) => {
        counts[td.dataset.state] = (counts[td.dataset.state] || 0) + 1;
      });
      const totals = table.querySelector(`tfoot td.totals[data-step="${CSS.escape(step)}"]`);
      if (!totals) return;
      for (const s of STATES) {
        const el = totals.querySelector(`.total[data-state="${s}"]`);
        if (el) el.textContent = counts[s];
      }
    });
  }

  function thresholdMs() {
    const minutes = Number.parseFloat(thresholdInput.value);
    return Number.isFinite(minutes) && minutes >= 0 ? minutes * 60_000 : Number.POSITIVE_INFINITY;
  }

  function updateStuck() {
    const limit = thresholdMs();
    const now = Date.now();
    let stuck = 0;
    tbody.querySelectorAll("tr[data-student]").forEach((tr) => {
      const cells = [...tr.querySelectorAll("td.cell")];
      let latest = null;
      for (const td of cells) {
        td.dataset.stuck = "false";
        if (td.dataset.last && (!latest || timeOf(td.dataset.last) > timeOf(latest.dataset.last))) latest = td;
      }
      let reason = "";
      if (latest) {
        const done = cells.every((td) => td.dataset.state === "verified");
        const idle = now - timeOf(latest.dataset.last);
        if (latest.dataset.state === "failed") reason = "failing";
        else if (!done && !ACTIVE.has(latest.dataset.lastStatus) && idle > limit) {
          reason = `idle ${Math.floor(idle / 60_000)} min`;
        }
      }
      tr.dataset.stuck = reason ? "true" : "false";
      const label = tr.querySelector(".stuck-reason");
      if (label) {
        label.hidden = !reason;
        label.textContent = reason;
      }
      if (reason) {
        latest.dataset.stuck = "true";
        stuck += 1;
      }
    });
    stuckCount.dataset.count = stuck;
    stuckCount.hidden = stuck === 0;
    stuckCount.textContent = `${stuck} stuck`;
  }

  function refresh() {
    updateTotals();
    updateStuck();
  }

  const saved = localStorage.getItem(storageKey);
  if (saved !== null && saved !== "") thresholdInput.value = saved;
  thresholdInput.addEventListener("input", () => {
    localStorage.setItem(storageKey, thresholdInput.value);
    updateStuck();
  });

  new MeshConsole.LiveSocket(config.ws, {
    indicator: document.getElementById("connection"),
    onOpen: () => {},
    onMessage: (m) => {
      if (m.type === "hello") loadSnapshot();
      else if (m.type === "progress") onProgress(m);
      else if (m.type === "attempt") onAttempt(m);
    },
  }).start();

  tbody.querySelectorAll("td.cell").forEach(render); // times in the viewer's clock
  refresh();
  setInterval(updateStuck, 1000);
  table.dataset.ready = "true";
})();
