/* corekit monitor: the periodic-tasks page (#/periodic) over /api/periodic-tasks,
 * with the helpers of lib.js.  Every value is put in the page as text (h() never
 * parses HTML), so a name or argument holding markup shows as typed. */
"use strict";

// "." and ".." are path segments a browser resolves away: those names go in the body.
function periodicAction(name, action) {
  if (name === "." || name === "..") return post(`/api/periodic-tasks/${action}`, {name});
  return post(`/api/periodic-tasks/${encodeURIComponent(name)}/${action}`);
}

function periodicToggle(row) {
  const action = row.enabled ? "disable" : "enable";
  const label = row.enabled ? "Disable" : "Enable";
  return h("button", {"data-testid": "periodic-toggle", "data-action": action, disabled: Boolean(row.error),
                      title: row.error ? "The stored entry is bad: replace or remove it" : null,
                      onclick: () => act(`${label} ${row.name}`, () => periodicAction(row.name, action))},
    label);
}

function periodicArgs(row) {
  const parts = [];
  if (row.args && row.args.length) parts.push(`args=${show(row.args)}`);
  if (row.kwargs && Object.keys(row.kwargs).length) parts.push(`kwargs=${show(row.kwargs)}`);
  return parts.length ? h("div", {cls: "muted mono args", "data-testid": "periodic-args"}, parts.join(" ")) : null;
}

function periodicRow(row) {
  return h("tr", {"data-testid": "periodic-row", "data-name": row.name, "data-enabled": String(row.enabled)},
    h("td", {cls: "mono"}, h("span", {"data-testid": "periodic-name"}, row.name),
      row.error ? h("div", {cls: "error-text", "data-testid": "periodic-error"}, row.error) : null),
    h("td", {}, h("span", {"data-testid": "periodic-task"}, row.task || ""), periodicArgs(row)),
    h("td", {cls: "mono", "data-testid": "periodic-schedule"}, row.error ? "—" : row.schedule),
    h("td", {"data-testid": "periodic-enabled"}, row.enabled ? "yes" : "no"),
    h("td", {cls: "nowrap", "data-testid": "periodic-next"}, row.next_run_at ? fmtTime(row.next_run_at) : "—"),
    h("td", {cls: "nowrap", "data-testid": "periodic-last"},
      row.last_run_at ? fmtTime(row.last_run_at) : "never",
      row.last_task_id ? h("div", {}, taskLink(row.last_task_id, row.last_task_id.slice(0, 8))) : null),
    h("td", {}, row.last_outcome ? badge(row.last_outcome, "periodic-outcome") : ""),
    h("td", {cls: "num", "data-testid": "periodic-runs"}, row.total_run_count),
    h("td", {"data-testid": "periodic-source"}, row.source),
    h("td", {}, periodicToggle(row)));
}

function periodicTable(rows) {
  if (!rows.length) {
    return h("div", {cls: "empty", "data-testid": "no-periodic"},
      "No periodic task yet: add them in beat_schedule, with corekit beat add, or PeriodicTasks(app).add(...).");
  }
  return h("table", {"data-testid": "periodic-table"},
    h("thead", {}, h("tr", {}, ["Name", "Task", "Schedule", "Enabled", "Next run", "Last run", "Last outcome",
                                "Runs", "Source", ""].map((t) => h("th", {cls: t === "Runs" ? "num" : null}, t)))),
    h("tbody", {}, rows.map(periodicRow)));
}

function leaderText(leader) {
  if (!leader) return "No beat holds the lease: none is running, so nothing fires (start corekit beat or a worker with -B).";
  return `Leader: ${leader.holder} (lease ${leader.lease_left.toFixed(1)} s left)`;
}

function periodicView(root) {
  const leader = h("p", {cls: "muted", "data-testid": "periodic-leader"});
  const body = h("div");
  fill(root, h("h1", {}, "Periodic tasks"), panel(null, leader, body));
  return async () => {
    let data;
    try {
      data = await api("/api/periodic-tasks");
    } catch (err) {
      fill(leader, "");
      fill(body, h("div", {cls: "empty error-text", "data-testid": "periodic-unavailable"},
        `The schedule store is unavailable: ${err.message}`));
      throw err;
    }
    fill(leader, leaderText(data.leader));
    fill(body, periodicTable(data.periodic_tasks));
  };
}
