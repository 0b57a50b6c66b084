// A dashboard page: panels on a 24-column grid, drawn by ECharts from one answer of
// the page's data route for the whole dashboard (JSON lines: each panel is drawn as its
// line arrives, while the server reads the next), and extended by one live stream
// (server-sent events) for the whole dashboard: no request per panel, no polling loop
// per panel. The time range, the refresh and the template variables are the page's
// view; editing changes the document, which "Save" sends with the version it was
// loaded at (a 409 is shown in the API's words: changed by someone else: reload).
//
// For measurement (the dashboard benchmark), #dashboard carries:
//   data-rendered       +1 each time every panel has drawn one answer of /data
//                       (ECharts' `finished` event of every chart; a table once filled)
//   data-live-batches   live batches applied, and data-live-points their points;
//   data-live-at        Date.now() once the charts of the last batch finished drawing
//   data-live           "open" while the live stream is connected
// A save of the dashboard elsewhere comes on the stream too (`changed`): the page says
// it is stale before its editor saves over it.
// and each panel element [data-panel-id] its newest value as data-last-value.
"use strict";

(function () {
  const root = document.getElementById("dashboard");
  if (!root || typeof echarts === "undefined") {
    return;
  }
  const setup = JSON.parse(document.getElementById("dashboard-setup").textContent);
  const T = JSON.parse(document.getElementById("dashboard-texts").textContent);
  const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
  const csrf = Object.values(headers)[0] || "";
  const toolbar = document.getElementById("dashboard-toolbar");
  const statusLine = document.getElementById("dashboard-status");
  const errorLine = document.getElementById("dashboard-error");
  const BASE_COLOR = "#2e7d32";
  const TABLE_ROWS = 50;

  let doc = setup.document;
  let version = setup.version;
  let span = { from: Date.now() - 3600e3, to: Date.now(), live: true };
  const chosen = {};
  const views = new Map(); // panel id -> {panel, el, body, chart, series, pending}
  let source = null;
  let sourceKey = "";
  let refreshTimer = null;
  let rendered = 0;
  let liveBatches = 0;
  let livePoints = 0;
  let loading = null;
  let loads = 0; // answers of /data asked for: only the newest one is drawn
  // The first answer is the one the page preloads (its <link rel=preload>): the
  // document's own time range and variable defaults, the state the toolbar starts in.
  let preloaded = true;
  // Changed since loaded or saved: live points follow the saved document only.
  let dirty = false;

  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  }

  function status(text) {
    statusLine.textContent = text;
  }

  // -- view state: time range, refresh, variables ---------------------------------

  function toLocal(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
    return d.toISOString().slice(0, 19);
  }

  function initToolbar() {
    const range = toolbar.elements.range;
    const from = doc.time.from;
    const to = doc.time.to;
    if (typeof from === "number" || typeof to === "number" || to !== "now") {
      range.value = "absolute";
      toolbar.elements.from.value = toLocal(typeof from === "number" ? from * 1000 : Date.now() - 3600e3);
      toolbar.elements.to.value = toLocal(typeof to === "number" ? to * 1000 : Date.now());
    } else if ([...range.options].some((o) => o.value === from)) {
      range.value = from;
    } else {
      range.add(new Option(from, from), 0);
      range.value = from;
    }
    toolbar.elements.refresh.value = doc.refresh || "off";
    showAbsolute();
    const place = document.getElementById("dashboard-variables");
    place.textContent = "";
    doc.variables.forEach(function (variable) {
      const label = document.createElement("label");
      label.textContent = variable.label || "$" + variable.name;
      const select = document.createElement("select");
      select.dataset.variable = variable.name;
      select.dataset.testid = "variable-" + variable.name;
      fillVariable(select, variable, []);
      label.appendChild(select);
      place.appendChild(label);
    });
  }

  function fillVariable(select, variable, names) {
    const current = chosen[variable.name] !== undefined ? chosen[variable.name] : variable.default;
    select.textContent = "";
    let options = [];
    if (variable.kind === "thing") {
      options = setup.things.map((t) => [t.id, t.name]);
    } else if (variable.kind === "channel") {
      options = setup.channels.map((c) => [c.id, c.name]);
    } else {
      options = names.map((n) => [n, n]);
      if (current && names.indexOf(current) < 0) {
        options.unshift([current, current]);
      }
    }
    if (variable.kind !== "channel") {
      select.add(new Option(T.all, ""));
    }
    options.forEach((o) => select.add(new Option(o[1], o[0])));
    select.value = current || "";
    chosen[variable.name] = select.value;
  }

  function showAbsolute() {
    const absolute = toolbar.elements.range.value === "absolute";
    toolbar.querySelectorAll("label.absolute").forEach((l) => (l.hidden = !absolute));
  }

  function timeRange() {
    const range = toolbar.elements.range.value;
    if (range !== "absolute") {
      return { from: range, to: "now" };
    }
    const from = Date.parse(toolbar.elements.from.value);
    const to = Date.parse(toolbar.elements.to.value);
    return { from: isNaN(from) ? "now-1h" : from / 1000, to: isNaN(to) ? "now" : to / 1000 };
  }

  function variableParams() {
    const params = new URLSearchParams();
    Object.keys(chosen).sort().forEach((name) => params.set("var-" + name, chosen[name]));
    return params;
  }

  // -- panels -----------------------------------------------------------------------

  function format(value, options) {
    if (value === null || value === undefined) {
      return "—";
    }
    const text = options.decimals === null || options.decimals === undefined
      ? String(Math.round(value * 1000) / 1000) : value.toFixed(options.decimals);
    return options.unit ? text + " " + options.unit : text;
  }

  function colorOf(value, options) {
    let color = BASE_COLOR;
    (options.thresholds || []).slice().sort((a, b) => a.value - b.value).forEach(function (t) {
      if (value !== null && value >= t.value) {
        color = t.color;
      }
    });
    return color;
  }

  function layout() {
    views.forEach((view) => view.chart && view.chart.dispose());
    views.clear();
    root.textContent = "";
    if (!doc.panels.length) {
      const empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = T.noData;
      root.appendChild(empty);
    }
    doc.panels.forEach(function (panel) {
      const el = document.createElement("article");
      el.className = "card dash-panel";
      el.dataset.panelId = panel.id;
      el.dataset.testid = "panel";
      el.style.gridColumn = panel.grid.x + 1 + " / span " + panel.grid.w;
      el.style.gridRow = panel.grid.y + 1 + " / span " + panel.grid.h;
      const head = document.createElement("header");
      const title = document.createElement("h2");
      title.textContent = panel.title || panel.query.name || panel.query.channel;
      head.appendChild(title);
      if (setup.canEdit) {
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = T.edit;
        edit.dataset.action = "edit";
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "danger";
        remove.textContent = T.remove;
        remove.dataset.action = "remove";
        head.append(edit, remove);
      }
      const body = document.createElement("div");
      body.className = "dash-body";
      el.append(head, body);
      root.appendChild(el);
      const view = { panel: panel, el: el, body: body, chart: null, series: [], pending: [] };
      if (panel.type !== "table") {
        view.chart = echarts.init(body, null, { renderer: "canvas" });
        view.chart.on("finished", function () {
          const callbacks = view.pending;
          view.pending = [];
          callbacks.forEach((callback) => callback());
        });
      }
      views.set(panel.id, view);
    });
  }

  // A view's data is its series by name, as columns: {name, t: [ms], v: [value],
  // texts: [[ms, text]]} (texts: records without a value, for tables only), oldest first.
  // ECharts reads the columns as a dataset, without copying them into points first.

  // The newest value of a view: {t, v, series}, or null when it has none.
  function newest(view) {
    let best = null;
    view.series.forEach(function (s) {
      const last = s.t.length - 1;
      if (last >= 0 && (best === null || s.t[last] > best.t)) {
        best = { t: s.t[last], v: s.v[last], series: s };
      }
    });
    return best;
  }

  function lastValue(view) {
    const last = newest(view);
    return last === null ? null : last.v;
  }

  function datasetOf(s) {
    return { dimensions: ["t", "v"], source: { t: s.t, v: s.v } };
  }

  function optionFor(view) {
    const panel = view.panel;
    const o = panel.options;
    if (panel.type === "gauge" || panel.type === "stat") {
      const value = lastValue(view);
      if (panel.type === "gauge") {
        const min = o.min === null ? 0 : o.min;
        const max = o.max === null ? 100 : o.max;
        const stops = (o.thresholds || []).slice().sort((a, b) => a.value - b.value);
        const colors = [];
        let previous = BASE_COLOR;
        stops.forEach(function (t) {
          colors.push([Math.min(1, Math.max(0, (t.value - min) / (max - min))), previous]);
          previous = t.color;
        });
        colors.push([1, previous]);
        return {
          animation: false,
          series: [{
            type: "gauge", min: min, max: max, progress: { show: false },
            axisLine: { lineStyle: { width: 14, color: colors } },
            detail: { valueAnimation: false, formatter: () => format(value, o), fontSize: 18,
              offsetCenter: [0, "75%"] },
            data: [{ value: value === null ? min : value }],
          }],
        };
      }
      const last = newest(view); // the sparkline is the series of the newest value
      return {
        animation: false,
        title: { text: format(value, o), left: "center", top: "30%",
          textStyle: { fontSize: 34, color: colorOf(value, o) } },
        grid: { left: 0, right: 0, top: "65%", bottom: 0 },
        xAxis: { type: "time", show: false, min: span.from, max: span.to },
        yAxis: { type: "value", show: false, scale: true },
        dataset: last ? [datasetOf(last.series)] : [],
        series: last ? [{ type: "line", showSymbol: false, areaStyle: { opacity: 0.15 },
          lineStyle: { width: 1 }, datasetIndex: 0, encode: { x: "t", y: "v" } }] : [],
      };
    }
    const marks = (o.thresholds || []).map((t) => ({ yAxis: t.value, lineStyle: { color: t.color } }));
    const drawn = view.series.filter((s) => s.t.length);
    const series = drawn.map(function (column, index) {
      const s = { type: panel.type === "bar" ? "bar" : "line", name: column.name,
        datasetIndex: index, encode: { x: "t", y: "v" }, showSymbol: false, sampling: "lttb" };
      if (panel.type === "bar") {
        s.stack = "total"; // buckets of several names are one bar, as a count reads
      }
      if (index === 0 && marks.length) {
        s.markLine = { symbol: "none", silent: true, label: { show: false }, data: marks };
      }
      return s;
    });
    const legend = drawn.length > 1 && drawn.length <= 4;
    return {
      animation: false,
      grid: { left: 48, right: 16, top: legend ? 28 : 12, bottom: 24 },
      legend: { show: legend, top: 0 },
      tooltip: { trigger: "axis", valueFormatter: (v) => format(v, o) },
      // a narrow panel leaves out the time labels that would overlap, not prints them over
      // each other
      xAxis: { type: "time", min: span.from, max: span.to, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", scale: o.min === null && o.max === null,
        min: o.min === null ? undefined : o.min, max: o.max === null ? undefined : o.max,
        axisLabel: { formatter: (v) => format(v, Object.assign({}, o, { unit: "" })) } },
      dataset: drawn.map(datasetOf),
      series: series,
    };
  }

  // The newest `count` records of a view, newest first: [ms, name, value, text].
  function newestRows(view, count) {
    const rows = [];
    view.series.forEach(function (s) {
      for (let i = Math.max(0, s.t.length - count); i < s.t.length; i++) {
        rows.push([s.t[i], s.name, s.v[i], null]);
      }
      (s.texts || []).slice(-count).forEach((x) => rows.push([x[0], s.name, null, x[1]]));
    });
    return rows.sort((a, b) => b[0] - a[0]).slice(0, count);
  }

  function drawTable(view) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    [T.time, T.name, T.value].forEach(function (label) {
      const th = document.createElement("th");
      th.textContent = label;
      head.appendChild(th);
    });
    const body = table.createTBody();
    newestRows(view, TABLE_ROWS).forEach(function (p) {
      const row = body.insertRow();
      row.insertCell().textContent = new Date(p[0]).toLocaleString();
      row.insertCell().textContent = p[1];
      const cell = row.insertCell();
      cell.className = "num";
      cell.textContent = p[2] === null ? p[3] : format(p[2], view.panel.options);
    });
    view.body.textContent = "";
    view.body.appendChild(table);
  }

  // Where `at` goes in the ascending `times`: the index of the first time above it.
  function insertionPoint(times, at) {
    let low = 0;
    let high = times.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (times[middle] <= at) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }

  // Adds a live point [ms, name, value, text] to a view, in time order, once: a point
  // already shown (the same time and name) is not added again. True when it was added.
  function addPoint(view, p) {
    let s = view.series.find((c) => c.name === p[1]);
    if (!s) {
      s = { name: p[1], t: [], v: [] };
      view.series.push(s);
    }
    if (p[2] === null) {
      s.texts = s.texts || [];
      if (s.texts.some((x) => x[0] === p[0])) {
        return false;
      }
      s.texts.push([p[0], p[3]]);
      s.texts.sort((a, b) => a[0] - b[0]);
      return true;
    }
    const at = insertionPoint(s.t, p[0]);
    if (at > 0 && s.t[at - 1] === p[0]) {
      return false;
    }
    s.t.splice(at, 0, p[0]);
    s.v.splice(at, 0, p[2]);
    return true;
  }

  // Keeps what the view's query would read now: the window, and its newest `limit`.
  function trim(view, from, limit) {
    view.series.forEach(function (s) {
      const first = insertionPoint(s.t, from - 1e-9);
      if (first > 0) {
        s.t.splice(0, first);
        s.v.splice(0, first);
      }
      if (s.texts) {
        s.texts = s.texts.filter((x) => x[0] >= from);
      }
    });
    let excess = view.series.reduce((n, s) => n + s.t.length + (s.texts ? s.texts.length : 0), 0) - limit;
    const heads = view.series.map(() => [0, 0]); // dropped from t, from texts
    while (excess > 0) {
      let oldest = -1;
      let kind = 0;
      view.series.forEach(function (s, i) {
        const h = heads[i];
        if (h[0] < s.t.length && (oldest < 0 || s.t[h[0]] < headTime(oldest, kind))) {
          oldest = i;
          kind = 0;
        }
        if (s.texts && h[1] < s.texts.length && (oldest < 0 || s.texts[h[1]][0] < headTime(oldest, kind))) {
          oldest = i;
          kind = 1;
        }
      });
      heads[oldest][kind] += 1;
      excess -= 1;
    }
    function headTime(i, k) {
      const s = view.series[i];
      return k === 0 ? s.t[heads[i][0]] : s.texts[heads[i][1]][0];
    }
    view.series.forEach(function (s, i) {
      s.t.splice(0, heads[i][0]);
      s.v.splice(0, heads[i][0]);
      if (s.texts) {
        s.texts.splice(0, heads[i][1]);
      }
    });
  }

  // Draws every view; `done` is called once all of them finished drawing.
  function drawAll(ids, done) {
    let waiting = ids.length;
    const finished = function () {
      waiting -= 1;
      if (waiting === 0) {
        done();
      }
    };
    if (!waiting) {
      done();
    }
    ids.forEach(function (id) {
      const view = views.get(id);
      const value = lastValue(view);
      view.el.dataset.lastValue = value === null ? "" : String(value);
      if (!view.chart) {
        drawTable(view);
        finished();
        return;
      }
      // Every draw asked for before ECharts' next `finished` is done by then: a live
      // batch drawn while an answer is being drawn does not take the answer's callback.
      view.pending.push(finished);
      view.chart.setOption(optionFor(view), { notMerge: true });
    });
  }

  // -- data and live ------------------------------------------------------------------

  function load() {
    if (loading) {
      loading.abort();
    }
    loading = new AbortController();
    const time = timeRange();
    const params = variableParams();
    params.set("from", time.from);
    params.set("to", time.to);
    const request = { signal: loading.signal, credentials: "same-origin" };
    if (dirty) {
      // not saved yet: the server reads the page's document instead of the stored one
      request.method = "POST";
      request.body = new URLSearchParams({ csrf_token: csrf, document: JSON.stringify(doc) });
    }
    const url = preloaded && !dirty ? setup.urls.data : setup.urls.data + "?" + params;
    preloaded = false;
    const generation = ++loads;
    const current = () => generation === loads;
    fetch(url, request)
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(
            (body) => showError(body.error ? body.error.message : String(response.status)),
            () => showError(String(response.status)));
        }
        showError("");
        const names = new Set();
        const waiting = new Set(views.keys());
        let drawing = views.size;
        const drawn = function () {
          drawing -= 1;
          if (drawing === 0 && current()) {
            rendered += 1;
            root.dataset.rendered = String(rendered);
          }
        };
        const show = function (id, body) {
          const view = views.get(id);
          view.series = body.series || [];
          view.series.forEach((column) => names.add(column.name));
          view.el.classList.toggle("failed", Boolean(body.error));
          view.el.title = body.error ? body.error.message : "";
          drawAll([id], drawn);
        };
        // Each panel is drawn as its line arrives, while the server reads the next.
        return readLines(response, current, function (body) {
          if (body.window) {
            span = body.window;
          } else if (waiting.delete(body.panel)) {
            show(body.panel, body);
          }
        }).then(function () {
          if (!current()) {
            return;
          }
          waiting.forEach((id) => show(id, {})); // not in the answer: nothing to show
          document.querySelectorAll("select[data-variable]").forEach(function (select) {
            const variable = doc.variables.find((v) => v.name === select.dataset.variable);
            if (variable && variable.kind === "name") {
              fillVariable(select, variable, [...names].sort());
            }
          });
          follow();
        });
      })
      .catch(function (error) {
        if (error.name !== "AbortError" && current()) {
          showError(document.body.dataset.networkError || String(error));
        }
      });
  }

  // Reads an answer of JSON lines, handing each to `take` as soon as it is complete;
  // stops once `current()` is false (a newer load took over).
  function readLines(response, current, take) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let searched = 0;
    function next() {
      return reader.read().then(function (chunk) {
        if (!current()) {
          reader.cancel();
          return undefined;
        }
        buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
        let end = buffer.indexOf("\n", searched);
        while (end >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (line.trim()) {
            take(JSON.parse(line));
          }
          end = buffer.indexOf("\n");
        }
        searched = buffer.length;
        if (chunk.done) {
          if (buffer.trim()) {
            take(JSON.parse(buffer));
          }
          return undefined;
        }
        return next();
      });
    }
    return next();
  }

  function follow() {
    const key = span.live ? variableParams().toString() : "";
    if (key === sourceKey && (source || !span.live)) {
      return;
    }
    if (source) {
      source.close();
      source = null;
      root.dataset.live = "closed";
    }
    sourceKey = key;
    if (!span.live) {
      status(T.paused);
      return;
    }
    source = new EventSource(setup.urls.live + "?" + variableParams());
    source.onopen = function () {
      root.dataset.live = "open";
      status(dirty ? T.unsaved : T.live);
    };
    source.onerror = function () {
      root.dataset.live = source && source.readyState === EventSource.CLOSED ? "closed" : "retrying";
      status(T.paused);
    };
    source.addEventListener("ended", function () {
      source.close();
      source = null;
      root.dataset.live = "closed";
      status(T.ended);
    });
    source.addEventListener("changed", function (event) {
      const saved = JSON.parse(event.data).version;
      if (saved === null || saved > version) {
        showError(T.changedElsewhere); // its own save is not newer than `version`
      }
    });
    source.addEventListener("points", function (event) {
      applyLive(JSON.parse(event.data).panels);
    });
  }

  function applyLive(batch) {
    const width = span.to - span.from;
    span.to = Math.max(span.to, Date.now());
    span.from = span.to - width;
    let count = 0;
    const ids = [];
    Object.keys(batch).forEach(function (id) {
      const view = views.get(id);
      if (!view) {
        return;
      }
      batch[id].forEach(function (p) {
        if (addPoint(view, p)) {
          count += 1;
        }
      });
      trim(view, span.from, view.panel.query.limit);
      ids.push(id);
    });
    drawAll(ids, function () {
      liveBatches += 1;
      livePoints += count;
      root.dataset.liveBatches = String(liveBatches);
      root.dataset.livePoints = String(livePoints);
      root.dataset.liveAt = String(Date.now());
    });
  }

  function schedule() {
    if (refreshTimer) {
      clearInterval(refreshTimer);
      refreshTimer = null;
    }
    const every = { "5s": 5, "10s": 10, "30s": 30, "1m": 60, "5m": 300 }[toolbar.elements.refresh.value];
    if (every) {
      refreshTimer = setInterval(load, every * 1000);
    }
  }

  // -- editing ------------------------------------------------------------------------

  const editor = document.getElementById("panel-editor");
  let editing = null;

  function fillEditor(panel) {
    const form = document.getElementById("panel-form");
    const channel = form.elements.channel;
    channel.textContent = "";
    doc.variables.filter((v) => v.kind === "channel")
      .forEach((v) => channel.add(new Option("$" + v.name, "$" + v.name)));
    setup.channels.forEach((c) => channel.add(new Option(c.name, c.id)));
    const publisher = form.elements.publisher;
    publisher.textContent = "";
    publisher.add(new Option(T.all, ""));
    doc.variables.filter((v) => v.kind === "thing")
      .forEach((v) => publisher.add(new Option("$" + v.name, "$" + v.name)));
    setup.things.forEach((t) => publisher.add(new Option(t.name, t.id)));
    const q = panel ? panel.query : {};
    const o = panel ? panel.options : {};
    const text = (v) => (v === null || v === undefined ? "" : String(v));
    form.elements.title.value = panel ? panel.title : "";
    form.elements.type.value = panel ? panel.type : "line";
    channel.value = q.channel || (setup.channels[0] ? setup.channels[0].id : "");
    form.elements.name.value = text(q.name);
    publisher.value = text(q.publisher);
    form.elements.aggregation.value = text(q.aggregation);
    form.elements.interval.value = text(q.interval);
    form.elements.unit.value = text(o.unit);
    form.elements.min.value = text(o.min);
    form.elements.max.value = text(o.max);
    form.elements.decimals.value = text(o.decimals);
    form.elements.thresholds.value = (o.thresholds || []).map((t) => t.value + ":" + t.color).join(", ");
    form.elements.w.value = panel ? panel.grid.w : 12;
    form.elements.h.value = panel ? panel.grid.h : 8;
  }

  function panelFromEditor(previous) {
    const f = document.getElementById("panel-form").elements;
    const number = (v) => (v.trim() === "" ? null : Number(v));
    const or = (v) => (v.trim() === "" ? null : v.trim());
    const thresholds = f.thresholds.value.split(",").map((s) => s.trim()).filter(Boolean)
      .map(function (s) {
        const parts = s.split(":");
        return { value: Number(parts[0]), color: (parts[1] || "").trim() };
      });
    const w = Math.max(1, Math.min(24, Number(f.w.value) || 12));
    let grid;
    if (previous) {
      grid = Object.assign({}, previous.grid, { w: w, x: Math.min(previous.grid.x, 24 - w) });
    } else {
      const bottom = doc.panels.reduce((m, p) => Math.max(m, p.grid.y + p.grid.h), 0);
      grid = { x: 0, y: bottom, w: w };
    }
    grid.h = Math.max(2, Math.min(40, Number(f.h.value) || 8));
    return {
      id: previous ? previous.id : "p" + Date.now().toString(36),
      type: f.type.value,
      title: f.title.value.trim(),
      grid: grid,
      query: {
        channel: f.channel.value, name: or(f.name.value), publisher: or(f.publisher.value),
        subtopic: previous ? previous.query.subtopic : null,
        aggregation: or(f.aggregation.value), interval: or(f.interval.value),
        limit: previous ? previous.query.limit : 500,
      },
      options: {
        unit: f.unit.value.trim(), min: number(f.min.value), max: number(f.max.value),
        decimals: number(f.decimals.value), thresholds: thresholds,
      },
    };
  }

  function changed() {
    dirty = true;
    status(T.unsaved);
    layout();
    load();
  }

  if (editor) {
    document.getElementById("panel-add").addEventListener("click", function () {
      editing = null;
      fillEditor(null);
      editor.showModal();
    });
    editor.addEventListener("close", function () {
      if (editor.returnValue !== "ok") {
        return;
      }
      const panel = panelFromEditor(editing);
      if (editing) {
        doc.panels = doc.panels.map((p) => (p.id === editing.id ? panel : p));
      } else {
        doc.panels = doc.panels.concat([panel]);
      }
      changed();
    });
    root.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action]");
      if (!button) {
        return;
      }
      const id = button.closest("[data-panel-id]").dataset.panelId;
      const panel = doc.panels.find((p) => p.id === id);
      if (button.dataset.action === "edit") {
        editing = panel;
        fillEditor(panel);
        editor.showModal();
      } else if (window.confirm(T.confirmRemove)) {
        doc.panels = doc.panels.filter((p) => p.id !== id);
        changed();
      }
    });
    document.getElementById("dashboard-save").addEventListener("click", function () {
      const body = new URLSearchParams();
      body.set("csrf_token", csrf);
      doc.time = timeRange();
      doc.refresh = toolbar.elements.refresh.value;
      body.set("document", JSON.stringify(doc));
      body.set("version", String(version));
      fetch(setup.urls.save, { method: "POST", body: body, credentials: "same-origin" })
        .then((response) => response.json().then((answer) => [response, answer]))
        .then(function (pair) {
          if (!pair[0].ok) {
            showError(pair[1].error ? pair[1].error.message : String(pair[0].status));
            return;
          }
          showError("");
          version = pair[1].version;
          root.dataset.version = String(version);
          dirty = false;
          sourceKey = "-"; // the stream follows the saved panels from now on
          follow();
          status(T.saved);
        })
        .catch((error) => showError(document.body.dataset.networkError || String(error)));
    });
  }

  toolbar.addEventListener("change", function (event) {
    const target = event.target;
    if (target.dataset.variable) {
      chosen[target.dataset.variable] = target.value;
    }
    if (target.name === "range") {
      showAbsolute();
    }
    if (target.name === "refresh") {
      schedule();
      return;
    }
    load();
  });
  toolbar.addEventListener("submit", (event) => event.preventDefault());
  window.addEventListener("resize", () => views.forEach((v) => v.chart && v.chart.resize()));

  root.dataset.version = String(version);
  initToolbar();
  layout();
  schedule();
  load();
  // Disabled in the page until now: a click before this script ran would do nothing.
  document.querySelectorAll("[data-needs-script]").forEach((button) => (button.disabled = false));
})();
