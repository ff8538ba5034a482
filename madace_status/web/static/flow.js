// The flow panel (#flow-panel): a cumulative-flow chart of the stories per state over time, as inline SVG built
// with DOM methods (nothing from the server is parsed as markup). The history is the server's (GET /api/history),
// fetched on load, on each (re)connection and when the range changes (last 2 weeks by default; the history may
// reach back through the project's git history); each live stories_updated appends a sample from the model's counts.
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var HISTORY_FETCH_LIMIT = 5000;     // samples asked of the server at most (its cap): the range bounds them first
  var DAY_MS = 24 * 60 * 60 * 1000;
  var RANGES = [{ value: "14", label: "Last 2 weeks", days: 14 }, { value: "90", label: "Last 3 months", days: 90 },
                { value: "all", label: "Everything", days: null }];
  var range = RANGES[0];
  var MAX_CHART_POINTS = 240;         // samples drawn at most; more are downsampled evenly (the newest always kept)
  var MAX_KEPT_SAMPLES = 2000;        // samples kept in the page while live ones are appended
  var CHART_HEIGHT_PX = 200;
  var CHART_MIN_WIDTH_PX = 260;       // narrower panels scale the drawing down (viewBox, width 100%)
  var CHART_MAX_WIDTH_PX = 1200;
  var MARGIN = { top: 10, right: 12, bottom: 24, left: 34 };  // px: room for the axis labels
  var MIN_LABEL_GAP_PX = 90;          // time labels closer than this would overlap
  // Bottom to top: what is finished at the bottom, so the band of work done grows upwards.
  var STACK_ORDER = ["DONE", "IN_PROGRESS", "TODO", "BACKLOG"];

  var samples = [];                   // [{at: ms, counts: {STATE: n}}], oldest first
  var loaded = false;                 // a history answer (or a 404: no history yet) arrived
  var fetchedForVersion = null;       // model.version at the last fetch: a new snapshot (a reconnection) fetches again
  var request = 0;
  var lastWidth = 0;
  var resizeQueued = false;

  function dashboard() { return window.MadaceDashboard || null; }
  function svg(tag, attributes) {
    var element = document.createElementNS(SVG_NS, tag);
    Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, String(attributes[key])); });
    return element;
  }

  function normalise(sample) {
    if (!sample || typeof sample !== "object") return null;
    var at = typeof sample.at === "number" ? sample.at : Date.parse(sample.at);
    if (!isFinite(at)) return null;
    var counts = {}, source = sample.counts || {};
    STACK_ORDER.forEach(function (state) {
      var value = Number(source[state]);
      counts[state] = isFinite(value) && value > 0 ? Math.floor(value) : 0;
    });
    return { at: at, counts: counts };
  }

  function modelCounts(model) {
    var counts = { BACKLOG: 0, TODO: 0, IN_PROGRESS: 0, DONE: 0 };
    if (model.states) {
      STACK_ORDER.forEach(function (state) { counts[state] = Number((model.states[state] || {}).count) || 0; });
      return counts;
    }
    if (model.stories && typeof model.stories.forEach === "function") {
      model.stories.forEach(function (story) { if (story && counts.hasOwnProperty(story.status)) counts[story.status] += 1; });
    }
    return counts;
  }

  function sameCounts(a, b) {
    return STACK_ORDER.every(function (state) { return a[state] === b[state]; });
  }

  function append(sample) {
    var index = samples.length;
    while (index > 0 && samples[index - 1].at > sample.at) index -= 1;  // replayed events may arrive late: keep time order
    samples.splice(index, 0, sample);
    if (samples.length > MAX_KEPT_SAMPLES) samples.splice(0, samples.length - MAX_KEPT_SAMPLES);
  }

  function fetchHistory(D) {
    var mine = ++request;
    var section = panel();
    if (section) section.setAttribute("aria-busy", "true");
    function done() { if (mine === request && section) section.removeAttribute("aria-busy"); }
    var since = range.days ? "&since=" + new Date(Date.now() - range.days * DAY_MS).toISOString().slice(0, 10) : "";
    D.api("api/history?limit=" + HISTORY_FETCH_LIMIT + since).then(function (body) {
      if (mine !== request) return;
      done();
      var raw = body && Array.isArray(body.samples) ? body.samples : [];
      showMovesToDone(D, raw);
      var fetched = raw.map(normalise).filter(Boolean);
      fetched.sort(function (a, b) { return a.at - b.at; });
      // Live samples newer than the server's newest (a move while the request was out) are kept.
      var newest = fetched.length ? fetched[fetched.length - 1].at : -Infinity;
      var live = samples.filter(function (sample) { return sample.live && sample.at > newest; });
      samples = fetched.concat(live);
      loaded = true;
      draw();
    }, function (error) {
      if (mine !== request) return;
      done();
      if (error && error.status === 404) { loaded = true; draw(); return; }  // a server without history: none yet
      if (!loaded) showMessage("The history could not be loaded; the chart follows live changes from now on.");
      loaded = true;
    }).catch(function (error) {  // a history of an unexpected shape: not an unhandled rejection
      console.warn("the flow chart could not draw the history:", error);
    });
  }

  // The stories a commit moved to Done (samples read from git carry their moves): into the activity feed.
  function showMovesToDone(D, raw) {
    if (typeof D.addToFeed !== "function") return;
    var messages = [];
    raw.forEach(function (sample) {
      var done = Array.isArray(sample && sample.moves) ? sample.moves.filter(function (move) {
        return move && move.to === "DONE" && typeof move.id === "string";
      }) : [];
      var at = sample && typeof sample.at === "number" ? sample.at : Date.parse(sample && sample.at);
      if (done.length && isFinite(at)) messages.push({ type: "history_moves", timestamp: at, seq: 0, data: { changes: done } });
    });
    if (messages.length) D.addToFeed(messages);
  }

  function panel() { return document.getElementById("flow-panel"); }

  function ensureShell(D) {
    var section = panel();
    if (!section) return null;
    var body = section.querySelector(".flow-body");
    if (body) return body;
    var headingId = section.getAttribute("aria-labelledby") || "h-flow";
    if (!document.getElementById(headingId)) {
      section.setAttribute("aria-labelledby", headingId);
      section.appendChild(D.h("h2", { id: headingId, text: "Flow over time" }));
    }
    var select = D.h("select", { id: "flow-range" });
    RANGES.forEach(function (choice) {
      var option = D.h("option", { value: choice.value, text: choice.label });
      if (choice === range) option.selected = true;
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      range = RANGES.filter(function (choice) { return choice.value === select.value; })[0] || RANGES[0];
      samples = [];  // the new range's history replaces this one
      loaded = false;
      draw();
      fetchHistory(D);
    });
    section.appendChild(D.h("p", { className: "flow-range" }, D.h("label", { "for": "flow-range", text: "Show " }),
      select));
    body = D.h("div", { className: "flow-body" });
    section.appendChild(body);
    section.appendChild(D.h("p", { className: "flow-note", id: "flow-note", hidden: true }));
    return body;
  }

  function showMessage(text) {
    var note = document.getElementById("flow-note");
    if (!note) return;
    note.textContent = text;
    note.hidden = !text;
  }

  function pad(number) { return (number < 10 ? "0" : "") + number; }
  function timeFormat(firstMs, lastMs) {
    // Seconds for a short span; the day too when the span leaves today. One format for every label of a chart.
    var today = new Date().toDateString();
    return { seconds: lastMs - firstMs < 2 * 60 * 1000,
             day: new Date(firstMs).toDateString() !== today || new Date(lastMs).toDateString() !== today };
  }
  function timeLabel(ms, format) {
    var date = new Date(ms);
    var clock = pad(date.getHours()) + ":" + pad(date.getMinutes()) + (format.seconds ? ":" + pad(date.getSeconds()) : "");
    return format.day ? date.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + clock : clock;
  }

  function downsample(list) {
    if (list.length <= MAX_CHART_POINTS) return list;
    var picked = [], step = (list.length - 1) / (MAX_CHART_POINTS - 1);
    for (var i = 0; i < MAX_CHART_POINTS; i++) picked.push(list[Math.round(i * step)]);
    return picked;
  }

  function describe(D, list) {
    var last = list[list.length - 1].counts;
    var words = ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"].map(function (state) {
      return last[state] + " " + ((D.STATE_LABELS && D.STATE_LABELS[state]) || state).toLowerCase();
    });
    var format = timeFormat(list[0].at, list[list.length - 1].at);
    return "Cumulative flow of the stories, " + list.length + (list.length === 1 ? " sample" : " samples") +
      (list.length > 1 ? " from " + timeLabel(list[0].at, format) + " to " + timeLabel(list[list.length - 1].at, format) : "") +
      "; last sample: " + words.join(", ") + ".";
  }

  function draw() {
    var D = dashboard();
    var body = document.querySelector("#flow-panel .flow-body");
    if (!D || !body) return;
    body.textContent = "";
    var list = downsample(samples);
    if (!list.length) {
      showMessage(loaded ? "No history yet: the chart starts with the next change of the story file." : "Loading the history…");
      return;
    }
    showMessage(list.length === 1 ? "One sample so far: the chart grows with each change of the story file." : "");
    var width = Math.max(CHART_MIN_WIDTH_PX, Math.min(CHART_MAX_WIDTH_PX, Math.round(body.clientWidth) || 480));
    lastWidth = width;
    var height = CHART_HEIGHT_PX;
    var plotW = width - MARGIN.left - MARGIN.right, plotH = height - MARGIN.top - MARGIN.bottom;
    var first = list[0].at;
    // The last sample holds until now (or until itself, if the server's clock is ahead of this one).
    var end = Math.max(list[list.length - 1].at, Date.now());
    var span = Math.max(1, end - first);
    var maxTotal = 1;
    list.forEach(function (sample) {
      var total = STACK_ORDER.reduce(function (sum, state) { return sum + sample.counts[state]; }, 0);
      if (total > maxTotal) maxTotal = total;
    });
    function x(ms) { return MARGIN.left + plotW * (ms - first) / span; }
    function y(value) { return MARGIN.top + plotH - plotH * value / maxTotal; }
    function r(value) { return Math.round(value * 10) / 10; }

    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "flow-chart", role: "img",
      "aria-label": describe(D, list), preserveAspectRatio: "xMidYMid meet", focusable: "false" });
    chart.appendChild(svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(maxTotal), y2: y(maxTotal) }));

    // One band per state; each sample's counts hold until the next sample (the file changed then).
    var below = list.map(function () { return 0; });
    STACK_ORDER.forEach(function (state) {
      var top = list.map(function (sample, i) { return below[i] + sample.counts[state]; });
      if (top.every(function (value, i) { return value === below[i]; })) { below = top; return; }
      var upper = [], lower = [];
      list.forEach(function (sample, i) {
        var x0 = x(sample.at), x1 = x(i + 1 < list.length ? list[i + 1].at : end);
        upper.push(r(x0) + "," + r(y(top[i])), r(x1) + "," + r(y(top[i])));
        lower.push(r(x0) + "," + r(y(below[i])), r(x1) + "," + r(y(below[i])));
      });
      var polygon = svg("polygon", { class: "area state-" + state, "data-state": state, points: upper.concat(lower.reverse()).join(" ") });
      var title = svg("title");
      title.textContent = (D.STATE_LABELS && D.STATE_LABELS[state]) || state;
      polygon.appendChild(title);
      chart.appendChild(polygon);
      below = top;
    });

    // Axes and their labels: the count scale on the left, the times along the bottom.
    chart.appendChild(svg("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotH }));
    chart.appendChild(svg("line", { class: "axis", x1: MARGIN.left, x2: width - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH }));
    [0, maxTotal].forEach(function (value) {
      var label = svg("text", { x: MARGIN.left - 6, y: r(y(value) + 4), "text-anchor": "end", class: "y-label" });
      label.textContent = String(value);
      chart.appendChild(label);
    });
    var format = timeFormat(first, end);
    var ticks = Math.max(2, Math.min(5, Math.floor(plotW / MIN_LABEL_GAP_PX) + 1));
    var labels = [];
    for (var i = 0; i < ticks; i++) {  // over a span of seconds, no label twice (the first place it applies)
      var words = timeLabel(first + span * i / (ticks - 1), format);
      if (!labels.length || labels[labels.length - 1].words !== words) labels.push({ index: i, words: words });
    }
    labels.forEach(function (label) {
      var anchor = label.index === 0 ? "start" : label.index === ticks - 1 ? "end" : "middle";
      var text = svg("text", { x: r(x(first + span * label.index / (ticks - 1))), y: height - 6, "text-anchor": anchor, class: "x-label" });
      text.textContent = label.words;
      chart.appendChild(text);
    });
    body.appendChild(chart);

    var legend = D.h("ul", { className: "flow-legend", "aria-hidden": "true" });
    var last = list[list.length - 1].counts;
    STACK_ORDER.forEach(function (state) {
      legend.appendChild(D.h("li", { "data-state": state }, D.h("span", { className: "swatch state-" + state }),
        ((D.STATE_LABELS && D.STATE_LABELS[state]) || state) + " " + last[state]));
    });
    body.appendChild(legend);
    body.setAttribute("data-samples", String(list.length));
  }

  function render(model, change) {
    var D = dashboard();
    if (!D || !model || !ensureShell(D)) return;
    if (!change) {
      if (fetchedForVersion === null || fetchedForVersion !== model.version) {
        fetchedForVersion = model.version;
        if (!loaded) draw();
        fetchHistory(D);
        return;
      }
      // A reload of /api/status (polling while the sync service is down): follow its counts.
      var counts = modelCounts(model);
      if (loaded && (!samples.length || !sameCounts(samples[samples.length - 1].counts, counts))) {
        append({ at: Date.now(), counts: counts, live: true });
        draw();
      }
      return;
    }
    if (change.type !== "stories_updated") return;
    var at = typeof change.timestamp === "number" ? change.timestamp : Date.now();  // the server's clock, as the history's
    append({ at: at, counts: modelCounts(model), live: true });
    draw();
  }

  window.addEventListener("resize", function () {
    if (resizeQueued) return;
    resizeQueued = true;
    window.requestAnimationFrame(function () {
      resizeQueued = false;
      var body = document.querySelector("#flow-panel .flow-body");
      if (body && samples.length && Math.abs(Math.round(body.clientWidth) - lastWidth) > 8) draw();
    });
  });

  (window.MadaceViews = window.MadaceViews || []).push({ name: "flow", render: render });
})();
