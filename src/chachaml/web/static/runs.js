// The runs page (SPEC 9.3): table #runs, where= box, filters, sortable headers, choosable
// metric/param columns, offset paging, row selection for /compare, live refresh.
import { api, el, enc, errorBox, fmtDuration, fmtTime, fmtValue, getState, poll, runDuration, setState, shortId, statusBadge } from "./util.js";

const STATUSES = ["running", "completed", "failed", "killed"];
const FIXED = [
  ["name", "name", "asc"], ["experiment", "experiment", "asc"], ["status", "status", "asc"],
  ["start", "start_time", "desc"], ["duration", "duration", "desc"],
];
const app = document.getElementById("app");
let state = { where: "", experiment: "", status: "", order: "", offset: 0, limit: 50, cols: null, ...getState() };
state.offset = Number(state.offset) || 0;
state.limit = Math.min(1000, Number(state.limit) || 50);
let page = { runs: [], next_offset: null };
let lastJson = "";
const selected = new Set();

// A key as the query language writes it: backticks when it is not a plain name (SPEC 3).
const quoteKey = (k) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : "`" + k.replace(/`/g, "``") + "`");
const field = (col) => { const [kind, ...rest] = col.split("."); return `${kind}.${quoteKey(rest.join("."))}`; };

function query(s) {
  const q = new URLSearchParams({ limit: s.limit, offset: s.offset });
  for (const k of ["where", "experiment", "status"]) if (s[k]) q.set(k, s[k]);
  if (s.order) q.set("order_by", s.order);
  return `/api/v1/runs?${q}`;
}

async function load(next = state) {
  const data = await api(query(next));
  state = next;
  page = data;
  setState({ where: state.where, experiment: state.experiment, status: state.status, order: state.order,
    offset: state.offset || "", limit: state.limit === 50 ? "" : state.limit, cols: state.cols ?? "" });
  render();
}

function chosenColumns() {
  if (state.cols !== null && state.cols !== undefined) return state.cols ? state.cols.split(",") : [];
  // by default: the keys most runs of this page have, those whose values differ first
  const pick = (kind, n) => {
    const seen = new Map();
    for (const r of page.runs) for (const [k, v] of Object.entries(r[kind] || {})) {
      const s = seen.get(k) || { count: 0, values: new Set() };
      s.count++; s.values.add(JSON.stringify(v)); seen.set(k, s);
    }
    const score = ([, s]) => s.count * (s.values.size > 1 || kind === "metrics" ? 2 : 1);
    return [...seen].sort((a, b) => score(b) - score(a) || (a[0] < b[0] ? -1 : 1)).slice(0, n).map(([k]) => `${kind}.${k}`);
  };
  return [...pick("metrics", 4), ...pick("params", 3)];
}

function header(label, orderField, firstDir) {
  const [f, dir] = (state.order || "").split(/\s+/);
  const active = f === orderField;
  const arrow = active ? (dir === "asc" ? " ▲" : " ▼") : "";
  return el("th", {
    class: "sortable" + (active ? " sorted" : ""), title: `sort by ${orderField}`,
    onclick: () => {
      const d = active ? (dir === "asc" ? "desc" : "asc") : firstDir;
      load({ ...state, order: `${orderField} ${d}`, offset: 0 }).catch(showError);
    },
  }, label + arrow);
}

function cell(run, col) {
  const [kind, ...rest] = col.split(".");
  const v = (run[kind] || {})[rest.join(".")];
  const text = fmtValue(v);
  return el("td", { class: typeof v === "number" || kind === "metrics" ? "num" : "", title: text.length > 24 ? text : null }, text);
}

function row(run, cols) {
  const box = el("input", { type: "checkbox", "aria-label": `select ${shortId(run.id)}`, checked: selected.has(run.id),
    onchange: (e) => { e.target.checked ? selected.add(run.id) : selected.delete(run.id); updateCompare(); } });
  return el("tr", { "data-run-id": run.id, class: run.parent_id ? "child" : "" }, [
    el("td", { class: "pick" }, box),
    el("td", {}, [el("a", { href: `/runs/${enc(run.id)}` }, run.name || shortId(run.id)), el("span", { class: "id" }, shortId(run.id))]),
    el("td", {}, el("a", { href: `/?experiment=${enc(run.experiment)}`, class: "plain" }, run.experiment)),
    el("td", {}, statusBadge(run.status)),
    el("td", { class: "time" }, fmtTime(run.start_time)),
    el("td", { class: "num" }, fmtDuration(runDuration(run))),
    ...cols.map((c) => cell(run, c)),
  ]);
}

let compareBtn, tableEl, pagerEl, colsEl;

function updateCompare() {
  compareBtn.disabled = selected.size < 2;
  compareBtn.textContent = selected.size ? `Compare (${selected.size})` : "Compare";
}

function render() {
  const cols = chosenColumns();
  const thead = el("thead", {}, el("tr", {}, [
    el("th", { class: "pick" }, el("input", { type: "checkbox", "aria-label": "select all",
      checked: page.runs.length > 0 && page.runs.every((r) => selected.has(r.id)), onchange: (e) => {
      for (const r of page.runs) e.target.checked ? selected.add(r.id) : selected.delete(r.id);
      render();
    } })),
    ...FIXED.map(([label, f, d]) => header(label, f, d)),
    ...cols.map((c) => header(c.replace(/^metrics\./, "").replace(/^params\./, "") , field(c), c.startsWith("metrics.") ? "desc" : "asc")),
  ]));
  // column group labels, so a metric and a param of the same name stay apart
  cols.forEach((c, k) => thead.rows[0].cells[FIXED.length + 1 + k].prepend(el("span", { class: "kind" }, c.startsWith("metrics.") ? "metric" : "param")));
  const tbody = el("tbody", {}, page.runs.length ? page.runs.map((r) => row(r, cols))
    : el("tr", { class: "empty" }, el("td", { colspan: 6 + cols.length }, "No runs match.")));
  tableEl.replaceChildren(thead, tbody);
  renderColumnsMenu(cols);
  const first = state.offset + 1, last = state.offset + page.runs.length;
  pagerEl.replaceChildren(
    el("span", { class: "muted" }, page.runs.length ? `Runs ${first}–${last}` : ""),
    el("button", { disabled: state.offset === 0, onclick: () => load({ ...state, offset: Math.max(0, state.offset - state.limit) }).catch(showError) }, "‹ Newer"),
    el("button", { disabled: page.next_offset === null || page.next_offset === undefined, onclick: () => load({ ...state, offset: page.next_offset }).catch(showError) }, "Older ›"),
    el("select", { "aria-label": "page size", onchange: (e) => load({ ...state, limit: Number(e.target.value), offset: 0 }).catch(showError) },
      [25, 50, 100, 250, 1000].map((n) => el("option", { value: n, selected: n === state.limit }, `${n} / page`))),
  );
  updateCompare();
}

function renderColumnsMenu(cols) {
  const keys = new Set(cols);
  for (const r of page.runs) {
    Object.keys(r.metrics || {}).forEach((k) => keys.add(`metrics.${k}`));
    Object.keys(r.params || {}).forEach((k) => keys.add(`params.${k}`));
  }
  const chosen = new Set(cols);
  const list = [...keys].sort().map((k) => el("label", {}, [
    el("input", { type: "checkbox", checked: chosen.has(k), onchange: (e) => {
      const next = chosenColumns().filter((c) => c !== k);
      if (e.target.checked) next.push(k);
      state.cols = next.join(",");
      setState({ cols: state.cols });
      render();
    } }), " ", k,
  ]));
  colsEl.replaceChildren(el("summary", {}, "Columns"), el("div", { class: "menu" }, list.length ? list : el("span", { class: "muted" }, "no params or metrics on this page")));
}

function showError(err) {
  clearError();
  document.querySelector(".toolbar").after(errorBox(err));
}

function clearError() {
  document.querySelectorAll("main > .error").forEach((n) => n.remove());
}

async function init() {
  const where = el("input", { name: "where", value: state.where, spellcheck: "false", autocomplete: "off",
    placeholder: "where: params.lr < 0.01 and metrics.acc > 0.9   (press / to focus, Enter to apply)", class: "where",
    title: "the query language of chachaml.runs(where=...): and, or, not, = != < <= > >= in like, is null; params.x, metrics.x(.min/.max/.last/.count), tags.x, status, name, experiment, start_time, duration" });
  // "/" jumps to the query box, as in many tools
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "")) { e.preventDefault(); where.focus(); }
  });
  where.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    load({ ...state, where: where.value.trim(), offset: 0 }).then(clearError, showError);
  });
  const experiment = el("select", { name: "experiment", "aria-label": "experiment", onchange: (e) => load({ ...state, experiment: e.target.value, offset: 0 }).then(clearError, showError) },
    el("option", { value: "" }, "All experiments"));
  const status = el("select", { name: "status", "aria-label": "status", onchange: (e) => load({ ...state, status: e.target.value, offset: 0 }).then(clearError, showError) },
    [el("option", { value: "" }, "Any status"), ...STATUSES.map((s) => el("option", { value: s, selected: s === state.status }, s))]);
  compareBtn = el("button", { class: "primary", disabled: true, onclick: () => { location.href = `/compare?ids=${[...selected].map(enc).join(",")}`; } }, "Compare");
  colsEl = el("details", { class: "columns" });
  tableEl = el("table", { id: "runs", class: "grid" });
  pagerEl = el("div", { class: "pager" });
  app.replaceChildren(
    el("div", { class: "page-head" }, [el("h1", {}, "Runs"), el("span", { class: "live", title: "refreshes every 3 s" }, "live")]),
    el("div", { class: "toolbar" }, [where, experiment, status, colsEl, compareBtn]),
    el("div", { class: "table-wrap" }, tableEl), pagerEl,
  );
  api("/api/v1/experiments").then((d) => {
    const list = Array.isArray(d) ? d : d.experiments || [];
    for (const x of list) experiment.append(el("option", { value: x.name, selected: x.name === state.experiment }, `${x.name}${x.run_count !== undefined ? ` (${x.run_count})` : ""}`));
  }).catch(() => {});
  try {
    await load();
  } catch (err) {
    // a bad where= in the URL: show it, then the unfiltered table
    showError(err);
    await load({ ...state, where: "" }).catch(showError);
    where.value = state.where;
  }
  // Running runs change (status, duration, latest metrics) and new runs appear: refresh the
  // page in place every 3 s, keeping the selection, sort, filters and columns.
  poll(async () => {
    const data = await api(query(state));
    const json = JSON.stringify(data);
    if (json === lastJson && !data.runs.some((r) => r.status === "running")) return;
    lastJson = json;
    page = data;
    render();
  }, 3000);
}

init();
