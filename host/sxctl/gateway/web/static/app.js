// sxctl web view: the overview, alarm list and trends of the gateway's stages. No library: the
// page talks only to the gateway that served it (its Content-Security-Policy says so too).
"use strict";
const $ = (sel, root) => (root || document).querySelector(sel);
const FIELDS = {  // what a tile shows: label, unit, decimals
  orp_mv: ["ORP", "mV", 0], temperature: ["Temp", "°C", 1],
  flow_aq: ["Flow aq", "L/min", 3], flow_org: ["Flow org", "L/min", 3],
  base_dose: ["Base dose", "mL/min", 2], reagent_dose: ["Reagent", "mL/min", 2],
  aq_pump: ["Pump aq", "%", 1], org_pump: ["Pump org", "%", 1],
};
const state = { overview: null, received: 0, session: { user: null, csrf: null, logins: false },
                trend: null, span: 28800, live: true, end: null,
                firstShown: undefined, records: {}, readToPage: [], roundsSeen: [] };
window.sx = state;  // for people debugging in the console, and for the tests

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function say(text, error) {
  const m = $("#message");
  m.textContent = text || "";
  m.className = "message" + (text ? " shown" : "") + (error ? " error" : "");
}

// A value as a tile shows it: FAULT for a faulted input, stale for old data, never a number then.
function valueCell(stage, name, decimals) {
  const v = stage.values[name];
  if (stage.faults.includes(name)) return el("span", { class: "fault", "data-field": name }, "FAULT");
  if (!stage.fresh) return el("span", { class: "stalev", "data-field": name }, "stale");
  if (v === null || v === undefined) return el("span", { class: "stalev", "data-field": name }, "--");
  return el("span", { "data-field": name }, v.toFixed(decimals));
}

function ageText(ms) {
  if (ms === null) return "never";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(0) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function stageAge(stage) {
  return stage.data_age_ms === null ? null : stage.data_age_ms + (Date.now() - state.received);
}

function tile(stage, stale_s) {
  const ageMs = stageAge(stage);
  const stale = !stage.fresh || ageMs === null || ageMs > stale_s * 1000;
  // aged past the stale time here, before the gateway said so: its numbers are not shown either
  if (stale && stage.fresh) stage = Object.assign({}, stage, { fresh: false });
  const abnormal = stage.alarms_active.length > 0 || stage.alarms_unacked.length > 0 || stage.faults.length > 0;
  const t = el("article", { class: "tile" + (stale ? " stale" : "") + (abnormal ? " abnormal" : ""),
                            id: "stage-" + stage.addr, "data-record": stage.fresh ? stage.record : "" });
  t.append(el("h3", {}, el("span", {}, "Stage " + stage.addr + (stage.name && stage.name !== "stage " + stage.addr ? " · " + stage.name : "")),
              el("span", { class: "mode", "data-field": "mode" }, !stage.fresh || stage.mode === null ? "—" : stage.mode)));
  const sp = stage.values.ph_setpoint;
  const pv = el("div", { class: "pv" }, el("span", { class: "big" }, valueCell(stage, "ph", 2)),
                el("span", {}, el("span", { class: "u" }, "pH  SP "), valueCell(stage, "ph_setpoint", 2)));
  const ph = stage.values.ph;
  if (stage.fresh && ph !== null && sp !== null && !stage.faults.includes("ph")) {
    const dev = Math.max(-1, Math.min(1, (ph - sp) / 1.0));  // ±1 pH across the bar
    const bar = el("span", { class: "dev", title: "pH − setpoint, ±1 pH" }, el("b"), el("i"));
    bar.querySelector("i").style.left = "calc(" + (50 + 50 * dev) + "% - 1px)";
    pv.append(bar);
  }
  t.append(pv);
  const rows = el("table");
  const names = Object.keys(FIELDS);
  for (let i = 0; i < names.length; i += 2) {
    const tr = el("tr");
    for (const n of names.slice(i, i + 2)) {
      const [label, unit, dec] = FIELDS[n];
      tr.append(el("td", {}, label), el("td", { class: "v" }, valueCell(stage, n, dec), " ", el("span", { class: "u" }, unit)));
    }
    rows.append(tr);
  }
  const cal = stage.cal_age_s === null ? "age unknown" : ageText(stage.cal_age_s * 1000) + " ago";
  const slope = stage.cal_slope_acid === null ? "" : ", slope " + stage.cal_slope_acid.toFixed(1) + " / " +
                (stage.cal_slope_base === null ? "?" : stage.cal_slope_base.toFixed(1)) + " %";
  rows.append(el("tr", {}, el("td", {}, "pH cal"), el("td", { colspan: 3, "data-field": "cal" }, cal + slope)));
  rows.append(el("tr", {}, el("td", {}, "Data age"), el("td", { colspan: 3 },
    el("span", { class: "age" + (stale ? " stale" : ""), "data-field": "age" }, stale ? "STALE " + ageText(ageMs) : ageText(ageMs)))));
  t.append(rows);
  const alarms = el("div", { class: "alarms", "data-field": "alarms" });
  for (const a of new Set([...stage.alarms_active, ...stage.alarms_unacked])) {
    const unacked = stage.alarms_unacked.includes(a), active = stage.alarms_active.includes(a);
    alarms.append(el("span", { class: "alarm" + (unacked ? " unacked" : "") + (active ? "" : " cleared"),
                               title: (active ? "active" : "cleared") + (unacked ? ", not acknowledged" : ", acknowledged") },
                     a + (unacked ? " *" : "")));
  }
  t.append(alarms);
  return t;
}

function render() {
  const o = state.overview;
  if (!o) return;
  const box = $("#overview");
  box.replaceChildren(...o.stages.map(s => tile(s, o.stale_s)));
  box.dataset.shownAt = Date.now();
  box.dataset.rounds = o.rounds;
  const sel = $("#trend-stage");
  if (sel.options.length !== o.stages.length) {
    sel.replaceChildren(...o.stages.map(s => el("option", { value: s.addr }, "stage " + s.addr)));
    loadTrend();
  }
}

function onOverview(o) {
  state.overview = o;
  state.received = Date.now();
  render();
  // what the bench reads: when the tiles were first drawn, and how long after the gateway read a
  // record the page showed it (the gateway's clock is this machine's when both run here)
  if (state.firstShown === undefined) state.firstShown = performance.now();
  for (const s of o.stages) {
    if (!s.fresh || s.record === state.records[s.addr]) continue;
    if (state.records[s.addr] !== undefined) state.readToPage.push(state.received - (o.now * 1000 - s.data_age_ms));
    state.records[s.addr] = s.record;
  }
  if (state.readToPage.length > 2000) state.readToPage.splice(0, 1000);
  state.roundsSeen.push(o.rounds);
  if (state.roundsSeen.length > 2000) state.roundsSeen.splice(0, 1000);
  loadAlarms();
  liveTrend(o);
}

// alarms
async function getJSON(url, options) {
  const r = await fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: r.statusText }; }
  return [r, body];
}

function when(t) {
  return t === null || t === undefined ? "—" : new Date(t * 1000).toLocaleString();
}

let alarmsBusy = false, lastAlarms = null;
async function loadAlarms() {
  if (alarmsBusy) return;
  alarmsBusy = true;
  try {
    const [r, a] = await getJSON("/api/alarms");
    if (!r.ok) return;
    const text = JSON.stringify(a);
    if (text === lastAlarms) return;  // unchanged: keep the rows (and the button under the mouse)
    lastAlarms = text;
    const body = $("#alarms tbody");
    body.replaceChildren(...a.current.map(row => {
      const cls = (row.state.startsWith("active") ? "active" : "cleared") + (row.state.endsWith(" unacked") ? " unacked" : "");
      const button = row.state.endsWith(" unacked") ? el("button", { class: "ack", "data-stage": row.stage }, "Acknowledge") : "";
      return el("tr", { class: cls, "data-stage": row.stage, "data-alarm": row.alarm, "data-state": row.state },
                el("td", {}, when(row.time)), el("td", {}, row.stage), el("td", {}, row.alarm),
                el("td", { class: "state" }, row.state), el("td", {}, button));
    }));
    if (!a.current.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "no alarms")));
    $("#alarm-history tbody").replaceChildren(...a.history.map(h => el("tr", {},
      el("td", {}, when(h.time)), el("td", {}, h.stage), el("td", {}, h.alarm), el("td", {}, h.event))));
  } finally { alarmsBusy = false; }
}

async function acknowledge(stage) {
  const headers = { "Content-Type": "application/json" };
  if (state.session.csrf) headers["X-CSRF-Token"] = state.session.csrf;
  const [r, body] = await getJSON("/api/ack", { method: "POST", headers, body: JSON.stringify({ stage }) });
  say(r.ok ? body.said : body.error, !r.ok);
  loadAlarms();
}

document.addEventListener("click", e => {
  const b = e.target.closest("button.ack");
  if (b) acknowledge(Number(b.dataset.stage));
});

// login
function showSession() {
  const s = state.session;
  $("#who").textContent = s.user ? "logged in as " + s.user : (s.logins ? "read-only" : "read-only (no logins set up)");
  for (const id of ["#login-user", "#login-password", "#login-button"]) $(id).hidden = !!s.user || !s.logins;
  $("#logout-button").hidden = !s.user;
}

async function loadSession() {
  const [r, s] = await getJSON("/api/session");
  if (r.ok) state.session = s;
  showSession();
}

$("#login").addEventListener("submit", async e => {
  e.preventDefault();
  const [r, body] = await getJSON("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: $("#login-user").value, password: $("#login-password").value }) });
  $("#login-password").value = "";
  if (r.ok) { say("logged in as " + body.user); await loadSession(); } else say(body.error, true);
});
$("#logout-button").addEventListener("click", async () => {
  await getJSON("/api/logout", { method: "POST", body: "{}",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": state.session.csrf || "" } });
  say("logged out");
  loadSession();
});

// trends: three panes over one time axis, drawn on a canvas
const PANES = [
  { title: "pH", series: [["ph", "#1e1e1e"], ["ph_setpoint", "#2a6ad0"]] },
  { title: "base dose mL/min", series: [["base_dose", "#1e1e1e"]] },
  { title: "flow L/min", series: [["flow_aq", "#1e1e1e"], ["flow_org", "#2a6ad0"]] },
];

async function loadTrend() {
  const stage = $("#trend-stage").value;
  if (!stage) return;
  const end = state.live ? Date.now() / 1000 : state.end;
  const [r, t] = await getJSON("/api/trend?stage=" + stage + "&start=" + (end - state.span) + "&end=" + end);
  if (!r.ok) return say(t.error, true);
  state.trend = t;
  drawTrend();
}

function liveTrend(o) {
  const t = state.trend;
  if (!state.live || !t) return;
  const s = o.stages.find(x => String(x.addr) === $("#trend-stage").value);
  if (!s || !s.fresh) return;
  const at = Math.round(o.now - s.data_age_ms / 1000);
  if (t.t.length && at <= t.t[t.t.length - 1] + t.bucket_s - 1) return;  // inside the last bucket
  t.t.push(at);
  for (const p of PANES) for (const [f] of p.series) t[f].push(s.faults.includes(f) ? null : s.values[f]);
  t.end = o.now;
  t.start = o.now - state.span;
  while (t.t.length && t.t[0] < t.start) { t.t.shift(); for (const p of PANES) for (const [f] of p.series) t[f].shift(); }
  drawTrend();
}

const canvas = $("#trend");
const PAD = { l: 56, r: 12, t: 8, b: 22 };
function drawTrend() {
  const t = state.trend;
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  g.clearRect(0, 0, W, H);
  g.font = "12px sans-serif";
  if (!t) return;
  canvas.dataset.points = t.t.length;
  canvas.dataset.span = Math.round(t.end - t.start);
  const x = v => PAD.l + (v - t.start) / (t.end - t.start) * (W - PAD.l - PAD.r);
  const paneH = (H - PAD.b) / PANES.length;
  PANES.forEach((p, i) => {
    const top = i * paneH + PAD.t, bottom = (i + 1) * paneH - 4;
    let lo = Infinity, hi = -Infinity;
    for (const [f] of p.series) for (const v of t[f]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
    const m = (hi - lo) * 0.08; lo -= m; hi += m;
    const y = v => bottom - (v - lo) / (hi - lo) * (bottom - top);
    g.strokeStyle = "#b0b0b0"; g.strokeRect(PAD.l, top, W - PAD.l - PAD.r, bottom - top);
    g.fillStyle = "#5a5a5a";
    g.fillText(p.title, PAD.l + 4, top + 12);
    g.fillText(hi.toFixed(2), 4, top + 10); g.fillText(lo.toFixed(2), 4, bottom);
    for (const [f, colour] of p.series) {
      g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
      let pen = false;
      t.t.forEach((tt, k) => {
        const v = t[f][k];
        if (v === null) { pen = false; return; }  // a fault is a gap, never a line through it
        if (pen) g.lineTo(x(tt), y(v)); else g.moveTo(x(tt), y(v));
        pen = true;
      });
      g.stroke();
    }
  });
  g.fillStyle = "#5a5a5a";
  for (let k = 0; k <= 4; k++) {
    const tt = t.start + k * (t.end - t.start) / 4;
    const label = new Date(tt * 1000).toLocaleTimeString();
    g.fillText(label, Math.min(W - 70, Math.max(PAD.l, x(tt) - 28)), H - 6);
  }
  if (drag) { g.fillStyle = "rgba(42,106,208,0.15)"; g.fillRect(Math.min(drag.a, drag.b), 0, Math.abs(drag.b - drag.a), H - PAD.b); }
}

let drag = null;
function canvasX(e) { const r = canvas.getBoundingClientRect(); return (e.clientX - r.left) * canvas.width / r.width; }
canvas.addEventListener("mousedown", e => { drag = { a: canvasX(e), b: canvasX(e) }; });
canvas.addEventListener("mousemove", e => { if (drag) { drag.b = canvasX(e); drawTrend(); } });
canvas.addEventListener("mouseup", () => {
  const t = state.trend, d = drag; drag = null;
  if (!t || !d || Math.abs(d.b - d.a) < 5) return drawTrend();
  const at = px => t.start + (px - PAD.l) / (canvas.width - PAD.l - PAD.r) * (t.end - t.start);
  const a = at(Math.min(d.a, d.b)), b = at(Math.max(d.a, d.b));
  setSpan(Math.max(60, b - a), b, false);
});
canvas.addEventListener("dblclick", () => setSpan(28800, null, true));

function setSpan(span, end, live) {
  state.span = span; state.live = live; state.end = end;
  for (const b of document.querySelectorAll(".spans button[data-span]")) b.classList.toggle("on", Number(b.dataset.span) === span);
  $("#trend-live").classList.toggle("on", live);
  loadTrend();
}
for (const b of document.querySelectorAll(".spans button[data-span]")) {
  b.addEventListener("click", () => setSpan(Number(b.dataset.span), null, true));
}
$("#trend-live").addEventListener("click", () => setSpan(state.span, null, true));
$("#trend-stage").addEventListener("change", loadTrend);
setInterval(() => { if (state.live) loadTrend(); }, 60000);  // the means settle as buckets fill

// live updates: server-sent events; the browser reconnects by itself
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("overview", e => { $("#link").textContent = "live"; $("#link").className = "link"; onOverview(JSON.parse(e.data)); });
  es.onerror = () => { $("#link").textContent = "no connection to the gateway"; $("#link").className = "link down"; };
}
setInterval(render, 1000);  // data ages tick between updates; stale shows even if the gateway goes quiet
loadSession();
connect();
