// Shared helpers of the chachaml UI: the JSON API client, a DOM builder that only ever sets
// text (never innerHTML of data), formatting, URL state and status badges.

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

const TOKEN_KEY = "chachaml.token";

// fetch + JSON + the API's error shape {"error": {"type", "message"}} as an ApiError.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401) askToken();
    // a server that refuses this browser's writes: hide the write controls (edit, promote)
    if (res.status === 403 && method !== "GET") document.body.classList.add("read-only");
    throw new ApiError(res.status, err.type || `HTTP ${res.status}`, err.message || text || res.statusText);
  }
  return data;
}

// The server asks for a bearer token (SPEC section 10): ask once, keep it in this browser.
function askToken() {
  if (document.querySelector(".token-form")) return;
  const input = el("input", { type: "password", placeholder: "API token", name: "token" });
  const form = el("form", { class: "token-form" }, [
    el("span", {}, "This server needs a token: "), input, el("button", { type: "submit" }, "Use token"),
  ]);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    location.reload();
  });
  document.querySelector("main").prepend(form);
}

// el("a", {href: "/x", class: "c", onclick: fn}, ["text", child]) - children are text or nodes.
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of [].concat(children)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const enc = encodeURIComponent;

// NaN and infinities travel as the strings "NaN", "Infinity", "-Infinity" (SPEC 9.2).
export function num(v) {
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return v;
}

export function fmtNum(v) {
  v = num(v);
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return Number(v.toPrecision(4)).toExponential();
  return String(Number(v.toPrecision(5)));
}

export function fmtValue(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity") return fmtNum(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const pad = (n) => String(n).padStart(2, "0");

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d${pad(h % 24)}h`;
}

export function fmtBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let i = -1;
  do { n /= 1000; i++; } while (n >= 1000 && i < units.length - 1);
  return `${n.toFixed(1)} ${units[i]}`;
}

export const shortId = (id) => (id || "").slice(0, 8);

export function statusBadge(status) {
  return el("span", { class: `status status-${/^[a-z]+$/.test(status) ? status : "other"}` }, status);
}

// A run's duration so far: end - start, or now - start while it runs.
export function runDuration(run) {
  if (run.end_time) return run.end_time - run.start_time;
  return run.status === "running" ? Date.now() - run.start_time : null;
}

// The page's view state lives in the URL (?key=value), so reloads and links keep it.
export function getState() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function setState(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === "") q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  history.replaceState(null, "", s ? `?${s}` : location.pathname);
}

// The API's error as the page shows it: "QueryError: <message>" (the message of a QueryError
// ends with the query and a caret under the position, so it is shown preformatted).
export function errorBox(err) {
  const text = err instanceof ApiError ? `${err.type}: ${err.message}` : String((err && err.message) || err);
  return el("pre", { class: "error", role: "alert" }, text);
}

export function setTitle(text) {
  document.title = `${text} · chachaml`;
}

// A poller that runs `fn` every `ms` while the tab is visible, one call at a time.
export function poll(fn, ms) {
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await fn(); } catch (e) { console.warn("chachaml: refresh failed", e); } finally { busy = false; }
  };
  const id = setInterval(tick, ms);
  document.addEventListener("visibilitychange", tick);
  return () => clearInterval(id);
}

// A fixed palette (Tableau 10), picked by a hash of the run id, so a run keeps its colour.
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
export function colorFor(i) {
  return PALETTE[i % PALETTE.length];
}

export function table(headers, rows, attrs = {}) {
  return el("table", attrs, [
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))),
  ]);
}

export function section(title, ...children) {
  return el("section", { class: "card" }, [el("h2", {}, title), ...children]);
}
