"""The pipelines and alerts pages (SPEC 11: "a UI page") in a real headless Chromium against a
real ``chachaml ui`` process; the fixtures and the per-page checks (no request leaves
127.0.0.1, no logged script runs, no dialog, no page error) are those of test_ui_browser."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import test_ui_browser as ui
from tests.test_ui_browser import EVIL, Page, serve

import chachaml
from chachaml.client import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# test_ui_browser's fixtures: the browser, and a page checked after each test (it uses this
# module's ``site``).
browser = ui.browser
page = ui.page


class Site:
    def __init__(self, base: str, db: Path, ids: dict[str, str]) -> None:
        self.base, self.db, self.ids = base, db, ids

    def url(self, path: str) -> str:
        return self.base + path


def _fail(_: Any) -> Any:
    raise ValueError(EVIL)


def _populate(db: Path) -> dict[str, str]:
    with chachaml.with_store(db):
        chachaml.run_pipeline("prep", [("load", lambda _: 1), ("clean", lambda x: x)])
        with pytest.raises(ValueError):
            chachaml.run_pipeline("train", [("load", lambda _: 1), ("fit", _fail), ("report", lambda x: x)])
        with pytest.raises(ValueError):
            chachaml.run_pipeline(EVIL, [(EVIL, lambda _: 1), ("x" + EVIL, _fail)])
        chachaml.add_alert("hot", "loss", ">", 2.0)
        chachaml.add_alert(EVIL, EVIL, ">", 1.0)
        chachaml.add_alert("quiet", "acc", "<", 0.0)
        with chachaml.with_run("hot-run") as hot:
            chachaml.log_metric("loss", 3.5, step=4)
            chachaml.log_metric(EVIL, 2.0)
        chachaml.check_alerts()
        ids = {p.name: p.id for p in chachaml.pipelines()}
    ids["hot-run"] = hot.id
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("ui-pipelines") / "ui.db"
    ids = _populate(db)
    with serve(db) as base:
        yield Site(base, db, ids)


def test_nav_links_to_the_pipelines_and_alerts_pages(page: Page, site: Site) -> None:
    page.goto(site.url("/"))
    page.click("header nav a:has-text('Pipelines')")
    page.wait_for_url(re.compile(r"/pipelines$"))
    page.wait_for_selector("#pipelines")
    assert page.inner_text("header nav a.active") == "Pipelines"
    page.click("header nav a:has-text('Alerts')")
    page.wait_for_url(re.compile(r"/alerts$"))
    page.wait_for_selector("#alerts")
    assert page.inner_text("header nav a.active") == "Alerts"


def test_pipelines_page_lists_newest_first_with_status_progress_and_current_step(
    page: Page, site: Site
) -> None:
    page.goto(site.url("/pipelines"))
    page.wait_for_selector("#pipelines")
    shown = page.eval_on_selector_all(
        "#pipelines tr[data-pipeline-id]", "rows => rows.map(r => r.dataset.pipelineId)"
    )
    with Client(site.db) as c:
        assert shown == [p.id for p in c.pipelines()]
    train = page.locator(f'#pipelines tr[data-pipeline-id="{site.ids["train"]}"] td')
    assert [train.nth(i).inner_text().strip() for i in range(5)][:3] == ["train", "failed", "1/3"]
    assert train.nth(3).inner_text().split() == ["fit", "failed"]
    assert train.nth(3).locator(".status-failed").count() == 1
    prep = page.locator(f'#pipelines tr[data-pipeline-id="{site.ids["prep"]}"] td')
    assert [prep.nth(i).inner_text().strip() for i in range(4)] == ["prep", "completed", "2/2", ""]


def test_pipeline_page_shows_steps_in_order_each_linking_to_its_run(page: Page, site: Site) -> None:
    page.goto(site.url("/pipelines"))
    page.click("#pipelines a:has-text('train')")
    page.wait_for_url(re.compile(rf"/pipelines/{site.ids['train']}$"))
    page.wait_for_selector("#steps")
    with Client(site.db) as c:
        steps = c.get_pipeline(site.ids["train"]).steps
    rows = page.locator("#steps tbody tr")
    assert [rows.nth(i).get_attribute("data-step") for i in range(rows.count())] == ["load", "fit", "report"]
    assert [rows.nth(i).locator(".status").inner_text() for i in range(3)] == [
        "completed",
        "failed",
        "skipped",
    ]
    assert page.inner_text(".steps-done") == "1/3"
    assert rows.nth(2).locator("a").count() == 0  # a skipped step has no run
    assert page.title().startswith("Pipeline train")
    rows.nth(1).locator("a").click()
    page.wait_for_url(re.compile(rf"/runs/{steps[1].run_id}$"))
    page.wait_for_selector(".run-error")


def test_alerts_page_shows_each_alert_and_its_recent_events(page: Page, site: Site) -> None:
    page.goto(site.url("/alerts"))
    page.wait_for_selector("#alerts")
    names = page.eval_on_selector_all("#alerts [data-alert]", "cards => cards.map(c => c.dataset.alert)")
    with Client(site.db) as c:
        assert names == [a.name for a in c.alerts()]
    hot = page.locator('#alerts [data-alert="hot"]')
    assert hot.locator(".condition").inner_text() == "loss > 2"
    cells = hot.locator("table.events tbody tr td")
    assert cells.nth(1).inner_text() == site.ids["hot-run"][:8]
    assert (cells.nth(2).inner_text(), cells.nth(3).inner_text()) == ("3.5", "4")
    assert "Not fired yet" in page.locator('#alerts [data-alert="quiet"]').inner_text()
    cells.nth(1).locator("a").click()
    page.wait_for_url(re.compile(rf"/runs/{site.ids['hot-run']}$"))


def test_hostile_html_in_pipeline_step_and_alert_names_is_only_text(page: Page, site: Site) -> None:
    evil = site.ids[EVIL]
    page.goto(site.url("/pipelines"))
    page.wait_for_selector("#pipelines")
    assert EVIL in page.locator(f'#pipelines tr[data-pipeline-id="{evil}"]').inner_text()
    page.goto(site.url(f"/pipelines/{evil}"))
    page.wait_for_selector("#steps")
    assert page.inner_text("h1") == EVIL
    assert page.locator("#steps tbody tr").nth(0).get_attribute("data-step") == EVIL
    assert EVIL in page.inner_text("#steps")
    page.goto(site.url("/alerts"))
    page.wait_for_selector("#alerts")
    assert EVIL in page.locator("#alerts").inner_text()
    for path in ("/pipelines", f"/pipelines/{evil}", "/alerts"):
        page.goto(site.url(path))
        page.wait_for_selector("main :is(table, h1)")
        page.wait_for_load_state("networkidle")
        assert page.locator("main img, main script, main iframe").count() == 0


def test_an_unknown_pipeline_shows_the_api_error(page: Page, site: Site) -> None:
    page.goto(site.url("/pipelines/doesnotexist"))
    assert "doesnotexist" in page.wait_for_selector(".error").inner_text()


def test_a_running_pipeline_updates_without_reload(page: Page, site: Site) -> None:
    release = threading.Event()
    started = threading.Event()

    def wait(_: Any) -> int:
        started.set()
        assert release.wait(60), "the test never released the step"
        return 1

    def run() -> None:
        with Client(site.db) as c:
            c.run_pipeline("live", [("wait", wait), ("after", lambda x: x)])

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert started.wait(60)
        with Client(site.db) as c:
            live = c.pipelines(name="live")[0]
        page.goto(site.url(f"/pipelines/{live.id}"))
        page.wait_for_selector("#steps")
        assert page.locator("h1 + .status").inner_text() == "running"
        release.set()
        worker.join(60)
        page.wait_for_function(
            "() => document.querySelector('h1 + .status')?.textContent === 'completed'", timeout=30_000
        )
        assert page.inner_text(".steps-done") == "2/2"
    finally:
        release.set()
        worker.join(60)
