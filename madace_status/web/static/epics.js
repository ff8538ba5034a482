// The epics panel (#epics-panel): each epic with its status, priority and a bar of its stories by state.
// A view of the dashboard (see status.js): it only reads the model and only writes inside its own panel.
(function () {
  "use strict";

  // Left to right in the bar: what is finished first, so the bar reads as progress.
  var BAR_ORDER = ["DONE", "IN_PROGRESS", "TODO", "BACKLOG"];

  function dashboard() { return window.MadaceDashboard || null; }

  function eachStory(model, fn) {
    // The model holds a Map (id → story); an older page script held an array.
    var stories = model && model.stories;
    if (!stories) return;
    if (typeof stories.forEach === "function") stories.forEach(function (story) { if (story && story.id) fn(story); });
  }

  function storyIdsOf(epic) { return Array.isArray(epic && epic.storyIds) ? epic.storyIds : []; }

  // A story's epic: MadaceDashboard.storyEpic (status.js keeps an index); else the first epic that lists it.
  function epicOfResolver(D, model) {
    if (D && typeof D.storyEpic === "function") return function (id) { var epic = D.storyEpic(id); return epic ? epic.id : null; };
    var index = new Map();
    model.epics.forEach(function (epic) {
      storyIdsOf(epic).forEach(function (id) { if (!index.has(id)) index.set(id, epic.id); });
    });
    return function (id) { return index.get(id) || null; };
  }

  function tallies(model, D) {
    var epicOf = epicOfResolver(D, model);
    var byEpic = new Map();
    eachStory(model, function (story) {
      var epicId = epicOf(story.id);
      if (!epicId) return;
      var tally = byEpic.get(epicId);
      if (!tally) { tally = { BACKLOG: 0, TODO: 0, IN_PROGRESS: 0, DONE: 0, total: 0 }; byEpic.set(epicId, tally); }
      if (Object.prototype.hasOwnProperty.call(tally, story.status)) tally[story.status] += 1;
      tally.total += 1;
    });
    return byEpic;
  }

  function panel() { return document.getElementById("epics-panel"); }

  function ensureShell(D) {
    var section = panel();
    if (!section) return null;
    var list = section.querySelector("ul.epic-list");
    if (list) return list;
    var headingId = section.getAttribute("aria-labelledby") || "h-epics";
    if (!document.getElementById(headingId)) {
      section.setAttribute("aria-labelledby", headingId);
      section.appendChild(D.h("h2", { id: headingId }, "Epics ", D.h("span", { className: "count-note", id: "epics-count" })));
    }
    list = D.h("ul", { className: "epic-list", id: "epic-list" });
    section.appendChild(list);
    section.appendChild(D.h("p", { className: "empty", id: "epics-empty", hidden: true, text: "No epic files were found." }));
    return list;
  }

  function label(D, state) { return (D.STATE_LABELS && D.STATE_LABELS[state]) || state; }

  function epicItem(D, epic, tally) {
    var item = D.h("li", { "data-epic": epic.id });
    var open = D.h("button", { type: "button", className: "link", "aria-haspopup": "dialog",
      title: "Details of " + epic.id },
      epic.id, epic.name ? D.h("span", { className: "epic-name", text: " — " + epic.name }) : null);
    open.addEventListener("click", function () {
      var current = dashboard();
      if (current && typeof current.openDetails === "function") current.openDetails("epic", epic.id);
    });
    var priority = epic.priority ? D.h("span", { className: "epic-priority " + String(epic.priority).toLowerCase().replace(/[^a-z0-9]/g, ""),
      title: "Priority", text: epic.priority }) : null;
    item.appendChild(D.h("div", { className: "epic-head" }, open, priority,
      D.h("span", { className: "epic-status", text: epic.status || (epic.error ? "unreadable" : "no status") })));

    if (epic.error) {
      item.appendChild(D.h("p", { className: "epic-error", role: "note", text: "⚠ " + epic.error }));
      return item;
    }
    var listed = Math.max(storyIdsOf(epic).length, Number(epic.storyCount) || 0);  // storyIds is capped, storyCount is not
    var foot = D.h("div", { className: "epic-foot" });
    if (tally && tally.total) {
      var parts = BAR_ORDER.map(function (state) { return tally[state] + " " + label(D, state).toLowerCase(); });
      var summary = tally.DONE + " of " + tally.total + " done";
      var bar = D.h("div", { className: "epic-bar", role: "img", "aria-label": epic.id + ": " + summary + " (" + parts.join(", ") + ")" });
      BAR_ORDER.forEach(function (state) {
        if (!tally[state]) return;
        var segment = D.h("span", { className: "state-" + state, "data-state": state, title: tally[state] + " " + label(D, state) });
        segment.style.width = (100 * tally[state] / tally.total) + "%";
        bar.appendChild(segment);
      });
      item.appendChild(bar);
      var extra = listed > tally.total ? " · " + (listed - tally.total) + " not in the status file" : "";
      foot.appendChild(D.h("span", { className: "tally", text: summary + extra }));
      var current = dashboard();
      if (current && typeof current.filterBoard === "function") {
        var show = D.h("button", { type: "button", className: "show-stories", text: "Stories",
          "aria-label": "Show the stories of " + epic.id + " on the board" });
        show.addEventListener("click", function () {
          var latest = dashboard();
          if (latest && typeof latest.filterBoard === "function") latest.filterBoard("epic:" + epic.id);
        });
        foot.appendChild(show);
      }
    } else if (listed) {
      foot.appendChild(D.h("span", { className: "tally", text: listed + (listed === 1 ? " story" : " stories") + ", not in the status file" }));
    } else {
      foot.appendChild(D.h("span", { className: "tally", text: "no stories listed" }));
    }
    item.appendChild(foot);
    return item;
  }

  function render(model, change) {
    if (change && change.type !== "epics_updated" && change.type !== "stories_updated") return;
    var D = dashboard();
    if (!D || !model || !model.epics) return;
    var list = ensureShell(D);
    if (!list) return;
    var byEpic = tallies(model, D);
    var existing = new Map();
    Array.prototype.forEach.call(list.children, function (item) { existing.set(item.getAttribute("data-epic"), item); });
    var ids = Array.from(model.epics.keys());
    existing.forEach(function (item, id) { if (!model.epics.has(id)) item.remove(); });
    var hasFilter = Boolean(typeof D.filterBoard === "function");
    ids.forEach(function (id, index) {
      var epic = model.epics.get(id);
      var tally = byEpic.get(id) || null;
      // Rebuild an epic's row only when what it shows changed: a focused button elsewhere keeps its focus.
      var key = JSON.stringify([epic.name, epic.status, epic.priority, epic.error, epic.storyCount, storyIdsOf(epic).length, tally, hasFilter]);
      var item = existing.get(id);
      if (!item || item.getAttribute("data-key") !== key) {
        var fresh = epicItem(D, epic, tally);
        fresh.setAttribute("data-key", key);
        if (item) list.replaceChild(fresh, item);
        item = fresh;
      }
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
    });
    var empty = document.getElementById("epics-empty");
    if (empty) empty.hidden = ids.length > 0;
    var count = document.getElementById("epics-count");
    if (count) D.setText(count, ids.length ? "(" + ids.length + ")" : "");
  }

  (window.MadaceViews = window.MadaceViews || []).push({ name: "epics", render: render });
})();
