// The experiments page: every experiment with its run count, linking to its runs.
import { api, el, enc, errorBox, fmtTime, table } from "./util.js";

const app = document.getElementById("app");

async function init() {
  try {
    const d = await api("/api/v1/experiments");
    const list = Array.isArray(d) ? d : d.experiments || [];
    app.replaceChildren(el("div", { class: "page-head" }, el("h1", {}, "Experiments")),
      list.length ? el("div", { class: "table-wrap" }, table(["experiment", "runs", "description", "owner", "created"], list.map((x) => [
        el("a", { href: `/?experiment=${enc(x.name)}` }, x.name), String(x.run_count ?? ""), x.description || "", x.owner || "", fmtTime(x.created),
      ]), { class: "grid", id: "experiments" })) : el("p", { class: "muted" }, "No experiments yet."));
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Experiments"), errorBox(err));
  }
}

init();
