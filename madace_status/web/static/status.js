(function () {
  "use strict";

  // -- constants (SPEC §6.5 and §8) -----------------------------------------------------------------------------
  var PING_INTERVAL_MS = 20000;     // default; the server's welcome `heartbeatMs` replaces it
  var PONG_TIMEOUT_MS = 10000;      // no pong this long after a ping: the connection is dead
  var POLL_MS = 5000;               // /api/status while the WebSocket is down
  var BACKOFF_START_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var STABLE_CONNECTION_MS = 10000; // a connection that lasted this long resets the backoff
  var WELCOME_TIMEOUT_MS = 10000;   // a socket that opens but never says hello is given up
  var FEED_MAX_ITEMS = 50;
  var ACTIVITY_FETCH_LIMIT = 30;
  var STATES = ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"];
  var STATE_LABELS = { BACKLOG: "Backlog", TODO: "Todo", IN_PROGRESS: "In progress", DONE: "Done" };
  var STATUS_LABELS = { pending: "pending", in_progress: "in progress", completed: "completed", failed: "failed", invalid: "invalid" };

  function meta(name) {
    var element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.getAttribute("content") : "";
  }
  var WS_URL_FROM_PAGE = meta("madace-ws-url");
  // Whether the server was started with a token: the page then explains a refused request as a token problem.
  var TOKEN_REQUIRED = meta("madace-token-required") === "true";

  // -- small DOM helpers (text only: nothing from the server is ever parsed as HTML) -----------------------------
  function $(id) { return document.getElementById(id); }
  function h(tag, attributes) {
    var element = document.createElement(tag);
    if (attributes) {
      Object.keys(attributes).forEach(function (key) {
        var value = attributes[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") element.textContent = String(value);
        else if (key === "className") element.className = value;
        else element.setAttribute(key, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      element.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return element;
  }
  function setText(element, text) {
    text = String(text);
    if (element.textContent !== text) element.textContent = text;
  }
  function statusClass(status) {
    return Object.prototype.hasOwnProperty.call(STATUS_LABELS, status) ? "s-" + status : "s-other";
  }
  function statusBadge(status) {
    return h("span", { className: "badge " + statusClass(status), text: STATUS_LABELS[status] || String(status || "unknown") });
  }
  function pad(number) { return (number < 10 ? "0" : "") + number; }
  function clockTime(date) { return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()); }
  var dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  function shortTime(value) {
    // Today: HH:MM:SS; another day: "Nov 20, 10:30". Bad or missing values: "—".
    if (value === null || value === undefined || value === "") return "—";
    var date = new Date(value);
    if (isNaN(date.getTime())) return String(value);
    var now = new Date();
    if (date.toDateString() === now.toDateString()) return clockTime(date);
    return dayFormat.format(date) + ", " + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }
  function timeElement(value) {
    var date = value ? new Date(value) : null;
    var valid = date && !isNaN(date.getTime());
    return h("time", { datetime: valid ? date.toISOString() : null, title: valid ? date.toLocaleString() : null, text: shortTime(value) });
  }
  function plural(count, word) { return count + " " + word + (count === 1 ? "" : "s"); }

  // -- the model the page shows ------------------------------------------------------------------------------------
  var model = {
    states: null, total: null, violations: [], warnings: [], errors: [],
    workflows: new Map(),   // name → record (full from snapshot/events, brief from /api/status)
    stories: new Map(),     // id → story record, in file order
    epics: new Map(),       // id → epic record, in model order
    version: 0              // bumped by every WebSocket update; a slower HTTP answer never overwrites a newer one
  };

  function touch() { setText($("last-updated"), clockTime(new Date())); $("last-updated").setAttribute("datetime", new Date().toISOString()); }

  function applySummary(summary) {
    if (!summary || typeof summary !== "object") return;
    if (summary.states) model.states = summary.states;
    if (summary.total) model.total = summary.total;
    model.violations = Array.isArray(summary.violations) ? summary.violations : [];
    if (Array.isArray(summary.warnings)) model.warnings = summary.warnings;
    if (Array.isArray(summary.errors)) model.errors = summary.errors;
  }

  function applyBriefWorkflows(list) {
    // /api/status carries each workflow in brief; keep what else we know of a record that did not change name.
    var next = new Map();
    list.forEach(function (brief) {
      var known = model.workflows.get(brief.name);
      next.set(brief.name, Object.assign({}, known || {}, brief));
    });
    model.workflows = next;
  }

  function applyStatusEnvelope(document_) {
    var summary = document_ && document_.data;
    if (!summary) return;
    applySummary(summary);
    if (Array.isArray(summary.workflows)) applyBriefWorkflows(summary.workflows);
    renderAll();
    touch();
  }

  function applySnapshot(data) {
    applySummary(data.summary);
    if (Array.isArray(data.warnings)) model.warnings = data.warnings;
    if (Array.isArray(data.errors)) model.errors = data.errors;
    if (Array.isArray(data.workflows)) {
      model.workflows = new Map();
      data.workflows.forEach(function (workflow) { model.workflows.set(workflow.name, workflow); });
    } else if (data.summary && Array.isArray(data.summary.workflows)) {
      applyBriefWorkflows(data.summary.workflows);
    }
    if (Array.isArray(data.stories)) setStories(data.stories);
    if (Array.isArray(data.epics)) {
      model.epics = new Map();
      data.epics.forEach(function (epic) { model.epics.set(epic.id, epic); });
      epicIndex = null;
    }
    renderAll();
  }

  // -- rendering ---------------------------------------------------------------------------------------------------
  function renderCards() {
    if (!model.states) return;
    var byState = {};
    model.violations.forEach(function (violation) { byState[violation.state] = violation; });
    STATES.forEach(function (state) {
      var row = model.states[state] || { count: 0, points: 0, limit: null, violated: false };
      var card = $("card-" + state);
      setText(card.querySelector(".count"), row.count);
      setText(card.querySelector(".points"), (row.points || 0) + " pts");
      setText(card.querySelector(".limit"), row.limit === null || row.limit === undefined ? "no limit" : "max " + row.limit);
      var violation = byState[state];
      var violated = Boolean(row.violated || violation);
      card.classList.toggle("violated", violated);
      var flag = card.querySelector(".flag");
      flag.hidden = !violated;
      if (violated) {
        var ids = violation && violation.storyIds ? ": " + violation.storyIds.join(", ") : "";
        setText(flag, "⚠ WIP limit exceeded — " + row.count + " stories, max " + row.limit + ids);
      }
      card.setAttribute("aria-label", STATE_LABELS[state] + ": " + plural(row.count, "story") +
        (violated ? ", over its limit of " + row.limit : ""));
    });
    if (model.total) {
      var total = $("card-TOTAL");
      setText(total.querySelector(".count"), model.total.count);
      setText(total.querySelector(".points"), (model.total.points || 0) + " pts");
    }
  }

  function renderNotices() {
    var list = $("notices");
    var items = [];
    model.errors.forEach(function (text) { items.push(["error", "Error: " + text]); });
    model.warnings.forEach(function (text) {
      if (String(text).indexOf("WIP limit exceeded") === 0) return;  // already flagged on its card
      items.push(["warning", "Warning: " + text]);
    });
    var key = JSON.stringify(items);
    if (list.getAttribute("data-key") === key) return;
    list.setAttribute("data-key", key);
    list.textContent = "";
    items.slice(0, 20).forEach(function (item) { list.appendChild(h("li", { className: item[0], text: item[1] })); });
    if (items.length > 20) list.appendChild(h("li", { className: "warning", text: "… and " + (items.length - 20) + " more" }));
  }

  function workflowRow(name) {
    var row = h("tr", { "data-name": name },
      h("th", { scope: "row" }, h("button", { type: "button", className: "wf-name wf-open link", "aria-haspopup": "dialog", text: name }),
        h("span", { className: "wf-error", role: "note", hidden: true })),
      h("td", { className: "status-cell", "data-label": "Status" }),
      h("td", { className: "step-cell", "data-label": "Step" }, h("span", { className: "step-num mono" }), " ", h("span", { className: "step-name" })),
      h("td", { className: "progress-cell", "data-label": "Progress" },
        h("span", { className: "pct" }),
        h("div", { className: "meter", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": name + " progress" }, h("div", { className: "fill" }))),
      h("td", { className: "updated-cell", "data-label": "Last update" }));
    // A click anywhere on the row (or Enter on its name) opens the workflow's details (details.js).
    row.addEventListener("click", function () {
      var hooks = window.MadaceDashboard;
      if (hooks && typeof hooks.openDetails === "function") hooks.openDetails("workflow", name);
    });
    return row;
  }

  function fillWorkflowRow(row, workflow) {
    var status = workflow.status;
    var key = JSON.stringify([status, workflow.currentStep, workflow.totalSteps, workflow.currentStepName, workflow.progress, workflow.updatedAt, workflow.error]);
    if (row.getAttribute("data-key") === key) return false;
    row.setAttribute("data-key", key);
    row.setAttribute("data-status", status);
    var statusCell = row.querySelector(".status-cell");
    statusCell.textContent = "";
    statusCell.appendChild(statusBadge(status));
    var total = Number(workflow.totalSteps) || 0;
    var current = Number(workflow.currentStep) || 0;
    setText(row.querySelector(".step-num"), status === "invalid" ? "—" : current + "/" + total);
    setText(row.querySelector(".step-name"), workflow.currentStepName || "");
    var progress = Math.max(0, Math.min(100, Math.round(Number(workflow.progress) || 0)));
    setText(row.querySelector(".pct"), progress + "%");
    var bar = row.querySelector(".meter");
    bar.className = "meter " + statusClass(status);
    bar.setAttribute("aria-valuenow", String(progress));
    bar.firstChild.style.width = progress + "%";
    var error = row.querySelector(".wf-error");
    var showError = Boolean(workflow.error);
    error.hidden = !showError;
    setText(error, showError ? "⚠ " + workflow.error : "");
    var updatedCell = row.querySelector(".updated-cell");
    updatedCell.textContent = "";
    updatedCell.appendChild(timeElement(workflow.updatedAt || workflow.startedAt));
    return true;
  }

  function flash(row) {
    row.classList.remove("flash");
    void row.offsetWidth;  // restart the animation
    row.classList.add("flash");
  }

  var renderedOnce = false;
  function renderWorkflows() {
    var body = $("wf-body");
    var names = Array.from(model.workflows.keys()).sort();
    var existing = new Map();
    Array.prototype.forEach.call(body.rows, function (row) { existing.set(row.getAttribute("data-name"), row); });
    existing.forEach(function (row, name) { if (!model.workflows.has(name)) row.remove(); });
    names.forEach(function (name, index) {
      var row = existing.get(name);
      var isNew = !row;
      if (isNew) row = workflowRow(name);
      var changed = fillWorkflowRow(row, model.workflows.get(name));
      if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
      if (changed && renderedOnce && !isNew) flash(row);
    });
    renderedOnce = true;
    $("wf-empty").hidden = names.length > 0;
    var counts = {};
    model.workflows.forEach(function (workflow) { counts[workflow.status] = (counts[workflow.status] || 0) + 1; });
    var parts = Object.keys(counts).sort().map(function (status) { return counts[status] + " " + (STATUS_LABELS[status] || status); });
    setText($("wf-count"), names.length ? "(" + parts.join(", ") + ")" : "");
  }

  // The lookup's suggestions (every story, epic and workflow id): invisible until the user types, so they are
  // built after the visible parts, once per burst of updates.
  var knownIdsPending = false;
  function renderKnownIds() {
    if (knownIdsPending) return;
    knownIdsPending = true;
    setTimeout(function () { knownIdsPending = false; buildKnownIds(); }, 0);
  }
  function buildKnownIds() {
    var ids = [];
    model.stories.forEach(function (story) { ids.push(story.id); });
    model.epics.forEach(function (epic) { ids.push(epic.id); });
    model.workflows.forEach(function (workflow, name) { ids.push(name); });
    ids.sort();  // a story that only moved leaves the list as it was: 2,000 options are not rebuilt
    var key = ids.join("\n");
    var list = $("known-ids");
    if (list.getAttribute("data-key") === key) return;
    list.setAttribute("data-key", key);
    list.textContent = "";
    ids.forEach(function (id) { list.appendChild(h("option", { value: id })); });
  }

  function renderAll() {
    renderCards();
    renderNotices();
    renderWorkflows();
    renderKnownIds();
    renderViews(null);
  }

  // -- the views (board.js, epics.js, flow.js, details.js: each pushed itself onto window.MadaceViews) ----------
  function setStories(list) {
    var stories = new Map();
    list.forEach(function (story) { if (story && story.id) stories.set(story.id, story); });
    model.stories = stories;
  }

  // A story's epic: the first epic (in model order) whose storyIds lists it. Rebuilt when the epics change.
  var epicIndex = null;
  function storyEpic(storyId) {
    if (epicIndex === null) {
      epicIndex = new Map();
      model.epics.forEach(function (epic) {
        (Array.isArray(epic.storyIds) ? epic.storyIds : []).forEach(function (id) {
          id = String(id).toUpperCase();
          if (!epicIndex.has(id)) epicIndex.set(id, epic);
        });
      });
    }
    return epicIndex.get(String(storyId).toUpperCase()) || null;
  }

  // change: null after a snapshot or a full reload (render everything), else the live message just applied.
  function renderViews(change) {
    (window.MadaceViews || []).forEach(function (view) {
      try {
        view.render(model, change);
      } catch (error) {
        console.warn("the " + view.name + " view failed to render:", error);  // the other views still render
      }
    });
  }

  // -- the activity feed -------------------------------------------------------------------------------------------
  var feedKeys = new Set();

  function stateLabel(state) { return state ? (STATE_LABELS[state] || state) : "—"; }

  function describeEvent(message) {
    var data = message.data || {};
    switch (message.type) {
      case "state_updated": {
        var state = data.state || {};
        var text = data.workflowName + ": " + (STATUS_LABELS[state.status] || state.status) + ", step " +
          (state.currentStep || 0) + "/" + (state.totalSteps || 0);
        if (state.currentStepName) text += " " + state.currentStepName;
        text += " (" + (state.progress || 0) + "%)";
        if (state.error && state.status !== "failed") text += " — " + state.error;
        return { kind: "updated", label: "workflow", text: text };
      }
      case "workflow_started": return { kind: "started", label: "started", text: data.message || data.workflowName + " started" };
      case "workflow_completed": return { kind: "completed", label: "completed", text: data.message || data.workflowName + " completed" };
      case "workflow_failed": return { kind: "failed", label: "failed", text: data.message || data.workflowName + " failed" };
      case "workflow_removed": return { kind: "removed", label: "removed", text: "Workflow " + data.workflowName + " removed" };
      case "stories_updated": {
        var changes = Array.isArray(data.changes) ? data.changes : [];
        var parts = changes.slice(0, 3).map(function (change) {
          if (change.from === null || change.from === undefined) return change.id + " added to " + stateLabel(change.to);
          if (change.to === null || change.to === undefined) return change.id + " removed from " + stateLabel(change.from);
          return change.id + ": " + stateLabel(change.from) + " → " + stateLabel(change.to);
        });
        if (changes.length > 3) parts.push("and " + (changes.length - 3) + " more");
        return { kind: "stories", label: "stories", text: parts.length ? parts.join("; ") : "Story status file updated" };
      }
      case "epics_updated": {
        var changed = (data.epics || []).map(function (epic) { return epic.id; });
        var removed = data.removed || [];
        var bits = [];
        if (changed.length) bits.push("updated " + changed.join(", "));
        if (removed.length) bits.push("removed " + removed.join(", "));
        return { kind: "epics", label: "epics", text: "Epics " + (bits.join("; ") || "updated") };
      }
      default: return null;
    }
  }

  function feedItem(message, description) {
    var item = h("li", { className: "k-" + description.kind, "data-seq": message.seq, "data-ts": message.timestamp },
      timeElement(message.timestamp),
      h("span", { className: "what", text: description.text }),
      h("span", { className: "kind", text: description.label }));
    return item;
  }

  function addToFeed(messages) {
    var feed = $("feed");
    messages.forEach(function (message) {
      if (!message || typeof message.type !== "string") return;
      var key = message.type + "|" + message.seq + "|" + message.timestamp;
      if (feedKeys.has(key)) return;
      var description = describeEvent(message);
      if (!description) return;
      feedKeys.add(key);
      var item = feedItem(message, description);
      item.setAttribute("data-key", key);
      // Newest first: by timestamp, then seq.
      var before = null;
      for (var i = 0; i < feed.children.length; i++) {
        var other = feed.children[i];
        var ts = Number(other.getAttribute("data-ts")), seq = Number(other.getAttribute("data-seq"));
        if (ts < message.timestamp || (ts === message.timestamp && seq < message.seq)) { before = other; break; }
      }
      feed.insertBefore(item, before);
    });
    while (feed.children.length > FEED_MAX_ITEMS) {
      feedKeys.delete(feed.lastElementChild.getAttribute("data-key"));
      feed.removeChild(feed.lastElementChild);
    }
    $("feed-empty").hidden = feed.children.length > 0;
  }

  // -- HTTP --------------------------------------------------------------------------------------------------------
  function ApiError(status, code, message, body) {
    this.status = status; this.code = code; this.message = message; this.body = body;
  }
  function api(path, options) {
    return fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } }, options || {}))
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (response.status === 401) {
            showAuthProblem();
            throw new ApiError(401, "UNAUTHORIZED", (body && body.error) || "unauthorized", body);
          }
          if (!response.ok) throw new ApiError(response.status, (body && body.code) || "HTTP_" + response.status, (body && body.error) || response.statusText, body);
          return body;
        });
      });
  }
  function isUnauthorized(error) { return error instanceof ApiError && error.status === 401; }

  function loadStatus() {
    var version = model.version;
    return api("/api/status").then(function (document_) {
      if (model.version === version) applyStatusEnvelope(document_);
      return true;
    });
  }
  function loadActivity() {
    return api("/api/activity?brief=1&limit=" + ACTIVITY_FETCH_LIMIT).then(function (body) {
      if (body && Array.isArray(body.events)) addToFeed(body.events);
    });
  }

  // -- the connection ---------------------------------------------------------------------------------------------
  // Modes: connecting (first attempt), connected, reconnecting (an attempt after a drop), waiting (backoff),
  // offline (the sync service is stopped: poll), auth (refused: nothing runs), closed (page hidden for good).
  var conn = {
    mode: "connecting", ws: null, wsUrl: WS_URL_FROM_PAGE, attempting: false, everConnected: false,
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
        text = "🟢 Connected" + (conn.rtt !== null ? " (rtt " + conn.rtt + " ms)" : "");
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
    element.title = conn.mode === "offline" ? "The sync service is stopped; the page reads /api/status every " + POLL_MS / 1000 + " s"
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
    loadStatus().then(function () {
      if (conn.mode === "offline") {
        return api("/api/sync").then(function (info) {
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
    api("/api/sync").then(function (info) {
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

  function openSocket() {
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
      if (conn.refusedBeforeOpen >= 3) {
        api("/api/sync").then(function (info) {
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
        model.version += 1;
        conn.lastSeq = typeof message.seq === "number" ? message.seq : conn.lastSeq;
        applySnapshot(data);
        touch();
        loadActivity().catch(function () {});  // events this page missed while away, once per (re)connection
        return;
    }
    if (typeof message.seq === "number") {
      if (conn.lastSeq !== null && message.seq <= conn.lastSeq) return;  // already applied
      conn.lastSeq = message.seq;
    }
    model.version += 1;
    switch (message.type) {
      case "state_updated":
        if (data.workflow && data.workflow.name) model.workflows.set(data.workflow.name, data.workflow);
        else if (data.workflowName && data.state) model.workflows.set(data.workflowName, Object.assign({ name: data.workflowName }, model.workflows.get(data.workflowName) || {}, data.state));
        renderWorkflows();
        renderKnownIds();
        break;
      case "workflow_removed":
        model.workflows.delete(data.workflowName);
        renderWorkflows();
        renderKnownIds();
        break;
      case "stories_updated":
        applySummary(data.summary);
        if (Array.isArray(data.stories)) setStories(data.stories);
        renderCards();
        renderNotices();
        renderKnownIds();
        break;
      case "epics_updated":
        (data.epics || []).forEach(function (epic) { model.epics.set(epic.id, epic); });
        (data.removed || []).forEach(function (id) { model.epics.delete(id); });
        epicIndex = null;
        renderKnownIds();
        break;
      case "workflow_started": case "workflow_completed": case "workflow_failed":
        break;  // the state_updated before it carried the data
      default:
        return;
    }
    if (Array.isArray(data.warnings) && Array.isArray(data.errors)) {  // the project's notices changed with it
      model.warnings = data.warnings;
      model.errors = data.errors;
      renderNotices();
    }
    renderViews(message);
    addToFeed([message]);
    touch();
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

  // -- lookup ------------------------------------------------------------------------------------------------------
  var SUMMARY_WORDS = ["summary", "overview", "all", "status", "state", "state-machine"];
  function classify(text) {
    text = text.trim();
    if (!text) return { problem: "Type a story id, an epic id or a workflow name." };
    if (text.length > 200) return { problem: "That is longer than any id (200 characters at most)." };
    var lowered = text.toLowerCase();
    if (SUMMARY_WORDS.indexOf(lowered) >= 0) return { problem: "The summary is the state machine above; type a story, epic or workflow id." };
    var prefixed = /^(story|epic|workflow):\s*(.+)$/i.exec(text);
    if (prefixed) {
      var kind = prefixed[1].toLowerCase();
      return { type: kind, id: kind === "workflow" ? prefixed[2].trim() : prefixed[2].trim().toUpperCase() };
    }
    if (/^EPIC(-[A-Z0-9]+)+$/i.test(text)) return { type: "epic", id: text.toUpperCase() };
    if (model.workflows.has(text)) return { type: "workflow", id: text };
    if (/^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)+$/.test(text) && /\d/.test(text)) return { type: "story", id: text.toUpperCase() };
    if (/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(text)) return { type: "workflow", id: text };
    return { problem: "“" + text + "” is not a story id (STORY-V3-020), an epic id (EPIC-MAM) or a workflow name (pm-planning)." };
  }

  var lookupCounter = 0;
  function lookup(text) {
    var target = classify(text);
    var result = $("lookup-result");
    var mine = ++lookupCounter;
    if (target.problem) { showResult(problemCard("Cannot look that up", target.problem)); return; }
    result.setAttribute("aria-busy", "true");
    api("/api/status/" + target.type + "/" + encodeURIComponent(target.id)).then(function (body) {
      if (mine !== lookupCounter) return;
      showResult(entityCard(body.result));
    }, function (error) {
      if (mine !== lookupCounter) return;
      if (error instanceof ApiError && error.code === "ENTITY_NOT_FOUND") {
        showResult(notFoundCard(target, error.body || {}));
      } else if (isUnauthorized(error)) {
        showResult(problemCard("Not authorised", "This server requires a token."));
      } else if (error instanceof ApiError) {
        showResult(problemCard("Cannot look that up", error.message));
      } else {
        showResult(problemCard("The server cannot be reached", "Try again when the connection is back."));
      }
    }).then(function () { if (mine === lookupCounter) result.removeAttribute("aria-busy"); });
  }

  function showResult(card) {
    var result = $("lookup-result");
    result.textContent = "";
    if (card) result.appendChild(card);
  }

  function cardShell(title, extraClass) {
    var close = h("button", { type: "button", className: "close", "aria-label": "Close the result", text: "×" });
    close.addEventListener("click", function () { showResult(null); $("lookup-input").focus(); });
    return h("article", { className: "result-card" + (extraClass ? " " + extraClass : ""), "aria-label": title },
      h("header", null, h("h3", { text: title }), close));
  }

  function problemCard(title, text) {
    var card = cardShell(title, "not-found");
    card.appendChild(h("p", { text: text }));
    return card;
  }

  function notFoundCard(target, body) {
    var card = cardShell("Not found: " + target.type + " " + target.id, "not-found");
    card.setAttribute("data-result", "not-found");
    card.appendChild(h("p", { text: "This project has no " + target.type + " " + target.id + "." }));
    var suggestions = Array.isArray(body.suggestions) ? body.suggestions : [];
    if (suggestions.length) {
      card.appendChild(h("p", { text: "Did you mean:" }));
      var list = h("div", { className: "suggestions", role: "list" });
      suggestions.forEach(function (suggestion) {
        var button = h("button", { type: "button", role: "listitem", text: suggestion });
        button.addEventListener("click", function () {
          $("lookup-input").value = suggestion;
          lookup(target.type + ":" + suggestion);
        });
        list.appendChild(button);
      });
      card.appendChild(list);
    } else {
      card.appendChild(h("p", { text: "Nothing similar exists in this project." }));
    }
    return card;
  }

  function definitions(pairs) {
    var list = h("dl");
    pairs.forEach(function (pair) {
      var value = pair[1];
      if (value === null || value === undefined || value === "") return;
      list.appendChild(h("dt", { text: pair[0] }));
      list.appendChild(h("dd", null, value instanceof Node ? value : String(value)));
    });
    return list;
  }

  function notices(card, envelope) {
    (envelope.errors || []).forEach(function (text) { card.appendChild(h("p", { className: "wf-error", text: "Error: " + text })); });
    (envelope.warnings || []).forEach(function (text) { card.appendChild(h("p", { className: "wf-error", text: "⚠ " + text })); });
  }

  function entityCard(envelope) {
    var data = envelope.data || {};
    var card;
    if (envelope.entityType === "story") {
      card = cardShell(data.id + " — " + (data.title || ""));
      card.setAttribute("data-result", "story");
      card.appendChild(definitions([
        ["Status", stateLabel(data.status)], ["Points", data.points], ["Assignee", data.assignee ? "@" + data.assignee.replace(/^@/, "") : null],
        ["Milestone", data.milestone], ["Due", data.dueDate], ["Started", data.startedDate], ["Completed", data.completedDate],
        ["Note", data.note]]));
    } else if (envelope.entityType === "epic") {
      card = cardShell(data.id + (data.name ? " — " + data.name : ""), data.error ? "failed" : "");
      card.setAttribute("data-result", "epic");
      card.appendChild(definitions([
        ["Status", data.status], ["Priority", data.priority], ["Effort", data.effort !== null && data.effort !== undefined ? data.effort + " points" : null],
        ["Quarter", data.quarter], ["Owner", data.owner], ["Stories", data.storyCount], ["Last updated", data.lastUpdated],
        ["File", data.source]]));
      if (data.summary) card.appendChild(h("p", { text: data.summary }));
    } else if (envelope.entityType === "workflow") {
      card = cardShell(data.name, data.status === "failed" || data.status === "invalid" ? "failed" : "");
      card.setAttribute("data-result", "workflow");
      card.appendChild(definitions([
        ["Status", statusBadge(data.status)],
        ["Step", (data.currentStep || 0) + "/" + (data.totalSteps || 0) + (data.currentStepName ? " " + data.currentStepName : "")],
        ["Progress", (data.progress || 0) + "%"], ["Started", data.startedAt ? timeElement(data.startedAt) : null],
        ["Updated", data.updatedAt ? timeElement(data.updatedAt) : null], ["Error", data.error],
        ["File", data.source], ["Schema", data.schema]]));
      if (Array.isArray(data.steps) && data.steps.length) {
        var steps = h("ol");
        data.steps.forEach(function (step) {
          steps.appendChild(h("li", null, String(step.id || "step") + " ", statusBadge(step.status), step.error ? " " + step.error : ""));
        });
        card.appendChild(steps);
      }
      if (Array.isArray(data.children) && data.children.length) {
        var children = h("ul");
        data.children.forEach(function (child) {
          children.appendChild(h("li", null, String(child.stateFile || child.workflowPath || child.name || "child") + " ", statusBadge(child.status)));
        });
        card.appendChild(h("p", { text: "Child workflows:" }));
        card.appendChild(children);
      }
    } else {
      card = cardShell(String(envelope.entityId || envelope.entityType));
    }
    notices(card, envelope);
    return card;
  }

  // -- wiring ------------------------------------------------------------------------------------------------------
  $("lookup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    lookup($("lookup-input").value);
  });

  $("refresh").addEventListener("click", function () {
    var button = $("refresh");
    button.setAttribute("aria-busy", "true");
    Promise.all([loadStatus(), loadActivity()]).catch(function () {}).then(function () { button.removeAttribute("aria-busy"); });
    if (conn.mode === "auth") { hideProblem(); conn.mode = "waiting"; }  // asked for: try once more
    if (conn.mode === "waiting" || conn.mode === "offline") { conn.failures = 0; attempt(); }
    else if (conn.mode === "connected") sendPing();
  });

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

  // What the views share. A hook a view file set before this script ran (they load first) is kept.
  var early = window.MadaceDashboard || {};
  window.MadaceDashboard = {
    model: model, api: api, h: h, setText: setText, STATES: STATES, STATE_LABELS: STATE_LABELS,
    storyEpic: storyEpic,
    openDetails: early.openDetails || null,  // set by details.js: openDetails(type, id), type story|epic|workflow
    filterBoard: early.filterBoard || null   // set by board.js: filterBoard(text)
  };

  // First paint from the API (it works with the sync service stopped), then go live.
  Promise.all([loadStatus(), loadActivity()]).catch(function (error) {
    if (!isUnauthorized(error) && !(error instanceof ApiError)) conn.lastFailure = "http";
  });
  attempt();
})();
