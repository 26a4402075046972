"""The README's screenshots are taken by the test suite's browser (issue 9, "Tests and evidence").

``docs/screenshots.py`` drives Debian's headless Chromium over a real UI server and writes the
four PNGs that README.md, docs/ui.md and docs/notebooks.md show. This test runs it into a
temporary folder and checks that each file is a real PNG of a full page (not a blank or an
error page's few bytes), and that every PNG in ``docs/img`` is referenced by the docs.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ("runs.png", "run.png", "compare.png", "notebook.png")


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def test_the_screenshot_script_renders_every_page(tmp_path: Path) -> None:
    if not (Path("/usr/bin/chromium").exists() or shutil.which("chromium")):
        if os.environ.get("CI"):
            pytest.fail("chromium is required on CI for the browser tests (.ci/run installs chromium)")
        pytest.skip("chromium is not available")
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "screenshots.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in SHOTS:
        data = (tmp_path / name).read_bytes()
        width, height = _size(data)
        assert width >= 800 and height >= 400, (name, width, height)
        assert len(data) > 20_000, f"{name} is {len(data)} bytes: a blank page?"


def test_every_committed_screenshot_is_shown_by_the_docs() -> None:
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")
    )
    for png in sorted((ROOT / "docs" / "img").glob("*.png")):
        assert f"img/{png.name}" in docs, f"docs/img/{png.name} is not shown by any page"
        _size(png.read_bytes())
    assert {p.name for p in (ROOT / "docs" / "img").glob("*.png")} >= set(SHOTS)
