"""The web console in a real browser: Debian's headless Chromium driven by Selenium through the
system chromedriver (nothing is downloaded), against a real `ohbot serve` process on loopback.

One staff member's afternoon: log in, create a campaign, upload a CSV with an error (the page lists
its line, nothing is imported), upload a good one, open the report and check that the numbers shown
are those of `ohbot report --json`, download the XLSX and read it back. Screenshots of the overview
and the report are written to the test's tmp folder (the path is printed).

Without chromium, chromedriver or selenium the test skips and says which is missing; under CI=true
that is a failure (CI must run it).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from bot.quiz.bank import load_bank
from tests.helpers import KNOWLEDGE, REPO_ROOT, private_data_dir
from tests.web.browser import OHBOT, chromium, serving
from tests.web.data import plan_rows, single_items, write_csv

PASSWORD = "browser test password"
CAMPAIGN = "2025 年重点人群知晓率"
WAIT = 60.0
# (industry, region, score of 10, respondents): construction 30 of 36 aware, manufacturing 8 of 20
PLAN = [("construction", "城中区", 9, 30), ("construction", "城中区", 6, 6), ("manufacturing", "柳南区", 10, 8),
        ("manufacturing", "柳南区", 4, 12)]

pytestmark = pytest.mark.slow  # a real `ohbot serve` loads the session index


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    """Headless Chromium at a desktop size, downloads into `downloads`."""
    with chromium((1280, 1000), WAIT, downloads) as driver:
        yield driver


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
    env["PYTHONUNBUFFERED"] = "1"
    # the report shown right after an upload must be of the new data however loaded the machine is
    # (by default a page waits 0.5 s, then shows the previous figures: tests/web/test_console.py)
    env["OHBOT_REPORT_WAIT"] = "60"
    return env


def ohbot(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    done = subprocess.run([str(OHBOT), "--data-dir", str(data), *args], cwd=REPO_ROOT, env=_env(), input=stdin,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def served(built_index, data_dir, tmp_path_factory):
    """A real `ohbot serve` on loopback over a copy of the session index, with one admin account."""
    data = private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp("console-data"))
    ohbot(data, "users", "add", "boss", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    log_path = tmp_path_factory.mktemp("console-logs") / "serve.txt"
    with serving(data, _env(), log_path, start_timeout=180) as base:
        yield base, data, log_path
    assert PASSWORD not in log_path.read_text(errors="replace")


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what} (at {driver.current_url})") from None


def _css(driver, selector: str):
    return driver.find_element("css selector", selector)


def _set(driver, selector: str, value: str) -> None:
    """A form field's value (also date inputs, whose typing depends on the locale)."""
    element = _css(driver, selector)
    driver.execute_script("arguments[0].value = arguments[1];", element, value)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def test_a_staff_member_runs_a_campaign_in_the_browser(browser, served, tmp_path_factory, downloads) -> None:
    base, data, _ = served
    shots = tmp_path_factory.mktemp("console-screenshots")
    driver = browser

    # log in (the console sends a visitor without a session to the log-in page)
    driver.get(f"{base}/console/")
    _wait(driver, lambda d: "/console/login" in d.current_url, "the log-in page")
    _css(driver, "#name").send_keys("boss")
    _css(driver, "#password").send_keys(PASSWORD)
    _css(driver, "#login").click()
    _wait(driver, lambda d: d.current_url.rstrip("/").endswith("/console"), "the overview")
    assert "boss（管理员）" in _css(driver, "#who").text

    # create a campaign
    driver.get(f"{base}/console/campaigns")
    _css(driver, "#campaign-name").send_keys(CAMPAIGN)
    _set(driver, "#campaign-start", "2025-01-01")
    _set(driver, "#campaign-end", "2025-12-31")
    _css(driver, "#create").click()
    _wait(driver, lambda d: d.find_elements("css selector", "#campaign-title"), "the campaign page")
    assert _css(driver, "#campaign-title").text == CAMPAIGN

    # upload a CSV with an error: the page lists its line and nothing is imported
    items = single_items(load_bank(KNOWLEDGE))
    rows = plan_rows(items, PLAN, months=("2025-03-05 10:00", "2025-04-05 10:00", "2025-05-05 10:00"))
    folder = tmp_path_factory.mktemp("console-csv")
    bad_rows = [list(r) for r in rows]
    bad_rows[6][2] = "Z"  # line 8: an option the item does not have
    bad = write_csv(folder / "answers-with-an-error.csv", bad_rows)
    good = write_csv(folder / "answers.csv", rows)
    _css(driver, "#responses-link").click()
    _wait(driver, lambda d: d.find_elements("css selector", "#upload-file"), "the responses page")
    _css(driver, "#upload-file").send_keys(str(bad))
    _css(driver, "#upload").click()
    _wait(driver, lambda d: d.find_elements("css selector", "#import-errors"), "the import errors")
    listed = _css(driver, "#import-errors").text
    assert f"line 8: answer 'Z': Z not among the options of {items[6].id}" in listed and "未导入任何数据" in listed

    _css(driver, "#upload-file").send_keys(str(good))
    _css(driver, "#upload").click()
    _wait(driver, lambda d: d.find_elements("css selector", "#imported"), "the import confirmation")
    assert f"导入 {len(rows)} 条作答" in _css(driver, "#imported").text

    # the report shows the numbers of `ohbot report --json`
    expected = json.loads(ohbot(data, "report", "--campaign", CAMPAIGN, "--by", "industry", "--json").stdout)
    overall = expected["overall"]
    assert (overall["n"], overall["aware"]) == (56, 38)  # the plan: 30 + 8 aware of 56
    driver.find_element("link text", CAMPAIGN).click()
    _wait(driver, lambda d: d.find_elements("css selector", "#overall"), "the report")
    assert _css(driver, "#overall .n").text == str(overall["n"])
    assert _css(driver, "#overall .aware").text == str(overall["aware"])
    assert _css(driver, "#overall .rate").text == _pct(overall["rate"])
    assert float(_css(driver, "#overall .rate").get_attribute("data-value")) == overall["rate"]
    assert _css(driver, "#overall .ci").text == f"{_pct(overall['ci_low'])}–{_pct(overall['ci_high'])}"
    shown = {row.get_attribute("data-key"): row for row in driver.find_elements("css selector", "#group-table tr.group")}
    assert set(shown) == {g["key"]["industry"] for g in expected["groups"]}
    for group in expected["groups"]:
        row = shown[group["key"]["industry"]]
        assert row.find_element("css selector", ".n").text == str(group["n"])
        assert row.find_element("css selector", ".rate").text == _pct(group["rate"])
        assert row.find_element("css selector", ".ci").text == f"{_pct(group['ci_low'])}–{_pct(group['ci_high'])}"
    months = [r.find_element("css selector", ".n").text for r in driver.find_elements("css selector", "#month-table tbody tr")]
    assert months == [str(m["n"]) for m in expected["months"]]
    driver.save_screenshot(str(shots / "report.png"))

    # download the XLSX and read it back
    _css(driver, "#download-xlsx").click()
    deadline = time.monotonic() + WAIT
    while not [p for p in downloads.glob("*.xlsx")] or list(downloads.glob("*.crdownload")):
        assert time.monotonic() < deadline, f"no XLSX downloaded into {downloads}"
        time.sleep(0.2)
    from openpyxl import load_workbook

    [path] = list(downloads.glob("*.xlsx"))
    sheet = load_workbook(path, read_only=True)["总体"]
    header, values = [list(r) for r in sheet.iter_rows(min_row=1, max_row=2, values_only=True)]
    cells = dict(zip(header, values))
    assert (cells["人数"], cells["知晓人数"]) == (overall["n"], overall["aware"])
    assert abs(cells["知晓率"] - overall["rate"]) < 1e-9

    # the overview lists the open campaign with the same figures
    driver.get(f"{base}/console/")
    card = _css(driver, ".campaign-card")
    assert card.get_attribute("data-campaign") == CAMPAIGN
    assert card.find_element("css selector", ".n").text == str(overall["n"])
    assert card.find_element("css selector", ".rate").text == _pct(overall["rate"])
    driver.save_screenshot(str(shots / "overview.png"))
    assert (shots / "overview.png").stat().st_size > 10_000 and (shots / "report.png").stat().st_size > 10_000
    print(f"screenshots: {shots}")
