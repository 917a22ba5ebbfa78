"""Issue #11, findings 4 and 7: every failing start of the Telegram bot ends with one line that
never shows the token, and two polling processes never answer the same updates.

The real `ohbot` process against the fake Bot API (tests/fakes/fake_bot_api.py) on loopback.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.fake_bot_api import FakeBotAPI
from tests.helpers import REPO_ROOT, stop_process

OHBOT = Path(sys.executable).parent / "ohbot"
TOKEN = "987654321:AAH-ohbotStartToken_q8WeRtY5uIoP"
WRONG = "987654321:AAH-refusedToken_Zx1Cv2Bn3Mm4Ll5"
SECRET_PARTS = ("ohbotStartToken", "refusedToken")  # the secret halves of both tokens
START_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def index_copy(built_index, data_dir, tmp_path_factory) -> Path:
    """A read-only template: the session index and a link to the exported model."""
    index_dir, _ = built_index
    target = tmp_path_factory.mktemp("telegram-start-template")
    shutil.copytree(index_dir, target / "index")
    if (data_dir / "models").exists():
        (target / "models").symlink_to((data_dir / "models").resolve(), target_is_directory=True)
    return target


def fresh_data_dir(template: Path, tmp_path: Path, name: str = "data") -> Path:
    target = tmp_path / name
    target.mkdir()
    (target / "index").symlink_to(template / "index", target_is_directory=True)
    if (template / "models").exists():
        (target / "models").symlink_to((template / "models").resolve(), target_is_directory=True)
    return target


def start(api: FakeBotAPI, data: Path, logs: Path, *argv: str, token: str = TOKEN) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_"))}
    env.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=api.base_url, PYTHONUNBUFFERED="1")
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "out", "wb") as out, open(logs / "err", "wb") as err:
        return subprocess.Popen([str(OHBOT), "--data-dir", str(data), *argv], cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def output(logs: Path) -> str:
    return "".join((logs / n).read_text(encoding="utf-8", errors="replace") for n in ("out", "err"))


def wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        pytest.fail(f"still running after {timeout} s")


def assert_one_clean_line(text: str) -> None:
    assert not any(part in text for part in SECRET_PARTS), text[-3000:]
    assert "Traceback" not in text and "Unclosed" not in text, text[-3000:]


# (`ohbot start` now runs the web service, which keeps serving its other channels when Telegram
# refuses the token: not a failing start)
@pytest.mark.parametrize("argv", [("telegram",), ("telegram", "--webhook-url", "https://bot.example/tg",
                                                 "--port", "0")])
def test_a_refused_token_ends_with_one_line_without_the_token(index_copy, tmp_path, argv):
    with FakeBotAPI(token=TOKEN) as api:
        proc = start(api, fresh_data_dir(index_copy, tmp_path), tmp_path / "logs", *argv, token=WRONG)
        code = wait_exit(proc, START_TIMEOUT)
    text = output(tmp_path / "logs")
    assert code == 2, text[-3000:]
    assert_one_clean_line(text)
    lines = text.strip().splitlines()
    assert len(lines) <= 2, text  # the log line saying it, and the exit line
    assert lines[-1].startswith("ohbot: Telegram rejected TELEGRAM_BOT_TOKEN"), text


def test_a_persistent_409_conflict_ends_the_bot_with_one_clear_line(index_copy, tmp_path):
    with FakeBotAPI(token=TOKEN) as api:
        api.fail_next("getUpdates", times=10_000, status=409,
                      description="Conflict: terminated by other getUpdates request; make sure that only one bot "
                                  "instance is running")
        proc = start(api, fresh_data_dir(index_copy, tmp_path), tmp_path / "logs", "telegram")
        code = wait_exit(proc, START_TIMEOUT + 40)
    text = output(tmp_path / "logs")
    assert code == 2, text[-3000:]
    assert_one_clean_line(text)
    last = text.strip().splitlines()[-1]
    assert last.startswith("ohbot:") and "409 Conflict" in last and "another process" in last


def test_a_second_poller_on_one_data_directory_exits_and_the_first_answers_once(index_copy, tmp_path):
    data = fresh_data_dir(index_copy, tmp_path)
    with FakeBotAPI(token=TOKEN) as api:
        first = start(api, data, tmp_path / "first", "telegram")
        try:
            api.wait_for_call("getUpdates", timeout=START_TIMEOUT)
            second = start(api, data, tmp_path / "second", "telegram")
            code = wait_exit(second, 30)
            text = output(tmp_path / "second")
            assert code == 2 and "already polling Telegram" in text and str(first.pid) in text, text
            assert_one_clean_line(text)
            for n in range(5):
                api.send_text(4242, f"/help {n}" if n else "/help")
            replies = api.wait_for(4242, count=5, timeout=30)
            time.sleep(2)  # a duplicate would arrive now
            assert len(api.messages(4242)) == len(replies) == 5
        finally:
            assert stop_process(first) == 0
    assert_one_clean_line(output(tmp_path / "first"))
    # the lock went with the process: a new poller starts on the same directory
    with FakeBotAPI(token=TOKEN) as api:
        again = start(api, data, tmp_path / "again", "telegram")
        try:
            api.wait_for_call("getUpdates", timeout=START_TIMEOUT)
        finally:
            assert stop_process(again) == 0


def test_ohbot_start_polling_on_a_polled_data_directory_exits_with_one_line(index_copy, tmp_path):
    """`ohbot start` (make run) long-polls Telegram inside `serve` when a token is set: it takes the same
    data-directory lock as `ohbot telegram`, so the two never both poll one directory."""
    data = fresh_data_dir(index_copy, tmp_path)
    with FakeBotAPI(token=TOKEN) as api:
        first = start(api, data, tmp_path / "first", "telegram")
        try:
            api.wait_for_call("getUpdates", timeout=START_TIMEOUT)
            second = start(api, data, tmp_path / "second", "start")
            try:
                code = wait_exit(second, 60)
            finally:
                if second.poll() is None:  # it serves instead of refusing: stop it before failing
                    stop_process(second)
            text = output(tmp_path / "second")
            assert code == 2 and "already polling Telegram" in text and str(first.pid) in text, text
            assert_one_clean_line(text)
        finally:
            assert stop_process(first) == 0
