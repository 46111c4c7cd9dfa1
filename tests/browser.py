"""Headless Chromium for tests (Debian's ``chromium`` + ``chromium-driver``, driven by selenium).

Use from a test module::

    from browser import browser, screenshot, wait_for  # noqa: F401  (``browser`` is a fixture)

    def test_page(browser, tmp_path):
        browser.get("file:///.../report.html")
        wait_for(browser, "return document.querySelectorAll('.js-plotly-plot').length > 0")
        screenshot(browser, tmp_path / "page.png")

or ``with chromium() as driver: ...`` for a browser with extra flags (e.g. a fake webcam). A missing browser
is a failure with the command that installs it, never a skip: the README's test command installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from servers import launched

INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium chromium-driver"
# flags that keep a test browser quiet, offline and reproducible
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> tuple[str, str]:
    """Paths of the Chromium binary and its chromedriver (``CHROMIUM_BIN`` / ``CHROMEDRIVER`` override)."""
    binary = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver:
        missing = " and ".join(n for n, p in (("chromium", binary), ("chromedriver", driver)) if not p)
        raise RuntimeError(f"{missing} not found; {INSTALL_HINT}")
    return binary, driver


@contextmanager
def chromium(
    *, width: int = 1400, height: int = 1000, extra_args: Sequence[str] = (), page_load_timeout: float = 60
) -> Iterator[Any]:
    """A fresh headless Chromium (new profile in a temporary folder), quit and cleaned up on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = find_chromium()
    profile = tempfile.mkdtemp(prefix="ferhub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *extra_args,
    ):
        options.add_argument(flag)
    # an explicit driver path keeps Selenium Manager from trying to download one
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module."""
    with chromium() as driver:
        yield driver


def wait_for(driver: Any, script: str, timeout: float = 30.0, *args: Any) -> Any:
    """Run ``script`` (JavaScript that returns a value) until it returns something truthy; return that
    value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script, *args))


def screenshot(driver: Any, path: str | Path, *, full_page: bool = True) -> Path:
    """Save a PNG of the page (the whole scrollable page by default) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if full_page:
        size = driver.get_window_size()
        height = driver.execute_script("return Math.max(document.body.scrollHeight, window.innerHeight)")
        driver.set_window_size(size["width"], min(int(height) + 40, 16000))
        try:
            driver.save_screenshot(str(path))
        finally:
            driver.set_window_size(size["width"], size["height"])
    else:
        driver.save_screenshot(str(path))
    return path


def until(condition: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    """Call ``condition`` until it returns something truthy (exceptions count as not yet); return that
    value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def served(models: Sequence[str], **launch: Any) -> Iterator[str]:
    """The app over ``models``, launched in this process on a free local port (with ``launch``'s further
    ``Blocks.launch`` arguments, such as ``auth``); yields its URL."""
    from ferhub.ui import build_app

    demo = build_app(list(models))
    demo.queue()
    with launched(demo, **launch) as url:
        yield url
