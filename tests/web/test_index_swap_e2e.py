"""Issue #14, end to end: a real `ohbot serve` answers a question, a new FAQ card is added to its
knowledge folder and `ohbot build-index` rebuilds the index beside it, and the same process (no
restart) answers from the new card; then an index whose manifest is corrupt is published the same
way, refused with one log line, and the worker keeps answering from the good one."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time

import httpx
import pytest
import yaml

from bot.answering.retrieve import CHECK_SECONDS
from bot.index import store
from bot.web.webchat import CSRF_HEADER
from tests.helpers import KNOWLEDGE, REPO_ROOT, private_data_dir
from tests.web.browser import OHBOT, serving

QUESTION = "蓝鲸测试厂的热替换卡片编号是多少"  # test data only: no fact about any law
CARD = {"id": "faq-hotswap-e2e", "question": QUESTION, "variants": [],
        "answer": "这是热替换测试卡片，编号 HS-7431。", "audience": "all", "cite": "", "ref": ""}
SWAP_TIMEOUT = 120.0  # a build of the changed card plus a background load, on a busy 2-core machine


class Chat:
    """One web chat visitor of a served worker (cookie and CSRF token of its page)."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        page = self.client.get("/")
        assert page.status_code == 200
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    def ask(self, text: str) -> str:
        response = self.client.post("/chat/api", json={"text": text}, headers={CSRF_HEADER: self.csrf})
        assert response.status_code == 200, response.text
        replies = response.json()["replies"]
        assert replies and replies[0]["text"]
        return replies[0]["text"]


def wait_for(condition, timeout: float, what: str, log_path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def test_a_serving_worker_swaps_in_a_rebuilt_index_and_refuses_a_corrupt_one(built_index, data_dir, tmp_path):
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    data = private_data_dir(built_index[0], data_dir, tmp_path / "data")  # an index folder from before versions
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
    env.update(OHBOT_KNOWLEDGE_DIR=str(knowledge), OHBOT_QUIZ_SEED="3", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "serve.txt"
    index_dir = data / "index"
    with serving(data, env, log_path, start_timeout=180) as base:
        chat = Chat(base)
        assert "HS-7431" not in chat.ask(QUESTION)

        (knowledge / "faq" / "hotswap.yaml").write_text(yaml.safe_dump([CARD], allow_unicode=True), encoding="utf-8")
        built = subprocess.run([str(OHBOT), "--data-dir", str(data), "build-index"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr
        assert "1 embedded" in built.stdout + built.stderr  # only the new card: the rest is reused
        assert index_dir.is_symlink()
        # every answer while the new index loads is a whole one (old or new), until the new card answers
        wait_for(lambda: "HS-7431" in chat.ask(QUESTION), SWAP_TIMEOUT, "the worker did not answer from the new card",
                 log_path)
        assert "由用人单位承担" in chat.ask("职业健康检查的费用由谁承担？")  # the rest of the knowledge is still there
        assert log_path.read_text().count("index swapped in without a restart") == 1

        # a new version whose manifest is corrupt, published as a build publishes
        broken = store.build_folder(index_dir)
        shutil.copytree(index_dir.resolve(), broken)
        with sqlite3.connect(broken / "index.db") as db:
            db.execute("update manifest set value = '{not json' where key = 'checksums'")
        db.close()
        store.publish(broken, index_dir)
        def refused() -> bool:  # a worker looks at the index when asked: here the balancer's health checks
            assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            return "refused" in log_path.read_text()

        wait_for(refused, 30, "the corrupt index was not refused", log_path)
        assert "HS-7431" in chat.ask(QUESTION)
        time.sleep(3 * CHECK_SECONDS)
        assert "HS-7431" in chat.ask(QUESTION)  # a check after the sleep: it sees the same refused index
        refusals = [line for line in log_path.read_text().splitlines() if "refused" in line]
        assert len(refusals) == 1 and "unreadable" in refusals[0], refusals
        # the current version and the one before it are on disk; the folder from before versions is gone
        assert len([p for p in store.versions_dir(index_dir).iterdir() if not p.name.startswith(".")]) == 2
