/* The board view (#board-panel): one column per state with a card per story, the WIP limit on each column head,
 * a filter box, collapsible columns and a bounded number of cards per column, so 2,000 stories stay usable.
 *
 * It reads window.MadaceDashboard (set by status.js) and is called through window.MadaceViews:
 * render(model, null) after a snapshot or a full reload, render(model, message) after each live event.
 * A live `stories_updated` touches only the cards whose story changed (and moves them, with a brief highlight);
 * nothing is rebuilt. Every value from the project files is set with textContent.
 */
(function () {
  "use strict";

  var CARDS_PER_PAGE = 50;                 // cards a column shows at first, and how many more "Show more" adds
  var AUTO_COLLAPSE_ABOVE_STORIES = 200;   // a column this long starts collapsed (its count stays on the head)
  var FILTER_ANNOUNCE_DELAY_MS = 400;      // the match count is announced once typing pauses, not per key

  var built = false;
  var D = null;                 // window.MadaceDashboard
  var columns = {};             // state → {section, toggle, count, limit, flag, list, more, empty, collapsed, shown, ids}
  var known = new Map();        // story id → {key, state}: what the cards should show (every story)
  var cards = new Map();        // story id → {item, button, key}: made when first shown, refilled when stale
  var filterInput = null, summary = null, announcer = null, announceTimer = null;
  var filter = { text: [], assignee: [], epic: [] };
  var filterText = "";          // what the filter box holds (or will, when filterBoard ran before the first render)
  var userToggled = {};         // state → true once the user opened/closed it: no more auto-collapse
  var autoCollapsed = false;    // the first render with stories collapsed the long columns
  var stats = { firstRenderAt: null, firstRenderMs: null, lastRenderAt: null, lastRenderMs: null, renders: 0 };

  function el(tag, attributes) {
    return D.h.apply(null, arguments);
  }

  // -- the filter -------------------------------------------------------------------------------------------------
  // Words separated by spaces, all of which must match (case-insensitive substrings): `assignee:NAME` (or
  // `@NAME`) the assignee, `epic:ID` the epic's id or name, any other word the story's id or title.
  function parseFilter(text) {
    var parsed = { text: [], assignee: [], epic: [] };
    String(text || "").toLowerCase().split(/\s+/).forEach(function (word) {
      if (!word) return;
      var prefixed = /^(assignee|epic):(.*)$/.exec(word);
      if (prefixed) { if (prefixed[2]) parsed[prefixed[1]].push(prefixed[2].replace(/^@/, "")); }
      else if (word.charAt(0) === "@" && word.length > 1) parsed.assignee.push(word.slice(1));
      else parsed.text.push(word);
    });
    return parsed;
  }

  // The stories come with the WebSocket snapshot (/api/status carries only their counts): until it arrives,
  // say so rather than show an empty board.
  function waiting() {
    var model = D.model;
    return model.stories.size === 0 && Boolean(model.total && model.total.count > 0);
  }

  function filtering() { return filter.text.length + filter.assignee.length + filter.epic.length > 0; }

  function matches(story) {
    if (!filtering()) return true;
    var haystack = (String(story.id) + " " + String(story.title || "")).toLowerCase();
    var assignee = String(story.assignee || "").toLowerCase().replace(/^@/, "");
    var epic = D.storyEpic(story.id);
    var epicText = epic ? (String(epic.id) + " " + String(epic.name || "")).toLowerCase() : "";
    return filter.text.every(function (word) { return haystack.indexOf(word) >= 0; }) &&
      filter.assignee.every(function (word) { return assignee.indexOf(word) >= 0; }) &&
      filter.epic.every(function (word) { return epicText.indexOf(word) >= 0; });
  }

  // -- building ---------------------------------------------------------------------------------------------------
  function build(panel) {
    filterInput = el("input", { id: "board-filter", type: "search", spellcheck: "false", autocapitalize: "off",
      autocomplete: "off", placeholder: "text, assignee:alex, epic:EPIC-MAM", "aria-describedby": "board-filter-hint" });
    summary = el("span", { className: "count-note", id: "board-count" });
    announcer = el("p", { className: "visually-hidden", id: "board-announce", role: "status", "aria-live": "polite" });
    var board = el("div", { className: "board", id: "board" });
    panel.appendChild(el("div", { className: "board-head" },
      el("h2", { id: "h-board" }, "Board ", summary),
      el("div", { className: "board-filter", role: "search" },
        el("label", { for: "board-filter", text: "Filter stories" }), filterInput,
        el("p", { className: "hint", id: "board-filter-hint" },
          "Words match a story's id or title; ", el("code", { text: "assignee:alex" }), " or ",
          el("code", { text: "@alex" }), " its assignee; ", el("code", { text: "epic:EPIC-MAM" }), " its epic.")),
      announcer));
    panel.appendChild(board);
    D.STATES.forEach(function (state) { board.appendChild(buildColumn(state)); });
    filterInput.value = filterText;
    filterInput.addEventListener("input", function () { applyFilter(filterInput.value); });
    filterInput.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && filterInput.value) { filterInput.value = ""; applyFilter(""); }
    });
    board.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest(".story-card") : null;
      if (button) openStory(button.getAttribute("data-id"));
    });
    // One Tab stop per column (its current card); the arrow keys move between cards (a roving tabindex), so
    // Tab crosses the board in a few presses however many cards it shows.
    board.addEventListener("focusin", function (event) {
      if (event.target.classList.contains("story-card")) makeCurrent(event.target);
    });
    board.addEventListener("keydown", moveFocus);
    built = true;
  }

  function buildColumn(state) {
    var listId = "board-list-" + state;
    var column = {
      toggle: el("button", { type: "button", className: "column-toggle", "aria-expanded": "true", "aria-controls": listId }),
      name: el("span", { className: "column-name", text: D.STATE_LABELS[state] || state }),
      count: el("span", { className: "column-count" }),
      limit: el("span", { className: "column-limit" }),
      flag: el("p", { className: "column-flag", role: "note", hidden: true }),
      list: el("ol", { className: "column-cards", id: listId, "aria-label": (D.STATE_LABELS[state] || state) + " stories" }),
      empty: el("p", { className: "column-empty", hidden: true }),
      more: el("button", { type: "button", className: "show-more", hidden: true }),
      collapsed: false, shown: CARDS_PER_PAGE, ids: [], total: 0
    };
    column.toggle.appendChild(el("span", { className: "chevron", "aria-hidden": "true" }));
    column.toggle.appendChild(column.name);
    column.toggle.appendChild(column.count);
    column.toggle.appendChild(column.limit);
    column.section = el("section", { className: "column", "data-state": state, "aria-label": D.STATE_LABELS[state] || state },
      el("h3", { className: "column-head" }, column.toggle), column.flag, column.list, column.empty, column.more);
    column.toggle.addEventListener("click", function () {
      userToggled[state] = true;
      setCollapsed(state, !column.collapsed);
    });
    column.more.addEventListener("click", function () {
      var next = column.list.children.length;  // the first new card takes the focus: the button may go away
      column.shown += CARDS_PER_PAGE;
      fillColumn(state, false);
      var card = column.list.children[next];
      if (card) card.firstChild.focus();
    });
    columns[state] = column;
    return column.section;
  }

  function setCollapsed(state, collapsed) {
    var column = columns[state];
    column.collapsed = collapsed;
    column.toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
    column.section.classList.toggle("collapsed", collapsed);
    fillColumn(state, false);
    renderHeads(D.model);
  }

  // -- cards ------------------------------------------------------------------------------------------------------
  function cardKey(story, epic) {
    return JSON.stringify([story.status, story.title, story.points, story.assignee, epic ? epic.id : null, epic ? epic.name : null]);
  }

  function makeCard(id) {
    var button = el("button", { type: "button", className: "story-card", "data-id": id, tabindex: "-1" },
      el("span", { className: "story-top" }, el("span", { className: "story-id" }), el("span", { className: "story-points" })),
      el("span", { className: "story-title" }),
      el("span", { className: "story-meta" }, el("span", { className: "story-assignee" }), el("span", { className: "story-epic" })));
    var item = el("li", { className: "story", "data-id": id }, button);
    item.addEventListener("animationend", function () { item.classList.remove("moved"); });
    return { item: item, button: button, key: null };
  }

  // The card of story `id`, made or refilled from the model when it is not up to date.
  function cardFor(id) {
    var card = cards.get(id);
    if (!card) { card = makeCard(id); cards.set(id, card); }
    var entry = known.get(id);
    if (card.key !== entry.key) fillCard(card, D.model.stories.get(id), D.storyEpic(id), entry.key);
    return card;
  }

  function fillCard(card, story, epic, key) {
    card.key = key;
    var parts = card.button.children;
    var top = parts[0].children, meta = parts[2].children;
    D.setText(top[0], story.id);
    var points = story.points === null || story.points === undefined ? "" : story.points + " pt" + (Number(story.points) === 1 ? "" : "s");
    D.setText(top[1], points);
    D.setText(parts[1], story.title || "");
    var assignee = story.assignee ? "@" + String(story.assignee).replace(/^@/, "") : "";
    D.setText(meta[0], assignee);
    meta[0].hidden = !assignee;
    D.setText(meta[1], epic ? epic.id : "");
    meta[1].hidden = !epic;
    if (epic && epic.name) meta[1].setAttribute("title", epic.name); else meta[1].removeAttribute("title");
    card.button.setAttribute("aria-label", [story.id, story.title || "", points, assignee ? "assigned to " + assignee : "",
      epic ? "epic " + epic.id : ""].filter(Boolean).join(", "));
  }

  function flash(card) {
    if (!card.item.isConnected) return;
    card.item.classList.remove("moved");
    void card.item.offsetWidth;  // restart the animation
    card.item.classList.add("moved");
  }

  function openStory(id) {
    if (typeof D.openDetails === "function") { D.openDetails("story", id); return; }
    var input = document.getElementById("lookup-input"), form = document.getElementById("lookup-form");
    if (!input || !form) return;  // without the details view, the page's lookup shows the story
    input.value = "story:" + id;
    if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
  }

  // -- keyboard: a roving tabindex over the cards ---------------------------------------------------------------
  function makeCurrent(button) {
    var list = button.closest("ol");
    var previous = list.querySelector('.story-card[tabindex="0"]');
    if (previous && previous !== button) previous.setAttribute("tabindex", "-1");
    button.setAttribute("tabindex", "0");
  }

  // Exactly one card of a column in the Tab order: a card that moved in brought its own stop; a filter may have
  // taken the current one away.
  function keepOneTabStop(list) {
    var stops = Array.prototype.slice.call(list.querySelectorAll('.story-card[tabindex="0"]'));
    var keep = stops.indexOf(document.activeElement) >= 0 ? document.activeElement : stops[0];
    stops.forEach(function (stop) { if (stop !== keep) stop.setAttribute("tabindex", "-1"); });
    if (!keep && list.firstElementChild) list.firstElementChild.firstChild.setAttribute("tabindex", "0");
  }

  function moveFocus(event) {
    var button = event.target;
    if (!button.classList || !button.classList.contains("story-card")) return;
    var item = button.parentNode, list = item.parentNode, target = null;
    if (event.key === "ArrowDown") target = item.nextElementSibling;
    else if (event.key === "ArrowUp") target = item.previousElementSibling;
    else if (event.key === "Home") target = list.firstElementChild;
    else if (event.key === "End") target = list.lastElementChild;
    else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      var index = Array.prototype.indexOf.call(list.children, item);
      var state = button.closest(".column").getAttribute("data-state");
      var position = D.STATES.indexOf(state), step = event.key === "ArrowLeft" ? -1 : 1;
      for (var other = position + step; other >= 0 && other < D.STATES.length && !target; other += step) {
        var cardsThere = columns[D.STATES[other]].list.children;  // the next column that shows a card
        if (cardsThere.length) target = cardsThere[Math.min(index, cardsThere.length - 1)];
      }
    } else return;
    event.preventDefault();
    if (target) target.firstChild.focus();
  }

  // -- rendering --------------------------------------------------------------------------------------------------
  // The ids of each column (every story of that state, file order) and which match the filter.
  function group(model) {
    var byState = {};
    D.STATES.forEach(function (state) { byState[state] = { total: 0, ids: [] }; });
    model.stories.forEach(function (story, id) {
      var bucket = byState[story.status];
      if (!bucket) return;
      bucket.total += 1;
      if (matches(story)) bucket.ids.push(id);
    });
    return byState;
  }

  // Note which stories changed (their cards refill when next shown); returns those ids when the change is live.
  function refreshKnown(model, live) {
    var changed = [];
    model.stories.forEach(function (story, id) {
      var key = cardKey(story, D.storyEpic(id));
      var entry = known.get(id);
      if (entry && entry.key === key) return;
      if (live) changed.push(id);  // moved, edited or new: highlighted
      known.set(id, { key: key, state: story.status });
    });
    known.forEach(function (entry, id) {
      if (model.stories.has(id)) return;
      known.delete(id);
      var card = cards.get(id);
      if (card) { card.item.remove(); cards.delete(id); }
    });
    return changed;
  }

  // The column's list holds exactly its first `shown` matching cards, in order; only misplaced ones move.
  function fillColumn(state, restoreFocus) {
    var column = columns[state];
    var want = column.collapsed ? [] : column.ids.slice(0, column.shown);
    var list = column.list, focused = document.activeElement;
    var wanted = new Set(want);
    for (var child = list.firstElementChild; child;) {  // first drop what left, so the rest stays where it is
      var next = child.nextElementSibling;
      if (!wanted.has(child.getAttribute("data-id"))) list.removeChild(child);
      child = next;
    }
    for (var i = 0; i < want.length; i++) {
      var item = cardFor(want[i]).item;
      if (list.children[i] !== item) list.insertBefore(item, list.children[i] || null);
    }
    while (list.children.length > want.length) list.removeChild(list.lastChild);
    keepOneTabStop(list);
    if (restoreFocus && focused && focused !== document.activeElement && focused.isConnected) focused.focus();
    var hidden = column.ids.length - want.length;
    column.more.hidden = column.collapsed || hidden <= 0;
    if (!column.more.hidden) {
      D.setText(column.more, "Show " + Math.min(CARDS_PER_PAGE, hidden) + " more (" + hidden + " not shown)");
    }
    column.empty.hidden = column.collapsed || column.ids.length > 0;
    D.setText(column.empty, filtering() && column.total ? "No story here matches the filter." :
      waiting() ? "The stories appear once the page is live." : "No stories.");
  }

  function renderHeads(model) {
    var violations = {};
    (model.violations || []).forEach(function (violation) { violations[violation.state] = violation; });
    var total = 0, matching = 0;
    D.STATES.forEach(function (state) {
      var column = columns[state];
      var row = (model.states && model.states[state]) || {};
      var limit = row.limit === null || row.limit === undefined ? null : row.limit;
      var violated = Boolean(row.violated || violations[state]);
      total += column.total;
      matching += column.ids.length;
      D.setText(column.count, filtering() ? column.ids.length + " of " + column.total : String(column.total));
      D.setText(column.limit, limit === null ? "" : "max " + limit);
      column.limit.hidden = limit === null;
      column.section.classList.toggle("over-limit", violated);
      column.flag.hidden = !violated;
      if (violated) D.setText(column.flag, "⚠ Over its WIP limit: " + column.total + " stories, max " + limit);
      column.toggle.setAttribute("aria-label", (D.STATE_LABELS[state] || state) + ": " +
        (filtering() ? column.ids.length + " of " + column.total : column.total) + " " + (column.total === 1 ? "story" : "stories") +
        (limit === null ? "" : ", WIP limit " + limit) + (violated ? ", over its limit" : "") +
        (column.collapsed ? ", collapsed" : ""));
    });
    D.setText(summary, waiting() ? "(waiting for the live connection)" : filtering() ?
      "(" + matching + " of " + total + " stories match)" : "(" + total + " " + (total === 1 ? "story" : "stories") + ")");
    return matching;
  }

  function renderColumns(model, flashIds) {
    var grouped = group(model);
    D.STATES.forEach(function (state) {
      var column = columns[state];
      column.ids = grouped[state].ids;
      column.total = grouped[state].total;
      if (!userToggled[state] && !autoCollapsed && column.total > AUTO_COLLAPSE_ABOVE_STORIES) {
        column.collapsed = true;
        column.toggle.setAttribute("aria-expanded", "false");
        column.section.classList.add("collapsed");
      }
      fillColumn(state, true);
    });
    if (model.stories.size > 0) autoCollapsed = true;
    var matching = renderHeads(model);
    (flashIds || []).forEach(function (id) { var card = cards.get(id); if (card) flash(card); });
    return matching;
  }

  function render(model, change) {
    if (!D) D = window.MadaceDashboard;
    if (change && change.type !== "stories_updated" && change.type !== "epics_updated") return;  // not ours
    var started = performance.now();
    var panel = document.getElementById("board-panel");
    if (!panel) return;
    if (!built) build(panel);
    var changedIds = refreshKnown(model, Boolean(change));
    renderColumns(model, changedIds);
    stats.lastRenderMs = performance.now() - started;
    stats.lastRenderAt = performance.now();
    if (stats.firstRenderAt === null && model.stories.size > 0) {
      stats.firstRenderAt = stats.lastRenderAt;
      stats.firstRenderMs = stats.lastRenderMs;
    }
    stats.renders += 1;
  }

  // -- filtering --------------------------------------------------------------------------------------------------
  function applyFilter(text) {
    filterText = String(text);
    filter = parseFilter(text);
    if (!built) return;
    D.STATES.forEach(function (state) { columns[state].shown = CARDS_PER_PAGE; });
    var matching = renderColumns(D.model, null);
    clearTimeout(announceTimer);
    announceTimer = setTimeout(function () {
      D.setText(announcer, filtering() ? matching + (matching === 1 ? " story matches" : " stories match") + " the filter" : "Filter cleared: all stories shown");
    }, FILTER_ANNOUNCE_DELAY_MS);
  }

  function filterBoard(text) {
    text = text === null || text === undefined ? "" : String(text);
    if (!built) { applyFilter(text); return; }
    filterInput.value = text;
    applyFilter(filterInput.value);
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    document.getElementById("board-panel").scrollIntoView({ behavior: reduce ? "auto" : "smooth", block: "start" });
  }

  // status.js keeps a hook set before it ran (the views load first); set it again once it exists, to be sure.
  (window.MadaceDashboard = window.MadaceDashboard || {}).filterBoard = filterBoard;
  window.MadaceBoardStats = stats;  // for the benchmark: performance.now() of the first render, last render's cost
  (window.MadaceViews = window.MadaceViews || []).push({ name: "board", render: function (model, change) {
    if (window.MadaceDashboard && window.MadaceDashboard.filterBoard !== filterBoard) window.MadaceDashboard.filterBoard = filterBoard;
    render(model, change);
  } });
})();
