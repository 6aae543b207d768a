/* The page's live connection: one websocket that reconnects by itself, with a visible state.
 *
 * A lost connection is retried with exponential backoff and jitter (so a restarted server is not
 * hit by a whole class at the same instant), at once when the browser comes back online or the tab
 * becomes visible, and at once from the "Retry now" button. The indicator (#connection) says
 * whether updates are live; its data-state is connecting | live | reconnecting | offline.
 *
 * Public interface: new MeshConsole.LiveSocket(path, {onMessage, onOpen, onClose, indicator}).start(),
 * isOpen(), stop() (closes for good: a page that switches streams). onOpen(reconnected) runs on every
 * successful connection, onClose() on every loss (it may change `url` for the next attempt).
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const FIRST_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;

  class LiveSocket {
    constructor(path, { onMessage, onOpen, onClose, indicator }) {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      this.url = `${scheme}//${location.host}${path}`;
      this.onMessage = onMessage;
      this.onOpen = onOpen || (() => {});
      this.onClose = onClose || (() => {});
      this.indicator = indicator;
      this.failures = 0;
      this.connections = 0;
      this.timer = null;
      this.countdown = null;
      this.socket = null;
      this.stopped = false;
      this.onRetry = () => this.connectNow();
      this.onVisible = () => {
        if (!document.hidden && !this.isOpen()) this.connectNow();
      };
    }

    start() {
      this.indicator?.querySelector("button")?.addEventListener("click", this.onRetry);
      window.addEventListener("online", this.onRetry);
      document.addEventListener("visibilitychange", this.onVisible);
      this.connect();
      return this;
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      clearInterval(this.countdown);
      this.indicator?.querySelector("button")?.removeEventListener("click", this.onRetry);
      window.removeEventListener("online", this.onRetry);
      document.removeEventListener("visibilitychange", this.onVisible);
      const socket = this.socket;
      this.socket = null;
      socket?.close();
    }

    isOpen() {
      return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
    }

    connectNow() {
      if (this.stopped || this.isOpen() || this.socket?.readyState === WebSocket.CONNECTING) return;
      this.connect();
    }

    connect() {
      if (this.stopped) return;
      clearTimeout(this.timer);
      clearInterval(this.countdown);
      this.show(this.connections ? "reconnecting" : "connecting", this.connections ? "Reconnecting…" : "Connecting…");
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.addEventListener("open", () => {
        this.failures = 0;
        this.connections += 1;
        this.show("live", "Live");
        this.onOpen(this.connections > 1);
      });
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return; // not ours to interpret
        }
        this.onMessage(message);
      });
      socket.addEventListener("close", () => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.scheduleReconnect();
        this.onClose();
      });
    }

    /* Retry even while the browser says it is offline: the "online" event speeds things up, but it
     * is not sent everywhere (and navigator.onLine can be wrong), so it is not relied upon. */
    scheduleReconnect() {
      const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.failures);
      const delay = base / 2 + Math.random() * (base / 2);
      this.failures += 1;
      const due = Date.now() + delay;
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
        const offline = !navigator.onLine;
        const label = `${offline ? "Offline" : "Disconnected"}, retrying in ${seconds} s`;
        this.show(offline ? "offline" : "reconnecting", label, true);
      };
      tick();
      this.countdown = setInterval(tick, 1000);
      this.timer = setTimeout(() => this.connect(), delay);
    }

    show(state, label, offerRetry = false) {
      if (!this.indicator) return;
      this.indicator.dataset.state = state;
      this.indicator.querySelector(".label").textContent = label;
      const retry = this.indicator.querySelector("button");
      if (retry) retry.hidden = !offerRetry;
    }
  }

  NS.LiveSocket = LiveSocket;
})();
