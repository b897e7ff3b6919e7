"""The decision memo a run logged, rendered in headless Chromium.

The memo of the example run logged to a real ``mlflow server`` (``conftest.py``) is
downloaded and opened in Debian's Chromium through Playwright. ``.ci/run`` installs the
``chromium`` package and sets ``UPLIFT_TEST_CHROMIUM``, so there the test cannot skip.
Through the page, the test checks that the verdict, the segment table and every figure
are present and visible, that every image decoded, that the page made no network
request, and that the console shows no error; the project's own renderer
(:func:`uplift.browser.render_page`, what ``uplift report --screenshot`` uses) writes
the screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cli_support import uplift

from uplift.browser import CHROMIUM_ARGS, find_chromium, render_page
from uplift.errors import BrowserError
from uplift.memo import MEMO_FIGURES


@pytest.fixture(scope="module")
def chromium() -> str:
    """``$UPLIFT_TEST_CHROMIUM`` (set by ``.ci/run``: the test must run), else the first
    Chromium on PATH, else the test skips."""
    required = os.environ.get("UPLIFT_TEST_CHROMIUM")
    if required:
        return find_chromium(required)
    try:
        return find_chromium()
    except BrowserError as exc:
        pytest.skip(f"no Chromium on this machine ({exc}); .ci/run installs Debian's chromium")


@pytest.fixture(scope="module")
def memo(logged: dict[str, Any], server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("memo")
    run_id = logged["summary"]["mlflow_run_id"]
    return Path(MlflowClient(server).download_artifacts(run_id, "memo.html", str(folder)))


def test_the_memo_renders_with_its_verdict_segment_table_and_every_figure(
    chromium: str, memo: Path, logged: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    summary = logged["summary"]
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(memo.as_uri(), wait_until="load")

            verdict = page.locator("#verdict")
            assert verdict.is_visible()
            text = verdict.inner_text()
            assert summary["decision"]["reason"][:60] in " ".join(text.split())
            assert summary["decision"]["verdict"] in (verdict.get_attribute("class") or "")

            table = page.locator("#segment-table")
            assert table.is_visible()
            rows = table.locator("tbody tr")
            assert rows.count() == len(summary["segments"])
            first = rows.nth(0).inner_text()
            assert summary["segments"][0]["segment"] in first
            assert f"{summary['segments'][0]['n']:,}" in first

            images = page.locator("figure img")
            assert images.count() == len(MEMO_FIGURES)
            for i in range(images.count()):
                image = images.nth(i)
                image.scroll_into_view_if_needed()
                assert image.is_visible(), image.get_attribute("alt")
                box = image.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 150
                decoded = image.evaluate("img => img.complete && img.naturalWidth > 0")
                assert decoded, image.get_attribute("alt")
                assert (image.get_attribute("src") or "").startswith("data:image/png;base64,")
            for section in ("value", "segments", "economics", "targeting", "caveats"):
                assert page.locator(f"#{section}").is_visible(), section
        finally:
            browser.close()
    assert errors == []
    # the page itself and inline data only: nothing fetched from anywhere
    assert all(url.startswith(("file://", "data:")) for url in requests), requests

    shot = render_page(memo, tmp_path / "memo.png", browser=chromium)
    assert shot.console_errors == []
    data = shot.path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    height = int.from_bytes(data[20:24], "big")  # the IHDR chunk: a full-page screenshot
    assert height > 3000, height


def test_uplift_report_writes_the_screenshot_the_readme_shows(
    chromium: str, server: str, logged: dict[str, Any], tmp_path: Path
) -> None:
    run_id = logged["summary"]["mlflow_run_id"]
    shot = tmp_path / "memo.png"
    result = uplift(
        "report",
        run_id,
        "--tracking-uri",
        server,
        "--out",
        str(tmp_path / "memo.html"),
        "--screenshot",
        str(shot),
        "--screenshot-height",
        "1400",
        "--browser",
        chromium,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"Wrote a screenshot of it to {shot}." in result.stdout
    assert "warning" not in result.stderr  # the page logged no console error
    data = shot.read_bytes()
    width, height = (int.from_bytes(data[i : i + 4], "big") for i in (16, 20))
    assert (width, height) == (1100, 1400)
