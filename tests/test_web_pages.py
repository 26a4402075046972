"""The HTML shells of the web UI pages (chachaml.web.pages.render): routes, hooks, escaping."""

from __future__ import annotations

from importlib import resources

import pytest

from chachaml.web.pages import render

PAGES = {
    "/": "runs",
    "/runs/abc123": "run",
    "/runs/abc123/": "run",
    "/compare": "compare",
    "/experiments": "experiments",
    "/models": "models",
    "/models/clf": "model",
    "/pipelines": "pipelines",
    "/pipelines/abc123": "pipeline",
    "/alerts": "alerts",
}


@pytest.mark.parametrize(("path", "module"), sorted(PAGES.items()))
def test_each_page_is_a_shell_that_loads_its_module_from_the_package(path: str, module: str) -> None:
    page = render(path, {})
    assert page is not None and page.startswith("<!doctype html>")
    assert f'<script type="module" src="/static/{module}.js"></script>' in page
    assert f'data-page="{module}"' in page and '<main id="app">' in page
    assert resources.files("chachaml.web").joinpath("static", f"{module}.js").is_file()
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere: works offline


def test_every_static_file_a_page_names_ships_in_the_package() -> None:
    static = resources.files("chachaml.web").joinpath("static")
    for name in ("app.css", "favicon.svg", "util.js", "chart.js", "charts.js", "markdown.js"):
        assert static.joinpath(name).is_file(), name


@pytest.mark.parametrize(
    "path",
    ["/nope", "/runs", "/runs/a/b", "/models/a/b", "/pipelines/a/b", "/alerts/x", "/static", "/api/v1/x"],
)
def test_an_unknown_path_has_no_page(path: str) -> None:
    assert render(path, {}) is None


def test_values_from_the_url_are_escaped() -> None:
    page = render("/runs/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", {})
    assert page is not None
    assert "<script>alert" not in page and 'data-id="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    page = render("/models/<b>x", {})
    assert page is not None and "<b>x" not in page and "&lt;b&gt;x" in page


def test_the_title_names_the_run_model_or_comparison() -> None:
    assert "<title>Run abcdef12 · chachaml</title>" in (render("/runs/abcdef1234567", {}) or "")
    assert "<title>Model clf · chachaml</title>" in (render("/models/clf", {}) or "")
    assert "<title>Compare 3 runs · chachaml</title>" in (render("/compare", {"ids": "a,b,c"}) or "")


def test_the_nav_links_pipelines_and_alerts_and_marks_the_section() -> None:
    for path, active in (("/pipelines", "Pipelines"), ("/pipelines/abc", "Pipelines"), ("/alerts", "Alerts")):
        page = render(path, {})
        assert page is not None
        assert '<a href="/pipelines"' in page and '<a href="/alerts"' in page
        assert f"class=active>{active}</a>" in page
    pipeline = render("/pipelines/%3Ci%3E", {})
    assert pipeline is not None and 'data-id="&lt;i&gt;"' in pipeline and "<i>" not in pipeline
    assert "<title>Pipeline &lt;i&gt; · chachaml</title>" in pipeline
