/* The lookup (#lookup-form): a story id, an epic id or a workflow name (suggested by the #known-ids datalist)
 * → a card with what GET /api/status/:type/:id says, or why it cannot be shown.
 */
(function () {
  "use strict";

  var D = window.MadaceDashboard;
  var $ = D.$, h = D.h, model = D.model, api = D.api, ApiError = D.ApiError, isUnauthorized = D.isUnauthorized;
  var statusBadge = D.statusBadge, stateLabel = D.stateLabel, timeElement = D.timeElement;

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
    api("api/status/" + target.type + "/" + encodeURIComponent(target.id)).then(function (body) {
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

  $("lookup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    lookup($("lookup-input").value);
  });

  D.renderKnownIds = renderKnownIds;
})();
