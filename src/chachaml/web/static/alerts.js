// The alerts page: every alert with its condition and its recent events (the runs that fired
// it and the webhook's delivery).
import { api, el, enc, errorBox, fmtNum, fmtTime, section, shortId, statusBadge, table } from "./util.js";

const app = document.getElementById("app");
const RECENT = 20; // events shown per alert: the newest

async function alertCard(a) {
  let events;
  try {
    events = (await api(`/api/v1/alerts/${enc(a.name)}/history?limit=${RECENT}`)).events || [];
  } catch (err) {
    const failed = section(a.name, errorBox(err));
    failed.dataset.alert = a.name;
    return failed;
  }
  const card = section(a.name,
    el("dl", { class: "meta" }, [
      el("dt", {}, "condition"), el("dd", {}, el("code", { class: "condition" }, a.condition)),
      el("dt", {}, "experiment"), el("dd", {}, a.experiment || "every run"),
      el("dt", {}, "webhook"), el("dd", {}, a.webhook || "none"),
      el("dt", {}, "changed"), el("dd", {}, fmtTime(a.updated)),
    ]),
    events.length
      ? el("div", { class: "table-wrap" }, table(["fired", "run", "value", "step", "webhook"], [...events].reverse().map((e) => [
        fmtTime(e.fired), el("a", { href: `/runs/${enc(e.run_id)}` }, shortId(e.run_id)), fmtNum(e.value), String(e.step),
        e.delivery ? el("span", { title: e.error || "" }, [statusBadge(e.delivery), e.error ? ` ${e.error}` : ""]) : "",
      ]), { class: "grid events" }))
      : el("p", { class: "muted" }, "Not fired yet."));
  card.dataset.alert = a.name;
  return card;
}

async function init() {
  try {
    const alerts = (await api("/api/v1/alerts")).alerts || [];
    const head = el("div", { class: "page-head" }, [el("h1", {}, "Alerts"), el("a", { href: "/pipelines" }, "Pipelines →")]);
    if (!alerts.length) {
      app.replaceChildren(head, el("p", { class: "muted" }, ["No alerts. Add one with ", el("code", {}, 'chachaml.add_alert("hot", "loss", ">", 2.0)'), "."]));
      return;
    }
    app.replaceChildren(head, el("div", { id: "alerts" }, await Promise.all(alerts.map(alertCard))));
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Alerts"), errorBox(err));
  }
}

init();
