"""The web chat in a real browser: Debian's headless Chromium driven by Selenium (the system
chromedriver: nothing is downloaded), against a real `ohbot serve` process on loopback with the
real index. On a phone-sized window: a question in Traditional script gets a sourced answer, a
button is pressed, HTML typed by the user stays text, a short campaign quiz is taken to the end.
Screenshots go to the test's tmp folder.

Without chromium, chromedriver or selenium the test skips and says which is missing; under CI=true
that is a failure (CI must run it).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import date, timedelta

import pytest

from tests.helpers import REPO_ROOT, private_data_dir
from tests.web.browser import OHBOT, chromium, serving

CAMPAIGN, FORM_SIZE = "网页测评", 4  # the smallest form a campaign allows
PHONE = (390, 844)  # CSS pixels of a common phone
WAIT = 60.0  # seconds for an answer on a loaded machine


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium at phone size, driven through the system chromedriver."""
    with chromium(PHONE, WAIT) as driver:
        yield driver


@pytest.fixture(scope="module")
def served(built_index, data_dir, tmp_path_factory):
    """A real `ohbot serve` on loopback over a copy of the session index, with an open campaign."""
    data = private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp("webchat-data"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
    env.update(OHBOT_QUIZ_SEED="13", PYTHONUNBUFFERED="1")
    today = date.today()
    created = subprocess.run(
        [str(OHBOT), "--data-dir", str(data), "campaign", "create", CAMPAIGN, "--start",
         (today - timedelta(days=2)).isoformat(), "--end", (today + timedelta(days=30)).isoformat(),
         "--form-size", str(FORM_SIZE)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    log_path = tmp_path_factory.mktemp("webchat-logs") / "serve.txt"
    with serving(data, env, log_path, start_timeout=120) as base:
        yield base, data, log_path


# --------------------------------------------------------------------------- page helpers


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        log = [m.text for m in driver.find_elements("css selector", "#log > li")][-4:]
        raise AssertionError(f"timed out waiting for {what}; last messages: {log}") from None


def _messages(driver, kind: str = "bot"):
    return driver.find_elements("css selector", f"#log > li.msg.{kind}")


def _settled(driver) -> bool:
    """No request in flight."""
    return not driver.find_elements("css selector", "#log > li.pending") and \
        "busy" not in (driver.find_element("tag name", "body").get_attribute("class") or "")


def _ask(driver, text: str):
    """Type a question and send it with Enter; the first new bot message."""
    from selenium.webdriver.common.keys import Keys

    before = len(_messages(driver))
    box = driver.find_element("id", "question")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    _wait(driver, lambda d: len(_messages(d)) > before and _settled(d), f"an answer to {text!r}")
    return _messages(driver)[before]


def _press(driver, message, label: str) -> None:
    """Click the button of `message` whose label starts with `label`; wait for the replies."""
    before = len(_messages(driver))
    button = next((b for b in message.find_elements("css selector", "form.buttons button")
                   if b.text.startswith(label) and b.is_enabled()), None)
    assert button is not None, f"no button {label!r} in {message.text!r}"
    _click(driver, button)
    _wait(driver, lambda d: len(_messages(d)) > before and _settled(d), f"the replies to {label!r}")


def _click(driver, button) -> None:
    """Scroll the button to the middle of the window (as a thumb would), then tap it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def _labels(message) -> list[str]:
    return [b.text for b in message.find_elements("css selector", "form.buttons button")]


# --------------------------------------------------------------------------- the test


def test_web_chat_in_headless_chromium(browser, served, tmp_path):
    base, data, _ = served
    driver = browser
    driver.get(base + "/")
    _wait(driver, lambda d: d.find_elements("id", "question"), "the page")
    # a phone screen: nothing wider than the window
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    # a question in Traditional script: a sourced answer with 👍/👎 as real buttons
    answer = _ask(driver, "噪聲超標怎麼辦？")
    assert _messages(driver, "me")[-1].text == "噪聲超標怎麼辦？"
    sources = answer.find_elements("css selector", "ul.sources li")
    assert sources and sources[0].text.startswith("来源：") and "职业病防治法" in sources[0].text
    assert "来源：" not in answer.find_element("css selector", ".text").text
    assert {"👍 有用", "👎 没用"} <= set(_labels(answer))
    driver.save_screenshot(str(tmp_path / "webchat-answer.png"))

    # press a button: the thanks arrive, the pressed row is disabled, the vote is in the database
    _press(driver, answer, "👍")
    assert _messages(driver)[-1].text == "谢谢你的反馈！"
    assert not any(b.is_enabled() for b in answer.find_elements("css selector", "button")
                   if b.text in ("👍 有用", "👎 没用"))
    with sqlite3.connect(data / "ohbot.db") as db:
        assert db.execute("select vote, question from feedback").fetchall() == [("up", "噪聲超標怎麼辦？")]

    # what the user types is shown as text, never as markup
    typed = "<b>粗体</b><img src=x onerror=\"document.title='pwned'\">怎么办"
    _ask(driver, typed)
    assert _messages(driver, "me")[-1].text == typed
    assert not driver.find_elements("css selector", "#log b, #log img") and driver.title != "pwned"

    # a short campaign quiz: consent, profile (first choice each time), four items to the end
    before = len(_messages(driver))
    _click(driver, driver.find_element("css selector", "form.menu button[value='/quiz']"))
    _wait(driver, lambda d: len(_messages(d)) > before and _settled(d), "the quiz")
    _press(driver, _messages(driver)[-1], "同意并开始")
    answered = 0
    for _ in range(30):
        last = _messages(driver)[-1]
        if "测验完成" in last.text:
            break
        labels = _labels(last)
        if "提交" in labels:  # multiple choice: tick A (the same message updates in place), then submit
            _click(driver, next(b for b in last.find_elements("css selector", "button") if b.text == "☐A"))
            _wait(driver, lambda d: any(b.text == "☑A" for b in _messages(d)[-1].find_elements("css selector", "button"))
                  and _settled(d), "the ticked box")
            _press(driver, _messages(driver)[-1], "提交")
            answered += 1
        else:
            answered += last.text.startswith("第 ")
            _press(driver, last, labels[0])
    summary = _messages(driver)[-1].text
    assert "测验完成" in summary and f"/{FORM_SIZE} 题" in summary and "已计入统计" in summary
    assert answered == FORM_SIZE
    verdicts = [m.text for m in _messages(driver) if m.text.startswith(("✅", "❌"))]
    assert len(verdicts) == FORM_SIZE
    with sqlite3.connect(data / "ohbot.db") as db:
        assert db.execute("select count(*) from responses where campaign = ?", [CAMPAIGN]).fetchone() == (FORM_SIZE,)
    driver.save_screenshot(str(tmp_path / "webchat-quiz.png"))
    assert (tmp_path / "webchat-answer.png").stat().st_size > 10_000
