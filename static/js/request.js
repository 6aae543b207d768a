/* JSON requests to the console's own APIs, shared by the page scripts (lab.js, traffic-chart.js, demo.js).
 *
 * MeshConsole.requestJson(url, {method, body}) resolves to {status, data}: status 0 when no answer came at all,
 * data null when the answer was not JSON (a proxy's error page). Requests other than GET carry the CSRF token
 * (from the page's csrfmiddlewaretoken input, else the csrftoken cookie) and a JSON body.
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  async function requestJson(url, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken();
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch {
      return { status: 0, data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON: callers describe the failure by its status
    }
    return { status: response.status, data };
  }

  NS.csrfToken = csrfToken;
  NS.requestJson = requestJson;
})();
