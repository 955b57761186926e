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
    lastOK = Date.now();
    conn.className = "conn";
    conn.textContent = "updated " + new Date(d.now).toLocaleTimeString("en-GB") + ", every second";
  } catch (e) {
    conn.className = "conn lost";
    conn.textContent = "lost contact with vipd (" + e.message + ")" + (lastOK ? ", last update " + Math.round((Date.now() - lastOK) / 1000) + "s ago" : "");
  }
}

refresh();
setInterval(refresh, 1000);
