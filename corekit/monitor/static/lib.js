/* corekit monitor: helpers shared by the views in app.js (DOM building, the
 * API, flash messages, formatting, the SVG bar charts).  No dependencies. */
"use strict";

const STATES = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"];
const RETRYABLE = ["FAILURE", "REVOKED", "REJECTED"];
const SVG_NS = "http://www.w3.org/2000/svg";

// -- helpers -----------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key === "cls" ? "class" : key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  return el;
}

function fill(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
}

async function api(path, options) {
  const init = Object.assign({credentials: "same-origin", headers: {}}, options || {});
  if (init.body !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return data;
}

function post(path, body) {
  return api(path, {method: "POST", body: body || {}});
}

let flashTimer = null;
function flash(message, isError) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = isError ? "flash error" : "flash";
  box.dataset.kind = isError ? "error" : "ok";
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function act(label, call) {
  try {
    const result = await call();
    const reply = result && result.reply;
    const said = result && (result.ok || (reply && (reply.ok || JSON.stringify(reply))));
    flash(`${label}: ${said || "done"}`);
    refreshNow();
    return result;
  } catch (err) {
    flash(`${label} failed: ${err.message}`, true);
    return null;
  }
}

function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

function fmtAgo(ts) {
  if (!ts) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function fmtRuntime(s) {
  if (s === null || s === undefined) return "";
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
}

function show(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function badge(state, testid) {
  return h("span", {cls: `badge ${state || ""}`, "data-testid": testid || "badge"}, state || "?");
}

function taskLink(id, text) {
  return h("a", {href: `#/task/${encodeURIComponent(id)}`, cls: "mono"}, text || id);
}

function workerLink(hostname) {
  return hostname ? h("a", {href: `#/worker/${encodeURIComponent(hostname)}`}, hostname) : "";
}

function panel(title, ...children) {
  return h("section", {cls: "panel"}, title ? h("h2", {}, title) : null, ...children);
}

function props(pairs) {
  return h("dl", {cls: "props"}, pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "")
    .map(([k, v, testid]) => [h("dt", {}, k), h("dd", {"data-testid": testid || null}, v)]));
}

// -- charts ------------------------------------------------------------------------
/* Bars of tasks per second, averaged over groups of `group` one-second buckets. */
function barChart(counts, cls, testid, group) {
  const sums = [];
  for (let i = 0; i < counts.length; i += group) {
    sums.push(counts.slice(i, i + group).reduce((a, b) => a + b, 0) / group);
  }
  const width = 600, height = 130, top = 14, max = Math.max(1, ...sums);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height + 16}`, preserveAspectRatio: "none",
                            "data-testid": testid, role: "img"});
  chart.append(svg("line", {x1: 0, y1: height, x2: width, y2: height, class: "axis"}));
  const barWidth = width / sums.length;
  sums.forEach((value, i) => {
    if (!value) return;
    const barHeight = (value / max) * (height - top);
    const bar = svg("rect", {x: (i * barWidth + 1).toFixed(1), y: (height - barHeight).toFixed(1),
                             width: Math.max(1, barWidth - 2).toFixed(1),
                             height: barHeight.toFixed(1), class: cls});
    const title = svg("title", {});
    title.textContent = `${value.toFixed(2)} tasks/s`;
    bar.append(title);
    chart.append(bar);
  });
  const peak = svg("text", {x: 2, y: 10});
  peak.textContent = `${max.toFixed(max < 10 ? 1 : 0)}/s`;
  chart.append(peak);
  const total = counts.reduce((a, b) => a + b, 0);
  chart.dataset.total = String(total);
  return chart;
}

function chartPanel(title, counts, cls, testid) {
  const total = counts.reduce((a, b) => a + b, 0);
  return h("div", {cls: "chart"},
    h("h2", {}, title),
    barChart(counts, cls, testid, 5),
    h("div", {cls: "legend"}, h("span", {}, "5 min ago"),
      h("span", {"data-testid": `${testid}-total`}, `${total} in 5 min`), h("span", {}, "now")));
}

function select(id, label, options, current, onChange) {
  const el = h("select", {id, "data-testid": id, "aria-label": label, onchange: onChange},
    h("option", {value: ""}, `${label}: all`));
  setOptions(el, options, current);
  return el;
}

function setOptions(el, options, current) {
  const have = Array.from(el.options).slice(1).map((o) => o.value);
  if (have.join("\n") === options.join("\n")) return;
  const keep = current !== undefined ? current : el.value;
  el.replaceChildren(el.options[0], ...options.map((o) => h("option", {value: o}, o)));
  el.value = options.includes(keep) ? keep : "";
}
