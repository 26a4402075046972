// The compare page (SPEC 9.3): param diff with the differing rows first and highlighted, the
// latest metrics side by side, and one overlaid chart per metric with a legend (click to hide).
import { Line, Panels } from "./charts.js";
import { api, colorFor, el, enc, errorBox, fmtValue, getState, setState, setTitle, shortId, statusBadge } from "./util.js";

const app = document.getElementById("app");

const same = (values) => values.every((v) => v !== undefined) && values.every((v) => JSON.stringify(v) === JSON.stringify(values[0]));

// Rows of a diff: every key, differing ones (a key missing in some run counts) first.
function diffRows(runs, field) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r[field] || {})))].sort();
  const rows = keys.map((k) => ({ key: k, values: runs.map((r) => (r[field] || {})[k]) }));
  rows.forEach((r) => { r.differs = !same(r.values); });
  return [...rows.filter((r) => r.differs), ...rows.filter((r) => !r.differs)];
}

function diffTable(runs, field, onlyDiff) {
  const rows = diffRows(runs, field);
  const shown = onlyDiff ? rows.filter((r) => r.differs) : rows;
  const head = el("tr", {}, [el("th", {}, field === "params" ? "param" : "metric (latest)"),
    ...runs.map((r, i) => el("th", {}, [el("span", { class: "swatch", style: `background:${colorFor(i)}` }), el("a", { href: `/runs/${enc(r.id)}` }, r.name || shortId(r.id))]))]);
  const body = shown.map((r) => el("tr", { class: r.differs ? "differ" : "same", "data-key": r.key }, [
    el("td", {}, el("code", {}, r.key)),
    ...r.values.map((v) => el("td", { class: v === undefined ? "missing" : "" }, v === undefined ? "—" : fmtValue(v))),
  ]));
  const n = rows.filter((r) => r.differs).length;
  return [
    el("p", { class: "muted" }, `${n} of ${rows.length} ${field} differ`),
    el("div", { class: "table-wrap" }, el("table", { class: "grid diff", "data-diff": field }, [el("thead", {}, head), el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: runs.length + 1 }, "nothing to show")))])),
  ];
}

async function init() {
  const ids = (getState().ids || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (!ids.length) {
    app.replaceChildren(el("h1", {}, "Compare runs"), el("p", {}, ["Pick runs with the checkboxes on the ", el("a", { href: "/" }, "runs page"), "."]));
    return;
  }
  let runs;
  try {
    runs = await Promise.all(ids.map((id) => api(`/api/v1/runs/${enc(id)}`)));
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Compare runs"), errorBox(err));
    return;
  }
  setTitle(`Compare ${runs.length} runs`);
  const onlyDiff = getState().diff === "1";
  const diffHost = el("div");
  const drawDiff = (only) => diffHost.replaceChildren(...diffTable(runs, "params", only), ...diffTable(runs, "metrics", only));
  const toggle = el("input", { type: "checkbox", name: "only-diff", checked: onlyDiff, onchange: (e) => { setState({ diff: e.target.checked ? 1 : "" }); drawDiff(e.target.checked); } });
  drawDiff(onlyDiff);
  const grid = el("div", { class: "metric-grid" });
  const panels = new Panels(grid);
  app.replaceChildren(
    el("div", { class: "page-head" }, [el("h1", {}, `Compare ${runs.length} runs`)]),
    el("div", { class: "run-chips" }, runs.map((r, i) => el("a", { class: "run-chip", href: `/runs/${enc(r.id)}` }, [
      el("span", { class: "swatch", style: `background:${colorFor(i)}` }), r.name || shortId(r.id), " ", statusBadge(r.status), el("span", { class: "id" }, shortId(r.id)),
    ]))),
    el("section", { class: "card" }, [el("div", { class: "section-head" }, [el("h2", {}, "Differences"), el("label", {}, [toggle, " only differences"])]), diffHost]),
    el("section", { class: "card" }, [el("h2", {}, "Metrics"), panels.controls(), grid]),
  );
  const summaries = await Promise.all(runs.map((r) => api(`/api/v1/runs/${enc(r.id)}/metrics`).catch(() => ({}))));
  const keys = [...new Set(summaries.flatMap((s) => Object.keys(s)))].sort();
  if (!keys.length) grid.append(el("p", { class: "muted" }, "These runs logged no metrics."));
  for (const key of keys) {
    const lines = [];
    runs.forEach((r, i) => {
      if (!summaries[i][key]) return;
      const line = new Line(r.id, key, r.name || shortId(r.id), colorFor(i), r.start_time);
      line.count = summaries[i][key].count;
      lines.push(line);
    });
    await Promise.all(lines.map((l) => l.loadOverview()));
    panels.add(key, lines);
    if (panels.view && panels.opts.xMode === "step") await Promise.all(lines.map((l) => l.loadDetail(panels.view)));
    panels.redraw(key);
  }
}

init();
