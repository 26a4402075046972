// Chart panels shared by the run page and the compare page: one chart per metric key in an
// element [data-metric="<key>"], the common controls (x-axis, log y, smoothing) with their state
// in the URL, a shared hover line and a shared zoom that refetches at higher resolution.
import { Chart, toSeries } from "./chart.js";
import { api, el, enc, getState, setState } from "./util.js";

export const MAX_POINTS = 1000; // per history and per view: a stable bucket count (smoothing depends on it)

export function historyUrl(runId, key, { afterStep, beforeStep, maxPoints } = {}) {
  const q = new URLSearchParams();
  if (afterStep !== undefined && afterStep !== null) q.set("after_step", Math.floor(afterStep));
  if (beforeStep !== undefined && beforeStep !== null) q.set("before_step", Math.ceil(beforeStep));
  if (maxPoints) q.set("max_points", maxPoints);
  return `/api/v1/runs/${enc(runId)}/metrics/${enc(key)}${q.size ? `?${q}` : ""}`;
}

export async function fetchPoints(runId, key, opts) {
  const data = await api(historyUrl(runId, key, opts));
  return (data && data.points) || [];
}

// One line of one chart: the overview (whole history, downsampled, appended to live) and, when
// zoomed, a detail fetched for the visible step range.
export class Line {
  constructor(runId, key, label, color, startTime) {
    Object.assign(this, { runId, key, label, color, startTime, overview: [], detail: null, count: 0, hidden: false });
  }

  lastStep() {
    return this.overview.length ? this.overview[this.overview.length - 1].step : null;
  }

  points() {
    if (!this.detail || !this.detail.length) return this.overview;
    const lo = this.detail[0].step, hi = this.detail[this.detail.length - 1].step;
    const before = this.overview.filter((p) => p.step < lo), after = this.overview.filter((p) => p.step > hi);
    return before.concat(this.detail, after);
  }

  async loadOverview() {
    this.overview = await fetchPoints(this.runId, this.key, { maxPoints: MAX_POINTS });
  }

  // Points logged after the last one we have (SPEC 9.3: incremental, after_step).
  async loadNew() {
    const after = this.lastStep();
    const fresh = await fetchPoints(this.runId, this.key, { afterStep: after ?? -1, maxPoints: MAX_POINTS });
    const known = after ?? -Infinity;
    const added = fresh.filter((p) => p.step > known);
    this.overview = this.overview.concat(added);
    return added.length;
  }

  async loadDetail(view) {
    if (!view || this.count <= this.overview.length) { this.detail = null; return; }
    const last = this.lastStep() ?? view.xmax;
    const first = this.overview.length ? this.overview[0].step : 0;
    const share = (Math.min(view.xmax, last) - Math.max(view.xmin, first)) / Math.max(1, last - first);
    if (share >= 0.95) { this.detail = null; return; }
    // the window only (both bounds exclusive), at the same resolution as the overview
    const pts = await fetchPoints(this.runId, this.key, { afterStep: view.xmin - 1, beforeStep: view.xmax + 1, maxPoints: MAX_POINTS });
    this.detail = pts;
  }

}

// The controls bar and a registry of panels; the view state lives in the URL.
export class Panels {
  constructor(host) {
    const s = getState();
    this.opts = { xMode: ["step", "relative", "wall"].includes(s.x) ? s.x : "step", logY: s.log === "1", smoothing: Math.min(0.99, Math.max(0, Number(s.smooth) || 0)) };
    this.view = s.xmin !== undefined && s.xmax !== undefined ? { xmin: Number(s.xmin), xmax: Number(s.xmax) } : null;
    this.panels = new Map(); // key -> {chart, lines, node}
    this.host = host;
  }

  controls() {
    const smoothing = el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: this.opts.smoothing, "aria-label": "smoothing", name: "smoothing" });
    const smoothText = el("output", { class: "smooth-value" }, this.opts.smoothing ? this.opts.smoothing.toFixed(2) : "off");
    const off = el("button", { class: "link", name: "smoothing-off", title: "no smoothing: the raw values", hidden: !this.opts.smoothing,
      onclick: () => { smoothing.value = 0; smoothing.dispatchEvent(new Event("input")); } }, "turn off");
    smoothing.addEventListener("input", () => {
      const v = Number(smoothing.value);
      smoothText.textContent = v ? v.toFixed(2) : "off";
      off.hidden = !v;
      this.set({ smoothing: v });
    });
    const xSel = el("select", { name: "x", "aria-label": "x-axis", onchange: (e) => { this.setZoom(null); this.set({ xMode: e.target.value }); } },
      [["step", "Step"], ["relative", "Relative time"], ["wall", "Wall time"]].map(([v, t]) => el("option", { value: v, selected: v === this.opts.xMode }, t)));
    const log = el("input", { type: "checkbox", name: "log", checked: this.opts.logY, onchange: (e) => this.set({ logY: e.target.checked }) });
    const filter = el("input", { type: "search", placeholder: "filter metrics (regex)", "aria-label": "filter metrics", class: "metric-filter",
      value: getState().metric || "", oninput: (e) => this.filter(e.target.value) });
    return el("div", { class: "chart-controls" }, [
      el("label", {}, ["x-axis ", xSel]), el("label", {}, [log, " log y"]),
      el("label", { class: "smooth" }, ["smoothing ", smoothing, smoothText, off]),
      el("span", { class: "muted hint" }, "drag to zoom · double-click to reset"), filter,
    ]);
  }

  filter(text) {
    setState({ metric: text });
    let re = null;
    try { re = text ? new RegExp(text, "i") : null; } catch { re = null; }
    for (const [key, p] of this.panels) p.node.hidden = re ? !re.test(key) : false;
  }

  set(opts) {
    Object.assign(this.opts, opts);
    setState({ x: this.opts.xMode === "step" ? "" : this.opts.xMode, log: this.opts.logY ? 1 : "", smooth: this.opts.smoothing || "" });
    if ("xMode" in opts) for (const key of this.panels.keys()) this.redraw(key);
    for (const p of this.panels.values()) p.chart.setOptions(this.opts);
  }

  async setZoom(view) {
    this.view = view;
    const keep = (v) => String(Math.round(v * 1000) / 1000); // exact enough for steps, seconds and ms
    setState({ xmin: view ? keep(view.xmin) : "", xmax: view ? keep(view.xmax) : "" });
    for (const p of this.panels.values()) p.chart.setView(view);
    if (this.opts.xMode !== "step") return;
    // refetch each zoomed history at a higher resolution, then redraw (the view stays as set)
    await Promise.all([...this.panels.entries()].map(async ([key, p]) => {
      await Promise.all(p.lines.map((l) => l.loadDetail(view)));
      this.redraw(key);
    }));
  }

  add(key, lines, subtitle) {
    const host = el("div", { class: "chart-host" });
    const legend = lines.length > 1 ? el("div", { class: "legend" }, lines.map((l) => {
      const item = el("button", { class: "legend-item", title: "click to hide or show", onclick: () => {
        l.hidden = !l.hidden; item.classList.toggle("off", l.hidden); this.redraw(key);
      } }, [el("span", { class: "swatch", style: `background:${l.color}` }), l.label]);
      return item;
    })) : null;
    const png = el("a", { class: "png", title: "download this chart as PNG", download: `${key.replace(/[^\w.-]+/g, "_")}.png`, href: "#" }, "PNG");
    const node = el("div", { class: "metric card", "data-metric": key }, [
      el("div", { class: "metric-head" }, [el("h3", {}, key), subtitle || null, png]), legend, host,
    ]);
    this.host.append(node);
    const chart = new Chart(host, {
      onZoom: (v) => this.setZoom(v).catch(console.warn),
      onHover: (x) => { for (const p of this.panels.values()) p.chart.setHover(x); },
    });
    chart.opts = { ...chart.opts, ...this.opts };
    chart.view = this.view;
    png.addEventListener("click", () => { png.href = chart.canvas.toDataURL("image/png"); });
    this.panels.set(key, { chart, lines, node });
    this.filter(getState().metric || "");
    return node;
  }

  redraw(key) {
    const p = this.panels.get(key);
    if (!p) return;
    const series = p.lines.map((l) => ({ label: l.label, color: l.color, hidden: l.hidden, ...toSeries(l.points(), this.opts.xMode, l.startTime) }));
    const shown = p.lines.reduce((n, l) => n + l.points().length, 0), total = p.lines.reduce((n, l) => n + Math.max(l.count, l.points().length), 0);
    p.chart.extraNote = total > shown ? `downsampled: ${shown.toLocaleString()} of ${total.toLocaleString()} points (min/max per bucket kept; zoom for detail)` : "";
    p.chart.setData(series);
    // what is drawn, as attributes: for people reading the DOM and for the browser tests
    p.node.dataset.points = String(shown);
    p.node.dataset.lastStep = String(Math.max(-1, ...p.lines.map((l) => l.lastStep() ?? -1)));
  }
}
