/* The dashboard's live connection: the WebSocket to the sync service — or, when a proxy or the network refuses
 * WebSockets, the same events as Server-Sent Events from /api/events — the indicator in the header, reconnection
 * with exponential backoff and jitter, the heartbeat (ping/pong), polling /api/status while neither is up, and the
 * token problem. What arrives goes to the page: status.js gives start() its loadStatus(),
 * applySnapshot(message, data) and applyEvent(message, data). It draws nothing else.
 */
(function () {
  "use strict";

  var D = window.MadaceDashboard;
  var $ = D.$, h = D.h, setText = D.setText, api = D.api, isUnauthorized = D.isUnauthorized;
  var page = null;  // what status.js gave start()

  // -- constants (README, "How it stays live") ------------------------------------------------------------------
  var PING_INTERVAL_MS = 20000;     // default; the server's welcome `heartbeatMs` replaces it
  var PONG_TIMEOUT_MS = 10000;      // no pong this long after a ping: the connection is dead
  var POLL_MS = 5000;               // /api/status while the WebSocket is down
  var BACKOFF_START_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var STABLE_CONNECTION_MS = 10000; // a connection that lasted this long resets the backoff
  var WELCOME_TIMEOUT_MS = 10000;   // a socket that opens but never says hello is given up
  var SSE_AFTER_REFUSALS = 2;       // WebSocket handshakes refused while the API answers: use the event stream
  var EVENTS_PATH = "api/events?source=web-ui";
  var WS_URL_FROM_PAGE = D.meta("madace-ws-url");
  // Whether the server was started with a token: the page then explains a refused request as a token problem.
  var TOKEN_REQUIRED = D.meta("madace-token-required") === "true";

  // -- the connection ---------------------------------------------------------------------------------------------
  // Modes: connecting (first attempt), connected, reconnecting (an attempt after a drop), waiting (backoff),
  // offline (the sync service is stopped: poll), auth (refused: nothing runs), closed (page hidden for good).
  var conn = {
    mode: "connecting", ws: null, stream: null, useStream: false, wsUrl: WS_URL_FROM_PAGE, attempting: false,
    everConnected: false,
    failures: 0, retryAt: 0, lastFailure: null, refusedBeforeOpen: 0,
    runId: null, lastSeq: null, clientId: null, rtt: null, pingSentAt: 0,
    pingIntervalMs: PING_INTERVAL_MS, pongTimeoutMs: PONG_TIMEOUT_MS
  };
  var timeouts = {}, intervals = {};
  function later(name, fn, ms) {
    clearLater(name);
    timeouts[name] = setTimeout(function () { delete timeouts[name]; fn(); }, ms);
  }
  function every(name, fn, ms) {
    if (intervals[name]) clearInterval(intervals[name]);
    intervals[name] = setInterval(fn, ms);
  }
  function clearLater(name) {
    if (timeouts[name]) { clearTimeout(timeouts[name]); delete timeouts[name]; }
    if (intervals[name]) { clearInterval(intervals[name]); delete intervals[name]; }
  }
  function clearAllTimers() {
    Object.keys(timeouts).forEach(clearLater);
    Object.keys(intervals).forEach(clearLater);
  }

  function renderIndicator() {
    var element = $("conn"), text;
    switch (conn.mode) {
      case "connected":
        text = conn.stream ? "🟢 Connected (event stream)"
          : "🟢 Connected" + (conn.rtt !== null ? " (rtt " + conn.rtt + " ms)" : "");
        break;
      case "waiting":
        text = "🟡 Reconnecting in " + Math.max(1, Math.ceil((conn.retryAt - Date.now()) / 1000)) + " s";
        break;
      case "reconnecting": text = "🟡 Reconnecting…"; break;
      case "offline": text = "🔴 Offline — polling"; break;
      case "auth": text = "🔴 Not authorised"; break;
      case "closed": text = "⚪ Paused"; break;
      default: text = "🟡 Connecting…";
    }
    element.setAttribute("data-mode", conn.mode);
    element.title = conn.mode === "connected" && conn.stream ?
      "Live over Server-Sent Events (/api/events): the WebSocket to the sync service could not be opened"
      : conn.mode === "offline" ? "The sync service is stopped; the page reads /api/status every " + POLL_MS / 1000 + " s"
      : conn.mode === "waiting" ? "The server cannot be reached; the page reads /api/status every " + POLL_MS / 1000 + " s meanwhile" : "";
    setText($("conn-text"), text);
    // Screen readers hear the mode when it changes, not every RTT or countdown second.
    setText($("conn-announce"), text.replace(/^\S+\s/, "").replace(/ \(rtt.*$| in \d+ s$|…$/, ""));
  }

  function setMode(mode) {
    conn.mode = mode;
    if (mode !== "waiting") { clearLater("retry"); clearLater("countdown"); }
    if (mode === "connected" || mode === "auth" || mode === "closed") clearLater("poll");
    if (mode !== "connected") { clearLater("ping"); clearLater("pong"); clearLater("stable"); }
    if (mode === "offline" || mode === "waiting" || mode === "reconnecting") startPolling();
    renderIndicator();
  }

  function startPolling() {
    if (!intervals.poll) every("poll", pollOnce, POLL_MS);
  }

  function pollOnce() {
    if (conn.mode === "connected" || conn.mode === "auth" || conn.mode === "closed") { clearLater("poll"); return; }
    page.loadStatus().then(function () {
      if (conn.mode === "offline") {
        return api("api/sync").then(function (info) {
          if (info && info.running && conn.mode === "offline") attempt();
        });
      }
      if (conn.mode === "waiting" && conn.lastFailure === "http") attempt();  // the server is back: don't wait out the backoff
    }).catch(function (error) {
      if (isUnauthorized(error)) return;
      if (conn.mode === "offline") { conn.lastFailure = "http"; scheduleRetry(); }  // the whole server went away
    });
  }

  function closeSocket(reason) {
    closeStream();
    var ws = conn.ws;
    conn.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try { ws.close(1000, reason || ""); } catch (ignored) { /* already closing */ }
  }

  function scheduleRetry() {
    if (conn.mode === "auth" || conn.mode === "closed") return;
    var base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * Math.pow(2, conn.failures));
    var delay = base / 2 + Math.random() * base / 2;  // exponential, with jitter so clients don't stampede
    conn.failures += 1;
    conn.retryAt = Date.now() + delay;
    setMode("waiting");
    later("retry", attempt, delay);
    every("countdown", renderIndicator, 1000);
  }

  function retryNow() {
    if (conn.mode === "waiting" || conn.mode === "offline") attempt();
  }

  function attempt() {
    if (conn.attempting || conn.mode === "auth" || conn.mode === "closed" || conn.mode === "connected") return;
    conn.attempting = true;
    setMode(conn.everConnected ? "reconnecting" : "connecting");
    api("api/sync").then(function (info) {
      conn.attempting = false;
      if (conn.mode !== "reconnecting" && conn.mode !== "connecting") return;
      if (!info || !info.running) { conn.failures = 0; setMode("offline"); return; }
      if (info.wsUrl) {
        if (originOf(info.wsUrl) !== originOf(WS_URL_FROM_PAGE)) {
          // The sync service moved to another port: this page's Content-Security-Policy names the old one.
          if (reloadOnceFor(info.wsUrl)) return;
          showProblem("The sync service is at " + info.wsUrl + ", which this page may not connect to.",
            "Reload the page to follow it.");
          conn.lastFailure = "ws";
          scheduleRetry();
          return;
        }
        conn.wsUrl = info.wsUrl;
      }
      openSocket();
    }, function (error) {
      conn.attempting = false;
      if (isUnauthorized(error)) return;
      conn.lastFailure = "http";
      scheduleRetry();
    });
  }

  function reloadOnceFor(wsUrl) {
    // Reload to get a page (and CSP) for the new URL, but never twice for the same URL: no reload loop.
    try {
      if (sessionStorage.getItem("madace-reloaded-for") === wsUrl) return false;
      sessionStorage.setItem("madace-reloaded-for", wsUrl);
    } catch (error) {
      return false;
    }
    location.reload();
    return true;
  }

  function originOf(url) {
    try { var parsed = new URL(url); return parsed.protocol + "//" + parsed.host; } catch (error) { return url; }
  }

  function socketUrl() {
    var params = new URLSearchParams();
    if (conn.runId && conn.lastSeq !== null) { params.set("since", String(conn.lastSeq)); params.set("runId", conn.runId); }
    params.set("source", "web-ui");
    return conn.wsUrl + (conn.wsUrl.indexOf("?") >= 0 ? "&" : "?") + params.toString();
  }

  function closeStream() {
    var stream = conn.stream;
    conn.stream = null;
    if (!stream) return;
    stream.onopen = stream.onmessage = stream.onerror = null;
    stream.close();
  }

  // The same messages as Server-Sent Events: EventSource reconnects by itself, sending Last-Event-ID, and the
  // server replays what was missed (or resyncs); only a stream it gave up on (an HTTP error) is opened anew.
  function openStream() {
    closeSocket();
    var stream;
    try {
      stream = new EventSource(EVENTS_PATH);
    } catch (error) {
      conn.useStream = false;
      conn.lastFailure = "ws";
      scheduleRetry();
      return;
    }
    conn.stream = stream;
    stream.onopen = function () {
      if (conn.stream === stream && conn.mode !== "connected" && conn.runId) setMode("connected");  // resumed
    };
    stream.onmessage = function (event) { if (conn.stream === stream) handleMessage(event.data); };
    stream.onerror = function () {
      if (conn.stream !== stream) return;
      if (stream.readyState === EventSource.CLOSED) {
        conn.stream = null;
        conn.lastFailure = "ws";
        scheduleRetry();
      } else if (conn.mode === "connected") {
        setMode("reconnecting");  // EventSource is trying again; /api/status is polled meanwhile
      }
    };
  }

  function openSocket() {
    if (conn.useStream) { openStream(); return; }
    closeSocket();
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (error) {
      conn.lastFailure = "ws";
      scheduleRetry();
      return;
    }
    var opened = false, openedAt = 0;
    conn.ws = ws;
    later("welcome", function () {
      if (conn.ws !== ws) return;
      closeSocket("no welcome");
      socketLost(opened, openedAt);
    }, WELCOME_TIMEOUT_MS);
    ws.onopen = function () { opened = true; openedAt = Date.now(); };
    ws.onmessage = function (event) { if (conn.ws === ws) handleMessage(event.data); };
    ws.onerror = function () { /* a close event follows */ };
    ws.onclose = function () {
      if (conn.ws !== ws) return;
      conn.ws = null;
      socketLost(opened, openedAt);
    };
  }

  function socketLost(opened, openedAt) {
    clearLater("ping"); clearLater("pong"); clearLater("stable"); clearLater("welcome");
    if (!opened) {
      // Refused before it opened: the handshake failed (a browser can't see why). An API call tells a wrong token
      // (401) from an unreachable server; after a few refusals with the API answering, say so.
      conn.refusedBeforeOpen += 1;
      conn.lastFailure = "ws";
      if (conn.refusedBeforeOpen >= SSE_AFTER_REFUSALS && typeof EventSource === "function") {
        conn.useStream = true;  // the HTTP port answers (attempt() asked /api/sync): its event stream may pass
      }
      if (conn.refusedBeforeOpen >= 3) {
        api("api/sync").then(function (info) {
          if (info && info.running && conn.refusedBeforeOpen >= 3 && conn.mode !== "connected") {
            showProblem("The sync service refuses this page's WebSocket connection.",
              "The server answers HTTP requests but not the WebSocket handshake at " + conn.wsUrl +
              ". If the dashboard is opened through another host name or proxy, start the server with --allow-origin for it.");
          }
        }, function () {});
      }
    } else {
      conn.refusedBeforeOpen = 0;
      conn.lastFailure = "ws";
      if (Date.now() - openedAt >= STABLE_CONNECTION_MS) conn.failures = 0;
    }
    scheduleRetry();
  }

  function connected(welcome) {
    if (welcome.runId !== conn.runId) conn.lastSeq = null;  // another run: its snapshot sets the seq
    conn.runId = welcome.runId || null;
    conn.clientId = welcome.clientId || null;
    var heartbeat = Number(welcome.heartbeatMs);
    if (heartbeat >= 1000 && heartbeat <= 120000) {
      conn.pingIntervalMs = heartbeat;
      conn.pongTimeoutMs = Math.min(PONG_TIMEOUT_MS, heartbeat / 2);
    }
    conn.everConnected = true;
    conn.refusedBeforeOpen = 0;
    conn.lastFailure = null;
    conn.rtt = null;
    clearLater("welcome");
    hideProblem();
    setMode("connected");
    every("ping", sendPing, conn.pingIntervalMs);
    later("stable", function () { conn.failures = 0; }, STABLE_CONNECTION_MS);
    sendPing();
  }

  function sendPing() {
    var ws = conn.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    conn.pingSentAt = Date.now();
    try {
      ws.send(JSON.stringify({ type: "ping", timestamp: conn.pingSentAt }));
    } catch (error) {
      return;
    }
    if (!timeouts.pong) later("pong", connectionDead, conn.pongTimeoutMs);
  }

  function connectionDead() {
    if (conn.mode !== "connected") return;
    closeSocket("no pong");
    conn.lastFailure = "ws";
    scheduleRetry();
  }

  function handleMessage(text) {
    var message;
    try { message = JSON.parse(text); } catch (error) { return; }
    if (!message || typeof message.type !== "string") return;
    var data = message.data && typeof message.data === "object" ? message.data : {};
    switch (message.type) {
      case "ping":  // the welcome
        connected(data);
        return;
      case "pong":
        clearLater("pong");
        if (typeof data.timestamp === "number") conn.rtt = Math.max(0, Date.now() - data.timestamp);
        renderIndicator();
        return;
      case "error":
        console.warn("sync server refused a message:", data.code, data.message);
        return;
      case "snapshot":
        conn.lastSeq = typeof message.seq === "number" ? message.seq : conn.lastSeq;
        page.applySnapshot(message, data);
        return;
    }
    if (typeof message.seq === "number") {
      if (conn.lastSeq !== null && message.seq <= conn.lastSeq) return;  // already applied
      conn.lastSeq = message.seq;
    }
    page.applyEvent(message, data);
  }

  // -- problems (wrong token, refused handshake) -------------------------------------------------------------------
  function showProblem(title, detail) {
    var alert = $("alert");
    alert.textContent = "";
    alert.appendChild(h("strong", { text: title }));
    if (detail) alert.appendChild(h("p", { text: detail }));
    alert.hidden = false;
  }
  function hideProblem() { $("alert").hidden = true; }

  function showAuthProblem() {
    if (conn.mode === "auth") return;
    var hadToken = new URLSearchParams(location.search).has("token");
    if (!TOKEN_REQUIRED) hadToken = false;  // a 401 without a server token would be a proxy's; say it plainly
    closeSocket("unauthorised");
    clearAllTimers();
    conn.attempting = false;
    setMode("auth");
    showProblem(hadToken ? "The token in this link was not accepted." : "This server requires a token.",
      "Open the dashboard with the link “madace-status serve” printed (it ends in /status?token=…). " +
      "The page keeps the token in a cookie for its API and live-update requests.");
  }

  // The Refresh button (status.js reloads the data): try once more if refused, reconnect at once if disconnected.
  function refresh() {
    if (conn.mode === "auth") { hideProblem(); conn.mode = "waiting"; }  // asked for: try once more
    if (conn.mode === "waiting" || conn.mode === "offline") { conn.failures = 0; attempt(); }
    else if (conn.mode === "connected") sendPing();
  }

  window.addEventListener("online", function () {
    if (conn.mode === "connected") sendPing();
    else retryNow();
  });
  window.addEventListener("offline", function () { if (conn.mode === "connected") sendPing(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") return;
    if (conn.mode === "connected") sendPing();  // timers may have been throttled while hidden: check now
    else retryNow();
  });
  window.addEventListener("pagehide", function () {
    closeSocket("page closed");
    clearAllTimers();
    conn.attempting = false;
    if (conn.mode !== "auth") setMode("closed");
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && conn.mode === "closed") { conn.failures = 0; conn.mode = "waiting"; attempt(); }
  });

  D.onUnauthorized = showAuthProblem;
  D.connection = {
    start: function (handlers) { page = handlers; attempt(); },
    refresh: refresh,
    httpFailed: function () { conn.lastFailure = "http"; }  // the first load could not reach the server at all
  };
})();
