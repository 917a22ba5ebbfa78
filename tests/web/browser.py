"""What both browser tests share: Debian's headless Chromium through the system chromedriver (nothing is
downloaded), and a real `ohbot serve` process on loopback.

Without chromium, chromedriver or selenium a browser test skips and says which is missing; under CI=true
that is a failure (CI must run them).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO_ROOT, free_port, stop_process, wait_healthy

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
OHBOT = Path(sys.executable).parent / "ohbot"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--lang=zh-CN")


def missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is not installed (Debian: apt-get install chromium chromium-driver; make test tries)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def chromium(window: tuple[int, int], wait: float, downloads: Path | None = None) -> Iterator[Any]:
    """Headless Chromium with a window of `window` CSS pixels; files download into `downloads`."""
    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser test cannot run: {reason} (CI=true: it must)", pytrace=False)
        pytest.skip(f"browser test skipped: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={window[0]},{window[1]}"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(wait)
    if downloads is not None:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def serving(data: Path, env: dict[str, str], log_path: Path, start_timeout: float) -> Iterator[str]:
    """A real `ohbot serve` on a free loopback port over `data`; yields its base URL. On the way out the
    process must stop cleanly and its log hold no traceback."""
    port = free_port()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([str(OHBOT), "--data-dir", str(data), "serve", "--listen", "127.0.0.1", "--port",
                                 str(port)], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    if not wait_healthy(base, proc, start_timeout):
        stop_process(proc)
        pytest.fail(f"ohbot serve did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
    try:
        yield base
    finally:
        assert stop_process(proc) == 0
        assert "Traceback" not in log_path.read_text(errors="replace")
