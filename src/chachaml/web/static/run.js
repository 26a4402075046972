// The run page (SPEC 9.3): header, metrics charts (live while running), params, editable tags
// and note, datasets, env, error, children and artifact previews.
import { Line, Panels } from "./charts.js";
import { renderMarkdown } from "./markdown.js";
import { api, el, enc, errorBox, fmtBytes, fmtDuration, fmtNum, fmtTime, fmtValue, poll, runDuration, section, setTitle, shortId, statusBadge, table } from "./util.js";

const app = document.getElementById("app");
const ref = document.body.dataset.id;
let run;
let panels;
const lines = new Map(); // metric key -> Line

const runUrl = () => `/api/v1/runs/${enc(run.id)}`;
const artifactUrl = (name) => `${runUrl()}/artifacts/${name.split("/").map(enc).join("/")}`;

function header() {
  const meta = [
    ["experiment", el("a", { href: `/?experiment=${enc(run.experiment)}` }, run.experiment)],
    ["started", fmtTime(run.start_time)],
    ["duration", fmtDuration(runDuration(run))],
    run.created_by && ["by", run.created_by],
    run.parent_id && ["parent", el("a", { href: `/runs/${enc(run.parent_id)}` }, shortId(run.parent_id))],
  ].filter(Boolean);
  return el("div", { class: "run-head" }, [
    el("div", { class: "page-head" }, [el("h1", {}, run.name || shortId(run.id)), statusBadge(run.status),
      run.archived ? el("span", { class: "status status-other" }, "archived") : null,
      run.status === "running" ? el("span", { class: "live", title: "new points appear every 2 s" }, "live") : null]),
    el("div", { class: "run-id" }, run.id),
    el("dl", { class: "meta" }, meta.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
  ]);
}

function kvTable(obj, empty) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return el("p", { class: "muted" }, empty);
  return table(["key", "value"], keys.map((k) => [el("code", {}, k), fmtValue(obj[k])]), { class: "kv" });
}

function tagsSection() {
  const body = el("div");
  const draw = () => {
    const chips = Object.keys(run.tags || {}).sort().map((k) => el("span", { class: "tag" }, [
      el("b", {}, k), run.tags[k] === "" ? "" : ` = ${run.tags[k]}`,
      el("button", { class: "x writes", title: `delete tag ${k}`, "aria-label": `delete tag ${k}`, onclick: () => write(() => api(`${runUrl()}/tags/${enc(k)}`, { method: "DELETE" }), () => { delete run.tags[k]; draw(); }) }, "×"),
    ]));
    const key = el("input", { name: "tag-key", placeholder: "key", size: 12 });
    const value = el("input", { name: "tag-value", placeholder: "value", size: 16 });
    const form = el("form", { class: "inline-form writes" }, [key, value, el("button", { type: "submit" }, "Add tag")]);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!key.value.trim()) return;
      const k = key.value.trim(), v = value.value;
      write(() => api(`${runUrl()}/tags/${enc(k)}`, { method: "PUT", body: { value: v } }), () => { run.tags[k] = v; draw(); });
    });
    body.replaceChildren(el("div", { class: "tags" }, chips.length ? chips : el("span", { class: "muted" }, "no tags")), form);
  };
  draw();
  return section("Tags", body);
}

// Run a write; on failure show the API's message in the section that asked.
async function write(call, done) {
  document.querySelectorAll(".write-error").forEach((n) => n.remove());
  try {
    await call();
    done();
  } catch (err) {
    const box = errorBox(err);
    box.classList.add("write-error");
    (document.activeElement?.closest("section") || app).append(box);
  }
}

function noteSection() {
  const body = el("div");
  const show = () => {
    body.replaceChildren(
      run.note ? renderMarkdown(run.note) : el("p", { class: "muted" }, "No note. Notes are markdown."),
      el("button", { onclick: edit, class: "writes" }, run.note ? "Edit note" : "Add note"),
    );
  };
  const edit = () => {
    const area = el("textarea", { name: "note", rows: 8 }, run.note || "");
    body.replaceChildren(area, el("div", { class: "inline-form" }, [
      el("button", { class: "primary", onclick: () => write(() => api(`${runUrl()}/note`, { method: "PUT", body: { note: area.value } }), () => { run.note = area.value; show(); }) }, "Save"),
      el("button", { onclick: show }, "Cancel"),
    ]));
    area.focus();
  };
  show();
  return section("Note", body);
}

function datasetsSection() {
  if (!run.datasets?.length) return null;
  return section("Datasets", table(["name", "role", "source", "rows", "cols", "features", "digest"], run.datasets.map((d) => [
    d.name, d.role, d.source ?? "", fmtValue(d.n_rows), fmtValue(d.n_cols), d.features ? d.features.join(", ") : "", (d.digest || "").slice(0, 12),
  ])));
}

function errorSection() {
  if (!run.error) return null;
  return el("section", { class: "card run-error" }, [
    el("h2", {}, "Error"),
    el("p", {}, [el("b", {}, run.error.type || "Error"), ": ", run.error.message || ""]),
    run.error.traceback ? el("pre", { class: "traceback" }, run.error.traceback) : null,
  ]);
}

async function childrenSection(ids) {
  if (!ids?.length) return null;
  // names and statuses of the children in one query (the where= language knows parent_id)
  const found = await api(`/api/v1/runs?limit=1000&include_archived=true&where=${enc(`parent_id = '${run.id}'`)}`)
    .then((d) => new Map((d.runs || []).map((c) => [c.id, c])), () => new Map());
  return section(`Child runs (${ids.length})`, el("ul", { class: "children" }, ids.map((id) => {
    const c = found.get(id);
    return el("li", { "data-child": id }, c
      ? [el("a", { href: `/runs/${enc(id)}` }, c.name || shortId(id)), " ", statusBadge(c.status), el("span", { class: "id" }, shortId(id))]
      : el("a", { href: `/runs/${enc(id)}` }, shortId(id)));
  })));
}

const IMAGE = /^image\/(png|jpe?g|gif|webp|svg\+xml|bmp)$/;
const PREVIEW_LIMIT = 2_000_000;

function kindOf(a) {
  const ct = (a.content_type || "").toLowerCase(), n = a.name.toLowerCase();
  if (IMAGE.test(ct) || /\.(png|jpe?g|gif|webp|svg|bmp)$/.test(n)) return "image";
  if (ct.includes("markdown") || /\.(md|markdown)$/.test(n)) return "markdown";
  if (ct.includes("json") || n.endsWith(".json") || a.format === "json") return "json";
  if (ct.includes("csv") || n.endsWith(".csv")) return "csv";
  if (ct.startsWith("text/") || a.format === "text" || /\.(txt|log|yaml|yml|toml|py|cfg|ini)$/.test(n)) return "text";
  return null;
}

function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) { if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c; }
    else if (c === '"') q = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") { if (c === "\r" && text[i + 1] === "\n") i++; row.push(cell); rows.push(row); row = []; cell = ""; if (rows.length > 200) break; }
    else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

async function preview(a, kind) {
  if (kind === "image") return el("img", { src: artifactUrl(a.name), alt: a.name, class: "preview-img" });
  const res = await fetch(artifactUrl(a.name));
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const text = await res.text();
  if (kind === "markdown") return renderMarkdown(text);
  if (kind === "json") {
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as text */ }
    return el("pre", { class: "preview" }, shown);
  }
  if (kind === "csv") {
    const [head = [], ...rows] = parseCsv(text);
    return el("div", { class: "table-wrap" }, table(head, rows.slice(0, 200), { class: "grid compact" }));
  }
  return el("pre", { class: "preview" }, text);
}

function artifactsSection(artifacts) {
  if (!artifacts?.length) return null;
  const items = artifacts.map((a) => {
    const kind = a.size <= PREVIEW_LIMIT ? kindOf(a) : null;
    const head = el("div", { class: "artifact-head" }, [
      el("code", {}, a.name), el("span", { class: "muted" }, `${fmtBytes(a.size)} · ${a.format} · ${a.content_type}`),
      el("a", { href: artifactUrl(a.name), download: a.name.split("/").pop(), class: "button" }, "Download"),
    ]);
    if (!kind) return el("div", { class: "artifact", "data-artifact": a.name }, head);
    const box = el("div", { class: "artifact-body" });
    const details = el("details", { class: "artifact", "data-artifact": a.name, open: kind === "image" || kind === "markdown" },
      [el("summary", {}, head), box]);
    const load = () => {
      if (box.dataset.loaded) return;
      box.dataset.loaded = "1";
      preview(a, kind).then((n) => box.replaceChildren(n), (e) => box.replaceChildren(errorBox(e)));
    };
    details.addEventListener("toggle", () => details.open && load());
    if (details.open) load();
    return details;
  });
  return section(`Artifacts (${artifacts.length})`, ...items);
}

async function metricsSection(summaries) {
  const grid = el("div", { class: "metric-grid" });
  panels = new Panels(grid);
  const wrap = section("Metrics", panels.controls(), grid);
  await addCharts(summaries);
  if (!Object.keys(summaries).length) grid.append(el("p", { class: "muted" }, "No metrics logged yet."));
  return wrap;
}

function subtitle(s) {
  return el("span", { class: "summary" }, `last ${fmtNum(s.last)} · min ${fmtNum(s.min)} · max ${fmtNum(s.max)} · ${Number(s.count).toLocaleString()} pts`);
}

async function addCharts(summaries) {
  const fresh = Object.keys(summaries).filter((k) => !lines.has(k)).sort();
  if (fresh.length && !lines.size) panels.host.replaceChildren();
  await Promise.all(fresh.map(async (key) => {
    const line = new Line(run.id, key, run.name || shortId(run.id), "#2563eb", run.start_time);
    line.count = summaries[key].count;
    lines.set(key, line);
    await line.loadOverview();
  }));
  for (const key of fresh) {
    panels.add(key, [lines.get(key)], subtitle(summaries[key]));
    if (panels.view && panels.opts.xMode === "step") await lines.get(key).loadDetail(panels.view);
    panels.redraw(key);
  }
}

// While the run is running: new points within 2 s, fetched with after_step; the view stays.
async function refresh() {
  const [fresh, summaries] = await Promise.all([api(runUrl()), api(`${runUrl()}/metrics`)]);
  await addCharts(summaries);
  await Promise.all([...lines].map(async ([key, line]) => {
    const s = summaries[key];
    if (!s) return;
    line.count = s.count;
    if (s.last_step !== null && s.last_step > (line.lastStep() ?? -Infinity)) {
      await line.loadNew();
      panels.redraw(key);
    }
    panels.panels.get(key).node.querySelector(".summary")?.replaceWith(subtitle(s));
  }));
  const wasRunning = run.status === "running";
  run = { ...run, ...fresh };
  document.querySelector(".run-head").replaceWith(header());
  return wasRunning && run.status !== "running";
}

async function init() {
  try {
    run = await api(`/api/v1/runs/${enc(ref)}`);
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Run not found"), errorBox(err));
    return;
  }
  setTitle(run.name || shortId(run.id));
  const summaries = await api(`${runUrl()}/metrics`).catch(() => ({}));
  app.replaceChildren(header());
  const errorCard = errorSection();
  if (errorCard) app.append(errorCard);
  app.append(await metricsSection(summaries));
  const side = el("div", { class: "columns2" }, [
    el("div", {}, [section(`Params (${Object.keys(run.params || {}).length})`, kvTable(run.params, "No params."))]),
    el("div", {}, [tagsSection(), noteSection()]),
  ]);
  app.append(side);
  for (const part of [datasetsSection(), artifactsSection(run.artifacts), await childrenSection(run.children)]) if (part) app.append(part);
  app.append(section("Environment", kvTable(run.env, "No environment recorded.")));
  if (run.status === "running") {
    const stop = poll(async () => { if (await refresh()) stop(); }, 2000);
  }
}

init();
