// A small markdown renderer that builds DOM nodes directly: text only ever becomes text nodes,
// so no HTML in a note or a markdown artifact can reach the page as markup (no raw HTML
// passthrough). Supported: headings, paragraphs, lists, block quotes, fenced and indented code,
// rules, simple tables, **bold**, *italic*, `code`, [links](url) and same-origin ![images](url).
import { el } from "./util.js";

// Only these URLs become links or images: no javascript:, data: or other schemes.
function safeUrl(url, forImage) {
  const u = url.trim();
  if (forImage) return /^(\/|\.{0,2}\/|[\w\-./]+$)/.test(u) && !/^\/\//.test(u) && !/^[a-z][a-z0-9+.-]*:/i.test(u) ? u : null;
  return /^(https?:|mailto:|\/|#|\.{0,2}\/)/i.test(u) && !/^\/\//.test(u) ? u : null;
}

const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\s][\s\S]*?)\*|\b_([^_\s][\s\S]*?)_\b|~~([\s\S]+?)~~/g;

export function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) out.push(el("code", {}, m[2].trim()));
    else if (m[4] !== undefined) {
      const src = safeUrl(m[4], true);
      out.push(src ? el("img", { src, alt: m[3] }) : `![${m[3]}](${m[4]})`);
    } else if (m[6] !== undefined) {
      const href = safeUrl(m[6], false);
      out.push(href ? el("a", { href, rel: "noopener noreferrer" }, inline(m[5])) : m[0]);
    } else if (m[7] !== undefined || m[8] !== undefined) out.push(el("strong", {}, inline(m[7] ?? m[8])));
    else if (m[9] !== undefined || m[10] !== undefined) out.push(el("em", {}, inline(m[9] ?? m[10])));
    else if (m[11] !== undefined) out.push(el("del", {}, inline(m[11])));
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const LIST = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;

function splitRow(line) {
  return line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
}

// Render markdown source as a <div class="markdown">.
export function renderMarkdown(src) {
  const lines = String(src ?? "").replace(/\r\n?/g, "\n").split("\n");
  const root = el("div", { class: "markdown" });
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = line.match(/^\s*(```|~~~)\s*([\w+-]*)/))) {
      const fence = m[1], body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++;
      root.append(el("pre", {}, el("code", m[2] ? { class: `lang-${m[2]}` } : {}, body.join("\n"))));
    } else if ((m = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/))) {
      root.append(el(`h${m[1].length}`, {}, inline(m[2])));
      i++;
    } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      root.append(el("hr"));
      i++;
    } else if (/^ {4}|^\t/.test(line)) {
      const body = [];
      while (i < lines.length && (/^ {4}|^\t/.test(lines[i]) || !lines[i].trim())) body.push(lines[i++].replace(/^ {4}|^\t/, ""));
      root.append(el("pre", {}, el("code", {}, body.join("\n").replace(/\n+$/, ""))));
    } else if (/^\s*>/.test(line)) {
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      const q = renderMarkdown(body.join("\n"));
      root.append(el("blockquote", {}, [...q.childNodes]));
    } else if (line.includes("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      const head = splitRow(line);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(splitRow(lines[i++]));
      root.append(el("table", {}, [
        el("thead", {}, el("tr", {}, head.map((c) => el("th", {}, inline(c))))),
        el("tbody", {}, rows.map((r) => el("tr", {}, head.map((_, k) => el("td", {}, inline(r[k] ?? "")))))),
      ]));
    } else if (LIST.test(line)) {
      const ordered = /\d/.test(line.match(LIST)[2]);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length && (m = lines[i].match(LIST))) {
        let text = m[3];
        i++;
        while (i < lines.length && lines[i].trim() && !LIST.test(lines[i]) && /^\s{2,}/.test(lines[i])) text += " " + lines[i++].trim();
        const task = text.match(/^\[([ xX])\]\s+(.*)$/);
        list.append(el("li", {}, task ? [el("input", { type: "checkbox", disabled: true, checked: task[1] !== " " }), " ", ...inline(task[2])] : inline(text)));
      }
      root.append(list);
    } else {
      const body = [];
      while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|\s*```|\s*~~~|\s*>)/.test(lines[i]) && !LIST.test(lines[i])) body.push(lines[i++].trim());
      const p = el("p");
      body.forEach((b, k) => { if (k) p.append(" "); p.append(...inline(b)); });
      root.append(p);
    }
  }
  return root;
}
