// The group dashboard's model (docs/dashboard.md): numbers as the API renders them, the colour scale, members and
// their best scores, column order, sorting and the CSV text. Pure functions, used by dashboard.js.
"use strict";

window.LearnaggDashboardModel = (() => {
  // A double as its shortest round-trip text with a fraction, like the API's JSON (4 → "4.0", 0.75 → "0.75").
  function fmtDouble(x) {
    if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
    const abs = Math.abs(x);
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
      const [mantissa, exp] = x.toExponential().split("e");
      const sign = exp[0] === "-" ? "-" : "+";
      const digits = exp.replace(/^[+-]/, "").padStart(2, "0");
      return `${mantissa}e${sign}${digits}`;
    }
    if (Number.isInteger(x)) return (Object.is(x, -0) ? "-0" : String(x)) + ".0";
    return String(x);
  }

  // A percentage with at most 2 decimals (66.666… → "66.67", 80 → "80").
  const fmtPercent = (p) => `${Number(p.toFixed(2))}%`;

  const percentOf = (cell) => (cell.max > 0 ? (cell.score * 100) / cell.max : null);

  // Red (0%) through amber to green (100%).
  const colourOf = (percent) => `hsl(${Math.round(Math.min(100, Math.max(0, percent)) * 1.2)}, 75%, 82%)`;

  // Pre-order walk of the stored hierarchy: each node's first position and its name.
  function hierarchyIndex(hierarchy) {
    const index = new Map();
    const walk = (node) => {
      if (!node || typeof node !== "object") return;
      if (typeof node.identifier === "string" && !index.has(node.identifier)) {
        index.set(node.identifier, { position: index.size, name: node.name || node.identifier });
      }
      if (Array.isArray(node.children)) node.children.forEach(walk);
    };
    if (hierarchy && hierarchy.hierarchy) walk(hierarchy.hierarchy);
    return index;
  }

  const metricMap = (agg) => new Map((agg || []).map((m) => [m.metric, m.value]));

  // Members (one per user) with each assessment's best score: highest score, a tie kept from the first row
  // (rows come sorted by batch), the max score from the same row, as the group statistics count it.
  function membersOf(agg) {
    const members = new Map();
    const contents = new Set();
    for (const row of agg.members || []) {
      let member = members.get(row.userId);
      if (!member) {
        member = { userId: row.userId, name: row.name || "", role: row.role, best: new Map() };
        members.set(row.userId, member);
      }
      const metrics = metricMap(row.agg);
      for (const [metric, value] of metrics) {
        if (!metric.startsWith("score:")) continue;
        const content = metric.slice("score:".length);
        contents.add(content);
        const max = metrics.get(`max_score:${content}`);
        const current = member.best.get(content);
        if (!current || value > current.score) {
          member.best.set(content, { score: value, max: typeof max === "number" ? max : null });
        }
      }
    }
    return { members: [...members.values()], contents };
  }

  function columnsOf(contents, stats, index) {
    for (const metric of stats.keys()) {
      const match = /^score:(.*):count$/.exec(metric);
      if (match) contents.add(match[1]);
    }
    const ids = [...contents];
    ids.sort((a, b) => {
      const pa = index.has(a) ? index.get(a).position : Infinity;
      const pb = index.has(b) ? index.get(b).position : Infinity;
      if (pa !== pb) return pa - pb;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    return ids.map((id) => ({ id, title: index.has(id) ? index.get(id).name : id }));
  }

  function compareMembers(sort) {
    const byName = (a, b) =>
      a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || (a.userId < b.userId ? -1 : 1);
    if (sort.key === "name") return (a, b) => sort.dir * byName(a, b);
    const value = (m) => {
      const cell = m.best.get(sort.key);
      if (!cell) return null;
      const percent = percentOf(cell);
      return percent === null ? cell.score : percent;
    };
    return (a, b) => {
      const va = value(a);
      const vb = value(b);
      if (va === null || vb === null) return va === vb ? byName(a, b) : va === null ? 1 : -1;
      return va === vb ? byName(a, b) : sort.dir * (va - vb);
    };
  }

  // Text that a spreadsheet would run as a formula is prefixed with an apostrophe.
  const safeText = (text) => (/^[=+\-@\t\r]/.test(text) ? `'${text}` : text);
  const quote = (field) => (/[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field);

  function csvOf(table) {
    const header = ["User id", "Name"];
    for (const c of table.columns) header.push(`${c.title} score`, `${c.title} max score`);
    const lines = [header.map((h) => quote(safeText(h)))];
    for (const m of table.members) {
      const row = [safeText(m.userId), safeText(m.name)];
      for (const c of table.columns) {
        const cell = m.best.get(c.id);
        row.push(cell ? fmtDouble(cell.score) : "", cell && cell.max !== null ? fmtDouble(cell.max) : "");
      }
      lines.push(row.map(quote));
    }
    return lines.map((fields) => fields.join(",")).join("\r\n") + "\r\n";
  }

  return Object.freeze({
    fmtDouble, fmtPercent, percentOf, colourOf, csvOf, metricMap, hierarchyIndex, membersOf, columnsOf, compareMembers,
  });
})();
