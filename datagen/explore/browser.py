"""Driving an explorer page in a local headless Chromium (tests and screenshots); nothing here downloads a browser.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``scripts/setup.sh`` installs it) or any
Chromium/Chrome named by ``SEMMATCH_CHROMIUM``, driven through Playwright's Python API (the ``browser`` extra:
``pip install -e .[browser]``) with ``executable_path``, so Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["find_chromium", "browser_problem", "launch", "open_page", "hover_pixel", "readout", "screenshot"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# as root in a container: no sandbox; no GPU; no background connections (the network is closed)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    """The Chromium binary: ``$SEMMATCH_CHROMIUM`` when set, else the first of :data:`CANDIDATES` on ``PATH``."""
    given = os.environ.get("SEMMATCH_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_problem() -> str | None:
    """Why pages cannot be driven here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[browser]', or bash scripts/setup.sh)"
    if find_chromium() is None:
        return (
            "no Chromium found (apt-get install chromium, or set SEMMATCH_CHROMIUM to a Chromium/Chrome binary; "
            "bash scripts/setup.sh installs it where apt is available)"
        )
    return None


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError(browser_problem() or "no Chromium found")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Any, html: str | Path, width: int = 1500, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """Open an explorer page and wait until its first pair is drawn.

    Yields:
        ``(page, errors)``: the Playwright page and a live list of console errors and uncaught exceptions.
    """
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(Path(html).absolute().as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        yield page, errors
    finally:
        page.close()


def hover_pixel(page: Any, view: int, x: int, y: int, click: bool = False) -> dict[str, str]:
    """Move the mouse over the centre of pixel ``(x, y)`` of ``view`` (or click it); returns :func:`readout`."""
    canvas = page.locator(f".view[data-v='{view}'] canvas.base")
    box = canvas.bounding_box()
    w, h = page.evaluate(f"[explorer.state.pair.views[{view}].w, explorer.state.pair.views[{view}].h]")
    px, py = box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h
    before = page.evaluate("document.getElementById('readout').dataset.t || ''")
    if click:
        page.mouse.click(px, py)
    else:
        page.mouse.move(px, py)
    page.wait_for_function(f"(document.getElementById('readout').dataset.t || '') !== {before!r}", timeout=5_000)
    return readout(page)


def readout(page: Any) -> dict[str, str]:
    """The hover read-out's data attributes (``view``, ``x``, ``y``, ``status``, ``gtX``, ``gtY``, ``depth``,
    ``predX``, ``predY``, ``conf``; empty strings where the page shows nothing)."""
    return page.evaluate("Object.assign({}, document.getElementById('readout').dataset)")


def screenshot(html: str | Path, png: str | Path, hover: tuple[int, int, int] | None = None, layer: str | None = None,
               width: int = 1400, height: int = 900) -> Path:  # fmt: skip
    """A PNG of an explorer page (optionally with a colour layer chosen and a pixel ``(view, x, y)`` hovered)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with launch() as browser, open_page(browser, html, width, height) as (page, _):
        if layer:
            page.evaluate(f"explorer.setLayer({layer!r})")
        if hover:
            hover_pixel(page, *hover)
        page.screenshot(path=str(png), full_page=True)
    return png
