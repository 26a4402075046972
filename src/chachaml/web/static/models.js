// The models page: every registered model with its latest and production versions.
import { api, el, enc, errorBox, fmtTime, table } from "./util.js";

const app = document.getElementById("app");

async function init() {
  try {
    const d = await api("/api/v1/models");
    const list = Array.isArray(d) ? d : d.models || [];
    app.replaceChildren(el("div", { class: "page-head" }, el("h1", {}, "Models")),
      list.length ? el("div", { class: "table-wrap" }, table(["model", "versions", "production", "aliases", "updated", "description"], list.map((m) => [
        el("a", { href: `/models/${enc(m.name)}` }, m.name), String(m.latest_version ?? ""), m.production_version ? `v${m.production_version}` : "",
        Object.entries(m.aliases || {}).map(([a, v]) => `${a} → v${v}`).join(", "), fmtTime(m.updated), m.description || "",
      ]), { class: "grid", id: "models" })) : el("p", { class: "muted" }, ["No registered models. Register one with ", el("code", {}, "chachaml.register_model(...)"), "."]));
  } catch (err) {
    app.replaceChildren(el("h1", {}, "Models"), errorBox(err));
  }
}

init();
