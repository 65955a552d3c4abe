/// The dashboard at `GET /`: one page, its CSS and JavaScript inline, served from the binary,
/// so there is nothing to build, deploy or fetch from anywhere else (its content security
/// policy forbids it). The page holds no figures: it polls the admin API every two seconds with
/// the bearer token, which it takes from `#token=…` (then removes from the address bar) or
/// asks for, and keeps in the tab's session storage. The token never goes into a URL query.
///
/// Rates (changes/s, deliveries/s) and the lag trend are computed in the page from successive
/// scrapes, so the server keeps no history for them. Everything the integration test reads
/// has an `id` or a `data-` attribute; the markup is built with DOM calls and `textContent`
/// only, so no value from a database can become markup.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ChangeRelay</title>
<style>
  :root {
    --bg: #f5f6f8; --card: #fff; --ink: #1c2230; --muted: #6a7284; --line: #e2e5eb; --row: #f0f2f5;
    --ok: #2d8a57; --warn: #a86b12; --bad: #c03b35; --accent: #3d6fd6; --accent-soft: rgba(61, 111, 214, .12);
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--ink);
         font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
  header { display: flex; align-items: baseline; gap: 18px; padding: 14px 24px; background: var(--card);
           border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 17px; font-weight: 650; letter-spacing: -.01em; }
  header .meta { color: var(--muted); }
  header .meta b { color: var(--ink); font-weight: 500; font-variant-numeric: tabular-nums; }
  header .spacer { flex: 1; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
           background: var(--row); color: var(--muted); }
  .badge.active { background: rgba(45, 138, 87, .12); color: var(--ok); }
  .badge.standby { background: rgba(168, 107, 18, .12); color: var(--warn); }
  main { display: grid; grid-template-columns: repeat(12, minmax(0, 1fr)); gap: 16px; padding: 18px 24px 28px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
  .card h2 { margin: 0 0 10px; font-size: 12px; font-weight: 600; color: var(--muted);
             text-transform: uppercase; letter-spacing: .05em; }
  .card h2 small { text-transform: none; letter-spacing: 0; font-weight: 400; }
  .s3 { grid-column: span 3; } .s6 { grid-column: span 6; } .s12 { grid-column: span 12; }
  @media (max-width: 1000px) { .s3, .s6 { grid-column: span 12; } }
  .value { font-size: 30px; font-weight: 600; font-variant-numeric: tabular-nums; letter-spacing: -.02em; }
  .sub { color: var(--muted); font-variant-numeric: tabular-nums; }
  .lag { display: flex; gap: 18px; align-items: center; }
  .lag svg { flex: 1; height: 64px; min-width: 0; }
  .lag svg polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
  .lag svg polygon { fill: var(--accent-soft); stroke: none; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th { text-align: left; font-weight: 500; font-size: 12px; color: var(--muted); padding: 4px 8px;
       border-bottom: 1px solid var(--line); white-space: nowrap; }
  td { padding: 5px 8px; border-bottom: 1px solid var(--row); vertical-align: top; }
  tr:last-child td { border-bottom: 0; }
  .num { text-align: right; }
  .zero { color: #b7bcc7; }
  .clip { max-width: 260px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
  .empty { color: var(--muted); font-style: italic; padding: 6px 8px; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
  .activity { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px 24px; }
  @media (max-width: 1000px) { .activity { grid-template-columns: minmax(0, 1fr); } }
  .activity h3 { margin: 4px 0 4px; font-size: 13px; font-weight: 600; }
  .bar { height: 8px; border-radius: 4px; background: var(--row); overflow: hidden; min-width: 120px; }
  .bar > div { height: 100%; background: var(--accent); border-radius: 4px; }
  .bar.done > div { background: var(--ok); } .bar.failed > div { background: var(--bad); }
  button { font: inherit; font-size: 12px; padding: 2px 10px; border-radius: 5px; cursor: pointer;
           border: 1px solid var(--accent); background: var(--card); color: var(--accent); }
  button:hover { background: var(--accent-soft); }
  button:disabled { opacity: .5; cursor: default; }
  #retry-results { list-style: none; margin: 8px 0 0; padding: 0; }
  #retry-results li { padding: 3px 0; }
  #error { display: none; margin: 14px 24px 0; padding: 8px 12px; border-radius: 6px;
           background: #fbeceb; color: var(--bad); white-space: pre-line; }
  #token-form { display: none; margin: 14px 24px 0; }
  #token-form input { font: inherit; padding: 3px 8px; width: 320px; border: 1px solid var(--line); border-radius: 5px; }
  footer { padding: 0 24px 20px; color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>ChangeRelay</h1>
  <span id="role" class="badge">…</span>
  <span class="meta">slot <b id="slot">…</b></span>
  <span class="meta">checkpoint <b id="checkpoint" class="mono">…</b></span>
  <span class="spacer"></span>
  <span class="meta">updated <b id="updated">never</b></span>
</header>
<div id="error" role="alert"></div>
<form id="token-form" class="card">
  This dashboard needs the admin token (<span class="mono">admin.token_file</span>).
  <input id="token-input" type="password" autocomplete="off" placeholder="token">
  <button id="token-save" type="submit">Use token</button>
</form>
<main>
  <section class="card s6">
    <h2>Replication lag <small id="lag-detail"></small></h2>
    <div class="lag">
      <div><div id="lag" class="value">…</div><div class="sub">WAL not yet checkpointed</div></div>
      <svg id="lag-chart" viewBox="0 0 300 64" preserveAspectRatio="none" aria-label="lag trend"></svg>
    </div>
  </section>
  <section class="card s3">
    <h2>Changes / s</h2>
    <div id="changes-rate" class="value">…</div>
    <div class="sub"><span id="transactions-rate">…</span> transactions / s</div>
  </section>
  <section class="card s3">
    <h2>Deliveries / s</h2>
    <div id="deliveries-rate" class="value">…</div>
    <div class="sub"><span id="tries-rate">…</span> tries / s, <span id="pending-total">…</span> pending</div>
  </section>
  <section class="card s6">
    <h2>Deliveries by handler and status</h2>
    <div id="deliveries-by-handler"></div>
  </section>
  <section class="card s6">
    <h2>Dead letters <small id="dead-count"></small></h2>
    <div id="dead-letters"></div>
    <ul id="retry-results"></ul>
  </section>
  <section class="card s12">
    <h2>Latest activity</h2>
    <div class="activity">
      <div><h3>Conversation checks</h3><div id="activity-conversation_checks"></div></div>
      <div><h3>Automation runs</h3><div id="activity-automation_runs"></div></div>
      <div><h3>Webhook deliveries</h3><div id="activity-webhook_deliveries"></div></div>
      <div><h3>Message buffers</h3><div id="activity-message_buffers"></div></div>
    </div>
  </section>
  <section class="card s6">
    <h2>Backfills <small id="backfills-running"></small></h2>
    <div id="backfills"></div>
  </section>
  <section class="card s6">
    <h2>Scheduled jobs</h2>
    <div id="schedules"></div>
  </section>
</main>
<footer>Refreshes every 2 s. Rates are measured by this page over the last 10 s, the lag trend over the last 3 minutes.</footer>
<script>
"use strict";
const REFRESH_MS = 2000;
const LAG_SAMPLES = 90;
const TOKEN_KEY = "changerelay.admin.token";
const STATUSES = ["pending", "sending", "succeeded", "failed", "dead"];

const RATE_WINDOW_MS = 10000;
const RATE_KEYS = [["changes-rate", "changes"], ["transactions-rate", "transactions"],
                   ["deliveries-rate", "succeeded"], ["tries-rate", "tries"]];

const page = { lag: [], scrapes: [], rendered: new Map(), timer: null };

class Unauthorized extends Error {}

/** A token in the fragment is stored for this tab and taken out of the address bar. */
function takeTokenFromHash() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

async function api(path, options = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { cache: "no-store", ...options, headers });
  if (response.status === 401) throw new Unauthorized(path + ": the admin token is missing or wrong");
  const text = await response.text();
  if (!response.ok) {
    let reason = text;
    try { reason = JSON.parse(text).error || text; } catch (_) { /* not JSON: show it as it is */ }
    throw new Error(path + ": " + response.status + " " + reason);
  }
  return (response.headers.get("content-type") || "").includes("json") ? JSON.parse(text) : text;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value; else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces a section's content only when its data changed, so a button keeps its place between refreshes. */
function render(id, data, build) {
  const key = JSON.stringify(data);
  if (page.rendered.get(id) === key) return;
  page.rendered.set(id, key);
  document.getElementById(id).replaceChildren(build(data));
}

function table(columns, rows, rowAttributes) {
  if (rows.length === 0) return el("div", { class: "empty" }, "none");
  return el("table", {},
    el("thead", {}, el("tr", {}, ...columns.map(c => el("th", { class: c.num ? "num" : null }, c.title)))),
    el("tbody", {}, ...rows.map(row => el("tr", rowAttributes(row), ...columns.map(c => {
      const value = c.value(row);
      // A clipped cell carries its whole text as a tooltip.
      const classes = [c.num ? "num" : "", c.clip ? "clip" : "", c.class ? c.class(row) : ""].join(" ").trim();
      return el("td", { class: classes || null, title: c.clip && value ? value : null,
                        ...(c.attributes ? c.attributes(row) : {}) }, value ?? "");
    })))));
}

const number = n => Number(n).toLocaleString("en-US");

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return (unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : 1)) + " " + units[unit];
}

function rate(perSecond) {
  if (perSecond === null) return "…";
  return perSecond >= 100 ? number(Math.round(perSecond)) : perSecond.toFixed(1);
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const size = Math.abs(seconds);
  const text = size < 90 ? size + " s" : size < 5400 ? Math.round(size / 60) + " min"
    : size < 172800 ? Math.round(size / 3600) + " h" : Math.round(size / 86400) + " d";
  return seconds > 1 ? "in " + text : text + " ago";
}

function tone(status) {
  if (!status) return "";
  if (/^(succeeded|success|completed|done|sent|delivered)$/.test(status)) return "ok";
  if (/^(dead|failed|failure|error|cancelled)$/.test(status)) return "bad";
  return "warn";
}

/** The sum of every series of a counter in Prometheus' text format, null when it is absent. */
function counter(text, name, labelFilter = () => true) {
  let total = null;
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name || !labelFilter(match[2] || "")) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

function renderStatus(status) {
  const role = document.getElementById("role");
  role.textContent = status.role;
  role.className = "badge " + status.role;
  document.getElementById("slot").textContent = status.slot;
  document.getElementById("checkpoint").textContent = status.checkpoint_lsn;

  const lag = document.getElementById("lag");
  if (status.lag_bytes === null || status.lag_bytes === undefined) {
    lag.textContent = "unknown";
    lag.removeAttribute("data-bytes");
  } else {
    lag.textContent = bytes(status.lag_bytes);
    lag.dataset.bytes = status.lag_bytes;
    page.lag.push(status.lag_bytes);
    if (page.lag.length > LAG_SAMPLES) page.lag.shift();
  }
  document.getElementById("lag-detail").textContent =
    status.server_wal_end ? "WAL end " + status.server_wal_end : "source unreachable";
  drawLag();

  const pending = status.deliveries.filter(d => d.status === "pending" || d.status === "sending" || d.status === "failed")
    .reduce((sum, d) => sum + d.count, 0);
  document.getElementById("pending-total").textContent = number(pending);

  const handlers = [...new Set(status.deliveries.map(d => d.handler))].sort();
  const statuses = [...STATUSES, ...new Set(status.deliveries.map(d => d.status).filter(s => !STATUSES.includes(s)))];
  const count = (handler, state) => status.deliveries.find(d => d.handler === handler && d.status === state)?.count ?? 0;
  render("deliveries-by-handler", status.deliveries, () => table(
    [{ title: "handler", value: h => h },
     ...statuses.map(state => ({
       title: state, num: true, value: h => number(count(h, state)),
       class: h => count(h, state) === 0 ? "zero" : state === "dead" ? "bad" : "",
       attributes: h => ({ "data-handler": h, "data-status": state, "data-count": count(h, state) }),
     }))],
    handlers, h => ({ "data-handler": h })));
}

function drawLag() {
  const svg = document.getElementById("lag-chart");
  svg.dataset.points = page.lag.length;
  if (page.lag.length < 2) { svg.replaceChildren(); return; }
  const peak = Math.max(...page.lag, 1);
  const step = 300 / (page.lag.length - 1);
  // The peak sits at two thirds of the height, so a steady lag reads as a level line, not a full box.
  const points = page.lag.map((value, i) => (i * step).toFixed(1) + "," + (63 - value / peak * 40).toFixed(1));
  const ns = "http://www.w3.org/2000/svg";
  const area = document.createElementNS(ns, "polygon");
  area.setAttribute("points", "0,64 " + points.join(" ") + " 300,64");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  const title = document.createElementNS(ns, "title");
  title.textContent = "peak " + bytes(peak) + " over the last " + page.lag.length * REFRESH_MS / 1000 + " s";
  svg.replaceChildren(area, line, title);
}

/**
 * Rates over the scrapes of the last RATE_WINDOW_MS: a refresh right after a Retry comes a moment
 * after the previous one, and one delivery over that moment would read as a burst. A counter that
 * went down (the service restarted) starts the window again.
 */
function renderRates(metrics) {
  const sample = {
    at: performance.now(),
    changes: counter(metrics, "changerelay_changes_total") ?? 0,
    transactions: counter(metrics, "changerelay_transactions_total") ?? 0,
    succeeded: counter(metrics, "changerelay_deliveries_total", labels => labels.includes('outcome="succeeded"')) ?? 0,
    tries: counter(metrics, "changerelay_deliveries_total") ?? 0,
  };
  const last = page.scrapes[page.scrapes.length - 1];
  if (last && RATE_KEYS.some(([, key]) => sample[key] < last[key])) page.scrapes = [];
  page.scrapes.push(sample);
  while (page.scrapes.length > 2 && sample.at - page.scrapes[1].at >= RATE_WINDOW_MS) page.scrapes.shift();
  const first = page.scrapes[0];
  const seconds = (sample.at - first.at) / 1000;
  for (const [id, key] of RATE_KEYS) {
    const node = document.getElementById(id);
    const perSecond = seconds >= 1 ? (sample[key] - first[key]) / seconds : null;
    node.textContent = rate(perSecond);
    if (perSecond === null) node.removeAttribute("data-rate"); else node.dataset.rate = perSecond;
  }
}

function renderDeadLetters(dead) {
  document.getElementById("dead-count").textContent = dead.length ? "(" + dead.length + (dead.length >= 50 ? "+" : "") + ")" : "";
  render("dead-letters", dead, () => table([
    { title: "id", num: true, value: d => d.id },
    { title: "handler", value: d => d.handler },
    { title: "tries", num: true, value: d => d.attempt },
    { title: "last answer", value: d => d.last_http_status ? "HTTP " + d.last_http_status : "", class: () => "bad" },
    { title: "error", value: d => d.last_error, clip: true },
    { title: "", value: d => el("button", { type: "button", "data-retry": d.id }, "Retry") },
  ], dead, d => ({ "data-delivery-id": d.id, "data-handler": d.handler })));
}

async function retry(button) {
  const id = button.dataset.retry;
  button.disabled = true;
  let outcome, text;
  try {
    const answer = await api("/api/deliveries/" + encodeURIComponent(id) + "/retry", { method: "POST" });
    outcome = "requeued";
    text = "Delivery " + answer.id + " re-queued (" + answer.status + ").";
  } catch (error) {
    outcome = "error";
    text = "Delivery " + id + " not re-queued: " + error.message;
    button.disabled = false;
  }
  const results = document.getElementById("retry-results");
  results.prepend(el("li", { "data-retried": id, "data-outcome": outcome, class: outcome === "error" ? "bad" : "ok" }, text));
  while (results.children.length > 5) results.lastChild.remove();
  refreshSoon(0);
}

const ACTIVITY = {
  conversation_checks: [
    { title: "id", num: true, value: r => r.id },
    { title: "trigger", value: r => r.trigger_name, clip: true },
    { title: "record", value: r => r.record_id },
    { title: "try", num: true, value: r => r.attempt },
    { title: "status", value: r => r.status, class: r => tone(r.status) },
    { title: "HTTP", num: true, value: r => r.http_status },
    { title: "error", value: r => r.error, clip: true },
    { title: "when", value: r => ago(r.execution_time) },
  ],
  automation_runs: [
    { title: "workflow", value: r => (r.workflow_id || "").slice(0, 8), class: () => "mono" },
    { title: "trigger", value: r => r.trigger_type },
    { title: "status", value: r => r.status, class: r => tone(r.status) },
    { title: "tries", num: true, value: r => r.attempts },
    { title: "error", value: r => r.error_message, clip: true },
    { title: "when", value: r => ago(r.created_at) },
  ],
  webhook_deliveries: [
    { title: "id", num: true, value: r => r.id },
    { title: "webhook", value: r => r.webhook },
    { title: "event", value: r => r.event_type },
    { title: "HTTP", num: true, value: r => r.response_status, class: r => r.response_status >= 300 ? "bad" : "ok" },
    { title: "tries", num: true, value: r => r.attempt_count },
    { title: "error", value: r => r.error_message, clip: true },
    { title: "when", value: r => ago(r.created_at) },
  ],
  message_buffers: [
    { title: "id", num: true, value: r => r.id },
    { title: "conversation", num: true, value: r => r.conversation_id },
    { title: "status", value: r => r.status, class: r => tone(r.status) },
    { title: "messages", num: true, value: r => r.message_count },
    { title: "job", value: r => r.job_status, class: r => tone(r.job_status) },
    { title: "tries", num: true, value: r => r.job_attempts },
    { title: "error", value: r => r.job_error, clip: true },
    { title: "opened", value: r => ago(r.buffer_start_time) },
  ],
};

function renderActivity(activity) {
  for (const [key, columns] of Object.entries(ACTIVITY)) {
    render("activity-" + key, activity[key] || [], rows => table(columns, rows, r => ({ "data-row-id": r.id })));
  }
}

function progress(backfill) {
  if (backfill.status === "done") return 100;
  if (!backfill.rows_estimated) return 0;
  return Math.min(100, Math.round(backfill.rows_done / backfill.rows_estimated * 100));
}

function renderBackfills(backfills) {
  document.getElementById("backfills-running").textContent =
    backfills.filter(b => b.status === "running").length + " running";
  render("backfills", backfills, () => table([
    { title: "id", num: true, value: b => b.id },
    { title: "table", value: b => b.table },
    { title: "status", value: b => b.status, class: b => tone(b.status) },
    { title: "progress", value: b => el("div", { class: "bar " + b.status, "data-progress": progress(b),
                                                 title: progress(b) + " %" },
                                        el("div", { style: "width: " + progress(b) + "%" })) },
    { title: "rows", num: true, value: b => number(b.rows_done) + (b.rows_estimated ? " / " + number(b.rows_estimated) : "") },
    { title: "rate", num: true, value: b => b.rows_per_second ? rate(b.rows_per_second) + " /s" : "" },
    { title: "ETA", value: b => b.status === "running" && b.eta_seconds ? Math.round(b.eta_seconds) + " s" : (b.error || "") },
  ], backfills.slice(0, 10), b => ({ "data-backfill-id": b.id })));
}

function renderSchedules(schedules) {
  render("schedules", schedules, () => table([
    { title: "job", value: s => s.name },
    { title: "cron", value: s => s.cron, class: () => "mono" },
    { title: "last run", value: s => s.last_started_at ? ago(s.last_started_at) : "never" },
    { title: "rows", num: true, value: s => s.last_rows ?? "" },
    { title: "error", value: s => s.last_error, clip: true, class: () => "bad" },
    { title: "next run", value: s => ago(s.next_run_at) },
  ], schedules, s => ({ "data-schedule": s.name })));
}

async function refresh() {
  const sections = [
    ["/api/status", renderStatus],
    ["/metrics", renderRates],
    ["/api/deliveries?status=dead&limit=50", renderDeadLetters],
    ["/api/activity?limit=8", renderActivity],
    ["/api/backfills", renderBackfills],
    ["/api/schedules", renderSchedules],
  ];
  const results = await Promise.allSettled(sections.map(([path, show]) => api(path).then(show)));
  const failures = results.filter(r => r.status === "rejected").map(r => r.reason);
  const unauthorized = failures.some(f => f instanceof Unauthorized);
  document.getElementById("token-form").style.display = unauthorized ? "block" : "none";
  const banner = document.getElementById("error");
  banner.textContent = failures.map(f => f.message).join("\n");
  banner.style.display = failures.length ? "block" : "none";
  document.getElementById("updated").textContent = new Date().toLocaleTimeString("en-GB");
  document.body.dataset.refreshes = Number(document.body.dataset.refreshes || 0) + 1;
  refreshSoon(REFRESH_MS);
}

function refreshSoon(delay) {
  clearTimeout(page.timer);
  page.timer = setTimeout(refresh, delay);
}

document.getElementById("dead-letters").addEventListener("click", event => {
  const button = event.target.closest("button[data-retry]");
  if (button) retry(button);
});
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  refreshSoon(0);
});
takeTokenFromHash();
refreshSoon(0);
</script>
</body>
</html>
"""#
}
