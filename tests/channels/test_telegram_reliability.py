"""The Telegram channel when things go wrong (issue #11), with the real `ohbot telegram` process
against the fake Bot API server: a token revoked while running, failing getUpdates, the address the
webhook server binds."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from tests.channels.test_telegram_e2e import TOKEN, _start, bot_data_dir  # noqa: F401 - a fixture
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.helpers import free_port
from tests.helpers import stop_process as _stop

EXIT_TIMEOUT = 30.0


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
        _stop(proc)
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
                assert _stop(running.proc) == 0


def test_a_token_revoked_under_webhook_mode_ends_the_process_too(bot_data_dir, tmp_path):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    with FakeBotAPI(token=TOKEN) as api:
        running = _start(api, bot_data_dir, tmp_path, "--webhook-url", url, "--port", str(port), ready="setWebhook")
        secret = api.calls("setWebhook")[0]["params"]["secret_token"]
        api.token = "987654321:revoked"
        update = api.send_text(7102, "/help")
        request = urllib.request.Request(url, data=json.dumps(update).encode(), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(request, timeout=5).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert time.monotonic() < deadline, running.log()[-2000:]
                time.sleep(0.2)
        code = _exit_code(running.proc)
        log = running.log()
    assert code == 2, log[-3000:]
    assert "Traceback" not in log and "Unclosed client session" not in log and TOKEN not in log
