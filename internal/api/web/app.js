// vipd status page: fetches status.json every second and redraws. Every
// value is inserted with textContent, never as HTML.
"use strict";

const PROTO = { 6: "TCP", 17: "UDP", 132: "SCTP" };
const FORWARD = ["Masq", "Route", "Tunnel", "Local", "Bypass"];
let lastOK = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
  }
  return e;
}
const td = (v, cls) => el("td", cls ? { class: cls } : {}, v);
const num = (v) => td(fmtNum(v), "num");
const header = (...names) => el("tr", {}, ...names.map((n) => el("th", {}, n)));

function fmtNum(n) {
  if (n === undefined || n === null) return "";
  return Number(n).toLocaleString("en-US");
}
function fmtBytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  n = Number(n);
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
function fmtDur(ns) {
  if (!ns) return "0";
  const ms = ns / 1e6;
  if (ms < 1) return (ns / 1e3).toFixed(0) + "µs";
  if (ms < 1000) return +ms.toFixed(1) + "ms";
  return +(ms / 1000).toFixed(2) + "s";
}
function isZero(t) { return !t || t.startsWith("0001-01-01"); }
function ago(t, now) {
  if (isZero(t)) return "never";
  let s = Math.max(0, Math.round((Date.parse(now) - Date.parse(t)) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + "d" + h + "h";
  if (h) return h + "h" + m + "m";
  if (m) return m + "m" + s + "s";
  return s + "s";
}
function protoName(p) { return typeof p === "string" ? p : (PROTO[p] || "proto" + p); }
function fwdName(f) { return typeof f === "string" ? f : (FORWARD[f] || "fwd" + f); }
function serviceName(k) {
  if (k.FWMark) return "FWM " + k.FWMark;
  return protoName(k.Proto) + " " + k.Addr;
}
function fill(id, ...rows) {
  const t = document.getElementById(id);
  t.replaceChildren(...rows);
  return t;
}

function renderDaemon(d) {
  const s = d.status;
  document.getElementById("host").textContent = "on " + (s.hostname || "?") + (s.router_id ? " (" + s.router_id + ")" : "");
  const kv = (k, v, cls) => el("tr", {}, el("th", {}, k), el("td", cls ? { class: cls } : {}, v));
  fill("daemon",
    kv("version", s.version),
    kv("pid", s.pid),
    kv("uptime", ago(s.started, d.now)),
    kv("data plane", s.dataplane),
    kv("configuration", s.config_file + ", loaded " + ago(s.config_loaded, d.now) + " ago, " + s.reloads + " reloads"),
    kv("ready", d.ready ? "yes" : "no: " + (d.ready_error || "")),
  );
}

function renderInstances(d) {
  const rows = [header("Instance", "Interface", "VRID", "Ver", "State", "Prio", "Eff. prio", "Master", "Master prio",
    "Advert int", "VIPs", "Sync group", "Transitions", "Last change", "Adverts sent", "Adverts rcvd", "Dropped", "Fault reasons")];
  for (const i of d.status.instances || []) {
    const dropped = Object.entries(i.stats.dropped || {}).sort().map(([k, v]) => k + " " + v).join(", ");
    rows.push(el("tr", { class: "st-" + i.state, "data-instance": i.name },
      td(i.name), td(i.interface), num(i.vrid), td("v" + i.version), td(i.state, "st-" + i.state),
      num(i.priority), num(i.effective_priority), td(i.master_addr || ""), num(i.master_addr ? i.master_priority : null),
      td(fmtDur(i.advert_interval)), td((i.vips || []).join(" "), "wrap"), td(i.sync_group || ""),
      num(i.transitions), td(ago(i.last_transition, d.now)), num(i.stats.advert_sent), num(i.stats.advert_rcvd),
      td(dropped), td((i.fault_reasons || []).join("; "), "wrap")));
  }
  fill("instances", ...rows);

  const extra = [];
  if ((d.status.sync_groups || []).length) {
    const t = el("table", { class: "grid narrow" }, header("Sync group", "State", "Instances"));
    for (const g of d.status.sync_groups) {
      t.appendChild(el("tr", { class: "st-" + g.state }, td(g.name), td(g.state, "st-" + g.state), td(g.instances.join(" "))));
    }
    extra.push(el("h3", {}, "Sync groups"), t);
  }
  if ((d.status.scripts || []).length) {
    const t = el("table", { class: "grid narrow" }, header("Tracking script", "State", "Weight", "Last change"));
    for (const s of d.status.scripts) {
      const cls = s.state === "GOOD" ? "rs-up" : s.state === "BAD" ? "rs-down" : "";
      t.appendChild(el("tr", { class: cls }, td(s.name), td(s.state), num(s.weight), td(ago(s.last_change, d.now))));
    }
    extra.push(el("h3", {}, "Tracking scripts"), t);
  }
  fill("groups", ...extra);
}

function renderServices(d) {
  const checks = {};
  for (const c of d.status.checks || []) {
    const k = c.virtual_server + "|" + c.real_server;
    (checks[k] = checks[k] || []).push(c);
  }
  const blocks = [];
  for (const s of d.status.services || []) {
    const name = serviceName(s.Key);
    let title = name + " — " + s.Scheduler;
    if (s.Persistence) title += ", persistent " + fmtDur(s.Persistence);
    const t = el("table", { class: "grid", "data-service": name },
      header("Real server", "Forward", "Status", "Weight", "Check", "Active", "Inactive", "Persist",
        "Conns", "In pkts", "Out pkts", "In bytes", "Out bytes", "Conn/s", "In B/s", "Out B/s"));
    let up = 0;
    for (const r of s.Dests || []) {
      const cs = checks[name + "|" + r.Addr] || [];
      const failing = cs.filter((c) => !c.up);
      let st = "UP", cls = "rs-up";
      if (failing.length) { st = "DOWN"; cls = "rs-down"; } else if (r.Weight === 0) { st = "UP (weight 0)"; cls = "rs-drain"; } else up++;
      // A passing HTTP_GET has no reason: its kind alone, no dangling colon.
      const why = (failing.length ? failing : cs).map((c) => c.reason ? c.kind + ": " + c.reason : c.kind).join("; ");
      t.appendChild(el("tr", { class: cls, "data-real-server": r.Addr },
        td(r.Addr), td(fwdName(r.Forward)), td(st), num(r.Weight), td(why, "wrap"),
        num(r.ActiveConns), num(r.InactiveConns), num(r.PersistConns),
        num(r.Stats.Conns), num(r.Stats.InPkts), num(r.Stats.OutPkts), td(fmtBytes(r.Stats.InBytes), "num"), td(fmtBytes(r.Stats.OutBytes), "num"),
        num(r.Rates.CPS), td(fmtBytes(r.Rates.InBPS), "num"), td(fmtBytes(r.Rates.OutBPS), "num")));
    }
    t.appendChild(el("tr", { class: "total" },
      td("Total"), td(""), td(up + "/" + (s.Dests || []).length + " up"), td(""), td(""), td(""), td(""), td(""),
      num(s.Stats.Conns), num(s.Stats.InPkts), num(s.Stats.OutPkts), td(fmtBytes(s.Stats.InBytes), "num"), td(fmtBytes(s.Stats.OutBytes), "num"),
      num(s.Rates.CPS), td(fmtBytes(s.Rates.InBPS), "num"), td(fmtBytes(s.Rates.OutBPS), "num")));
    blocks.push(el("h3", {}, title), t);
  }
  if (!blocks.length) blocks.push(el("p", { class: "muted" }, "no virtual servers"));
  fill("services", ...blocks);
}

function renderChecks(d) {
  const rows = [header("Virtual server", "Real server", "Check", "Status", "Last result", "Weight", "Last check", "Last change", "Duration", "Checks", "Failures")];
  for (const c of d.status.checks || []) {
    rows.push(el("tr", { class: c.up ? "rs-up" : "rs-down" },
      td(c.virtual_server), td(c.real_server), td(c.kind), td(c.up ? "UP" : "DOWN"), td(c.reason, "wrap"), num(c.weight),
      td(ago(c.last_check, d.now)), td(ago(c.last_change, d.now)), td(fmtDur(c.duration)), num(c.checks), num(c.failures)));
  }
  fill("checks", ...rows);
}

// renderBGP shows the BGP speaker (a bgp block): the sessions, and each
// bgp_announce VIP with the policy's verdict, so an operator sees why a
// VIP is held back without reading the logs. Hidden without a bgp block.
function renderBGP(d) {
  const b = d.status.bgp;
  const sec = document.getElementById("bgp-section");
  sec.hidden = !b;
  if (!b) return;
  let sub = "router id " + b.router_id + ", AS " + b.local_as;
  if (b.draining) sub += ", draining (GRACEFUL_SHUTDOWN)";
  if (b.error) sub += ", not running: " + b.error;
  document.getElementById("bgp-speaker").textContent = sub;
  const peers = [header("Neighbor", "Remote AS", "State", "Up for", "BFD", "Hold time")];
  for (const p of b.peers || []) {
    const up = p.state === "ESTABLISHED";
    peers.push(el("tr", { class: up ? "rs-up" : "rs-down", "data-bgp-peer": p.addr },
      td(p.addr), num(p.remote_as), td(p.state), td(up ? ago(p.since, d.now) : ""), td(p.bfd || "-"), td(p.hold_time ? p.hold_time + "s" : "")));
  }
  fill("bgp-peers", ...peers);
  const routes = [header("Prefix", "Announced", "Why")];
  for (const r of b.decisions || []) {
    routes.push(el("tr", { class: r.announce ? "rs-up" : "rs-down", "data-bgp-prefix": r.prefix },
      td(r.prefix), td(r.announce ? "yes" : "no"), td(r.reason, "wrap")));
  }
  fill("bgp-routes", ...routes);
}

async function refresh() {
  const conn = document.getElementById("conn");
  try {
    const resp = await fetch("status.json", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const d = await resp.json();
    renderDaemon(d);
    renderInstances(d);
    renderServices(d);
    renderChecks(d);
    renderBGP(d);
    lastOK = Date.now();
    conn.className = "conn";
    conn.textContent = "updated " + new Date(d.now).toLocaleTimeString("en-GB") + ", every second";
  } catch (e) {
    conn.className = "conn lost";
    conn.textContent = "lost contact with vipd (" + e.message + ")" + (lastOK ? ", last update " + Math.round((Date.now() - lastOK) / 1000) + "s ago" : "");
  }
}

// History: graphs drawn as inline SVG from history.json (no library).
const SVGNS = "http://www.w3.org/2000/svg";
const GW = 600; // graph width in px for the whole window
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) if (k) e.appendChild(k);
  return e;
}
function title(text) { const t = svg("title"); t.textContent = text; return t; }
function clock(ms) { return new Date(ms).toLocaleTimeString("en-GB"); }
function fmtRate(v) {
  if (v >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "K";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

// band draws [from, to, class, tooltip] segments over the window.
function band(t0, t1, segs, h) {
  const x = (t) => ((t - t0) / (t1 - t0)) * GW;
  const g = svg("svg", { class: "band", width: GW, height: h, viewBox: "0 0 " + GW + " " + h });
  for (const [a, b, cls, tip, data] of segs) {
    const xa = Math.max(0, x(a)), xb = Math.min(GW, x(b));
    if (xb <= xa) continue;
    const attrs = { x: xa.toFixed(1), y: 0, width: Math.max(1, xb - xa).toFixed(1), height: h, class: cls };
    Object.assign(attrs, data || {});
    g.appendChild(svg("rect", attrs, title(tip)));
  }
  return g;
}

function spark(t0, t1, ts, lines, h) {
  const x = (t) => (((t - t0) / (t1 - t0)) * GW).toFixed(1);
  const g = svg("svg", { class: "spark", width: GW, height: h, viewBox: "0 0 " + GW + " " + h });
  for (const [vals, cls] of lines) {
    const max = Math.max(1, ...vals);
    const pts = ts.map((t, i) => x(t) + "," + (h - 1 - (vals[i] / max) * (h - 3)).toFixed(1)).join(" ");
    g.appendChild(svg("polyline", { points: pts, class: cls }));
  }
  return g;
}

function renderHistory(hd) {
  // The x axis spans what is kept: the window, or less since the start.
  const now = Date.parse(hd.now);
  let first = now;
  for (const s of hd.servers) if (s.t.length) first = Math.min(first, s.t[0]);
  for (const i of hd.instances) if (i.transitions.length) first = Math.min(first, Date.parse(i.transitions[0].at));
  const t0 = Math.max(now - hd.window / 1e6, first - 1000);
  document.getElementById("history-window").textContent = "since " + clock(t0) + " (kept: " + Math.round(hd.window / 6e10) + " min, sampled every second)";
  const tl = [];
  for (const inst of hd.instances) {
    const segs = [], items = [];
    const tr = inst.transitions;
    for (let i = 0; i < tr.length; i++) {
      const a = Date.parse(tr[i].at), b = i + 1 < tr.length ? Date.parse(tr[i + 1].at) : now;
      segs.push([a, b, "st-" + tr[i].to, tr[i].to + " from " + clock(a) + (tr[i].from ? " (" + tr[i].cause + ")" : ""), { "data-state": tr[i].to }]);
      if (tr[i].from) {
        items.push(el("li", { "data-transition": tr[i].from + ">" + tr[i].to },
          clock(a) + " " + tr[i].from + " \u2192 " + tr[i].to + ": " + tr[i].cause));
      }
    }
    const b = band(t0, now, segs, 14);
    for (const s of segs.slice(1)) b.appendChild(svg("line", { x1: (((s[0] - t0) / (now - t0)) * GW).toFixed(1), x2: (((s[0] - t0) / (now - t0)) * GW).toFixed(1), y1: 0, y2: 14, class: "mark" }));
    tl.push(el("div", { class: "timeline", "data-instance-timeline": inst.name }, el("span", { class: "name" }, "VRRP " + inst.name), b,
      el("span", { class: "val" }, inst.state)));
    tl.push(el("ul", { class: "transitions" }, ...(items.length ? items.reverse() : [el("li", { class: "muted" }, "no transition in the window")])));
  }
  fill("timelines", ...tl);

  const gs = [];
  for (const s of hd.servers) {
    const last = s.cps.length - 1;
    const bps = s.in_bps.map((v, i) => v + s.out_bps[i]);
    const row = el("div", { class: "graph" + (s.real_server ? " rs" : ""), "data-graph": s.virtual_server + (s.real_server ? "|" + s.real_server : "") },
      el("span", { class: "name" }, s.real_server ? "\u2192 " + s.real_server : s.virtual_server),
      spark(t0, now, s.t, [[s.cps, "cps"], [bps, "bps"]], 24),
      el("span", { class: "val" }, last >= 0 ? fmtRate(s.cps[last]) + " conn/s, " + fmtRate(bps[last]) + " B/s" : ""));
    gs.push(row);
    if (s.real_server && s.up && s.up.length) {
      // Up/down bands: one segment per run of equal verdicts.
      const segs = [];
      let start = 0;
      for (let i = 1; i <= s.up.length; i++) {
        if (i === s.up.length || s.up[i] !== s.up[start]) {
          const a = i === 0 ? s.t[0] : s.t[start] - 1000, b = i < s.up.length ? s.t[i] - 1000 : now;
          const st = s.up[start] ? "up" : "down";
          segs.push([a, b, "ck-" + st, "check " + st.toUpperCase() + " " + clock(a) + "\u2013" + clock(b), { "data-check": st }]);
          start = i;
        }
      }
      const maxLat = Math.max(...s.latency_ms);
      gs.push(el("div", { class: "graph rs", "data-check-band": s.virtual_server + "|" + s.real_server },
        el("span", { class: "name" }, "checks"), band(t0, now, segs, 8),
        el("span", { class: "val" }, s.up[last] ? "UP" : "DOWN")));
      gs.push(el("div", { class: "graph rs", "data-check-latency": s.virtual_server + "|" + s.real_server },
        el("span", { class: "name" }, "check latency"), spark(t0, now, s.t, [[s.latency_ms, "lat"]], 16),
        el("span", { class: "val" }, (s.latency_ms[last] || 0).toFixed(1) + " ms (max " + maxLat.toFixed(1) + ")")));
    }
  }
  if (!gs.length) gs.push(el("p", { class: "muted" }, "no virtual servers"));
  fill("graphs", ...gs);
}

async function refreshHistory() {
  try {
    const resp = await fetch("history.json", { cache: "no-store" });
    if (resp.ok) renderHistory(await resp.json());
  } catch (e) {
    // status.json's refresh reports lost contact.
  }
}

refresh();
setInterval(refresh, 1000);
refreshHistory();
setInterval(refreshHistory, 2000);
