// The pipelines page: every pipeline, newest first, with its progress and the step to look at
// (the failed one, else the running one); refreshed while one runs.
import { api, el, enc, errorBox, fmtTime, poll, shortId, statusBadge, table } from "./util.js";

const app = document.getElementById("app");
let stop = null;

// "done/total" and the step that needs attention, as the CLI shows them.
export function progress(p) {
  const steps = p.steps || [];
  const done = steps.filter((s) => s.status === "completed").length;
  const current = steps.find((s) => s.status === "failed" || s.status === "killed") || steps.find((s) => s.status === "running");
  return { done: `${done}/${steps.length}`, current };
}

async function init() {
  try {
    const d = await api(`/api/v1/pipelines${location.search}`);
    const list = d.pipelines || [];
    const rows = list.map((p) => {
      const { done, current } = progress(p);
      return [
        el("a", { href: `/pipelines/${enc(p.id)}` }, p.name), statusBadge(p.status), done,
        current ? el("span", { class: "current-step" }, [current.name, " ", statusBadge(current.status)]) : "",
        fmtTime(p.created), el("code", {}, shortId(p.id)),
      ];
    });
    app.replaceChildren(el("div", { class: "page-head" }, [el("h1", {}, "Pipelines"), el("a", { href: "/alerts" }, "Alerts →")]),
      list.length ? el("div", { class: "table-wrap" }, table(["pipeline", "status", "steps", "current step", "started", "id"], rows, { class: "grid", id: "pipelines" }))
        : el("p", { class: "muted" }, ["No pipelines yet. Run one with ", el("code", {}, "chachaml.run_pipeline(name, steps)"), "."]));
    const table_ = app.querySelector("#pipelines");
    if (table_) [...table_.tBodies[0].rows].forEach((tr, i) => { tr.dataset.pipelineId = list[i].id; });
    if (stop === null && list.some((p) => p.status === "running")) stop = poll(init, 5000);
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Pipelines"), errorBox(err));
  }
}

init();
