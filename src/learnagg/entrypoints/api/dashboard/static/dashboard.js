// The group dashboard (docs/dashboard.md). Plain browser JavaScript, no build step and no external assets.
// It reads only the public JSON APIs with the caller's token, which is kept in this tab's sessionStorage.
"use strict";

(() => {
  const TOKEN_KEY = "learnagg.dashboard.token";
  const body = document.body;
  const groupId = body.dataset.groupId || "";
  const refreshSeconds = Math.max(1, Number(body.dataset.refreshSeconds) || 30);
  const $ = (id) => document.getElementById(id);
  const { fmtDouble, fmtPercent, percentOf, colourOf, csvOf, metricMap, hierarchyIndex, membersOf, columnsOf, compareMembers } =
    window.LearnaggDashboardModel;

  // Sort of each activity's table, kept across refreshes: {key: "name" | contentId, dir: 1 | -1}.
  const sorts = new Map();
  // The last rendered table of each activity, for "Download CSV".
  const tables = new Map();
  let timer = null;
  let loads = 0;

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // --- token -------------------------------------------------------------------------------------------------

  function takeTokenFromAddress() {
    // #token=<jwt> is moved into sessionStorage and removed from the address bar (and so from the history).
    if (!window.location.hash.startsWith("#")) return;
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (!params.has("token")) return;
    const token = (params.get("token") || "").trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // --- API -----------------------------------------------------------------------------------------------------

  async function api(method, path, request) {
    const headers = { Accept: "application/json", "x-authenticated-user-token": token() || "" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (request !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify({ request });
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, null, "The service cannot be reached.");
    }
    let envelope = null;
    try {
      envelope = await response.json();
    } catch (err) {
      envelope = null;
    }
    if (!response.ok || !envelope || envelope.responseCode !== "OK") {
      const params = (envelope && envelope.params) || {};
      throw new ApiError(response.status, params.err || null, params.errmsg || response.statusText || "error");
    }
    return envelope.result;
  }

  const enc = encodeURIComponent;

  async function fetchGroup() {
    const group = await api("GET", `/v1/group/read/${enc(groupId)}?fields=members,activities`);
    const summary = await api("POST", "/v1/group/agg", { groupId });
    const activities = Array.isArray(group.activities) ? group.activities : [];
    const details = await Promise.all(
      activities.map(async (activity) => {
        const query = { groupId, activityId: activity.id, activityType: activity.type, includeAllMembers: true };
        const agg = await api("POST", "/v1/group/activity/agg", query);
        let hierarchy = null;
        try {
          hierarchy = await api("GET", `/v1/course/hierarchy/${enc(activity.id)}`);
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 404) throw err;
        }
        return { activity, agg, hierarchy };
      }),
    );
    return { group, summary, details };
  }

  // --- rendering -------------------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function figure(label, value, metric) {
    return el("div", { className: "figure", "data-metric": metric }, el("span", { className: "value", text: value }),
      el("span", { className: "label", text: label }));
  }

  function statsTable(columns, stats) {
    const head = el("tr", {}, el("th", { text: "Assessment" }), ...["Members scored", "Lowest", "Highest", "Average",
      "Average %"].map((t) => el("th", { className: "num", text: t })));
    const rows = columns.map((c) => {
      const get = (name) => stats.get(`score:${c.id}:${name}`);
      const count = get("count");
      const avgPct = get("avgPercentage");
      return el("tr", { "data-content-id": c.id }, el("td", { text: c.title }),
        el("td", { className: "num", "data-metric": `score:${c.id}:count`, text: count === undefined ? "0" : String(count) }),
        ...["min", "max", "avg"].map((name) => el("td", { className: "num", "data-metric": `score:${c.id}:${name}`,
          text: get(name) === undefined ? "—" : fmtDouble(get(name)) })),
        el("td", { className: "num", "data-metric": `score:${c.id}:avgPercentage`,
          text: avgPct === undefined ? "—" : fmtPercent(avgPct) }));
    });
    return el("table", { className: "stats" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function scoreCell(member, column) {
    const cell = member.best.get(column.id);
    const metric = `score:${column.id}`;
    if (!cell) return el("td", { className: "score none", "data-metric": metric, title: "no attempt", text: "—" });
    const text = cell.max === null ? fmtDouble(cell.score) : `${fmtDouble(cell.score)}/${fmtDouble(cell.max)}`;
    const percent = percentOf(cell);
    const td = el("td", { className: "score", "data-metric": metric, "data-score": String(cell.score),
      "data-max-score": cell.max === null ? null : String(cell.max),
      "data-percent": percent === null ? null : String(percent) }, el("span", { className: "value", text }));
    if (percent !== null) {
      td.append(el("span", { className: "pct", text: fmtPercent(percent) }));
      td.style.backgroundColor = colourOf(percent);
    }
    return td;
  }

  function membersTable(activityId, columns, members) {
    const sort = sorts.get(activityId) || { key: "name", dir: 1 };
    const sorted = [...members].sort(compareMembers(sort));
    const header = (key, label, firstDir) => {
      const th = el("th", { className: "sortable", "data-sort": key, scope: "col", title: "Sort", text: label });
      if (sort.key === key) th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
      th.addEventListener("click", () => {
        const now = sorts.get(activityId) || { key: "name", dir: 1 };
        sorts.set(activityId, now.key === key ? { key, dir: -now.dir } : { key, dir: firstDir });
        renderAll();
      });
      return th;
    };
    const head = el("tr", {}, header("name", "Member", 1), ...columns.map((c) => header(c.id, c.title, -1)));
    const rows = sorted.map((m) =>
      el("tr", { "data-user-id": m.userId },
        el("td", { className: "member" }, el("span", { className: "name", text: m.name || m.userId }),
          el("span", { className: "member-id", text: m.role === "admin" ? `${m.userId} · group admin` : m.userId })),
        ...columns.map((c) => scoreCell(m, c))));
    tables.set(activityId, { columns, members: sorted });
    return el("table", { className: "members" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function activityCard(detail, summaryActivity) {
    const { activity, agg, hierarchy } = detail;
    const index = hierarchyIndex(hierarchy);
    const stats = metricMap(summaryActivity ? summaryActivity.agg : []);
    const { members, contents } = membersOf(agg);
    const columns = columnsOf(contents, stats, index);
    const title = (summaryActivity && summaryActivity.name) || (hierarchy && hierarchy.name) || activity.id;
    const enrolled = stats.get("enrolmentCount");
    const completed = stats.get("completedCount");
    const percent = stats.get("completionPercentage");
    const download = el("button", { type: "button", className: "download", text: "Download CSV" });
    download.addEventListener("click", () => downloadCsv(activity.id, title));
    const card = el("section", { className: "card activity", "data-activity-id": activity.id },
      el("div", { className: "activity-head" }, el("h2", { text: title }),
        el("span", { className: "muted", text: `${activity.type} · ${activity.id}` })),
      el("div", { className: "figures" },
        figure("enrolled", enrolled === undefined ? "0" : String(enrolled), "enrolmentCount"),
        figure("completed", completed === undefined ? "0" : String(completed), "completedCount"),
        figure("completion", percent === undefined ? "—" : fmtPercent(percent), "completionPercentage")),
      el("div", { className: "activity-head" }, el("h3", { text: "Best scores" }), download));
    card.append(members.length
      ? el("div", { className: "table-wrap" }, membersTable(activity.id, columns, members))
      : el("p", { className: "empty", text: "No active members." }));
    card.append(el("h3", { text: "Group statistics" }));
    card.append(columns.length
      ? el("div", { className: "table-wrap" }, statsTable(columns, stats))
      : el("p", { className: "empty", text: "No assessment scores yet." }));
    return card;
  }

  let data = null;

  function renderAll() {
    if (!data) return;
    const { group, summary, details } = data;
    $("group-name").textContent = group.name || group.id;
    const memberCount = Array.isArray(group.members) ? group.members.filter((m) => m.status === "active").length : 0;
    $("group-meta").textContent = `${memberCount} active member${memberCount === 1 ? "" : "s"} · group ${group.id}`;
    const byId = new Map((summary.activity || []).map((a) => [a.id, a]));
    const cards = details.map((d) => activityCard(d, byId.get(d.activity.id)));
    if (!cards.length) cards.push(el("p", { className: "empty", text: "This group follows no activities yet." }));
    $("activities").replaceChildren(...cards);
  }

  // --- CSV ---------------------------------------------------------------------------------------------------------

  function downloadCsv(activityId, title) {
    const table = tables.get(activityId);
    if (!table) return;
    const blob = new Blob(["\ufeff", csvOf(table)], { type: "text/csv;charset=utf-8" });
    const link = el("a", { href: URL.createObjectURL(blob),
      download: `${`${groupId}-${activityId}`.replace(/[^A-Za-z0-9._-]+/g, "_")}.csv`, title });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  // --- states ----------------------------------------------------------------------------------------------------

  function showMessage(title, detail) {
    const box = $("message");
    box.replaceChildren(el("strong", { text: title }), el("span", { text: detail }));
    box.hidden = false;
  }

  function explain(err) {
    if (!(err instanceof ApiError)) return ["Something went wrong in this page.", String(err)];
    const code = `(HTTP ${err.status}${err.code ? ` ${err.code}` : ""}: ${err.message})`;
    switch (err.status) {
      case 0:
        return ["The service cannot be reached.", `The page tries again in ${refreshSeconds} seconds.`];
      case 401:
        return ["Your token was not accepted.", `It may have expired or be mistyped: paste a new one. ${code}`];
      case 403:
        return ["You are not allowed to see this group.",
          `Only the group's active members and platform admins can see its dashboard. ${code}`];
      case 404:
        return err.code === "GROUP_NOT_FOUND"
          ? ["This group does not exist.", `No group has the id "${groupId}". ${code}`]
          : ["Not found.", code];
      default:
        return ["The service could not answer.", code];
    }
  }

  function setState(state) {
    body.dataset.state = state;
    const signedIn = state !== "signed-out";
    $("sign-in").hidden = signedIn;
    $("sign-out").hidden = !signedIn;
    $("refresh").hidden = !signedIn;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, refreshSeconds * 1000);
  }

  async function refresh() {
    clearTimeout(timer);
    if (!token()) {
      data = null;
      $("activities").replaceChildren();
      setState("signed-out");
      return;
    }
    $("loading").hidden = data !== null;
    try {
      data = await fetchGroup();
      $("message").hidden = true;
      renderAll();
      $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
      setState("ready");
      schedule();
    } catch (err) {
      const [title, detail] = explain(err);
      showMessage(title, detail);
      const status = err instanceof ApiError ? err.status : -1;
      if (status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        setState("signed-out");
      } else {
        if (status === 403 || status === 404) {
          data = null;
          $("activities").replaceChildren();
        }
        setState("error");
        schedule();
      }
    } finally {
      $("loading").hidden = true;
      loads += 1;
      body.dataset.loads = String(loads);
    }
  }

  function start() {
    takeTokenFromAddress();
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token-input").value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token-input").value = "";
      $("message").hidden = true;
      refresh();
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("message").hidden = true;
      refresh();
    });
    $("refresh").addEventListener("click", refresh);
    refresh();
  }

  start();
})();
