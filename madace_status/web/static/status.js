/* The dashboard page (/status): it keeps the live model in step (the first /api/status, the snapshot and each
 * live event), draws the last update, the state cards, the notices, the workflows table and the activity feed,
 * and calls every registered view. It runs last: it wires Refresh, paints from the API and starts connection.js.
 */
(function () {
  "use strict";

  var D = window.MadaceDashboard;
  var $ = D.$, h = D.h, setText = D.setText, model = D.model, api = D.api;
  var STATES = D.STATES, STATE_LABELS = D.STATE_LABELS, STATUS_LABELS = D.STATUS_LABELS;
  var statusClass = D.statusClass, statusBadge = D.statusBadge, clockTime = D.clockTime, timeElement = D.timeElement;
  var plural = D.plural, namedWithMore = D.namedWithMore, stateLabel = D.stateLabel, renderViews = D.renderViews;
  function renderKnownIds() { D.renderKnownIds(); }  // lookup.js: the lookup's suggestions

  var FEED_MAX_ITEMS = 50;
  var ACTIVITY_FETCH_LIMIT = 30;

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
      D.epicsChanged();
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
        var ids = violation && violation.storyIds ? ": " + namedWithMore(violation.storyIds) : "";
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

  function renderAll() {
    renderCards();
    renderNotices();
    renderWorkflows();
    renderKnownIds();
    renderViews(null);
  }

  function setStories(list) {
    var stories = new Map();
    list.forEach(function (story) { if (story && story.id) stories.set(story.id, story); });
    model.stories = stories;
  }

  // -- the activity feed -------------------------------------------------------------------------------------------
  var feedKeys = new Set();

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
      case "history_moves":  // stories a commit moved to Done, from the history read from git (flow.js)
      case "stories_updated": {
        var changes = Array.isArray(data.changes) ? data.changes : [];
        var parts = changes.slice(0, 3).map(function (change) {
          if (change.from === null || change.from === undefined) return change.id + " added to " + stateLabel(change.to);
          if (change.to === null || change.to === undefined) return change.id + " removed from " + stateLabel(change.from);
          return change.id + ": " + stateLabel(change.from) + " → " + stateLabel(change.to);
        });
        if (changes.length > 3) parts.push("and " + (changes.length - 3) + " more");
        return { kind: "stories", label: message.type === "history_moves" ? "git" : "stories",
                 text: parts.length ? parts.join("; ") : "Story status file updated" };
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

  D.addToFeed = addToFeed;  // flow.js adds the moves to Done its history from git holds

  function loadStatus() {
    var version = model.version;
    return api("api/status").then(function (document_) {
      if (model.version === version) applyStatusEnvelope(document_);
      return true;
    });
  }
  function loadActivity() {
    return api("api/activity?brief=1&limit=" + ACTIVITY_FETCH_LIMIT).then(function (body) {
      if (body && Array.isArray(body.events)) addToFeed(body.events);
    });
  }

  // -- what connection.js hands over ----------------------------------------------------------------------------
  function snapshotReceived(message, data) {
    model.version += 1;
    applySnapshot(data);
    touch();
    loadActivity().catch(function () {});  // events this page missed while away, once per (re)connection
  }

  // A live event (already checked against the last seq): into the model, then onto the screen and the feed.
  function applyEvent(message, data) {
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
        D.epicsChanged();
        renderKnownIds();
        break;
      case "workflow_started": case "workflow_completed": case "workflow_failed":
        break;  // the state_updated before it carried the data
      case "notices_updated":
        break;  // only the project's notices changed: applied below
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

  // -- wiring ------------------------------------------------------------------------------------------------------
  $("refresh").addEventListener("click", function () {
    var button = $("refresh");
    button.setAttribute("aria-busy", "true");
    Promise.all([loadStatus(), loadActivity()]).catch(function () {}).then(function () { button.removeAttribute("aria-busy"); });
    D.connection.refresh();
  });

  // First paint from the API (it works with the sync service stopped), then go live.
  Promise.all([loadStatus(), loadActivity()]).catch(function (error) {
    if (!D.isUnauthorized(error) && !(error instanceof D.ApiError)) D.connection.httpFailed();
  });
  D.connection.start({ loadStatus: loadStatus, applySnapshot: snapshotReceived, applyEvent: applyEvent });
})();
