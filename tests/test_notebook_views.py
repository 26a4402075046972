"""Notebook views (SPEC 7): coloured status and sparklines in ``Run``/``RunList`` HTML, and
``chachaml.plot`` as a self-contained SVG chart in Jupyter and a text summary in a terminal."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

import chachaml
from chachaml import _html
from chachaml.store.base import Store

EVIL = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"


def _log_curve(name: str, values: list[float], **kw: object) -> chachaml.Run:
    with chachaml.with_run(name, experiment="nbv", **kw) as run:  # type: ignore[arg-type]
        for v in values:
            chachaml.log_metric("loss", v)
        chachaml.log_param("lr", 0.1)
    return chachaml.get_run(run.id)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


SAFE_TAGS = {"div", "span", "strong", "table", "caption", "thead", "tbody", "tr", "th", "td"}
SVG_TAGS = {"svg", "title", "polyline", "circle", "line", "text", "path", "rect", "g"}


def _no_active_content(html: str) -> None:
    """Only presentational tags, no event handler, nothing fetched from elsewhere."""
    parser = _Tags()
    parser.feed(html)
    assert parser.tags
    for tag, attrs in parser.tags:
        assert tag in SAFE_TAGS | SVG_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on") and name not in {"src", "href"}, (tag, name, value)


def test_run_html_shows_the_status_in_colour_and_a_sparkline_per_metric(chachaml_store: Store) -> None:
    run = _log_curve("curve", [3.0, 2.0, 1.5, 1.2, 1.0])
    with chachaml.with_run("second", experiment="nbv") as other:
        chachaml.log_metrics({"loss": 1.0, "acc": 0.5})
    html = chachaml.get_run(other.id)._repr_html_()
    assert html.count('class="chachaml-spark"') == 2  # loss and acc
    html = run._repr_html_()
    assert "completed" in html and "#16a34a" in html  # the UI's green for completed
    (spark,) = re.findall(r'<svg class="chachaml-spark".*?</svg>', html)
    (points,) = re.findall(r'<polyline points="([^"]+)"', spark)
    assert len(points.split()) == 5  # every point of a short history
    ys = [float(p.split(",")[1]) for p in points.split()]
    assert ys == sorted(ys)  # a falling loss: y grows downwards in SVG
    assert "<table>" in html and "lr" in html
    _no_active_content(html)


def test_run_html_colours_each_status_differently(chachaml_store: Store) -> None:
    colours = {
        s: re.search(r"color:(#[0-9a-f]{6})", _html.status_badge(s)).group(1)
        for s in ("running", "completed", "failed", "killed")  # type: ignore[union-attr]
    }
    assert len(set(colours.values())) == 4
    with pytest.raises(ZeroDivisionError), chachaml.with_run("boom", experiment="nbv") as run:
        chachaml.log_metric("loss", 1.0)
        1 / 0  # noqa: B018
    html = chachaml.get_run(run.id)._repr_html_()
    assert colours["failed"] in html and "ZeroDivisionError" in html


def test_run_html_escapes_everything_logged(chachaml_store: Store) -> None:
    with chachaml.with_run(EVIL, experiment=EVIL) as run:
        chachaml.log_param(EVIL, EVIL)
        chachaml.log_metric(EVIL, 1.0)
        chachaml.set_tag("t", EVIL)
    html = chachaml.get_run(run.id)._repr_html_()
    _no_active_content(html)
    assert "&lt;script&gt;window.__pwned" in html


def test_a_run_outside_the_current_store_renders_without_sparklines(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "a.db"):
        run = _log_curve("elsewhere", [1.0, 2.0])
    html = run._repr_html_()  # the current store is the default one, which does not exist
    assert "elsewhere" in html and "chachaml-spark" not in html
    assert not (tmp_path / "chachaml.db").exists()  # a view never creates a database


def test_sparklines_leave_gaps_for_nan_and_keep_spikes_of_long_histories() -> None:
    svg = _html.sparkline([1.0, 2.0, math.nan, 3.0, 4.0])
    assert svg.count("<polyline") == 2
    long = [0.0] * 10_000
    long[5_000] = 100.0
    (pts,) = re.findall(r'points="([^"]+)"', _html.sparkline(long, width=50, height=20))
    assert len(pts.split()) <= 102
    assert min(float(p.split(",")[1]) for p in pts.split()) == pytest.approx(2.0)  # the spike is at the top
    assert _html.sparkline([]) == "" and _html.sparkline([math.nan]) == ""


def test_runlist_html_has_status_badges_and_sparklines_in_metric_columns(chachaml_store: Store) -> None:
    _log_curve("a", [1.0, 0.5, 0.2])
    _log_curve(EVIL, [2.0, 1.0])
    runs = chachaml.runs(experiment="nbv")
    html = runs._repr_html_()
    assert html.count("<tr>") == 3 and "2 runs" in html
    assert html.count('class="chachaml-spark"') == 2
    assert html.count("border-radius:99px") == 2  # one status badge per row
    _no_active_content(html)


def test_plot_renders_a_self_contained_svg_with_one_line_per_run(chachaml_store: Store) -> None:
    a = _log_curve("fast", [2.0, 1.0, 0.5, 0.25])
    b = _log_curve("slow", [2.0, 1.8, 1.6])
    p = chachaml.plot(chachaml.runs(experiment="nbv"), "loss")
    html = p._repr_html_()
    assert html.count("<polyline") == 2
    assert "fast" in html and "slow" in html and ">loss<" in html
    _no_active_content(html)
    assert "<svg" in html and "xmlns" in html
    text = repr(p)
    assert text.splitlines()[0] == "<Plot 'loss' x=step: 2 runs>"
    assert "fast" in text and "4 points" in text and "min=0.25" in text
    # ids, prefixes, a single Run and a list of Runs all work
    assert len(chachaml.plot([a.id[:8], b.id], "loss").lines) == 2
    assert len(chachaml.plot(a, "loss", x="relative").lines) == 1
    assert chachaml.plot(a.id, "loss", x="wall").lines[0].count == 4


def test_plot_of_a_key_no_run_logged_names_the_key(chachaml_store: Store) -> None:
    run = _log_curve("r", [1.0])
    with pytest.raises(chachaml.ChachamlError, match="'accuracy'") as info:
        chachaml.plot(run, "accuracy")
    assert "loss" in str(info.value)  # and says what was logged
    with pytest.raises(chachaml.InvalidValueError, match="x must be one of"):
        chachaml.plot(run, "loss", x="epoch")
    with pytest.raises(chachaml.InvalidValueError, match="plot"):
        chachaml.plot(42, "loss")
    with pytest.raises(chachaml.RunNotFoundError):
        chachaml.plot("ffffffffffff", "loss")


def test_plot_downsamples_long_histories_keeping_the_extremes(chachaml_store: Store) -> None:
    with chachaml.with_run("long", experiment="nbv") as run, chachaml.batched():
        for i in range(5_000):
            chachaml.log_metric("loss", 1.0 if i != 3_333 else 50.0, step=i)
    p = chachaml.plot(run, "loss")
    (line,) = p.lines
    assert line.count == 5_000 and len(line.points) <= 1_000
    assert (3_333.0, 50.0) in line.points and line.points[0][0] == 0 and line.points[-1][0] == 4_999


# -- in a real Jupyter kernel ---------------------------------------------------------------------
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = [
    """
    import chachaml
    chachaml.use_store("views.db")
    for lr in (0.1, 0.01):
        with chachaml.with_run(f"lr={lr}", experiment="views") as run:
            chachaml.log_param("lr", lr)
            for step in range(20):
                chachaml.log_metric("loss", 1 / (1 + lr * 10 * step))
    run = chachaml.get_run(run.id)
    run
    """,
    "chachaml.runs(experiment='views')",
    "chachaml.plot(chachaml.runs(experiment='views'), 'loss')",
]


@pytest.mark.slow
def test_views_render_as_html_in_a_real_jupyter_kernel(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src).strip()) for src in NOTEBOOK]
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    htmls = []
    for cell in nb.cells:
        (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        htmls.append(result["data"]["text/html"])
        assert result["data"]["text/plain"]  # a terminal gets text
    run_html, list_html, plot_html = htmls
    assert "chachaml-spark" in run_html and "completed" in run_html
    assert list_html.count("chachaml-spark") == 2
    assert plot_html.count("<polyline") == 2 and "lr=0.1" in plot_html
    assert nb.cells[2].outputs[0]["data"]["text/plain"].startswith("<Plot 'loss' x=step: 2 runs>")
    (tmp_path / "views.html").write_text("".join(htmls), encoding="utf-8")


VIEW_WITHOUT_CONTEXT = """
import sys
from chachaml.entities import Run
run = Run(id="a" * 32, experiment="e", status="failed", start_time=0, metrics={"loss": 1.0})
html = run._repr_html_()
assert "loss" in html and "failed" in html and "chachaml-spark" not in html
assert "chachaml.context" not in sys.modules and "sqlite3" not in sys.modules
print("ok")
"""


@pytest.mark.slow
def test_a_view_opens_no_store_when_the_context_layer_is_not_in_use(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", VIEW_WITHOUT_CONTEXT], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ok", out.stderr
    assert list(tmp_path.iterdir()) == []
