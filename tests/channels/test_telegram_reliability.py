"""The Telegram channel when things go wrong (issue #11), with the real `ohbot telegram` process
against the fake Bot API server: a token revoked while running, failing getUpdates, the address the
webhook server binds."""
from __future__ import annotations

import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.channels.test_telegram_e2e import TOKEN, _start, bot_data_dir  # noqa: F401 - a fixture
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.helpers import free_port, post_webhook, stop_process

EXIT_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def fresh_state(bot_data_dir: Path) -> None:  # noqa: F811
    """Each test's fake Bot API numbers its updates from 1 again: start each with an empty state
    database, or the inbox would rightly take update 1 for one it has seen."""
    for name in ("ohbot.db", "ohbot.db-wal", "ohbot.db-shm"):
        (bot_data_dir / name).unlink(missing_ok=True)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _exit_code(proc, timeout: float = EXIT_TIMEOUT) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    code = proc.poll()
    if code is None:
        stop_process(proc)
    return code


def test_a_token_revoked_while_polling_ends_the_process_with_one_line(bot_data_dir, tmp_path):  # noqa: F811
    with FakeBotAPI(token=TOKEN) as api:
        running = _start(api, bot_data_dir, tmp_path)
        api.fail_next("getUpdates", times=2, status=502)  # Telegram in trouble: retried, one line each
        api.send_text(7101, "/help")
        assert "职业健康知识助手" in api.wait_for(7101, timeout=30)[0]["text"]
        api.wait_until(lambda: len([c for c in api.calls("getUpdates") if c["status"] == 502]) == 2, timeout=30,
                       what="two failed getUpdates")
        api.token = "987654321:revoked"  # @BotFather revokes the token: every request is 401 from now on
        code = _exit_code(running.proc)
        log = running.log()
    assert code == 2, f"the bot is still alive (or crashed) after its token was revoked:\n{log[-3000:]}"
    assert "Telegram rejected TELEGRAM_BOT_TOKEN (HTTP 401)" in running.stderr.read_text(encoding="utf-8")
    assert log.count("getUpdates failed: NetworkError: Bad Gateway; retrying") == 2
    assert "Traceback" not in log and "Unclosed client session" not in log and "Task was destroyed" not in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log


def test_the_webhook_binds_loopback_by_default_and_listen_changes_it(bot_data_dir, tmp_path):  # noqa: F811
    for listen, reachable, unreachable in ((None, "127.0.0.1", "127.0.0.2"), ("127.0.0.2", "127.0.0.2", "127.0.0.1")):
        port = free_port()
        url = f"http://{reachable}:{port}/telegram/hook"
        extra = ["--webhook-url", url, "--port", str(port)] + (["--listen", listen] if listen else [])
        logs = tmp_path / (listen or "default")
        logs.mkdir()
        with FakeBotAPI(token=TOKEN) as api:
            running = _start(api, bot_data_dir, logs, *extra, ready="setWebhook")
            try:
                deadline = time.monotonic() + 20
                while not _connects(reachable, port):
                    assert time.monotonic() < deadline, running.log()[-2000:]
                    time.sleep(0.2)
                assert not _connects(unreachable, port), f"the webhook server listens on {unreachable} too"
            finally:
                assert stop_process(running.proc) == 0


def test_a_token_revoked_under_webhook_mode_ends_the_process_too(bot_data_dir, tmp_path):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    with FakeBotAPI(token=TOKEN) as api:
        running = _start(api, bot_data_dir, tmp_path, "--webhook-url", url, "--port", str(port), ready="setWebhook")
        secret = api.calls("setWebhook")[0]["params"]["secret_token"]
        api.token = "987654321:revoked"
        update = api.send_text(7102, "/help")
        post_webhook(url, update, {"X-Telegram-Bot-Api-Secret-Token": secret})
        code = _exit_code(running.proc)
        log = running.log()
    assert code == 2, log[-3000:]
    assert "Traceback" not in log and "Unclosed client session" not in log and TOKEN not in log


# --------------------------------------------------------------------------- the durable inbox


def _inbox(data: Path) -> list[tuple]:
    """(update_id, payload, handled_at) of every row of telegram_inbox, read with sqlite3 directly."""
    with sqlite3.connect(data / "ohbot.db") as conn:
        return conn.execute("select update_id, payload, handled_at from telegram_inbox order by update_id").fetchall()


def test_updates_confirmed_but_not_handled_survive_a_sigkill(bot_data_dir, tmp_path):  # noqa: F811
    """A slow answer in progress and the same user's next message behind it, both already confirmed to
    Telegram, when the process is killed with SIGKILL: the restarted bot handles both, once, in order."""
    user = 7301
    with FakeBotAPI(token=TOKEN) as api:
        first = _start(api, bot_data_dir, tmp_path / "first", env={"OHBOT_TEST_SLOW_REPLY": "慢慢:120"})
        question = api.send_text(user, "慢慢说，体检费要我自己出吗？")
        follow = api.send_text(user, "/help")
        api.wait_until(lambda: not api.pending_updates(), timeout=30, what="both updates confirmed to Telegram")
        time.sleep(1.0)  # both in the bot's hands: the first sleeping in its answer, the second queued
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        assert api.messages(user) == [], "answered before the kill: the test proves nothing"
        assert not api.pending_updates()  # Telegram will not deliver them again
        second = _start(api, bot_data_dir, tmp_path / "second")
        try:
            answer, helped = api.wait_for(user, count=2, timeout=60)
            assert "体检" in answer["text"] or "来源" in answer["text"] or "职业健康检查" in answer["text"], answer
            assert "职业健康知识助手" in helped["text"]
            # the same update_id delivered again (a lost confirmation): recognised, not answered twice
            api.send_raw_update({"update_id": follow["update_id"], "message": follow["message"]})
            api.send_text(user, "/privacy")
            api.wait_for(user, "隐私说明", timeout=30)
            time.sleep(1.0)
            texts = [m["text"] for m in api.messages(user)]
            assert sum("职业健康知识助手" in t for t in texts) == 1, texts
        finally:
            assert stop_process(second.proc) == 0
        rows = {row[0]: row for row in _inbox(bot_data_dir)}
        for update in (question, follow):
            update_id, payload, handled_at = rows[update["update_id"]]
            assert handled_at is not None and payload is None  # handled, and the text is not kept
        log = second.log()
    assert f"handling update {question['update_id']}, received before a restart" in log
    assert "Traceback" not in log and TOKEN not in log


def test_the_webhook_answers_200_only_once_the_update_is_recorded(bot_data_dir, tmp_path):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    with FakeBotAPI(token=TOKEN) as api:
        running = _start(api, bot_data_dir, tmp_path, "--webhook-url", url, "--port", str(port), ready="setWebhook")
        try:
            secret = api.calls("setWebhook")[0]["params"]["secret_token"]
            update = api.send_text(7302, "/privacy")
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
            assert post_webhook(url, update, headers) == 200
            assert update["update_id"] in {row[0] for row in _inbox(bot_data_dir)}  # on disk before the 200
            assert post_webhook(url, update, headers) == 200  # Telegram's retry of the same update
            api.wait_for(7302, "隐私说明", timeout=30)
            time.sleep(1.0)
            assert len(api.messages(7302)) == 1
        finally:
            assert stop_process(running.proc) == 0
