/* Lab pages: the step list (/lab/) and the step page (/lab/<step>/), updated live, never reloaded.
 *
 * Both pages keep their step states current from the websocket's "progress" messages. The step page
 * also runs Apply / Check / Reset (POST, then the attempt's phases arrive over the websocket, with
 * polling of /lab/api/attempts/<id> while the socket is down), shows validation problems at their
 * line in the editor, releases hints one at a time and loads the solution on request.
 */
(function () {
  "use strict";

  const NS = window.MeshConsole;
  const root = document.querySelector("[data-lab]");
  if (!NS || !root) return;

  const STATE_LABELS = {
    not_started: "Not started",
    in_progress: "In progress",
    applied: "Applied",
    verified: "Verified",
    failed: "Failed",
  };
  // Phases in pipeline order; an update never moves an attempt back to an earlier phase.
  const RANK = { queued: 0, validating: 1, applying: 2, waiting: 3, checking: 4, passed: 5, failed: 5 };
  const TERMINAL = new Set(["passed", "failed"]);
  const STAGES = {
    apply: ["queued", "validating", "applying", "waiting", "checking"],
    check: ["queued", "checking"],
    reset: ["queued", "applying", "waiting"],
  };
  const STAGE_LABELS = {
    queued: "Queued",
    validating: "Validating",
    applying: "Applying",
    waiting: "Rollout",
    checking: "Checking",
  };
  const KIND_LABELS = { apply: "Apply", check: "Check", reset: "Reset" };

  // --- Small helpers -----------------------------------------------------------------------------

  function $(selector, scope = document) {
    return scope.querySelector(selector);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Fill `node` with plain text, `backticks` shown as code; DOM nodes only, nothing parsed as HTML. */
  function setRichText(node, text) {
    const parts = String(text || "").split("`");
    node.replaceChildren(...parts.map((part, i) => (i % 2 ? el("code", null, part) : document.createTextNode(part))));
    return node;
  }

  const { requestJson } = NS; // static/js/request.js

  function describeFailure({ status, data }) {
    if (data && data.error) return data.error;
    if (status === 0) return "The console could not be reached. Check your connection and try again.";
    if (status === 403) return "Not allowed. Your session may have expired: log in again in a new tab, then retry.";
    if (status === 404) return "Not found: this step or attempt does not exist.";
    if (status === 413) return "The manifests are too large (the limit is 256 KiB).";
    return `The console could not do this (HTTP ${status}). Try again; if it keeps happening, tell your instructor.`;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
  }

  function showTime(node, iso) {
    const date = new Date(iso);
    if (!iso || Number.isNaN(date.getTime())) return;
    node.dateTime = iso;
    node.textContent = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function addCopyButtons(scope) {
    for (const pre of scope.querySelectorAll("pre")) {
      if (pre.querySelector(".copy-button")) continue;
      const button = el("button", "button ghost small copy-button", "Copy");
      button.type = "button";
      button.addEventListener("click", async () => {
        const code = pre.querySelector("code") || pre;
        try {
          await navigator.clipboard.writeText(code.innerText);
          button.textContent = "Copied";
        } catch {
          // No clipboard API (plain HTTP on a classroom network): select the text for Ctrl+C instead.
          getSelection().selectAllChildren(code);
          button.textContent = "Press Ctrl+C";
        }
        setTimeout(() => (button.textContent = "Copy"), 2000);
      });
      pre.append(button);
    }
  }

  /* The pipeline stage an attempt failed in: the last one seen running, else inferred from its result. */
  function failedRank(attempt) {
    if (attempt.invalid) return RANK.validating;
    if (attempt.reached !== null && attempt.reached !== undefined) return attempt.reached;
    if ((attempt.checks || []).some((check) => check.ok === false)) return RANK.checking;
    if ((attempt.not_applied || []).length) return RANK.applying;
    return null;
  }

  // --- Step states (step list and step navigation) -----------------------------------------------

  function showStepState(stepId, state, updated) {
    if (!STATE_LABELS[state]) return;
    for (const item of document.querySelectorAll(`[data-step-id="${CSS.escape(stepId)}"]`)) {
      item.dataset.state = state;
      const label = $(".state .label", item);
      if (label) label.textContent = STATE_LABELS[state];
      const time = $("time", item);
      if (time) showTime(time, updated);
    }
    showOverall();
  }

  /* The step list's summary: how many steps are verified. */
  function showOverall() {
    const overall = $("#overall");
    if (!overall) return;
    const items = document.querySelectorAll("#step-list [data-step-id]");
    const verified = [...items].filter((item) => item.dataset.state === "verified").length;
    $("progress", overall).value = verified;
    $(".count", overall).textContent = `${verified} of ${items.length} steps verified`;
  }

  async function refreshStates(url) {
    const result = await requestJson(url);
    if (result.status !== 200 || !result.data) return;
    for (const entry of result.data.steps || []) showStepState(entry.step, entry.state, entry.updated);
  }

  // --- The step page -----------------------------------------------------------------------------

  class StepPage {
    /* `config` is the page's #lab-config: step, urls {apply, check, reset, solution, hint, attempt,
     * progress, ws} (hint and attempt end in a 0 to replace), hintsTotal, hintsReleased, attempt. */
    constructor(config) {
      this.stepId = config.step;
      this.urls = config.urls;
      this.current = null; // the attempt shown in the progress panel
      this.posting = false;
      this.polling = false;
      this.ticker = null;
      this.socket = null;
      this.original = $("#editor").value;
      this.editor = new NS.Editor($("#editor"), { onChange: () => this.onEdit() });
      this.hintsShown = 0;
      this.hintTotal = config.hintsTotal || 0;
      this.solution = null;

      $("#apply").addEventListener("click", () => this.start("apply"));
      $("#check").addEventListener("click", () => this.start("check"));
      $("#reset").addEventListener("click", () => {
        $("#reset-dialog").returnValue = "";
        $("#reset-dialog").showModal();
      });
      $("#reset-dialog").addEventListener("close", () => {
        if ($("#reset-dialog").returnValue === "confirm") this.start("reset");
      });
      $("#hint").addEventListener("click", () => this.nextHint());
      $("#solution").addEventListener("click", () => this.toggleSolution());
      $("#use-solution").addEventListener("click", () =>
        this.replaceEditor(this.solution.manifests, "The editor now holds the solution's manifests."),
      );
      $("#revert").addEventListener("click", () =>
        this.replaceEditor(this.original, "The editor holds this step's manifests again."),
      );
      $("#editor-problems").addEventListener("click", (event) => {
        const target = event.target.closest("[data-line]");
        if (target) this.editor.goToLine(Number(target.dataset.line));
      });
      this.updateHintButton();
      this.onEdit();
      addCopyButtons($(".prose"));
      if (config.attempt) this.accept(config.attempt);
      this.restoreHints(config.hintsReleased || 0);
    }

    attachSocket(socket) {
      this.socket = socket;
    }

    onEdit() {
      $("#revert").disabled = this.editor.getValue() === this.original;
    }

    replaceEditor(text, message) {
      const previous = this.editor.getValue();
      this.editor.setValue(text);
      this.editor.setProblems([]);
      const notice = $("#editor-notice");
      const undo = el("button", "link-button", "Undo");
      undo.type = "button";
      undo.addEventListener("click", () => {
        this.editor.setValue(previous);
        notice.hidden = true;
      });
      notice.replaceChildren(document.createTextNode(`${message} `), undo);
      notice.hidden = false;
    }

    // --- Apply / Check / Reset -----------------------------------------------------------------

    async start(kind) {
      if (this.posting || this.running()) return;
      this.posting = true;
      this.showActionError(null);
      const button = $(`#${kind}`);
      button.setAttribute("aria-busy", "true");
      this.updateButtons();
      if (kind === "apply") this.showProblems(null);
      const lastId = this.current ? this.current.id : 0;
      const body = kind === "apply" ? { manifests: this.editor.getValue() } : {};
      const result = await requestJson(this.urls[kind], { method: "POST", body });
      this.posting = false;
      button.removeAttribute("aria-busy");
      if (result.status === 202 && result.data) {
        this.show({ id: result.data.attempt, step: this.stepId, kind, status: result.data.status || "queued" });
        $("#progress").scrollIntoView({ block: "nearest", behavior: "smooth" });
        this.watch();
      } else if (result.status === 400 && kind === "apply" && result.data) {
        // The server records the rejected attempt (its id comes with the problems) and announces it.
        this.showProblems(result.data);
        const recorded = result.data.attempt;
        const message = `${result.data.error || "The manifests are not valid."} Nothing was applied.`;
        if (recorded) this.accept({ id: recorded, step: this.stepId, kind, status: "failed", message, invalid: true });
        else if (!this.current || this.current.id <= lastId) {
          this.show({ id: lastId, step: this.stepId, kind, status: "failed", message, invalid: true, local: true });
        }
      } else {
        this.showActionError(describeFailure(result));
      }
      this.updateButtons();
    }

    running() {
      return Boolean(this.current && !this.current.local && !TERMINAL.has(this.current.status));
    }

    updateButtons() {
      const busy = this.posting || this.running();
      for (const id of ["apply", "check", "reset"]) $(`#${id}`).disabled = busy;
    }

    showActionError(message) {
      const box = $("#action-error");
      box.hidden = !message;
      box.textContent = message || "";
    }

    showProblems(data) {
      const box = $("#editor-problems");
      const problems = (data && data.problems) || [];
      this.editor.setProblems(problems);
      box.hidden = !data;
      if (!data) return;
      const list = el("ul");
      for (const problem of problems) {
        const item = el("li");
        if (Number.isInteger(problem.line)) {
          const jump = el("button", "link-button where", `Line ${problem.line}`);
          jump.type = "button";
          jump.dataset.line = String(problem.line);
          jump.title = "Show this line in the editor";
          item.append(jump, document.createTextNode(" · "));
        }
        if (problem.object) item.append(el("code", null, problem.object), document.createTextNode(": "));
        item.append(document.createTextNode(problem.message));
        list.append(item);
      }
      const summary = el("p");
      summary.append(el("strong", null, "Nothing was applied. "), document.createTextNode(data.error || ""));
      box.replaceChildren(summary, list);
      const first = problems.find((p) => Number.isInteger(p.line));
      if (first) this.editor.goToLine(first.line);
    }

    /* Take an attempt update (websocket, POST answer or poll) unless it is older than what is shown. */
    accept(attempt) {
      if (!attempt || attempt.step !== this.stepId) return;
      const shown = this.current;
      if (shown && !shown.local) {
        if (attempt.id < shown.id) return;
        if (attempt.id === shown.id && RANK[attempt.status] < RANK[shown.status]) return;
      }
      this.show(attempt);
    }

    show(update) {
      const same = this.current && this.current.id === update.id && !this.current.local && !update.local;
      if (same && RANK[update.status] < RANK[this.current.status]) return;
      const base = same ? this.current : { message: "", progress: null, applied: [], not_applied: [], checks: [] };
      const next = { created: new Date().toISOString(), finished: null, reached: null, ...base, ...update };
      if (!TERMINAL.has(next.status)) next.reached = Math.max(next.reached ?? 0, RANK[next.status] ?? 0);
      this.current = next;
      this.render(this.current);
      this.updateButtons();
    }

    /* Poll the shown attempt while the websocket is down, until it ends or the socket is back. */
    async watch() {
      if (this.polling) return;
      this.polling = true;
      let delay = 1000;
      while (this.running() && !(this.socket && this.socket.isOpen())) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (!this.running() || (this.socket && this.socket.isOpen())) break;
        const result = await requestJson(this.urls.attempt.replace(/0$/, String(this.current.id)));
        if (result.status === 200) this.accept(result.data);
        delay = Math.min(delay * 1.5, 5000);
      }
      this.polling = false;
    }

    render(attempt) {
      const panel = $("#progress");
      const status = attempt.status;
      panel.dataset.status = status;
      const statusEl = $("#progress-status");
      statusEl.dataset.status = status;
      statusEl.textContent = this.statusText(attempt);
      $("#progress-kind").textContent = attempt.local
        ? "Apply (not sent)"
        : `${KIND_LABELS[attempt.kind] || attempt.kind} #${attempt.id}`;
      this.renderStages(attempt);
      this.renderObjectProgress(attempt);
      setRichText($("#progress-message"), attempt.message);
      this.renderObjectLists(attempt);
      this.renderChecks(attempt.checks || []);
      $("#progress-next").hidden = !(status === "passed" && attempt.kind !== "reset");
      this.renderTime(attempt);
    }

    statusText(attempt) {
      switch (attempt.status) {
        case "queued":
          return "Queued";
        case "validating":
          return "Validating";
        case "applying": {
          const p = attempt.progress;
          if (p && p.total) return `Applying object ${p.index} of ${p.total}`;
          return attempt.kind === "reset" ? "Applying the reset" : "Applying";
        }
        case "waiting":
          return "Waiting for rollout";
        case "checking":
          return "Checking";
        case "passed":
          return attempt.kind === "reset" ? "Passed: the step is reset" : "Passed";
        case "failed":
          return "Failed";
        default:
          return attempt.status;
      }
    }

    renderStages(attempt) {
      const stages = STAGES[attempt.kind] || STAGES.apply;
      const list = $("#progress-stages");
      const rank = RANK[attempt.status] ?? 0;
      const items = stages.map((stage) => {
        const item = el("li");
        item.dataset.stage = stage;
        item.append(el("span", "stage-label", STAGE_LABELS[stage]));
        if (TERMINAL.has(attempt.status) || RANK[stage] < rank) item.dataset.phase = "done";
        else if (RANK[stage] === rank) {
          item.dataset.phase = "current";
          item.setAttribute("aria-current", "step");
        } else item.dataset.phase = "todo";
        return item;
      });
      if (attempt.status === "failed") {
        // Stages up to the one that failed are done; later ones never ran.
        const stop = failedRank(attempt);
        for (const item of items) {
          const stageRank = RANK[item.dataset.stage];
          if (stop === null) item.dataset.phase = "todo";
          else item.dataset.phase = stageRank < stop ? "done" : stageRank === stop ? "failed" : "todo";
        }
      }
      const end = el("li");
      end.dataset.stage = "result";
      end.append(el("span", "stage-label", attempt.status === "failed" ? "Failed" : "Passed"));
      end.dataset.phase = attempt.status === "passed" ? "done" : attempt.status === "failed" ? "failed" : "todo";
      list.replaceChildren(...items, end);
    }

    renderObjectProgress(attempt) {
      const box = $("#object-progress");
      const p = attempt.progress;
      const visible = attempt.status === "applying" && p && p.total;
      box.hidden = !visible;
      if (!visible) return;
      const bar = $("progress", box);
      bar.max = p.total;
      bar.value = Math.min(p.index, p.total);
      $("p", box).textContent = p.object ? `${p.object} (${p.index} of ${p.total})` : `${p.index} of ${p.total}`;
    }

    renderObjectLists(attempt) {
      const box = $("#object-lists");
      const applied = attempt.applied || [];
      const notApplied = attempt.not_applied || [];
      const visible = TERMINAL.has(attempt.status) && (notApplied.length > 0 || attempt.status === "failed");
      box.hidden = !visible || (applied.length === 0 && notApplied.length === 0);
      if (box.hidden) return;
      const line = (label, names) => {
        const p = el("p");
        p.append(el("strong", null, `${label}: `));
        if (!names.length) p.append(document.createTextNode("none"));
        for (const name of names) p.append(el("code", null, name), document.createTextNode(" "));
        return p;
      };
      box.replaceChildren(line("Applied", applied), line("Not applied", notApplied));
    }

    renderChecks(checks) {
      const list = $("#checks");
      const open = new Set([...list.querySelectorAll("details[open]")].map((d) => d.dataset.check));
      const items = checks.map((check) => {
        const state = check.ok === true ? "true" : check.ok === false ? "false" : "pending";
        const item = el("li");
        item.dataset.ok = state;
        const line = el("div", "check-line");
        line.append(
          el("span", "check-icon", { true: "✓", false: "✗", pending: "…" }[state]),
          el("span", "check-name", check.name),
          el("span", "sr-only", { true: " passed", false: " failed", pending: " not checked yet" }[state]),
        );
        item.append(line);
        if (check.ok === false && check.message) item.append(setRichText(el("p", "check-message"), check.message));
        if (check.debug) {
          const details = el("details");
          details.dataset.check = check.name;
          details.open = open.has(check.name);
          details.append(el("summary", null, "Details"), el("pre", null, check.debug));
          item.append(details);
        }
        return item;
      });
      list.replaceChildren(...items);
      $("#checks-title").hidden = items.length === 0;
    }

    renderTime(attempt) {
      clearInterval(this.ticker);
      const time = $("#progress-time");
      const started = new Date(attempt.created);
      const seconds = (end) => ((end - started) / 1000).toFixed(1);
      if (attempt.local) {
        time.textContent = "";
      } else if (attempt.finished) {
        time.textContent = `${formatTime(attempt.created)} · took ${seconds(new Date(attempt.finished))} s`;
      } else {
        const tick = () => (time.textContent = `${formatTime(attempt.created)} · running ${Math.floor(seconds(Date.now()))} s`);
        tick();
        this.ticker = setInterval(tick, 1000);
      }
    }

    // --- Hints and solution ---------------------------------------------------------------------

    updateHintButton() {
      const button = $("#hint");
      const left = this.hintTotal - this.hintsShown;
      button.disabled = left <= 0;
      if (this.hintTotal === 0) button.textContent = "No hints";
      else if (left <= 0) button.textContent = "No more hints";
      else button.replaceChildren(this.hintsShown ? "Next hint " : "Hint ", el("span", "count", `${left} left`));
    }

    /* Fetch the next hint and show it; its list item, or null if the server refused. */
    async loadHint() {
      const result = await requestJson(this.urls.hint.replace(/0$/, String(this.hintsShown + 1)));
      if (result.status !== 200 || !result.data) {
        this.showActionError(describeFailure(result));
        return null;
      }
      this.hintTotal = result.data.total ?? this.hintTotal;
      this.hintsShown += 1;
      const item = el("li");
      item.tabIndex = -1;
      item.innerHTML = result.data.html; // rendered and escaped by the server
      addCopyButtons(item);
      $("#hint-list").append(item);
      $("#hints").hidden = false;
      this.updateHintButton();
      return item;
    }

    async nextHint() {
      const button = $("#hint");
      button.setAttribute("aria-busy", "true");
      this.showActionError(null);
      const item = await this.loadHint();
      button.removeAttribute("aria-busy");
      if (!item) return;
      item.scrollIntoView({ block: "nearest", behavior: "smooth" });
      item.focus({ preventScroll: true });
    }

    /* Hints opened before (this page was reloaded or opened again) are shown again. */
    async restoreHints(released) {
      while (this.hintsShown < Math.min(released, this.hintTotal)) {
        if (!(await this.loadHint())) return;
      }
    }

    async toggleSolution() {
      const button = $("#solution");
      const panel = $("#solution-panel");
      if (this.solution && !panel.hidden) {
        panel.hidden = true;
        button.setAttribute("aria-expanded", "false");
        button.textContent = "Show solution";
        return;
      }
      if (!this.solution) {
        button.setAttribute("aria-busy", "true");
        const result = await requestJson(this.urls.solution);
        button.removeAttribute("aria-busy");
        if (result.status !== 200 || !result.data) {
          this.showActionError(describeFailure(result));
          return;
        }
        this.solution = result.data;
        $("#solution-body").innerHTML = result.data.html; // rendered and escaped by the server
        addCopyButtons($("#solution-body"));
        $("#use-solution").hidden = !(result.data.manifests || "").trim();
      }
      this.showActionError(null);
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      button.textContent = "Hide solution";
      panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  // --- Wiring ------------------------------------------------------------------------------------

  for (const node of document.querySelectorAll(".inline-md")) setRichText(node, node.textContent);
  for (const node of document.querySelectorAll("time[datetime]")) showTime(node, node.getAttribute("datetime"));
  showOverall();
  const configScript = $("#lab-config");
  const config = configScript ? JSON.parse(configScript.textContent) : null;
  const stepPage = config ? new StepPage(config) : null;
  const progressUrl = config ? config.urls.progress : root.dataset.progressUrl;
  const socket = new NS.LiveSocket(config ? config.urls.ws : root.dataset.wsPath, {
    indicator: $("#connection"),
    onMessage(message) {
      // Other parts of the page (the traffic panel's markers) take the same events from here.
      document.dispatchEvent(new CustomEvent("meshconsole:event", { detail: message }));
      if (message.type === "progress") showStepState(message.step, message.state, message.updated);
      else if (message.type === "attempt" && stepPage) stepPage.accept(message.attempt);
    },
    onOpen(reconnected) {
      if (reconnected) refreshStates(progressUrl);
    },
    onClose() {
      if (stepPage) stepPage.watch();
    },
  });
  if (stepPage) stepPage.attachSocket(socket);
  socket.start();
})();
