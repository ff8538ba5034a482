// The details dialog (#details-dialog): MadaceDashboard.openDetails(type, id) shows the same data as
// GET /api/status/:type/:id — a story's fields, an epic's fields and its stories, a workflow's steps — in a modal
// <dialog>. Close button, Escape or a click on the backdrop close it; the focus returns to what opened it.
(function () {
  "use strict";

  var TYPES = ["story", "epic", "workflow"];
  var MAX_LISTED_STORIES = 300;  // an epic's stories shown in the dialog; the rest are counted (the board filter shows all)
  var STATUS_LABELS = { pending: "pending", in_progress: "in progress", completed: "completed", failed: "failed", invalid: "invalid" };

  var opener = null;      // the element focused when the dialog opened: it gets the focus back
  var shownKey = null;    // the text shown: a live reload that brings nothing new changes nothing (focus kept)
  var request = 0;        // only the newest answer is shown
  var built = false;

  function dashboard() { return window.MadaceDashboard || null; }
  function dialog() { return document.getElementById("details-dialog"); }

  function build(D) {
    var box = dialog();
    if (!box || built) return box;
    built = true;
    box.textContent = "";
    var close = D.h("button", { type: "button", className: "close", id: "details-close", "aria-label": "Close the details", text: "×" });
    close.addEventListener("click", function () { box.close(); });
    box.appendChild(D.h("div", { className: "details-inner" },
      D.h("header", null, D.h("h2", { id: "details-title", text: "Details" }), close),
      D.h("div", { id: "details-body", "aria-live": "polite" })));
    box.addEventListener("close", function () {
      request += 1;  // an answer still on its way is not shown in a closed dialog
      var target = opener;
      opener = null;
      if (target && target.isConnected && typeof target.focus === "function") target.focus();
    });
    box.addEventListener("click", function (event) {
      if (event.target === box) box.close();  // the backdrop (the dialog's own box has no padding)
    });
    return box;
  }

  function stateLabel(D, state) { return state ? ((D.STATE_LABELS && D.STATE_LABELS[state]) || state) : "—"; }
  function stateTag(D, state) { return D.h("span", { className: "state-tag state-" + state, text: stateLabel(D, state) }); }
  function statusBadge(D, status) {
    var known = Object.prototype.hasOwnProperty.call(STATUS_LABELS, status);
    return D.h("span", { className: "badge " + (known ? "s-" + status : "s-other"), text: known ? STATUS_LABELS[status] : String(status || "unknown") });
  }

  function definitions(D, pairs) {
    var list = D.h("dl");
    pairs.forEach(function (pair) {
      var value = pair[1];
      if (value === null || value === undefined || value === "") return;
      list.appendChild(D.h("dt", { text: pair[0] }));
      list.appendChild(D.h("dd", null, value instanceof Node ? value : String(value)));
    });
    return list;
  }

  function detailsLink(D, type, id, text) {
    var button = D.h("button", { type: "button", className: "link", "aria-haspopup": "dialog", text: text || id });
    button.addEventListener("click", function () { openDetails(type, id); });
    return button;
  }

  function findStory(model, id) {
    var stories = model && model.stories;
    if (!stories) return null;
    if (typeof stories.get === "function") return stories.get(id) || null;
    if (Array.isArray(stories)) return stories.filter(function (story) { return story && story.id === id; })[0] || null;
    return null;
  }

  function storyBody(D, data) {
    var epic = typeof D.storyEpic === "function" ? D.storyEpic(data.id) : null;
    return [definitions(D, [
      ["Status", data.status ? stateTag(D, data.status) : null], ["Points", data.points],
      ["Assignee", data.assignee ? "@" + String(data.assignee).replace(/^@/, "") : null],
      ["Epic", epic ? detailsLink(D, "epic", epic.id, epic.id + (epic.name ? " — " + epic.name : "")) : null],
      ["Milestone", data.milestone], ["Due", data.dueDate], ["Started", data.startedDate],
      ["Completed", data.completedDate], ["Note", data.note]])];
  }

  function epicBody(D, data) {
    var parts = [definitions(D, [
      ["Status", data.status], ["Priority", data.priority],
      ["Effort", data.effort !== null && data.effort !== undefined ? data.effort + " points" : null],
      ["Quarter", data.quarter], ["Owner", data.owner], ["Stories listed", data.storyCount],
      ["Last updated", data.lastUpdated], ["File", data.source]])];
    if (data.error) parts.push(D.h("p", { className: "problem", text: "⚠ " + data.error }));
    if (data.summary) parts.push(D.h("p", { text: data.summary }));
    var known = dashboard() && dashboard().model && dashboard().model.epics ? dashboard().model.epics.get(data.id) : null;
    var ids = Array.isArray(data.storyIds) ? data.storyIds : (known && Array.isArray(known.storyIds) ? known.storyIds : []);
    if (ids.length) {
      parts.push(D.h("h3", { text: "Stories" }));
      var list = D.h("ul", { className: "epic-stories" });
      ids.slice(0, MAX_LISTED_STORIES).forEach(function (id) {
        var story = findStory(D.model, id);
        if (story) {
          list.appendChild(D.h("li", { "data-story": id }, detailsLink(D, "story", id, id + (story.title ? " — " + story.title : "")), stateTag(D, story.status)));
        } else {
          list.appendChild(D.h("li", { "data-story": id, className: "muted", text: id + " — not in the status file" }));
        }
      });
      if (ids.length > MAX_LISTED_STORIES) list.appendChild(D.h("li", { className: "muted", text: "… and " + (ids.length - MAX_LISTED_STORIES) + " more" }));
      parts.push(list);
      if (typeof D.filterBoard === "function" && ids.some(function (id) { return findStory(D.model, id); })) {
        var show = D.h("button", { type: "button", text: "Show these stories on the board" });
        show.addEventListener("click", function () {
          opener = document.getElementById("board-filter");  // the focus goes to the board's filter, not back to the opener
          dialog().close();
          dashboard().filterBoard("epic:" + data.id);
        });
        parts.push(D.h("div", { className: "details-actions" }, show));
      }
    } else if (data.storyCount) {
      parts.push(D.h("p", { className: "muted", text: data.storyCount + " stories listed in the epic file." }));
    }
    return parts;
  }

  function workflowBody(D, data) {
    var progress = Math.max(0, Math.min(100, Math.round(Number(data.progress) || 0)));
    var meter = D.h("div", { className: "meter " + (STATUS_LABELS[data.status] ? "s-" + data.status : ""), role: "progressbar",
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": progress, "aria-label": "Progress" }, D.h("div", { className: "fill" }));
    meter.firstChild.style.width = progress + "%";
    var parts = [definitions(D, [
      ["Status", statusBadge(D, data.status)],
      ["Step", (data.currentStep || 0) + "/" + (data.totalSteps || 0) + (data.currentStepName ? " " + data.currentStepName : "")],
      ["Progress", D.h("span", null, progress + "%", meter)],
      ["Started", data.startedAt], ["Updated", data.updatedAt], ["File", data.source], ["Schema", data.schema]])];
    if (data.error) parts.push(D.h("p", { className: "problem", text: "⚠ " + data.error }));
    if (Array.isArray(data.steps) && data.steps.length) {
      parts.push(D.h("h3", { text: "Steps" }));
      var steps = D.h("ol", { className: "steps" });
      data.steps.forEach(function (step) {
        steps.appendChild(D.h("li", null, String(step.id || "step") + " ", statusBadge(D, step.status),
          step.error ? D.h("span", { className: "problem", text: " " + step.error }) : null));
      });
      parts.push(steps);
    }
    if (Array.isArray(data.children) && data.children.length) {
      parts.push(D.h("h3", { text: "Child workflows" }));
      var children = D.h("ul");
      data.children.forEach(function (child) {
        children.appendChild(D.h("li", null, String(child.name || child.stateFile || child.workflowPath || "child") + " ", statusBadge(D, child.status)));
      });
      parts.push(children);
    }
    return parts;
  }

  function show(D, title, parts, kind) {
    var box = dialog();
    var body = document.getElementById("details-body");
    var focusInside = body.contains(document.activeElement);
    D.setText(document.getElementById("details-title"), title);
    body.textContent = "";
    parts.forEach(function (part) { if (part) body.appendChild(part); });
    box.setAttribute("data-kind", kind);
    if (focusInside) document.getElementById("details-close").focus();  // its element was replaced
  }

  // Live: while the dialog is open, an event about what it shows reloads it (the same data as the API's).
  function affects(change, type, id) {
    var data = (change && change.data) || {};
    if (type === "workflow") {
      var name = data.workflowName || (data.workflow && data.workflow.name);
      return (change.type === "state_updated" || change.type === "workflow_removed") && name === id;
    }
    if (type === "story") return change.type === "stories_updated" || change.type === "epics_updated";  // its epic may change
    return change.type === "epics_updated" || change.type === "stories_updated";
  }

  function render(model, change) {
    install();
    var D = dashboard(), box = dialog();
    if (!D || !box || !box.open || !built) return;
    var type = box.getAttribute("data-type"), id = box.getAttribute("data-id");
    if (!type || !id || (change && !affects(change, type, id))) return;
    load(D, type, id, ++request, true);
  }

  function notices(D, envelope) {
    var items = [];
    (envelope.errors || []).forEach(function (text) { items.push(D.h("p", { className: "problem", text: "Error: " + text })); });
    (envelope.warnings || []).forEach(function (text) { items.push(D.h("p", { className: "problem", text: "⚠ " + text })); });
    return items;
  }

  function openDetails(type, id) {
    var D = dashboard();
    var box = D && typeof D.h === "function" && typeof D.api === "function" ? build(D) : null;  // status.js not run yet: nothing to show
    if (!box || TYPES.indexOf(type) < 0 || id === null || id === undefined || id === "") return;
    id = String(id);
    var mine = ++request;
    shownKey = null;
    if (!box.open) {
      opener = document.activeElement && document.activeElement !== document.body ? document.activeElement : null;
      box.showModal();
    }
    show(D, type.charAt(0).toUpperCase() + type.slice(1) + " " + id, [D.h("p", { className: "muted", text: "Loading…" })], "loading");
    box.setAttribute("data-type", type);
    box.setAttribute("data-id", id);
    document.getElementById("details-close").focus();
    load(D, type, id, mine);
  }

  // `live`: a reload for an event or a reconnection; if the server cannot answer it, what is shown stays.
  function load(D, type, id, mine, live) {
    D.api("api/status/" + type + "/" + encodeURIComponent(id)).then(function (body) {
      if (mine !== request) return;
      var envelope = (body && body.result) || {};
      var data = envelope.data || {};
      var parts, title;
      if (type === "story") { title = (data.id || id) + (data.title ? " — " + data.title : ""); parts = storyBody(D, data); }
      else if (type === "epic") { title = (data.id || id) + (data.name ? " — " + data.name : ""); parts = epicBody(D, data); }
      else { title = "Workflow " + (data.name || id); parts = workflowBody(D, data); }
      parts = parts.concat(notices(D, envelope));
      var key = title + "\n" + parts.map(function (part) { return part ? part.textContent : ""; }).join("\n");
      if (key === shownKey) return;  // a reload that shows nothing new: leave the dialog (and its focus) alone
      shownKey = key;
      show(D, title, parts, type);
    }, function (error) {
      if (mine !== request) return;
      if (live && !(error && error.status === 404)) return;
      shownKey = null;
      if (error && error.status === 404) {
        show(D, "Not found: " + type + " " + id, [D.h("p", { className: "problem", text: error.message || "Not found." })], "not-found");
      } else if (error && error.status) {
        show(D, "Cannot show " + type + " " + id, [D.h("p", { className: "problem", text: error.message || "The server refused." })], "failed");
      } else {
        show(D, "Cannot show " + type + " " + id, [D.h("p", { className: "problem", text: "The server cannot be reached; try again when the connection is back." })], "failed");
      }
    }).catch(function (error) {  // a record of an unexpected shape: say so in the dialog, not as an unhandled rejection
      if (mine !== request) return;
      shownKey = null;
      show(D, "Cannot show " + type + " " + id, [D.h("p", { className: "problem", text: "Its data could not be shown (" + String(error && error.message || error) + ")." })], "failed");
    });
  }

  function install() {
    var D = dashboard();
    if (D && D.openDetails !== openDetails) D.openDetails = openDetails;
  }

  // status.js runs after this file and keeps a hook set early; it is set again once MadaceDashboard is complete.
  (window.MadaceDashboard = window.MadaceDashboard || {}).openDetails = openDetails;
  document.addEventListener("DOMContentLoaded", install);
  (window.MadaceViews = window.MadaceViews || []).push({ name: "details", render: render });
})();
