// HyperGraph dashboard: polls /api/dashboard every 1.5 s with the admin token kept in
// sessionStorage (this tab only), and draws sweeps, queues, agents, leaderboards and the
// learning curves of running trials as inline SVG. For sweeps of method: ace it also reads
// /api/sweeps/NAME/ace (again only when the count of complete trials changed) and draws ACE's
// predicted scores of untried combinations and the effect heatmap. No library, nothing
// fetched elsewhere.
"use strict";
const KEY = "hypergraph-token";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
const ACE_TOP = 10;
const aceState = {};  // sweep name -> {complete, data, error, loading}
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : String(v);
}

function params(p) {
  return Object.entries(p || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
}

function table(head, rows) {
  const t = el("table", {}, el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c) => c instanceof Node ? el("td", {}, c) : el("td", {}, fmt(c)))));
  return t;
}

function curves(running) {
  const box = svg("svg", { class: "curves", viewBox: "0 0 400 180", preserveAspectRatio: "none" });
  const pts = running.flatMap((t) => t.curve);
  if (!pts.length) {
    const txt = svg("text", { x: 10, y: 20, "font-size": 12, fill: "#6b7380" });
    txt.textContent = "no epoch reported yet";
    box.append(txt);
    return box;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => 30 + (x - x0) / (x1 - x0) * 360, Y = (y) => 165 - (y - y0) / (y1 - y0) * 150;
  for (const [y, label] of [[y0, fmt(y0)], [y1, fmt(y1)]]) {
    const t = svg("text", { x: 2, y: Y(y) + 4, "font-size": 9, fill: "#6b7380" });
    t.textContent = label;
    box.append(t);
  }
  running.forEach((t, i) => {
    if (!t.curve.length) return;
    const d = t.curve.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    const color = COLORS[i % COLORS.length];
    box.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2, "data-trial": t.number }));
    for (const p of t.curve) box.append(svg("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: color }));
  });
  return box;
}

function svgText(x, y, text, attrs) {
  const t = svg("text", { x, y, "font-size": 11, fill: "#1d2430", ...(attrs || {}) });
  t.textContent = text;
  return t;
}

function titled(node, text) {  // hover text of an SVG element
  const t = svg("title", {});
  t.textContent = text;
  node.append(t);
  return node;
}

function comboLabel(combo) {
  return Object.values(combo).join(" · ");
}

function comboTitle(combo) {
  return Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(", ");
}

// Predicted score ± std of the best untried combinations: a bar to the mean, a whisker of
// ± 1 std, a dashed line at the best score observed so far.
function acePredictions(rep, metric) {
  const rows = rep.untried;
  const W = 640, left = 250, right = 620, rowH = 22, top = 24;
  const H = top + rows.length * rowH + 24;
  const box = svg("svg", { class: "ace-predictions", viewBox: `0 0 ${W} ${H}`, width: "100%" });
  if (!rows.length) {
    box.setAttribute("viewBox", `0 0 ${W} 30`);
    box.append(svgText(10, 20, "every valid combination has been scored", { fill: "#6b7380" }));
    return box;
  }
  const best = rep.best_observed ? rep.best_observed.value : null;
  const lo = Math.min(...rows.map((r) => r.mean - r.std), ...(best === null ? [] : [best]));
  const hi = Math.max(...rows.map((r) => r.mean + r.std), ...(best === null ? [] : [best]));
  const pad = Math.max((hi - lo) * 0.05, 1e-6);
  const x0 = lo - pad, x1 = hi + pad;
  const X = (v) => left + (v - x0) / (x1 - x0) * (right - left);
  box.append(svgText(left, 14, fmt(x0), { fill: "#6b7380", "font-size": 10 }));
  box.append(svgText(right, 14, fmt(x1), { fill: "#6b7380", "font-size": 10, "text-anchor": "end" }));
  box.append(svgText((left + right) / 2, 14, `predicted ${metric} (mean ± std)`,
    { fill: "#6b7380", "font-size": 10, "text-anchor": "middle" }));
  rows.forEach((r, i) => {
    const y = top + i * rowH, mid = y + rowH / 2;
    const g = svg("g", { class: "ace-pred", "data-mean": r.mean, "data-std": r.std });
    titled(g, `${comboTitle(r.combo)}: predicted ${fmt(r.mean)} ± ${fmt(r.std)}${r.running ? " (running now)" : ""}`);
    if (i % 2 === 0) g.append(svg("rect", { x: 0, y, width: W, height: rowH, fill: "#f5f6f8" }));
    g.append(svgText(left - 8, mid + 4, comboLabel(r.combo) + (r.running ? " ▶" : ""),
      { "text-anchor": "end" }));
    g.append(svg("rect", { x: left, y: mid - 5, width: Math.max(X(r.mean) - left, 0), height: 10,
      fill: "#9ec5e8" }));
    const a = X(r.mean - r.std), b = X(r.mean + r.std);
    for (const d of [`M${a},${mid} L${b},${mid}`, `M${a},${mid - 5} L${a},${mid + 5}`, `M${b},${mid - 5} L${b},${mid + 5}`]) {
      g.append(svg("path", { d, stroke: "#1d2430", "stroke-width": 1.5, fill: "none" }));
    }
    g.append(svg("circle", { cx: X(r.mean), cy: mid, r: 3.5, fill: "#1f77b4" }));
    box.append(g);
  });
  if (best !== null) {
    const bx = X(best), y1 = top + rows.length * rowH;
    box.append(titled(svg("path", { d: `M${bx},${top - 4} L${bx},${y1}`, stroke: "#2f7d4f",
      "stroke-width": 1.5, "stroke-dasharray": "4 3" }),
      `best observed: ${fmt(best)} (${comboTitle(rep.best_observed.combo)})`));
    const anchor = bx > right - 60 ? "end" : bx < left + 60 ? "start" : "middle";
    box.append(svgText(bx, y1 + 14, `best observed ${fmt(best)}`,
      { fill: "#2f7d4f", "font-size": 10, "text-anchor": anchor }));
  }
  return box;
}

// Slot x choice heatmap of ACE's main effects: blue raises the expected score above the
// average over all combinations (red lowers it); for a goal of minimize, blue lowers it.
function aceHeatmap(rep) {
  const main = rep.effects.main, slots = Object.keys(main);
  const width = Math.max(...slots.map((s) => Object.keys(main[s]).length), 1);
  const W = 640, left = 130, cellW = (W - left - 10) / width, cellH = 38, top = 6;
  const H = top + slots.length * cellH + 6;
  const box = svg("svg", { class: "ace-heatmap", viewBox: `0 0 ${W} ${H}`, width: "100%" });
  const sign = rep.maximize ? 1 : -1;
  const all = slots.flatMap((s) => Object.values(main[s]).map((e) => Math.abs(e.mean)));
  const scale = Math.max(...all, 1e-12);
  slots.forEach((slot, i) => {
    const y = top + i * cellH;
    const imp = rep.effects.importance[slot];
    box.append(svgText(left - 8, y + cellH / 2, slot, { "text-anchor": "end", "font-weight": "bold" }));
    box.append(svgText(left - 8, y + cellH / 2 + 12, `importance ${fmt(imp)}`,
      { "text-anchor": "end", "font-size": 9, fill: "#6b7380" }));
    Object.entries(main[slot]).forEach(([choice, e], j) => {
      const t = Math.max(-1, Math.min(1, sign * e.mean / scale));
      const [r, g, b] = t >= 0 ? [255 - 222 * t, 255 - 153 * t, 255 - 83 * t]
        : [255 - 77 * -t, 255 - 231 * -t, 255 - 212 * -t];
      const x = left + j * cellW;
      const cell = svg("g", { class: "ace-cell", "data-slot": slot, "data-choice": choice,
        "data-effect": e.mean });
      titled(cell, `${slot} = ${choice}: effect ${e.mean >= 0 ? "+" : ""}${fmt(e.mean)} ± ${fmt(e.std)}`);
      cell.append(svg("rect", { x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2, rx: 3,
        fill: `rgb(${r.toFixed(0)},${g.toFixed(0)},${b.toFixed(0)})` }));
      const ink = Math.abs(t) > 0.6 ? "#fff" : "#1d2430";
      const name = choice.length > cellW / 6.5 ? choice.slice(0, Math.max(3, Math.floor(cellW / 6.5) - 1)) + "…" : choice;
      cell.append(svgText(x + cellW / 2, y + cellH / 2 - 2, name, { "text-anchor": "middle", fill: ink }));
      cell.append(svgText(x + cellW / 2, y + cellH / 2 + 11, `${e.mean >= 0 ? "+" : ""}${fmt(e.mean)}`,
        { "text-anchor": "middle", fill: ink, "font-size": 9 }));
      box.append(cell);
    });
  });
  return box;
}

function acePanels(s) {
  const st = aceState[s.name];
  const div = el("div", { class: "ace", "data-ace": s.name });
  if (!st || !st.data) {
    div.append(el("p", { class: "muted" }, st && st.error ? `ACE: ${st.error}` : "ACE: fitting…"));
    return div;
  }
  const rep = st.data;
  if (!rep.ace) {
    div.append(el("p", { class: "muted" }, rep.message));
    return div;
  }
  if (rep.n_observations < 2) {
    div.append(el("p", { class: "muted" }, `ACE: predictions once 2 trials are complete (${rep.n_observations} so far).`));
    return div;
  }
  const better = rep.maximize ? "raises" : "lowers";
  div.append(el("div", { class: "grid" },
    el("div", {},
      el("h3", {}, `ACE: predicted ${s.metric} of untried combinations (best ${rep.untried.length} of ${rep.n_untried})`),
      el("p", { class: "muted small" }, `fitted on ${rep.complete} complete trials; hover for values; ▶ running now`),
      acePredictions(rep, s.metric)),
    el("div", {},
      el("h3", {}, "ACE: effect of each choice (slot × choice)"),
      el("p", { class: "muted small" }, `blue ${better} val.${s.metric} (better), red the opposite; vs the average combination`),
      aceHeatmap(rep))));
  return div;
}

async function fetchAce(name, complete) {
  const st = aceState[name] || (aceState[name] = {});
  if (st.loading) return;
  st.loading = true;
  const token = sessionStorage.getItem(KEY);
  try {
    const resp = await fetch(`/api/sweeps/${encodeURIComponent(name)}/ace?top=${ACE_TOP}`,
      { headers: { Authorization: `Bearer ${token}` } });
    if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}`);
    st.data = await resp.json();
    st.complete = st.data.complete;
    st.error = null;
  } catch (err) {
    st.error = String(err);
    st.complete = complete;  // try again when the count changes
  } finally {
    st.loading = false;
  }
  const old = document.querySelector(`[data-ace="${CSS.escape(name)}"]`);
  const sweep = lastData && lastData.sweeps.find((x) => x.name === name);
  if (old && sweep) old.replaceWith(acePanels(sweep));
}

let lastData = null;

function render(data) {
  lastData = data;
  const main = document.getElementById("sweeps");
  main.replaceChildren();
  if (!data.sweeps.length) main.append(el("p", { class: "muted" }, "No sweeps yet: hypergraph sweep create -c sweep.yaml --server ... --token ..."));
  for (const s of data.sweeps) {
    const pct = Math.min(100, 100 * s.finished / Math.max(1, s.budget));
    const counts = Object.entries(s.counts).map(([k, v]) => `${v} ${k}`).join(", ");
    const sec = el("section", { class: "sweep", "data-sweep": s.name },
      el("h2", {}, `${s.name} `, el("span", { class: "muted" }, `${s.method}, ${s.goal} val.${s.metric}${s.cancelled ? ", cancelled" : ""}`)),
      el("div", { class: "progress", title: `${s.finished}/${s.budget}` }, el("div", { style: `width:${pct}%` })),
      el("p", { class: "count" }, `${s.finished} / ${s.budget} finished — ${counts || "no trials yet"}`));
    const grid = el("div", { class: "grid" });
    const late = data.heartbeat_interval * 2;
    grid.append(el("div", {}, el("h3", {}, `Running (${s.running.length})`),
      table(["trial", "agent", "last beat", "epochs", "last value", "params"], s.running.map((t) => [
        t.number, t.agent,
        el("span", { class: t.last_beat_s !== null && t.last_beat_s > late ? "late" : "" }, t.last_beat_s === null ? "never" : `${t.last_beat_s} s ago`),
        t.curve.length, t.curve.length ? t.curve[t.curve.length - 1][1] : "", params(t.params)])),
      el("h3", {}, "Learning curves of running trials"), curves(s.running)));
    grid.append(el("div", {}, el("h3", {}, "Leaderboard"),
      table(["#", "trial", "state", "value", "params", "agent"], s.leaderboard.map((r, i) => [
        i + 1, r.number, r.state, r.value, params(r.params), r.worker])),
      el("h3", {}, `Queue (${s.queue.length} waiting)`),
      table(["trial", "retry of", "params"], s.queue.map((q) => [q.number, q.retry_of ?? "", params(q.params)]))));
    sec.append(grid);
    if (s.method === "ace") {
      const complete = s.counts.complete || 0, st = aceState[s.name];
      if (!st || (st.complete !== complete && !st.loading)) fetchAce(s.name, complete);
      sec.append(acePanels(s));
    }
    for (const [name, panel] of Object.entries(s.panels || {})) {  // method-specific panels
      sec.append(el("h3", {}, name), el("pre", {}, JSON.stringify(panel, null, 1)));
    }
    main.append(sec);
  }
}

async function poll() {
  const token = sessionStorage.getItem(KEY);
  if (!token) return showLogin("");
  try {
    const resp = await fetch("/api/dashboard", { headers: { Authorization: `Bearer ${token}` } });
    if (resp.status === 401 || resp.status === 403) {
      sessionStorage.removeItem(KEY);
      return showLogin(resp.status === 403 ? "This token is not an admin token." : "Invalid or revoked token.");
    }
    render(await resp.json());
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    document.getElementById("status").textContent = `server unreachable (${err}); retrying`;
  }
  timer = setTimeout(poll, 1500);
}

function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("login").hidden = false;
  document.getElementById("sweeps").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-error").textContent = message;
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  document.getElementById("token").value = "";
  document.getElementById("login-error").textContent = "";
  document.getElementById("login").hidden = true;
  document.getElementById("sweeps").hidden = false;
  document.getElementById("logout").hidden = false;
  poll();
});

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showLogin("");
});

if (sessionStorage.getItem(KEY)) {
  document.getElementById("login").hidden = true;
  document.getElementById("sweeps").hidden = false;
  document.getElementById("logout").hidden = false;
  poll();
}
