(function () {
  "use strict";

  var REFRESH_MS = 2000;       // GET /api/sync this often while the page is visible
  var UNREACHABLE_MAX_MS = 10000;

  function $(id) { return document.getElementById(id); }
  function h(tag, attributes) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      var value = attributes[key];
      if (value === null || value === undefined) return;
      if (key === "text") element.textContent = String(value);
      else if (key === "className") element.className = value;
      else element.setAttribute(key, String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      element.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return element;
  }
  function setText(element, text) { text = String(text); if (element.textContent !== text) element.textContent = text; }
  function pad(number) { return (number < 10 ? "0" : "") + number; }
  function clockTime(date) { return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()); }
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(Number(seconds) || 0));
    var days = Math.floor(seconds / 86400), hours = Math.floor(seconds % 86400 / 3600);
    var minutes = Math.floor(seconds % 3600 / 60), rest = seconds % 60;
    if (days) return days + " d " + hours + " h " + pad(minutes) + " min";
    if (hours) return hours + " h " + pad(minutes) + " min " + pad(rest) + " s";
    if (minutes) return minutes + " min " + pad(rest) + " s";
    return rest + " s";
  }
  function when(value) {
    var date = new Date(value);
    if (!value || isNaN(date.getTime())) return h("span", { text: "—" });
    var ago = (Date.now() - date.getTime()) / 1000;
    return h("span", null, h("time", { datetime: date.toISOString(), title: date.toLocaleString(), text: clockTime(date) }), " ",
      h("span", { className: "ago", text: ago < 1.5 ? "(just now)" : "(" + duration(ago) + " ago)" }));
  }

  var timer = null, inFlight = false, failures = 0, stopped = false, busy = false;

  function schedule(ms) {
    if (timer) clearTimeout(timer);
    timer = stopped ? null : setTimeout(function () { timer = null; refresh(); }, ms);
  }

  function request(method, body) {
    var options = { method: method, credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } };
    if (body) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
    // Anti-CSRF (as Jupyter's _xsrf): the cookie alone does not authorise a write; the server put this
    // page's token in <meta name="madace-csrf"> and wants it back in this header on POST /api/sync.
    if (method !== "GET") options.headers["X-Madace-CSRF"] = document.querySelector('meta[name="madace-csrf"]').content;
    return fetch("api/sync", options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (document_) {
        return { status: response.status, body: document_ || {} };
      });
    });
  }

  function unauthorised() {
    stopped = true;
    if (timer) { clearTimeout(timer); timer = null; }
    var alert = $("alert");
    alert.textContent = "";
    var hadToken = new URLSearchParams(location.search).has("token");
    alert.appendChild(h("strong", { text: hadToken ? "The token in this link was not accepted." : "This server requires a token." }));
    alert.appendChild(h("p", { text: "Open the dashboard with the link “madace-status serve” printed (it ends in /status?token=…). " +
      "It keeps the token in a cookie, and this page uses that cookie too." }));
    alert.hidden = false;
    setText($("checked"), "Not authorised");
  }

  function refresh() {
    if (inFlight || stopped) return;
    inFlight = true;
    request("GET").then(function (answer) {
      inFlight = false;
      if (answer.status === 401) { unauthorised(); return; }
      failures = 0;
      if (answer.status === 200) render(answer.body);
      setText($("checked"), "Checked at " + clockTime(new Date()));
      schedule(REFRESH_MS);
    }, function () {
      inFlight = false;
      failures += 1;
      showState(null);
      var delay = Math.min(UNREACHABLE_MAX_MS, REFRESH_MS * Math.pow(2, failures - 1));
      setText($("checked"), "Server unreachable — retrying in " + Math.round(delay / 1000) + " s");
      schedule(delay);
    });
  }

  function showState(running) {
    // The action that would do nothing is marked, not removed: it keeps its place in the Tab order.
    $("start").setAttribute("aria-disabled", running === true ? "true" : "false");
    $("stop").setAttribute("aria-disabled", running === false ? "true" : "false");
    var pill = $("state");
    pill.className = "pill " + (running === true ? "running" : running === false ? "stopped" : "unknown");
    setText(pill, running === true ? "Running" : running === false ? "Stopped" : "Unknown");
  }

  function render(info) {
    showState(Boolean(info.running));
    setText($("uptime"), info.running ? duration(info.uptimeSeconds) : "— (stopped)");
    var started = $("started");
    started.textContent = "";
    started.appendChild(info.startedAt ? when(info.startedAt) : h("span", { text: "—" }));
    var portChosenAtStart = !info.running && /:0\/ws$/.test(info.wsUrl || "");
    setText($("ws-url"), portChosenAtStart ? "— (not listening; a free port is chosen at start)"
      : (info.wsUrl || "—") + (info.running ? "" : " (not listening)"));
    setText($("run-id"), info.runId || "—");
    setText($("seq"), info.seq === null || info.seq === undefined ? "—" : String(info.seq));
    setText($("poll"), info.pollIntervalMs ? info.pollIntervalMs + " ms" : "—");
    setText($("last-error"), info.lastError || "none");
    renderClients(Array.isArray(info.clients) ? info.clients : []);
  }

  function renderClients(clients) {
    var body = $("clients-body");
    body.textContent = "";
    clients.slice().sort(function (a, b) { return String(a.connectedAt).localeCompare(String(b.connectedAt)); }).forEach(function (client) {
      body.appendChild(h("tr", { "data-client": client.id },
        h("th", { scope: "row", "data-label": "Source", text: client.source || "unknown" }),
        h("td", { "data-label": "Client id" }, h("code", { title: client.id, text: String(client.id || "").slice(0, 8) })),
        h("td", { "data-label": "Connected since" }, when(client.connectedAt)),
        h("td", { "data-label": "Last seen" }, when(client.lastSeen)),
        h("td", { "data-label": "Address" }, h("code", { text: client.remote || "—" })),
        h("td", { "data-label": "Topics", text: (client.topics || []).join(", ") + (client.lagging ? " (lagging)" : "") })));
    });
    $("clients-empty").hidden = clients.length > 0;
    setText($("client-count"), "(" + clients.length + ")");
  }

  function act(action, button) {
    if (busy || button.getAttribute("aria-disabled") === "true") return;
    busy = true;
    button.setAttribute("aria-busy", "true");
    var message = $("message");
    message.className = "message";
    setText(message, action.charAt(0).toUpperCase() + action.slice(1) + "ing…");
    request("POST", { action: action }).then(function (answer) {
      if (answer.status === 401) { unauthorised(); return; }
      var ok = answer.body.success !== false && answer.status < 400;
      message.className = "message" + (ok ? "" : " failed");
      setText(message, (answer.body.message || answer.body.error || ("HTTP " + answer.status)));
      if (typeof answer.body.running === "boolean") showState(answer.body.running);
    }, function () {
      message.className = "message failed";
      setText(message, "The server cannot be reached.");
    }).then(function () {
      busy = false;
      button.removeAttribute("aria-busy");
      if (!stopped) { schedule(0); }
    });
  }

  ["start", "stop", "restart"].forEach(function (id) {
    var button = $(id);
    button.addEventListener("click", function () { act(button.getAttribute("data-action"), button); });
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !stopped) schedule(0);
  });
  window.addEventListener("online", function () { if (!stopped) schedule(0); });
  window.addEventListener("pagehide", function () { if (timer) { clearTimeout(timer); timer = null; } });
  window.addEventListener("pageshow", function (event) { if (event.persisted && !stopped) schedule(0); });

  refresh();
})();
