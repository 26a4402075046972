"""The web UI in a real headless Chromium against a real ``chachaml ui`` process (SPEC 9.3).

Debian's ``/usr/bin/chromium`` driven by Playwright (never a downloaded browser). Every page of
every test records its requests: none may leave 127.0.0.1 (the UI works offline), and no script
logged by a user may run (``window.__pwned`` stays unset, no dialog opens).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import chachaml
from chachaml.client import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _need(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required on CI for the browser tests (.ci/run installs chromium)")
    pytest.skip(f"{what} is not available")


try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra has it
    sync_playwright = None

EVIL = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>'
EVIL_MD = textwrap.dedent(
    """\
    # Note <script>window.__pwned=3</script>
    <img src=x onerror="window.__pwned=4">
    [click](javascript:window.__pwned=5) and **bold** and `code`
    <iframe src="javascript:window.__pwned=6"></iframe>
    """
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


# -- the store and the server ----------------------------------------------------------------------
class Site:
    def __init__(self, base: str, db: Path, ids: dict[str, str]) -> None:
        self.base, self.db, self.ids = base, db, ids

    def url(self, path: str) -> str:
        return self.base + path


def _populate(db: Path) -> dict[str, str]:
    ids: dict[str, str] = {}
    with chachaml.with_store(db):
        for i in range(30):
            with chachaml.with_run(f"sweep-{i:02d}", experiment="sweep") as run:
                chachaml.log_params({"lr": round(0.001 * (i + 1), 4), "depth": 2 + i % 3})
                for step in range(5):
                    chachaml.log_metric("loss", 1.0 / (1 + step + i))
            ids[f"sweep-{i:02d}"] = run.id
        with chachaml.with_run("curves", experiment="demo") as run:
            chachaml.log_params({"lr": 0.5, "depth": 3, "only_here": "x"})
            for step in range(200):
                chachaml.log_metrics(
                    {"loss": 2.0 / (1 + step) + (step % 7) * 0.01, "acc": step / 200}, step=step
                )
            chachaml.log_metric("neg", -1.0, step=0)
            chachaml.log_metric("neg", 2.0, step=1)
            chachaml.log_artifact("pic.png", PNG)
            chachaml.log_artifact("readme.md", "## Hello\n\n*markdown* artifact\n", format="text")
            chachaml.log_artifact("table.csv", "a,b\n1,2\n3,4\n", format="text")
            chachaml.log_artifact("conf.json", {"k": [1, 2]}, format="json")
            chachaml.log_artifact("model.pkl", {"weights": 1})
            chachaml.set_note("# Curves\n\nA **bold** note with a [link](https://example.org).")
            chachaml.log_dataset("train-set", n_rows=100, n_cols=4)
            with chachaml.with_run("child-run", experiment="demo") as child:
                chachaml.log_metric("loss", 0.5)
            ids["child"] = child.id
        ids["curves"] = run.id
        with pytest.raises(ValueError), chachaml.with_run(EVIL, experiment=EVIL, tags={EVIL: EVIL}) as evil:
            chachaml.log_params({EVIL: EVIL})
            chachaml.log_metric(EVIL, 1.0)
            chachaml.set_note(EVIL_MD)
            chachaml.log_artifact("evil.md", EVIL_MD, format="text")
            chachaml.log_artifact("evil.html", EVIL, format="text")
            raise ValueError(EVIL)
        ids["evil"] = evil.id
        with chachaml.with_run("long", experiment="long") as run, chachaml.batched():
            for step in range(20_000):
                chachaml.log_metric("loss", 100.0 if step == 12_345 else 1.0 + (step % 10) / 100, step=step)
        ids["long"] = run.id
    with Client(db) as c:
        c.register_model("clf", artifact="model.pkl", run_id=ids["curves"], stage="staging")
        c.register_model("clf", artifact="model.pkl", run_id=ids["curves"])
    return ids


@contextmanager
def serve(db: Path, *options: str) -> Iterator[str]:
    """``chachaml ui`` on a free port of 127.0.0.1 in a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "chachaml", "ui", "--store", str(db), "--port", "0", "--no-browser", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.match(r"chachaml UI at (http://127\.0\.0\.1:\d+)/", line)
        assert m, f"no URL line from chachaml ui: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("ui") / "ui.db"
    ids = _populate(db)
    with serve(db) as base:
        yield Site(base, db, ids)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _need("the playwright package")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        _need(f"chromium at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh page that records requests, dialogs and page errors; checked after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    yield pg
    pwned = pg.evaluate("window.__pwned")
    context.close()
    outside = [u for u in requests if urlsplit(u).hostname != "127.0.0.1" or urlsplit(u).scheme != "http"]
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert pwned is None, f"a logged script ran: window.__pwned = {pwned}"
    assert not dialogs, dialogs
    assert not errors, errors


def row_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#runs tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)")


def wait_query(page: Page, pattern: str) -> None:
    """Wait until the URL (kept with history.replaceState, so no navigation) matches."""
    page.wait_for_function("p => new RegExp(p).test(decodeURIComponent(location.search))", arg=pattern)


def store_ids(db: Path, **filters: Any) -> list[str]:
    with Client(db) as c:
        return [r.id for r in c.runs(**filters)]


# -- runs page ---------------------------------------------------------------------------------------
def test_runs_page_lists_runs_newest_first_with_one_row_per_full_id(page: Page, site: Site) -> None:
    page.goto(site.url("/"))
    page.wait_for_selector("#runs tr[data-run-id]")
    assert row_ids(page) == store_ids(site.db)[:50]
    head = page.inner_text("#runs thead")
    for column in ("name", "experiment", "status", "start", "duration", "loss", "lr"):
        assert column in head
    row = page.locator(f'#runs tr[data-run-id="{site.ids["curves"]}"]')
    assert "curves" in row.inner_text() and "completed" in row.inner_text()


def test_where_box_filters_on_enter_and_a_bad_query_shows_the_error_with_the_table_untouched(
    page: Page, site: Site
) -> None:
    page.goto(site.url("/"))
    page.wait_for_selector("#runs tr[data-run-id]")
    box = page.locator('input[name="where"]')
    box.fill("params.lr < 0.0035 and experiment = 'sweep'")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('#runs tr[data-run-id]').length === 3")
    before = row_ids(page)
    assert before == store_ids(site.db, where="params.lr < 0.0035 and experiment = 'sweep'")
    assert "where=" in page.url
    box.fill("params.lr <<< 1")
    box.press("Enter")
    error = page.wait_for_selector(".error")
    text = error.inner_text()
    assert text.startswith("QueryError: ") and "^" in text and "params.lr <<< 1" in text  # its message
    assert row_ids(page) == before
    box.fill("")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('#runs tr[data-run-id]').length > 3")
    assert page.locator(".error").count() == 0


def test_filters_by_experiment_and_status(page: Page, site: Site) -> None:
    page.goto(site.url("/"))
    page.wait_for_selector("#runs tr[data-run-id]")
    page.wait_for_selector('select[name="experiment"] option[value="demo"]', state="attached")
    page.select_option('select[name="experiment"]', "demo")
    page.wait_for_function("document.querySelectorAll('#runs tr[data-run-id]').length === 2")
    assert row_ids(page) == store_ids(site.db, experiment="demo")
    page.select_option('select[name="status"]', "failed")
    page.wait_for_selector("#runs tr.empty")
    page.select_option('select[name="experiment"]', "")
    page.wait_for_function("document.querySelectorAll('#runs tr[data-run-id]').length === 1")
    assert row_ids(page) == [site.ids["evil"]]


def test_clicking_a_header_sorts_by_it_and_again_reverses(page: Page, site: Site) -> None:
    page.goto(site.url("/?experiment=sweep&cols=params.lr,metrics.loss"))
    page.wait_for_selector("#runs tr[data-run-id]")
    page.click("#runs th:has-text('lr')")
    wait_query(page, r"order=params\.lr\+asc")
    page.wait_for_function(
        f"document.querySelector('#runs tbody tr').dataset.runId === '{site.ids['sweep-00']}'"
    )
    assert row_ids(page) == store_ids(site.db, experiment="sweep", order_by="params.lr asc")
    page.click("#runs th:has-text('lr')")
    page.wait_for_function(
        f"document.querySelector('#runs tbody tr').dataset.runId === '{site.ids['sweep-29']}'"
    )
    assert row_ids(page) == store_ids(site.db, experiment="sweep", order_by="params.lr desc")
    page.click("#runs th:has-text('name')")
    page.wait_for_function(
        f"document.querySelector('#runs tbody tr').dataset.runId === '{site.ids['sweep-00']}'"
    )


def test_paging_walks_the_runs_a_page_at_a_time(page: Page, site: Site) -> None:
    everything = store_ids(site.db)
    page.goto(site.url("/?limit=25"))
    page.wait_for_selector("#runs tr[data-run-id]")
    assert row_ids(page) == everything[:25]
    page.click("button:has-text('Older')")
    wait_query(page, r"offset=25")
    page.wait_for_function(f"document.querySelector('#runs tbody tr').dataset.runId === '{everything[25]}'")
    assert row_ids(page) == everything[25:50]
    assert page.locator("button:has-text('Older')").is_disabled()  # the API said there is no more
    page.click("button:has-text('Newer')")
    page.wait_for_function(f"document.querySelector('#runs tbody tr').dataset.runId === '{everything[0]}'")


def test_columns_are_choosable_and_kept_in_the_url(page: Page, site: Site) -> None:
    page.goto(site.url("/?experiment=demo"))
    page.wait_for_selector("#runs tr[data-run-id]")
    assert "only_here" in page.inner_text("#runs thead")  # shown by default: few params here
    page.click("details.columns summary")
    page.uncheck("details.columns label:has-text('params.only_here') input")
    wait_query(page, r"cols=metrics\.")
    assert "only_here" not in page.inner_text("#runs thead")
    page.reload()
    page.wait_for_selector("#runs tr[data-run-id]")
    assert "only_here" not in page.inner_text("#runs thead")
    page.click("details.columns summary")
    page.check("details.columns label:has-text('params.only_here') input")
    wait_query(page, r"cols=.*params\.only_here")
    assert "only_here" in page.inner_text("#runs thead")


def test_checkboxes_and_compare_open_the_compare_page(page: Page, site: Site) -> None:
    a, b = site.ids["sweep-01"], site.ids["curves"]
    page.goto(site.url("/"))
    page.wait_for_selector("#runs tr[data-run-id]")
    for run_id in (a, b):
        page.check(f'#runs tr[data-run-id="{run_id}"] input[type=checkbox]')
    page.click("button:has-text('Compare')")
    page.wait_for_url(re.compile(r"/compare\?ids="))
    assert sorted(page.url.split("ids=")[1].split("&")[0].split(",")) == sorted([a, b])


# -- compare page --------------------------------------------------------------------------------------
def test_compare_puts_differing_params_first_highlighted_and_overlays_curves(page: Page, site: Site) -> None:
    a, b = site.ids["sweep-01"], site.ids["curves"]
    page.goto(site.url(f"/compare?ids={a},{b}"))
    page.wait_for_selector('[data-diff="params"] tbody tr')
    rows = page.eval_on_selector_all(
        '[data-diff="params"] tbody tr', "rs => rs.map(r => [r.dataset.key, r.className])"
    )
    assert rows[0][1] == "differ" and {k for k, c in rows if c == "differ"} == {"lr", "only_here"}
    assert [c for _, c in rows] == sorted((c for _, c in rows), key=lambda c: c != "differ")
    assert page.eval_on_selector(
        '[data-diff="params"] tr.differ td', "td => getComputedStyle(td).backgroundColor"
    ) != (
        page.eval_on_selector('[data-diff="params"] tr.same td', "td => getComputedStyle(td).backgroundColor")
    )
    chart = page.wait_for_selector('[data-metric="loss"][data-points] canvas')
    assert chart is not None
    legend = page.locator('[data-metric="loss"] .legend-item')
    assert legend.count() == 2 and "curves" in legend.all_inner_texts()[1]
    page.check('input[name="only-diff"]')
    assert page.locator('[data-diff="params"] tr.same').count() == 0


# -- run page ------------------------------------------------------------------------------------------
def test_run_page_shows_params_tags_note_datasets_env_children_and_one_chart_per_metric(
    page: Page, site: Site
) -> None:
    page.goto(site.url(f"/runs/{site.ids['curves'][:8]}"))  # an id prefix works
    for key in ("loss", "acc", "neg"):
        page.wait_for_selector(f'[data-metric="{key}"][data-points] canvas')
    page.wait_for_selector("h2:has-text('Environment')")  # the last section: the page is complete
    assert page.get_attribute('[data-metric="loss"]', "data-points") == "200"
    text = page.text_content("main") or ""
    for expected in ("only_here", "train-set", "Environment", "python", "Curves", "child-run"):
        assert expected in text, expected
    assert page.inner_text(".markdown strong") == "bold"
    link = page.locator(f'a[href="/runs/{site.ids["child"]}"]')
    assert link.count() == 1


def test_chart_hover_log_scale_smoothing_and_zoom_keep_their_state_in_the_url(page: Page, site: Site) -> None:
    page.goto(site.url(f"/runs/{site.ids['curves']}"))
    canvas = page.wait_for_selector('[data-metric="loss"][data-points] canvas')
    box = canvas.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    readout = page.wait_for_selector('[data-metric="loss"] .readout:not([hidden])')
    assert re.search(r"step \d+", readout.inner_text())
    page.check('input[name="log"]')
    wait_query(page, r"log=1")
    note = page.inner_text('[data-metric="neg"] .chart-note')
    assert "1 value ≤ 0 not shown on the log axis" in note  # never hidden silently
    page.fill('input[name="smoothing"]', "0.6")
    wait_query(page, r"smooth=0\.6")
    page.select_option('select[name="x"]', "relative")
    wait_query(page, r"x=relative")
    page.select_option('select[name="x"]', "step")
    page.mouse.move(box["x"] + 80, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 60, steps=5)
    page.mouse.up()
    wait_query(page, r"xmin=.*xmax=")
    assert "zoomed" in page.inner_text('[data-metric="loss"] .chart-note')
    page.reload()  # the view survives a reload
    page.wait_for_selector('[data-metric="loss"][data-points] canvas')
    assert page.is_checked('input[name="log"]') and "zoomed" in page.inner_text(
        '[data-metric="loss"] .chart-note'
    )
    page.dblclick('[data-metric="loss"] canvas')
    page.wait_for_function("!location.search.includes('xmin')")
    page.click('button[name="smoothing-off"]')
    page.wait_for_function("!location.search.includes('smooth')")


def test_a_long_history_is_downsampled_and_a_zoom_refetches_the_view_at_full_resolution(
    page: Page, site: Site
) -> None:
    page.goto(site.url(f"/runs/{site.ids['long']}"))
    chart = page.wait_for_selector('[data-metric="loss"][data-points]')
    assert int(chart.get_attribute("data-points") or 0) <= 1_000
    assert "downsampled" in page.inner_text('[data-metric="loss"] .chart-note')
    assert "20,000" in page.inner_text('[data-metric="loss"] .chart-note')
    assert "100" in page.inner_text('[data-metric="loss"] .summary')  # the spike's max
    with page.expect_request(lambda r: "after_step=11999&before_step=12501&max_points=1000" in r.url):
        page.goto(site.url(f"/runs/{site.ids['long']}?xmin=12000&xmax=12500"))  # the window only
    # every step of the view, not the ~25 of the overview: the zoom fetched it again
    page.wait_for_function(
        "Number(document.querySelector('[data-metric=loss] .chart-host')?.dataset.visible ?? 0) >= 501"
    )


def test_ema_is_debiased_and_zero_smoothing_is_the_raw_series(page: Page, site: Site) -> None:
    page.goto(site.url("/experiments"))
    got = page.evaluate(
        """async () => {
            const { ema } = await import('/static/chart.js');
            return [ema([1, 2, 3, NaN, 4], 0.5), ema([1, 2, 3], 0)];
        }"""
    )
    w, last, n, expected = 0.5, 0.0, 0, []
    for y in (1, 2, 3):
        last, n = last * w + (1 - w) * y, n + 1
        expected.append(last / (1 - w**n))
    assert got[0][:3] == pytest.approx(expected) and math.isnan(got[0][3])  # NaN passes through
    last, n = last * w + (1 - w) * 4, n + 1
    assert got[0][4] == pytest.approx(last / (1 - w**n))
    assert got[1] == [1, 2, 3]


def test_tags_and_note_are_editable(page: Page, site: Site) -> None:
    run_id = site.ids["sweep-05"]
    page.goto(site.url(f"/runs/{run_id}"))
    page.fill('input[name="tag-key"]', "reviewed")
    page.fill('input[name="tag-value"]', "yes <b>")
    page.click("button:has-text('Add tag')")
    page.wait_for_selector(".tag:has-text('reviewed')")
    with Client(site.db) as c:
        assert c.get_run(run_id).tags == {"reviewed": "yes <b>"}
    page.click("button[aria-label='delete tag reviewed']")
    page.wait_for_selector(".tag", state="detached")
    page.click("button:has-text('Add note')")
    page.fill('textarea[name="note"]', "Looks **good**")
    page.click("button:has-text('Save')")
    page.wait_for_selector(".markdown strong:has-text('good')")
    with Client(site.db) as c:
        run = c.get_run(run_id)
        assert run.tags == {} and run.note == "Looks **good**"


def test_artifacts_preview_images_markdown_json_csv_and_offer_the_rest_for_download(
    page: Page, site: Site
) -> None:
    page.goto(site.url(f"/runs/{site.ids['curves']}"))
    img = page.wait_for_selector('[data-artifact="pic.png"] img')
    page.wait_for_function("document.querySelector('[data-artifact=\"pic.png\"] img').naturalWidth === 1")
    assert img is not None
    page.wait_for_selector('[data-artifact="readme.md"] .markdown h2:has-text("Hello")')
    page.click('[data-artifact="conf.json"] summary')
    assert json.loads(page.inner_text('[data-artifact="conf.json"] pre')) == {"k": [1, 2]}
    page.click('[data-artifact="table.csv"] summary')
    page.wait_for_selector('[data-artifact="table.csv"] td:has-text("3")')
    link = page.locator('[data-artifact="model.pkl"] a:has-text("Download")')
    assert link.get_attribute("href", timeout=5000).endswith("/artifacts/model.pkl")
    assert page.locator('[data-artifact="model.pkl"] .artifact-body').count() == 0


def test_hostile_html_in_names_tags_params_notes_markdown_and_errors_never_runs(
    page: Page, site: Site
) -> None:
    for path in (
        "/",
        f"/runs/{site.ids['evil']}",
        f"/compare?ids={site.ids['evil']},{site.ids['curves']}",
        "/experiments",
    ):
        page.goto(site.url(path))
        page.wait_for_selector("main :is(table, h1)")
        page.wait_for_load_state("networkidle")
    page.goto(site.url(f"/runs/{site.ids['evil']}"))
    page.wait_for_selector(".run-error")
    page.click('[data-artifact="evil.html"] summary')
    page.wait_for_selector('[data-artifact="evil.html"] pre')
    page.wait_for_selector('[data-artifact="evil.md"] .markdown')
    page.wait_for_load_state("networkidle")
    assert EVIL in page.inner_text("h1")  # shown as text
    assert EVIL in page.inner_text(".run-error")
    # no element came from logged markup: no iframe, no script, no img but the UI's own
    assert page.locator("main iframe, main script").count() == 0
    assert page.locator("main img").count() == 0
    assert page.locator('main a[href^="javascript:"]').count() == 0
    assert "<script>" in page.inner_text('[data-artifact="evil.md"] .markdown')


def test_markdown_renderer_keeps_html_as_text(page: Page, site: Site) -> None:
    page.goto(site.url("/experiments"))
    out = page.evaluate(
        """async (src) => {
            const { renderMarkdown } = await import('/static/markdown.js');
            const root = renderMarkdown(src);
            const nodes = [...root.querySelectorAll('*')];
            return {
                html: root.innerHTML,
                text: root.textContent,
                tags: [...new Set(nodes.map((n) => n.tagName.toLowerCase()))].sort(),
                attrs: [...new Set(nodes.flatMap(n => [...n.attributes].map(a => a.name + "=" + a.value)))]
                    .sort(),
            };
        }""",
        EVIL_MD + "\n- [x] done\n\n| a | b |\n|---|---|\n| <b>1</b> | 2 |\n",
    )
    assert out["tags"] == sorted(
        ["h1", "p", "strong", "code", "ul", "li", "input", "table", "thead", "tbody", "tr", "th", "td"]
    )
    assert out["attrs"] == ["checked=", "disabled=", "type=checkbox"]  # the task list box only
    assert "<script>window.__pwned=3</script>" in out["text"] and "<b>1</b>" in out["text"]
    assert "[click](javascript:window.__pwned=5)" in out["text"]  # not a link


# -- models and experiments ------------------------------------------------------------------------------
def test_models_and_model_page_promote_a_version(page: Page, site: Site) -> None:
    page.goto(site.url("/models"))
    page.click("#models a:has-text('clf')")
    page.wait_for_selector("#versions tbody tr")
    assert page.locator("#versions tbody tr").count() == 2
    page.select_option('select[aria-label="stage of v2"]', "production")
    page.click("#versions tbody tr:has-text('v2') button:has-text('Set stage')")
    page.wait_for_selector(".page-head :has-text('production v2')")
    with Client(site.db) as c:
        assert c.get_model_version("clf", 2).stage == "production"
    assert "none → production" in page.inner_text("main")  # the history lists the change


def test_a_read_only_server_refuses_a_promotion_and_the_page_hides_its_write_controls(
    page: Page, site: Site
) -> None:
    with serve(site.db, "--read-only") as base:
        page.goto(f"{base}/models/clf")
        page.wait_for_selector("#versions tbody tr")
        with Client(site.db) as c:
            stage = c.get_model_version("clf", 1).stage
        page.select_option('select[aria-label="stage of v1"]', "archived")
        page.click("#versions tbody tr:has-text('v1') button:has-text('Set stage')")
        assert "read-only" in page.wait_for_selector(".error").inner_text()
        assert page.locator("#versions .writes").first.is_hidden()
        page.goto(f"{base}/runs/{site.ids['sweep-07']}")
        page.click("button:has-text('Add note')")
        page.fill('textarea[name="note"]', "x")
        page.click("button:has-text('Save')")
        page.wait_for_selector(".error")
        assert page.locator('input[name="tag-key"]').is_hidden()
        with Client(site.db) as c:
            assert (
                c.get_model_version("clf", 1).stage == stage and c.get_run(site.ids["sweep-07"]).note is None
            )


def test_experiments_page_links_to_their_runs(page: Page, site: Site) -> None:
    page.goto(site.url("/experiments"))
    page.click("#experiments a:has-text('demo')")
    page.wait_for_url(re.compile(r"/\?experiment=demo"))
    page.wait_for_function("document.querySelectorAll('#runs tr[data-run-id]').length === 2")


def test_unknown_run_shows_the_api_error(page: Page, site: Site) -> None:
    page.goto(site.url("/runs/doesnotexist"))
    assert "doesnotexist" in page.wait_for_selector(".error").inner_text()


# -- live updates -------------------------------------------------------------------------------------------
WRITER = """
import sys
import chachaml
chachaml.use_store(sys.argv[1])
run = chachaml.start_run("live", experiment="live")
for step in range(3):
    chachaml.log_metric("loss", 1.0 / (step + 1))
print(run.id, flush=True)
sys.stdin.readline()
for step in range(3, 6):
    chachaml.log_metric("loss", 1.0 / (step + 1))
chachaml.log_metric("fresh", 7.0)
print("logged", flush=True)
sys.stdin.readline()
chachaml.end_run()
print("ended", flush=True)
"""


def test_a_running_run_updates_live_without_reload_and_keeps_the_view(page: Page, site: Site) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(site.db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdin and writer.stdout
    try:
        run_id = writer.stdout.readline().strip()
        page.goto(site.url(f"/runs/{run_id}?xmin=0&xmax=4&smooth=0.3"))
        page.wait_for_selector('[data-metric="loss"][data-last-step="2"]')
        page.evaluate("window.__sameDocument = true")
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "logged"
        page.wait_for_selector('[data-metric="loss"][data-last-step="5"]', timeout=10_000)
        page.wait_for_selector('[data-metric="fresh"] canvas', timeout=10_000)  # a new key gets a chart
        assert page.evaluate("window.__sameDocument") is True  # no reload
        assert "xmin=0&xmax=4" in page.url and "zoomed" in page.inner_text('[data-metric="loss"] .chart-note')
        # the runs page shows the status change without a reload
        page.goto(site.url("/?experiment=live"))
        page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"] .status-running')
        writer.stdin.write("end\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "ended"
        page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"] .status-completed', timeout=10_000)
    finally:
        writer.stdin.close()
        writer.stdout.close()
        writer.wait(timeout=30)
