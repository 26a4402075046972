// A model's page: versions with stages and aliases, promotion (when the server lets this
// browser write: a refused write shows the server's message), and the registry history.
import { api, el, enc, errorBox, fmtTime, section, setTitle, shortId, statusBadge, table } from "./util.js";

const app = document.getElementById("app");
const name = document.body.dataset.name;
const STAGES = ["none", "staging", "production", "archived"];

function promoteControl(v, reload) {
  const sel = el("select", { "aria-label": `stage of v${v.version}`, name: "stage" }, STAGES.map((s) => el("option", { value: s, selected: s === v.stage }, s)));
  const btn = el("button", { onclick: async () => {
    document.querySelectorAll(".write-error").forEach((n) => n.remove());
    try {
      await api(`/api/v1/models/${enc(name)}/versions/${v.version}/stage`, { method: "PUT", body: { stage: sel.value } });
      await reload();
    } catch (err) {
      const box = errorBox(err);
      box.classList.add("write-error");
      app.querySelector(".versions").after(box);
    }
  } }, "Set stage");
  return el("span", { class: "inline-form writes" }, [sel, btn]);
}

async function init() {
  let m;
  try {
    m = await api(`/api/v1/models/${enc(name)}`);
  } catch (err) {
    app.replaceChildren(el("h1", {}, name), errorBox(err));
    return;
  }
  setTitle(m.name);
  const versions = [...(m.versions || [])].sort((a, b) => b.version - a.version);
  const aliases = Object.entries(m.aliases || {});
  app.replaceChildren(...[
    el("div", { class: "page-head" }, [el("h1", {}, m.name), m.production_version ? el("span", { class: "status status-completed" }, `production v${m.production_version}`) : null]),
    m.description ? el("p", { class: "lead" }, m.description) : null,
    section("Versions", el("div", { class: "table-wrap versions" }, table(["version", "stage", "aliases", "run", "artifact", "by", "created", "promote"], versions.map((v) => [
      `v${v.version}`, statusBadge(v.stage), (v.aliases || []).join(", "), el("a", { href: `/runs/${enc(v.run_id)}` }, shortId(v.run_id)),
      el("code", {}, v.artifact || ""), v.created_by || "", fmtTime(v.created), promoteControl(v, init),
    ]), { class: "grid", id: "versions" }))),
    aliases.length ? section("Aliases", table(["alias", "version"], aliases.map(([a, v]) => [el("code", {}, a), `v${v}`]))) : null,
    m.history?.length ? section("History", table(["when", "event", "version", "detail", "by"], m.history.map((h) => [
      fmtTime(h.at), h.kind === "alias" ? `alias ${h.alias}` : h.kind, h.version ? `v${h.version}` : "",
      `${h.from_value ?? "—"} → ${h.to_value ?? "—"}`, h.who || "",
    ]))) : null,
  ].filter(Boolean));
}

init();
