"""Headless Chromium for browser tests, driven by selenium through the Debian chromedriver.

    from browser import chromium, check_png, serve_dir

    with chromium(tmp_path) as driver:          # skips the test, saying why, where anything is missing
        driver.get(url)
        check_png(screenshot_path)              # a real, non-blank PNG

Only the Debian packages are used (`apt-get install chromium chromium-driver`): the driver path is given to
selenium's Service, so Selenium Manager never runs and nothing is downloaded. The browser is started with
networking features off (no QUIC, no background updates, no sync) and a throw-away profile under tmp_path.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FLANLAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLANLAB_CHROMEDRIVER", "/usr/bin/chromedriver")


def missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} not found: install the Debian package {pkg} (apt-get install -y chromium chromium-driver)"
    return None


@contextlib.contextmanager
def chromium(tmp_path: Path, width: int = 1280, height: int = 1600):
    """A headless Chromium WebDriver; the test is skipped with the reason when the browser is absent."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tmp_path) / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def serve_dir(folder: Path):
    """Serve `folder` on a loopback port in a thread; yields the base URL (http://127.0.0.1:PORT/)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def check_png(path: Path, min_colors: int = 2) -> None:
    """Assert `path` is a PNG with some content: the right signature and more than one distinct colour."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    from matplotlib.image import imread

    pixels = imread(str(path))  # rows x cols x channels, floats in 0..1
    assert pixels.ndim == 3 and pixels.shape[0] > 10 and pixels.shape[1] > 10, f"{path}: tiny image {pixels.shape}"
    flat = pixels.reshape(-1, pixels.shape[2])  # pixels x channels
    distinct = len({tuple(p) for p in flat[:: max(1, len(flat) // 20000)].round(3).tolist()})
    assert distinct >= min_colors, f"{path} is blank ({distinct} distinct colour)"


def images_loaded(driver) -> list[dict]:
    """Every <img> of the current page with its natural size; a broken image has naturalWidth 0."""
    return driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.src.slice(0, 60), complete: i.complete, "
        "width: i.naturalWidth, height: i.naturalHeight}));"
    )
