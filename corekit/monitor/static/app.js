/* corekit monitor: a small single-page UI over the JSON API (helpers in lib.js).
 * Routes live in the URL hash: #/ (dashboard), #/tasks, #/task/<id>, #/worker/<hostname>,
 * #/periodic (periodic.js).
 * The current view's refresh() runs every REFRESH_MS; forms and filters are built
 * once per view so that polling never disturbs what the user is typing. */
"use strict";

const REFRESH_MS = 1500;

// -- views -------------------------------------------------------------------------
function workersTable(workers) {
  if (!workers.length) return h("div", {cls: "empty"}, "No worker seen yet: start one (with -E for events).");
  return h("table", {"data-testid": "workers-table"},
    h("thead", {}, h("tr", {}, ["Worker", "Status", "Pool", "Load", "Active", "Processed", "Heartbeat"]
      .map((t, i) => h("th", {cls: i >= 3 && i <= 5 ? "num" : null}, t)))),
    h("tbody", {}, workers.map((w) => h("tr", {"data-testid": "worker-row", "data-hostname": w.hostname},
      h("td", {}, workerLink(w.hostname)),
      h("td", {}, badge(w.status, "worker-status")),
      h("td", {}, [w.pool.implementation, w.pool.max_concurrency ? `×${w.pool.max_concurrency}` : ""]
        .filter(Boolean).join(" ")),
      h("td", {cls: "num"}, w.loadavg ? w.loadavg.map((x) => Number(x).toFixed(2)).join(" ") : ""),
      h("td", {cls: "num", "data-testid": "worker-active"}, w.active),
      h("td", {cls: "num", "data-testid": "worker-processed"}, w.processed),
      h("td", {}, w.last_heartbeat ? fmtAgo(w.last_heartbeat) : (w.online ? "inspect only" : ""))))));
}

function tasksTable(tasks, emptyText) {
  if (!tasks.length) return h("div", {cls: "empty", "data-testid": "no-tasks"}, emptyText || "No task matches.");
  return h("table", {"data-testid": "tasks-table"},
    h("thead", {}, h("tr", {}, ["Task", "Name", "State", "Args", "Kwargs", "Worker", "Received", "Runtime"]
      .map((t, i) => h("th", {cls: i === 7 ? "num" : null}, t)))),
    h("tbody", {}, tasks.map((t) => h("tr", {"data-testid": "task-row", "data-task-id": t.uuid,
                                             "data-state": t.state, "data-name": t.name || ""},
      h("td", {"data-testid": "task-link"}, taskLink(t.uuid, t.uuid.slice(0, 8))),
      h("td", {}, t.name || ""),
      h("td", {}, badge(t.state, "task-row-state")),
      h("td", {cls: "args mono", title: show(t.args)}, show(t.args)),
      h("td", {cls: "args mono", title: show(t.kwargs)}, show(t.kwargs)),
      h("td", {cls: "nowrap"}, workerLink(t.worker)),
      h("td", {cls: "nowrap"}, fmtTime(t.received || t.sent || t.timestamp)),
      h("td", {cls: "num nowrap"}, fmtRuntime(t.runtime))))));
}

function dashboardView(root) {
  const cards = h("div", {cls: "cards", "data-testid": "summary"});
  const charts = h("section", {cls: "panel grid"});
  const workers = h("div");
  const queues = h("div");
  const recent = h("div");
  fill(root, cards, charts,
       h("div", {cls: "split"}, panel("Workers", workers), panel("Queues", queues)),
       panel("Latest tasks", recent));
  return async () => {
    const [stats, ws, qs, ts] = await Promise.all([
      api("/api/stats"), api("/api/workers"), api("/api/queues"), api("/api/tasks?limit=10")]);
    const byState = stats.totals || {};
    fill(cards, [["Workers online", `${stats.workers_online} / ${stats.workers}`, "card-workers"],
                 ["Succeeded", byState.SUCCESS || 0, "card-succeeded"],
                 ["Failed", byState.FAILURE || 0, "card-failed"],
                 ["Retried", byState.RETRY || 0, "card-retried"],
                 ["Revoked", byState.REVOKED || 0, "card-revoked"],
                 ["Events", stats.events, "card-events"]]
      .map(([label, value, id]) => h("div", {cls: "card"},
        h("div", {cls: "value", "data-testid": id}, value), h("div", {cls: "label"}, label))));
    const sec = stats.per_second.counts;
    const finished = sec.succeeded.map((n, i) => n + sec.failed[i]);
    fill(charts, chartPanel("Throughput (tasks finished per second)", finished, "bar-ok", "chart-throughput"),
         chartPanel("Failures per second", sec.failed, "bar-bad", "chart-failures"));
    fill(workers, workersTable(ws.workers));
    fill(queues, qs.queues.length ? h("table", {"data-testid": "queues-table"},
      h("thead", {}, h("tr", {}, h("th", {}, "Queue"), h("th", {cls: "num"}, "Messages waiting"))),
      h("tbody", {}, qs.queues.map((q) => h("tr", {"data-testid": "queue-row", "data-queue": q.name},
        h("td", {}, q.name), h("td", {cls: "num", "data-testid": "queue-length"},
          q.messages === null ? "n/a" : q.messages)))))
      : h("div", {cls: "empty"}, "No queue known yet."));
    fill(recent, tasksTable(ts.tasks, "No task seen yet: workers send task events with -E."));
    document.getElementById("broker").textContent = qs.broker;
  };
}

const taskFilter = {state: "", name: "", worker: "", search: "", offset: 0, limit: 50};

function tasksView(root) {
  const body = h("div");
  const pager = h("div", {cls: "pager"});
  const changed = () => { taskFilter.offset = 0; refreshNow(); };
  const state = select("filter-state", "State", STATES, taskFilter.state,
                       (e) => { taskFilter.state = e.target.value; changed(); });
  const name = select("filter-name", "Name", [], taskFilter.name,
                      (e) => { taskFilter.name = e.target.value; changed(); });
  const worker = select("filter-worker", "Worker", [], taskFilter.worker,
                        (e) => { taskFilter.worker = e.target.value; changed(); });
  let debounce = null;
  const search = h("input", {type: "search", id: "filter-search", "data-testid": "filter-search",
                             placeholder: "Search id, name, args, kwargs", value: taskFilter.search,
                             oninput: (e) => {
                               clearTimeout(debounce);
                               debounce = setTimeout(() => { taskFilter.search = e.target.value; changed(); }, 250);
                             }});
  fill(root, h("h1", {}, "Tasks"),
       panel(null, h("div", {cls: "filters"}, state, name, worker, search), body, pager));
  return async () => {
    const query = new URLSearchParams();
    for (const key of ["state", "name", "worker", "search", "offset", "limit"]) {
      if (taskFilter[key] !== "") query.set(key, taskFilter[key]);
    }
    const [ts, ws] = await Promise.all([api(`/api/tasks?${query}`), api("/api/workers")]);
    setOptions(name, ts.task_types || []);
    setOptions(worker, ws.workers.map((w) => w.hostname));
    fill(body, tasksTable(ts.tasks));
    const last = Math.min(ts.offset + ts.tasks.length, ts.total);
    fill(pager,
      h("button", {"data-testid": "page-prev", disabled: ts.offset === 0,
                   onclick: () => { taskFilter.offset = Math.max(0, ts.offset - ts.limit); refreshNow(); }}, "‹ Newer"),
      h("span", {"data-testid": "tasks-count"}, ts.total ? `${ts.offset + 1}–${last} of ${ts.total}` : "0 tasks"),
      h("button", {"data-testid": "page-next", disabled: last >= ts.total,
                   onclick: () => { taskFilter.offset = ts.offset + ts.limit; refreshNow(); }}, "Older ›"));
  };
}

function taskView(root, taskId) {
  const title = h("h1", {}, taskId);
  const stateBox = h("span");
  const actions = h("div", {cls: "actions"});
  const details = h("div");
  const timeline = h("div");
  const children = h("div");
  const path = `/api/tasks/${encodeURIComponent(taskId)}`;
  const revoke = h("button", {"data-testid": "action-revoke", onclick: () => {
    if (confirm(`Revoke task ${taskId}? It will not run (if it has not started yet).`)) {
      act("Revoke", () => post(`${path}/revoke`, {terminate: false}));
    }}}, "Revoke");
  const terminate = h("button", {cls: "danger", "data-testid": "action-terminate", onclick: () => {
    if (confirm(`Terminate task ${taskId}? Its process is killed with SIGTERM where it runs.`)) {
      act("Terminate", () => post(`${path}/revoke`, {terminate: true, signal: "SIGTERM"}));
    }}}, "Terminate");
  const retry = h("button", {cls: "primary", "data-testid": "action-retry", onclick: async () => {
    const result = await act("Retry", () => post(`${path}/retry`));
    if (result && result.task_id) location.hash = `#/task/${encodeURIComponent(result.task_id)}`;
  }}, "Retry");
  fill(root, h("div", {cls: "actions"}, title, stateBox), panel("Actions", actions),
       h("div", {cls: "grid"}, panel("Details", details), panel("Timeline", timeline)), children);
  return async () => {
    let t;
    try {
      t = await api(path);
    } catch (err) {
      fill(details, h("div", {cls: "empty", "data-testid": "task-missing"}, err.message));
      return;
    }
    fill(title, t.name || "task", " ", h("span", {cls: "mono muted", "data-testid": "task-id"}, t.uuid));
    fill(stateBox, badge(t.state, "task-state"));
    const ended = ["SUCCESS", ...RETRYABLE].includes(t.state);
    fill(actions, ended ? null : [revoke, terminate], RETRYABLE.includes(t.state) ? retry : null,
         t.state === "SUCCESS" ? h("span", {cls: "muted"}, "It succeeded: nothing to do.") : null);
    const runtime = t.runtime !== null && t.runtime !== undefined ? fmtRuntime(t.runtime) : "";
    fill(details, props([
      ["State", t.state], ["Worker", workerLink(t.worker)], ["Sent", fmtTime(t.sent)],
      ["Received", fmtTime(t.received)], ["Started", fmtTime(t.started)],
      ["Succeeded", fmtTime(t.succeeded)], ["Failed", fmtTime(t.failed)],
      ["Revoked", fmtTime(t.revoked)], ["Runtime", runtime], ["Retries", t.retries || ""],
      ["ETA", t.eta], ["Expires", t.expires],
      ["Parent", t.parent ? taskLink(t.parent.uuid) : ""], ["Root", t.root_id || ""],
    ]),
    h("h2", {}, "Args"), h("pre", {"data-testid": "task-args"}, show(t.args)),
    h("h2", {}, "Kwargs"), h("pre", {"data-testid": "task-kwargs"}, show(t.kwargs)),
    t.result !== null && t.result !== undefined
      ? [h("h2", {}, "Result"), h("pre", {"data-testid": "task-result"}, show(t.result))] : null,
    t.exception ? [h("h2", {}, "Exception"), h("pre", {"data-testid": "task-exception"}, show(t.exception))] : null,
    t.traceback ? [h("h2", {}, "Traceback"), h("pre", {"data-testid": "task-traceback"}, t.traceback)] : null,
    storedResult(t, path));
    fill(timeline, h("ol", {cls: "timeline", "data-testid": "task-timeline"},
      t.timeline.map((e) => h("li", {cls: e.type, "data-testid": "timeline-event", "data-type": e.type},
        h("strong", {}, e.type), h("span", {cls: "when"}, fmtTime(e.timestamp)),
        h("div", {cls: "fields"}, eventFields(e))))));
    fill(children, t.children.length ? panel("Children", h("ul", {"data-testid": "task-children"},
      t.children.map((c) => h("li", {}, taskLink(c.uuid), " ", c.name || "", " ", c.state ? badge(c.state) : "")))) : null);
  };
}

// Events carry args, results and tracebacks cut to a few KiB; the backend keeps them whole.
function storedResult(t, path) {
  const cut = t.truncated || [];
  if (!cut.length && !["SUCCESS", "FAILURE", "RETRY"].includes(t.state)) return null;
  return h("p", {cls: "muted", "data-testid": "task-stored"},
    cut.length ? `Events carry ${cut.join(", ")} truncated. ` : "",
    h("a", {href: `${path}/result`, target: "_blank", rel: "noopener", "data-testid": "task-stored-result"},
      "Full result and traceback from the result backend"));
}

function eventFields(e) {
  const skip = ["type", "timestamp", "uuid", "hostname", "utcoffset", "pid", "clock", "local_received", "traceback"];
  return Object.entries(e).filter(([k, v]) => !skip.includes(k) && v !== null && v !== "")
    .map(([k, v]) => `${k}=${k === "runtime" ? fmtRuntime(v) : show(v)}`).join("  ");
}

function workerView(root, hostname) {
  const path = `/api/workers/${encodeURIComponent(hostname)}`;
  const stateBox = h("span");
  const details = h("div");
  const registered = h("div");
  const running = h("div");
  const taskSelect = h("select", {id: "rate-limit-task", "data-testid": "rate-limit-task", "aria-label": "Task"},
    h("option", {value: ""}, "task…"));
  const rate = h("input", {id: "rate-limit-rate", "data-testid": "rate-limit-rate", placeholder: "10/s, 200/m or 0", size: 12});
  const count = h("input", {id: "pool-n", "data-testid": "pool-n", type: "number", min: 1, value: 1, size: 4});
  const n = () => Math.max(1, parseInt(count.value, 10) || 1);
  const actions = h("div", {},
    h("div", {cls: "actions"}, "Pool:", count,
      h("button", {"data-testid": "action-pool-grow", onclick: () => act("Grow pool", () => post(`${path}/pool_grow`, {n: n()}))}, "Grow"),
      h("button", {"data-testid": "action-pool-shrink", onclick: () => act("Shrink pool", () => post(`${path}/pool_shrink`, {n: n()}))}, "Shrink"),
      h("span", {cls: "muted"}, "|"), "Rate limit:", taskSelect, rate,
      h("button", {"data-testid": "action-rate-limit", onclick: () => {
        if (!taskSelect.value || !rate.value) { flash("Pick a task and a rate (e.g. 10/s)", true); return; }
        act("Rate limit", () => post(`${path}/rate_limit`, {task: taskSelect.value, rate: rate.value}));
      }}, "Set"),
      h("span", {cls: "muted"}, "|"),
      h("button", {cls: "danger", "data-testid": "action-shutdown", onclick: () => {
        if (confirm(`Shut down worker ${hostname}? Running tasks finish first.`)) {
          act("Shutdown", () => post(`${path}/shutdown`));
        }}}, "Shut down")));
  fill(root, h("div", {cls: "actions"}, h("h1", {}, hostname), stateBox), panel("Actions", actions),
       h("div", {cls: "grid"}, panel("Details", details), panel("Registered tasks", registered)),
       panel("Running now", running));
  return async () => {
    let w;
    try {
      w = await api(path);
    } catch (err) {
      fill(details, h("div", {cls: "empty", "data-testid": "worker-missing"}, err.message));
      return;
    }
    fill(stateBox, badge(w.status, "worker-status"));
    const names = (w.registered || []).map((r) => String(r).split(" ")[0]);
    setOptions(taskSelect, names);
    fill(details, props([
      ["Status", w.status], ["Software", [w.sw_ident, w.sw_ver].filter(Boolean).join(" ")],
      ["System", w.sw_sys], ["PID", w.pid],
      ["Pool", w.pool.implementation], ["Concurrency", w.pool.max_concurrency, "worker-concurrency"],
      ["Processes", w.pool.processes ? w.pool.processes.join(", ") : ""],
      ["Prefetch", w.prefetch_count], ["Uptime", w.uptime ? `${w.uptime} s` : ""],
      ["Load", w.loadavg ? w.loadavg.join(" ") : ""], ["Active", String(w.active)],
      ["Processed", String(w.processed)], ["Heartbeat", fmtAgo(w.last_heartbeat)],
      ["Queues", (w.queues || []).join(", ")],
    ]));
    fill(registered, names.length ? h("ul", {"data-testid": "registered"}, names.map((r) => h("li", {cls: "mono"}, r)))
      : h("div", {cls: "empty"}, "Not known yet."));
    fill(running, tasksTable(w.running || [], "Nothing running now."));
  };
}

// -- routing and polling ---------------------------------------------------------------
let refresh = null;
let generation = 0;
let timer = null;

function route() {
  const hash = location.hash || "#/";
  const root = document.getElementById("view");
  const [, page, ...rest] = hash.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  document.querySelectorAll(".topbar nav a").forEach((a) => a.classList.remove("active"));
  if (page === "task" && arg) refresh = taskView(root, arg);
  else if (page === "worker" && arg) refresh = workerView(root, arg);
  else if (page === "tasks") { refresh = tasksView(root); document.getElementById("nav-tasks").classList.add("active"); }
  else if (page === "periodic") { refresh = periodicView(root); document.getElementById("nav-periodic").classList.add("active"); }
  else { refresh = dashboardView(root); document.getElementById("nav-dashboard").classList.add("active"); }
  generation += 1;
  refreshNow();
}

async function refreshNow() {
  clearTimeout(timer);
  const mine = generation;
  const live = document.getElementById("live");
  try {
    await refresh();
    live.className = "live ok";
    live.title = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    live.className = "live bad";
    live.title = err.message;
  }
  if (mine === generation) {
    clearTimeout(timer);
    timer = setTimeout(refreshNow, REFRESH_MS);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
