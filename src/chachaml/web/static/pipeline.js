// One pipeline's page: its steps in order with their status, each linking to its run;
// refreshed while the pipeline runs.
import { api, el, enc, errorBox, fmtTime, poll, setTitle, shortId, statusBadge, table } from "./util.js";

const app = document.getElementById("app");
const id = document.body.dataset.id;
let stop = null;

async function init() {
  let p;
  try {
    p = await api(`/api/v1/pipelines/${enc(id)}`);
  } catch (err) {
    app.replaceChildren(el("h1", {}, `Pipeline ${id}`), errorBox(err));
    return;
  }
  setTitle(`Pipeline ${p.name}`);
  const steps = p.steps || [];
  const done = steps.filter((s) => s.status === "completed").length;
  const rows = steps.map((s, i) => [
    String(i + 1), s.name, statusBadge(s.status),
    s.run_id ? el("a", { href: `/runs/${enc(s.run_id)}` }, shortId(s.run_id)) : el("span", { class: "muted" }, "—"),
  ]);
  app.replaceChildren(
    el("div", { class: "page-head" }, [el("h1", {}, p.name), statusBadge(p.status)]),
    el("dl", { class: "meta" }, [
      el("dt", {}, "id"), el("dd", {}, el("code", {}, p.id)),
      el("dt", {}, "run"), el("dd", {}, el("a", { href: `/runs/${enc(p.id)}` }, shortId(p.id))),
      el("dt", {}, "steps done"), el("dd", { class: "steps-done" }, `${done}/${steps.length}`),
      el("dt", {}, "started"), el("dd", {}, fmtTime(p.created)),
      el("dt", {}, "updated"), el("dd", {}, fmtTime(p.updated)),
    ]),
    el("section", { class: "card" }, [el("h2", {}, "Steps"), el("div", { class: "table-wrap" }, table(["#", "step", "status", "run"], rows, { class: "grid", id: "steps" }))]),
  );
  [...app.querySelector("#steps").tBodies[0].rows].forEach((tr, i) => { tr.dataset.step = steps[i].name; });
  if (p.status === "running" && stop === null) stop = poll(init, 3000);
  if (p.status !== "running" && stop !== null) { stop(); stop = null; }
}

init();
