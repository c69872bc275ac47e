// HyperGraph dashboard: polls /api/dashboard every 1.5 s with the admin token kept in
// sessionStorage (this tab only), and draws sweeps, queues, agents, leaderboards and the
// learning curves of running trials as inline SVG. No library, nothing fetched elsewhere.
"use strict";
const KEY = "hypergraph-token";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
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

function render(data) {
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
