"""HTML shells of the web UI pages (SPEC 9.3): a static page per route, filled by JavaScript.

The server calls ``render(path, query)`` for every GET outside ``/api/v1`` and ``/static``. Each
page is the same small document: a header, an empty ``<main>`` and one ES module from
``/static/`` that reads the JSON API (the page's "JSON twin") and builds the DOM with
``textContent`` only. Nothing logged by a user is ever placed in this HTML: the only dynamic
values here come from the URL, and they are escaped.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

__all__ = ["render"]

_NAV = (
    ("/", "Runs"),
    ("/experiments", "Experiments"),
    ("/models", "Models"),
    ("/pipelines", "Pipelines"),
    ("/alerts", "Alerts"),
)

# path pattern -> (module under /static, page title, name of the captured value)
_ROUTES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"/"), "runs", "Runs"),
    (re.compile(r"/runs/(?P<id>[^/]+)/?"), "run", "Run"),
    (re.compile(r"/compare/?"), "compare", "Compare runs"),
    (re.compile(r"/experiments/?"), "experiments", "Experiments"),
    (re.compile(r"/models/?"), "models", "Models"),
    (re.compile(r"/models/(?P<name>[^/]+)/?"), "model", "Model"),
    (re.compile(r"/pipelines/?"), "pipelines", "Pipelines"),
    (re.compile(r"/pipelines/(?P<id>[^/]+)/?"), "pipeline", "Pipeline"),
    (re.compile(r"/alerts/?"), "alerts", "Alerts"),
)


def _shell(page: str, title: str, data: dict[str, str]) -> str:
    esc = html.escape
    attrs = "".join(f' data-{k}="{esc(v, quote=True)}"' for k, v in data.items())
    section = {"run": "runs", "compare": "runs", "model": "models", "pipeline": "pipelines"}.get(page, page)
    nav = "".join(
        f'<a href="{href}"{" class=active" if label.lower() == section else ""}>{label}</a>'
        for href, label in _NAV
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · chachaml</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f'<body data-page="{page}"{attrs}>'
        '<header class="top"><a class="brand" href="/">chacha<b>ml</b></a>'
        f"<nav>{nav}</nav></header>"
        '<main id="app"><p class="loading">Loading…</p></main>'
        '<noscript><p class="error">The chachaml UI needs JavaScript; the same data is served '
        'as JSON under <a href="/api/v1/runs">/api/v1</a>.</p></noscript>'
        f'<script type="module" src="/static/{page}.js"></script>'
        "</body></html>\n"
    )


def render(path: str, query: dict[str, str]) -> str | None:
    """The HTML page for ``path``, or None when no page lives there (the server answers 404).

    Args:
        path: the request path (``/``, ``/runs/<id>``, ``/compare``, ``/experiments``,
            ``/models``, ``/models/<name>``, ``/pipelines``, ``/pipelines/<id>``, ``/alerts``),
            percent-encoded or not.
        query: the query parameters; the pages read their state from the URL in the browser,
            so only the title uses them.

    Returns:
        A complete HTML document (UTF-8 text), or None for an unknown path.
    """
    for pattern, page, title in _ROUTES:
        m = pattern.fullmatch(path)
        if m is None:
            continue
        data = {k: unquote(v) for k, v in m.groupdict().items()}
        if page == "run":
            title = f"Run {data['id'][:8]}"
        elif page == "model":
            title = f"Model {data['name']}"
        elif page == "pipeline":
            title = f"Pipeline {data['id'][:8]}"
        elif page == "compare" and query.get("ids"):
            title = f"Compare {len(query['ids'].split(','))} runs"
        return _shell(page, title, data)
    return None
