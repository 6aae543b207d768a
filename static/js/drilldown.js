/* One student's drill-down, kept current without a reload.
 *
 * The page listens on the class's instructor websocket (the one the dashboard uses). When an "attempt"
 * or "progress" event names this student, it fetches its own URL again and swaps in the parts marked
 * data-live (the summary, the step row, the attempt list); the traffic and graph panels are live on
 * their own sockets and are left alone. Events come in bursts (queued, running, each check), so
 * refreshes are coalesced: at most one fetch in flight and one more queued behind it. A reconnection
 * refreshes too, since events may have been missed while offline.
 */
(function () {
  "use strict";

  const root = document.querySelector(".drilldown[data-ws]");
  if (!root || !window.MeshConsole) return;
  const student = root.dataset.student;
  let inFlight = false;
  let again = false;

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of root.querySelectorAll("[data-live]")) {
        const replacement = fresh.querySelector(`[data-live="${part.dataset.live}"]`);
        if (replacement) part.replaceWith(document.importNode(replacement, true));
      }
      root.dataset.updates = String(Number(root.dataset.updates) + 1);
    } catch {
      // Offline or the server restarting: the next event or reconnection tries again.
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  new MeshConsole.LiveSocket(root.dataset.ws, {
    indicator: document.getElementById("connection"),
    onOpen: (reconnected) => {
      if (reconnected) refresh();
    },
    onMessage: (m) => {
      if ((m.type === "attempt" || m.type === "progress") && String(m.student) === student) refresh();
    },
  }).start();
})();
