// A small line chart on <canvas>: axes with ticks, hover read-out, step / relative / wall-time
// x-axis, log y, debiased EMA smoothing over a faint raw line, drag-to-zoom and double-click
// reset. It never drops data silently: the y-range covers every visible point, and what a log
// axis cannot show (values <= 0) or what is not finite (NaN, inf: gaps) is said under the chart.
import { el, fmtNum, fmtTime, fmtDuration } from "./util.js";

const M = { left: 58, right: 14, top: 10, bottom: 28 }; // plot margins, CSS pixels

// Debiased exponential moving average (TensorBoard's): weight 0 means off (the raw values).
// Non-finite values pass through and do not advance the debias count.
export function ema(ys, weight) {
  if (!(weight > 0)) return ys.slice();
  const w = Math.min(weight, 0.999);
  const out = new Array(ys.length);
  let last = 0, n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) { out[i] = y; continue; }
    last = last * w + (1 - w) * y;
    n += 1;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

export function linearTicks(lo, hi, count, minStep = 0) {
  const s = Math.max(niceStep(hi - lo, count), minStep);
  const out = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + s * 1e-9 && out.length < 50; v += s) {
    out.push(Math.abs(v) < s * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

// tick spacings of a time axis, in ms: sub-second for quick runs, then round clock units
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500,
  ...[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1000)];

function timeTicks(lo, hi, count, offset = 0) {
  const raw = (hi - lo) / Math.max(1, count);
  const s = TIME_STEPS.find((t) => t >= raw) || niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil((lo - offset) / s) * s + offset; v <= hi && out.length < 50; v += s) out.push(v);
  return out;
}

function logTicks(lo, hi, count) {
  // lo, hi are log10 values; whole decades when the range spans several.
  const a = Math.floor(lo), b = Math.ceil(hi);
  const inside = (k) => k >= lo - 1e-9 && k <= hi + 1e-9;
  if (b - a >= 2) {
    const every = Math.max(1, Math.ceil((b - a) / count));
    const out = [];
    for (let k = a; k <= b; k += every) if (inside(k)) out.push(k);
    if (out.length >= 2) return out;
  }
  // less than two decades: 1, 2 and 5 times the powers of ten, if that gives enough ticks
  const out = [];
  for (let k = a; k <= b; k++) for (const m of [1, 2, 5]) if (inside(k + Math.log10(m))) out.push(k + Math.log10(m));
  if (out.length >= 2 && out.length <= count + 2) return out;
  return linearTicks(10 ** lo, 10 ** hi, count).filter((v) => v > 0).map(Math.log10);
}

const X_LABEL = { step: "step", relative: "time since start", wall: "wall time" };

export class Chart {
  // host: an element the chart fills; opts.onZoom({xmin, xmax} | null) when the user zooms.
  constructor(host, { height = 220, onZoom = null, onHover = null } = {}) {
    this.host = host;
    this.height = height;
    this.onZoom = onZoom;
    this.onHover = onHover;
    this.series = [];
    this.opts = { xMode: "step", logY: false, smoothing: 0 };
    this.view = null;
    this.hoverX = null;
    this.drag = null;
    this.canvas = el("canvas", { height, class: "chart-canvas" });
    this.readout = el("div", { class: "readout", hidden: true });
    this.note = el("div", { class: "chart-note" });
    host.classList.add("chart");
    host.append(el("div", { class: "chart-plot" }, [this.canvas, this.readout]), this.note);
    this._listen();
    new ResizeObserver(() => this.draw()).observe(host);
  }

  // series: [{label, color, xs: number[], ys: number[], hidden?}] with xs ascending.
  setData(series) {
    this.series = series;
    this._smoothed = null;
    this.draw();
  }

  setOptions(opts) {
    if ("smoothing" in opts && opts.smoothing !== this.opts.smoothing) this._smoothed = null;
    Object.assign(this.opts, opts);
    this.draw();
  }

  setView(view) {
    this.view = view && Number.isFinite(view.xmin) && Number.isFinite(view.xmax) && view.xmax > view.xmin ? view : null;
    this.draw();
  }

  setHover(x) {
    this.hoverX = x;
    this.draw();
  }

  _smooth() {
    if (!this._smoothed) this._smoothed = this.series.map((s) => ema(s.ys, this.opts.smoothing));
    return this._smoothed;
  }

  _extent() {
    let xmin = Infinity, xmax = -Infinity;
    for (const s of this.series) {
      if (s.hidden || !s.xs.length) continue;
      xmin = Math.min(xmin, s.xs[0]);
      xmax = Math.max(xmax, s.xs[s.xs.length - 1]);
    }
    if (this.view) ({ xmin, xmax } = this.view);
    if (!Number.isFinite(xmin)) return null;
    if (xmin === xmax) { xmin -= 1; xmax += 1; }
    return { xmin, xmax };
  }

  _layout() {
    const w = Math.max(200, this.host.clientWidth || 600);
    const h = this.height;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    return { w, h, dpr, pw: w - M.left - M.right, ph: h - M.top - M.bottom };
  }

  // y as drawn: log10 on a log axis (null when it cannot be shown), else itself.
  _ty(y) {
    if (!Number.isFinite(y)) return null;
    if (this.opts.logY) return y > 0 ? Math.log10(y) : null;
    return y;
  }

  draw() {
    const L = this._layout();
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(L.dpr, 0, 0, L.dpr, 0, 0);
    ctx.fillStyle = "#fff"; // opaque, so a downloaded PNG reads on any background
    ctx.fillRect(0, 0, L.w, L.h);
    const ext = this._extent();
    const smooth = this._smooth();
    const on = this.opts.smoothing > 0;
    if (!ext) {
      this.note.textContent = "no points";
      return;
    }
    // y-range over every visible point (raw and smoothed): no outlier is ever clipped away.
    let ymin = Infinity, ymax = -Infinity, hiddenLog = 0, nonFinite = 0, visible = 0;
    this.series.forEach((s, i) => {
      if (s.hidden) return;
      for (let j = 0; j < s.xs.length; j++) {
        const x = s.xs[j];
        if (x < ext.xmin || x > ext.xmax) continue;
        visible++;
        if (!Number.isFinite(s.ys[j])) { nonFinite++; continue; }
        for (const y of on ? [s.ys[j], smooth[i][j]] : [s.ys[j]]) {
          const t = this._ty(y);
          if (t === null) { if (y === s.ys[j]) hiddenLog++; continue; }
          if (t < ymin) ymin = t;
          if (t > ymax) ymax = t;
        }
      }
    });
    if (!Number.isFinite(ymin)) { ymin = 0; ymax = 1; }
    if (ymin === ymax) { const d = Math.abs(ymin) * 0.1 || 1; ymin -= d; ymax += d; }
    const pad = (ymax - ymin) * 0.05;
    ymin -= pad; ymax += pad;
    this._scale = { ...ext, ymin, ymax, L };
    const X = (x) => M.left + ((x - ext.xmin) / (ext.xmax - ext.xmin)) * L.pw;
    const Y = (t) => M.top + (1 - (t - ymin) / (ymax - ymin)) * L.ph;

    // grid, ticks and labels
    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
    ctx.strokeStyle = "#e6e8eb";
    ctx.fillStyle = "#5f6670";
    ctx.lineWidth = 1;
    const yt = this.opts.logY ? logTicks(ymin, ymax, Math.max(2, L.ph / 40)) : linearTicks(ymin, ymax, Math.max(2, L.ph / 40));
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const t of yt) {
      const py = Math.round(Y(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(M.left, py); ctx.lineTo(M.left + L.pw, py); ctx.stroke();
      ctx.fillText(fmtNum(this.opts.logY ? 10 ** t : t), M.left - 6, py);
    }
    const count = Math.max(2, L.pw / (this.opts.xMode === "wall" ? 130 : 90)); // wall labels are wider
    const xt = this.opts.xMode === "step" ? linearTicks(ext.xmin, ext.xmax, count, 1)
      : this.opts.xMode === "wall" ? timeTicks(ext.xmin, ext.xmax, count, new Date().getTimezoneOffset() * -60000)
      : timeTicks(ext.xmin, ext.xmax, count);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const t of xt) {
      const px = Math.round(X(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, M.top); ctx.lineTo(px, M.top + L.ph); ctx.stroke();
      const label = this.fmtX(t, true), half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(px, half + 2), L.w - half - 2), M.top + L.ph + 6); // never cut off
    }
    ctx.strokeStyle = "#9aa1aa";
    ctx.beginPath(); ctx.moveTo(M.left + 0.5, M.top); ctx.lineTo(M.left + 0.5, M.top + L.ph + 0.5);
    ctx.lineTo(M.left + L.pw, M.top + L.ph + 0.5); ctx.stroke();

    // lines, clipped to the plot area; a gap wherever a value cannot be drawn
    ctx.save();
    ctx.beginPath(); ctx.rect(M.left, M.top - 2, L.pw + 2, L.ph + 4); ctx.clip();
    const line = (s, ys, alpha, width) => {
      ctx.globalAlpha = alpha; ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = width;
      ctx.beginPath();
      let pen = false, shown = 0;
      const lo = lowerBound(s.xs, ext.xmin) - 1, hi = lowerBound(s.xs, ext.xmax) + 1;
      for (let j = Math.max(0, lo); j < Math.min(s.xs.length, hi + 1); j++) {
        const t = this._ty(ys[j]);
        if (t === null) { pen = false; continue; }
        const px = X(s.xs[j]), py = Y(t);
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true; shown++;
      }
      ctx.stroke();
      if (shown <= 60) {  // few points: mark each one, so a single point is visible
        for (let j = Math.max(0, lo); j < Math.min(s.xs.length, hi + 1); j++) {
          const t = this._ty(ys[j]);
          if (t !== null) { ctx.beginPath(); ctx.arc(X(s.xs[j]), Y(t), 2, 0, 2 * Math.PI); ctx.fill(); }
        }
      }
    };
    this.series.forEach((s, i) => {
      if (s.hidden) return;
      if (on) { line(s, s.ys, 0.25, 1); line(s, smooth[i], 1, 1.75); } else line(s, s.ys, 1, 1.5);
    });
    ctx.globalAlpha = 1;
    ctx.restore();

    // drag selection and hover crosshair
    if (this.drag && this.drag.x1 !== undefined) {
      ctx.fillStyle = "rgba(37, 99, 235, 0.12)";
      const a = Math.min(this.drag.x0, this.drag.x1), b = Math.max(this.drag.x0, this.drag.x1);
      ctx.fillRect(a, M.top, b - a, L.ph);
    }
    this._drawHover(ctx, X, Y, smooth, on, L);

    const notes = [`x: ${X_LABEL[this.opts.xMode]}`];
    if (this.view) notes.push("zoomed (double-click to reset)");
    if (hiddenLog) notes.push(`${hiddenLog} value${hiddenLog > 1 ? "s" : ""} ≤ 0 not shown on the log axis`);
    if (nonFinite) notes.push(`${nonFinite} NaN/inf value${nonFinite > 1 ? "s" : ""} (gaps)`);
    if (this.extraNote) notes.push(this.extraNote);
    this.note.textContent = notes.join(" · ");
    this.host.dataset.visible = String(visible); // points inside the view, for people and tests
  }

  fmtX(x, short = false) {
    const ms = Math.round(x) % 1000;
    if (this.opts.xMode === "wall") {
      const full = fmtTime(x) + (ms ? `.${String(ms).padStart(3, "0")}` : "");
      return short ? full.slice(11) : full;
    }
    if (this.opts.xMode === "relative") return ms && Math.abs(x) < 60000 ? `${Number((x / 1000).toFixed(3))}s` : fmtDuration(x);
    return short ? fmtNum(x) : `step ${fmtNum(x)}`;
  }

  _drawHover(ctx, X, Y, smooth, on, L) {
    const x = this.hoverX;
    if (x === null || x === undefined || x < this._scale.xmin || x > this._scale.xmax) {
      this.readout.hidden = true;
      return;
    }
    const rows = [];
    let nearestX = null;
    this.series.forEach((s, i) => {
      if (s.hidden || !s.xs.length) return;
      const j = nearest(s.xs, x);
      if (Math.abs(X(s.xs[j]) - X(x)) > 40) return;
      nearestX = nearestX === null || Math.abs(s.xs[j] - x) < Math.abs(nearestX - x) ? s.xs[j] : nearestX;
      const t = this._ty(on ? smooth[i][j] : s.ys[j]);
      if (t !== null) {
        ctx.fillStyle = s.color;
        ctx.beginPath(); ctx.arc(X(s.xs[j]), Y(t), 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      const value = on ? `${fmtNum(smooth[i][j])} (raw ${fmtNum(s.ys[j])})` : fmtNum(s.ys[j]);
      rows.push(el("div", { class: "readout-row" }, [
        el("span", { class: "swatch", style: `background:${s.color}` }), el("span", { class: "readout-label" }, s.label),
        el("b", {}, value), this.opts.xMode === "step" ? null : el("span", { class: "muted" }, ` step ${s.steps ? s.steps[j] : ""}`),
      ]));
    });
    if (!rows.length) { this.readout.hidden = true; return; }
    const px = Math.round(X(nearestX)) + 0.5;
    ctx.strokeStyle = "rgba(30, 41, 59, 0.45)";
    ctx.beginPath(); ctx.moveTo(px, M.top); ctx.lineTo(px, M.top + L.ph); ctx.stroke();
    this.readout.replaceChildren(el("div", { class: "readout-x" }, this.fmtX(nearestX)), ...rows);
    this.readout.hidden = false;
    const left = px + 12 + 220 > L.w ? px - 12 - this.readout.offsetWidth : px + 12;
    this.readout.style.left = `${Math.max(0, left)}px`;
    this.readout.style.top = `${M.top + 4}px`;
  }

  _xAt(clientX) {
    const r = this.canvas.getBoundingClientRect();
    const px = clientX - r.left;
    const s = this._scale;
    if (!s) return { px, x: null };
    return { px, x: s.xmin + ((px - M.left) / s.L.pw) * (s.xmax - s.xmin) };
  }

  _listen() {
    const c = this.canvas;
    c.addEventListener("mousemove", (e) => {
      const { px, x } = this._xAt(e.clientX);
      if (this.drag) this.drag.x1 = px;
      if (this.onHover) this.onHover(x); else this.setHover(x);
    });
    c.addEventListener("mouseleave", () => {
      this.drag = null;
      if (this.onHover) this.onHover(null); else this.setHover(null);
    });
    c.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      this.drag = { x0: this._xAt(e.clientX).px };
      e.preventDefault();
    });
    c.addEventListener("mouseup", (e) => {
      const d = this.drag;
      this.drag = null;
      if (!d || !this._scale) return this.draw();
      const a = this._xAt(e.clientX);
      if (Math.abs(a.px - d.x0) < 5) return this.draw();
      const s = this._scale;
      const toX = (px) => s.xmin + ((px - M.left) / s.L.pw) * (s.xmax - s.xmin);
      const view = { xmin: toX(Math.min(d.x0, a.px)), xmax: toX(Math.max(d.x0, a.px)) };
      if (this.onZoom) this.onZoom(view); else this.setView(view);
    });
    c.addEventListener("dblclick", () => {
      if (this.onZoom) this.onZoom(null); else this.setView(null);
    });
  }
}

// First index i with xs[i] >= x (xs ascending).
function lowerBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

function nearest(xs, x) {
  const i = lowerBound(xs, x);
  if (i <= 0) return 0;
  if (i >= xs.length) return xs.length - 1;
  return x - xs[i - 1] <= xs[i] - x ? i - 1 : i;
}

// Points of the API ({step, value, timestamp}) as chart arrays for an x mode.
export function toSeries(points, xMode, startTime) {
  const xs = new Array(points.length), ys = new Array(points.length), steps = new Array(points.length);
  points.forEach((p, i) => {
    const v = p.value;
    ys[i] = v === "NaN" ? NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v;
    steps[i] = p.step;
    xs[i] = xMode === "step" ? p.step : xMode === "wall" ? p.timestamp : p.timestamp - startTime;
  });
  if (xMode !== "step") {
    // timestamps need not grow with the step: order by x for the drawing and the hover search
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    return { xs: order.map((i) => xs[i]), ys: order.map((i) => ys[i]), steps: order.map((i) => steps[i]) };
  }
  return { xs, ys, steps };
}
