"""Rendering an HTML page to a PNG screenshot in headless Chromium.

Used for pictures of the decision memo. It needs the optional ``browser`` extra
(``pip install 'uplift[browser]'``, which brings Playwright's Python driver) and a
Chromium on the machine (Debian's ``chromium`` package, for example); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from uplift.errors import BrowserError
from uplift.tracking.store import first_line

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect

__all__ = ["CHROMIUM_ARGS", "PageRender", "find_chromium", "render_page"]

#: Flags for a headless Chromium on a machine with no network and no display: no sandbox
#: (it runs as root in containers), no GPU, and none of the background connections a
#: closed network refuses.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class PageRender:
    """What :func:`render_page` saw while rendering."""

    path: Path
    """The PNG written."""
    console_errors: list[str] = field(default_factory=list)
    """Messages the page wrote to the console at level error, and uncaught page errors."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit``, else the first Chromium on ``PATH``.

    Raises
    ------
    BrowserError
        When none is found.
    """
    if explicit is not None:
        if Path(explicit).is_file() or shutil.which(explicit):
            return shutil.which(explicit) or explicit
        raise BrowserError(f"--browser {explicit!r}: no such executable.")
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        f"no Chromium to render the page with: none of {', '.join(_NAMES)} is on PATH. "
        f"Install one (Debian: apt-get install chromium) or pass --browser."
    )


def render_page(
    html_path: Path,
    png_path: Path,
    *,
    width: int = 1100,
    height: int | None = None,
    browser: str | None = None,
) -> PageRender:
    """Open ``html_path`` in headless Chromium and save a full-page screenshot.

    Parameters
    ----------
    html_path : Path
        The page; it is opened as a ``file://`` URL.
    png_path : Path
        Where the PNG goes (its folder is created).
    width : int
        Viewport width in CSS pixels.
    height : int, optional
        Keep only the top ``height`` CSS pixels of the page (default: the whole page).
    browser : str, optional
        The Chromium executable (default: :func:`find_chromium`).

    Raises
    ------
    BrowserError
        When Playwright is not installed, no Chromium is found or the page fails to load.
    """
    executable = find_chromium(browser)
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise BrowserError(
            "rendering a page needs Playwright's Python driver: pip install 'uplift[browser]'."
        ) from None
    errors: list[str] = []
    png_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
            try:
                page = chromium.new_page(viewport={"width": width, "height": 900})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(html_path.resolve().as_uri(), wait_until="load")
                clip: FloatRect | None = None
                if height is not None:
                    clip = {"x": 0, "y": 0, "width": width, "height": height}
                page.screenshot(path=str(png_path), full_page=True, clip=clip)
            finally:
                chromium.close()
    except Error as exc:
        raise BrowserError(
            f"{html_path}: Chromium ({executable}) failed: {first_line(exc)}"
        ) from None
    return PageRender(png_path, errors)
