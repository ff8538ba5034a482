/* The dashboard's shared core: the live model, the small DOM helpers, the API helper and the view registry.
 *
 * status.html loads the views first (board.js, epics.js, flow.js, details.js), then this file, connection.js,
 * lookup.js and status.js, all `defer` (so in that order, once the document is parsed). This file builds
 * window.MadaceDashboard, the one object the scripts share: what the views use (model, api, h, setText, STATES,
 * STATE_LABELS, storyEpic and the hooks openDetails/filterBoard) and, beside it, what the page's own scripts use.
 */
(function () {
  "use strict";

  var STATES = ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"];
  var STATE_LABELS = { BACKLOG: "Backlog", TODO: "Todo", IN_PROGRESS: "In progress", DONE: "Done" };
  var STATUS_LABELS = { pending: "pending", in_progress: "in progress", completed: "completed", failed: "failed", invalid: "invalid" };

  function meta(name) {
    var element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.getAttribute("content") : "";
  }

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
  // A few ids, then "and N more": as the server's messages name them (VIOLATION_IDS_SHOWN, project/model.py).
  var IDS_SHOWN = 5;
  function namedWithMore(ids) {
    if (ids.length <= IDS_SHOWN) return ids.join(", ");
    return ids.slice(0, IDS_SHOWN).join(", ") + " and " + (ids.length - IDS_SHOWN) + " more";
  }
  function stateLabel(state) { return state ? (STATE_LABELS[state] || state) : "—"; }

  // -- the model the page shows ------------------------------------------------------------------------------------
  var model = {
    states: null, total: null, violations: [], warnings: [], errors: [],
    workflows: new Map(),   // name → record (full from snapshot/events, brief from /api/status)
    stories: new Map(),     // id → story record, in file order
    epics: new Map(),       // id → epic record, in model order
    version: 0              // bumped by every WebSocket update; a slower HTTP answer never overwrites a newer one
  };

  // -- HTTP --------------------------------------------------------------------------------------------------------
  function ApiError(status, code, message, body) {
    this.status = status; this.code = code; this.message = message; this.body = body;
  }
  // `path` is relative ("api/status"): it resolves under the page's own directory, so --base-path needs nothing here.
  function api(path, options) {
    return fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } }, options || {}))
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (response.status === 401) {
            if (D.onUnauthorized) D.onUnauthorized();  // connection.js: the token problem
            throw new ApiError(401, "UNAUTHORIZED", (body && body.error) || "unauthorized", body);
          }
          if (!response.ok) throw new ApiError(response.status, (body && body.code) || "HTTP_" + response.status, (body && body.error) || response.statusText, body);
          return body;
        });
      });
  }
  function isUnauthorized(error) { return error instanceof ApiError && error.status === 401; }

  // -- the views (board.js, epics.js, flow.js, details.js: each pushed itself onto window.MadaceViews) ----------
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

  // What the views share. A hook a view file set before this script ran (they load first) is kept.
  var early = window.MadaceDashboard || {};
  var D = window.MadaceDashboard = {
    model: model, api: api, h: h, setText: setText, STATES: STATES, STATE_LABELS: STATE_LABELS,
    storyEpic: storyEpic,
    openDetails: early.openDetails || null,  // set by details.js: openDetails(type, id), type story|epic|workflow
    filterBoard: early.filterBoard || null,  // set by board.js: filterBoard(text)
    // What connection.js, lookup.js and status.js also share (not part of the views' contract):
    $: $, meta: meta, STATUS_LABELS: STATUS_LABELS, statusClass: statusClass, statusBadge: statusBadge,
    clockTime: clockTime, timeElement: timeElement, plural: plural, namedWithMore: namedWithMore, stateLabel: stateLabel,
    ApiError: ApiError, isUnauthorized: isUnauthorized, renderViews: renderViews,
    epicsChanged: function () { epicIndex = null; },  // the epics changed: storyEpic rebuilds its index
    onUnauthorized: null,  // set by connection.js: a 401 from any request shows the token problem
    connection: null,      // set by connection.js: start(page), refresh(), httpFailed()
    renderKnownIds: null   // set by lookup.js: rebuild the lookup's suggestions soon
  };
})();
