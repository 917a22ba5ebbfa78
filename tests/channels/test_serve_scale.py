"""Province scale, end to end: two real `ohbot serve` workers on one PostgreSQL, the fake Telegram Bot
API delivering webhooks to them in turn (as a load balancer would) and retrying every delivery that got
no 2xx, as Telegram does. 50 users at once take a counted quiz form and ask a question while

- PostgreSQL "goes away" for two seconds: the workers reach it through a TCP proxy the test cuts (every
  connection closed, new ones refused); they must answer 503 meanwhile and recover by themselves;
- the workers' connections are cut with pg_terminate_backend (the shared server is never restarted);
- one worker is SIGKILLed mid-load: what it had not confirmed is delivered to the other.

Checked: every update confirmed in the end; every user's flow completes with its replies in order
(each step waits for the reply it expects next); every answer in the database once, every form counted
once; no reply sent twice, except for an update whose delivery failed while it was being handled (the
killed worker, the outage): its replies may have gone out before the failure, and Telegram has no way
to take a message back, so those users may see a step twice (at most once more per failed update).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.storage.db import make_engine
from tests.db_fixtures import PG_URL, RUN, with_search_path
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.helpers import REPO_ROOT, free_port, private_data_dir, stop_process, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OHBOT = Path(sys.executable).parent / "ohbot"
TOKEN = "555000111:AAH-scaleTestToken_q1W2e3R4t5Y6u7I8o9"
USERS = 50
SIZE = 4  # items per form: enough steps per user, short enough for CI
CAMPAIGN = "省级测评"
START_TIMEOUT = 120.0
REPLY = 60.0


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut: `down()` closes every connection and refuses
    new ones (what a database outage looks like to a worker), `up()` serves again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.serving = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.serving:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        self.serving = False
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open.clear()

    def up(self) -> None:
        self.serving = True

    def close(self) -> None:
        self.down()
        self.listener.close()


@dataclass
class Worker:
    name: str
    data: Path
    port: int
    env: dict
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram"

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the process writes it
        self.proc = subprocess.Popen(
            [str(OHBOT), "--data-dir", str(self.data), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_healthy(self) -> None:
        assert self.proc is not None
        if not wait_healthy(f"http://127.0.0.1:{self.port}", self.proc, START_TIMEOUT, poll=0.3):
            pytest.fail(f"{self.name} did not become healthy (exit {self.proc.poll()}):\n"
                        f"{self.log.read_text()[-3000:]}")


@dataclass
class Cluster:
    api: FakeBotAPI
    workers: list[Worker]
    direct_url: str  # the test's own way to the schema (not through the proxy)
    proxy: Proxy
    application_name: str
    chaos: list[str] = field(default_factory=list)

    def ohbot(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(OHBOT), "--database-url", self.direct_url, *args], cwd=REPO_ROOT,
                              env=self.workers[0].env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(built_index, data_dir, tmp_path_factory, pg_admin):
    schema = f"{RUN}_scale"
    with pg_admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    direct = with_search_path(PG_URL, schema)
    parsed = make_url(PG_URL)
    proxy = Proxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    application_name = f"ohbot-{schema}"
    through_proxy = make_url(direct).set(host="127.0.0.1", port=proxy.port).update_query_dict(
        {"application_name": application_name}).render_as_string(hide_password=False)
    logs = tmp_path_factory.mktemp("scale-logs")
    with FakeBotAPI(token=TOKEN) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
        env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url,
                   TELEGRAM_WEBHOOK_URL="https://bot.example.org/telegram",  # the load balancer's public URL
                   OHBOT_DATABASE_URL=through_proxy, OHBOT_SALT="province-salt", OHBOT_QUIZ_SEED="21",
                   PYTHONUNBUFFERED="1")
        workers = []
        for name in ("a", "b"):
            data = private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp(f"worker-{name}"))
            workers.append(Worker(name, data, free_port(), env, logs / f"{name}.txt"))
        running = Cluster(api, workers, direct, proxy, application_name)
        upgraded = running.ohbot("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        created = running.ohbot("campaign", "create", CAMPAIGN, "--start", "2000-01-01", "--end", "2999-12-31",
                                "--form-size", str(SIZE), "--threshold", "0.5")
        assert created.returncode == 0, created.stderr
        for w in workers:
            w.start()
        try:
            for w in workers:
                w.wait_healthy()
            api.deliver_webhooks([w.url for w in workers], connections=40, timeout=30.0, retry_delay=0.3)
            yield running
        finally:
            for w in workers:
                stop_process(w.proc)
            proxy.close()
            with pg_admin.begin() as conn:
                conn.execute(text(f'drop schema "{schema}" cascade'))


def _buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


PROFILE = {"industry": "qz:pf:construction", "enterprise_size": "qz:pf:small_micro", "role": "qz:pf:worker"}
STEP = 15.0  # seconds without a new actionable message before the user types /quiz again


def _act(api: FakeBotAPI, user: int, message: dict) -> str | None:
    """Press what a person would on one bot message; 'done' at the summary, None if nothing to do."""
    text_, buttons = message.get("text") or "", _buttons(message)
    if "测验完成" in text_:
        return "done"
    if "qz:consent:yes" in buttons:
        choice = "qz:consent:yes"
    elif any(b.startswith("qz:resume:") for b in buttons):
        choice = next(b for b in buttons if b.startswith("qz:resume:"))
    elif any(b.startswith("qz:pf:") for b in buttons):
        choice = next((b for b in buttons if b in PROFILE.values()), "qz:pf:-" if "qz:pf:-" in buttons else buttons[0])
    elif any(b.startswith("qs:") for b in buttons) and any(label.startswith("☑") for label in _labels(message)):
        choice = next(b for b in buttons if b.startswith("qs:"))  # a box ticked: submit
    elif any(b.startswith(("qa:", "qm:")) for b in buttons):
        choices = [b for b in buttons if b.startswith(("qa:", "qm:"))]
        choice = choices[user % len(choices)]
    else:
        return None
    try:
        api.press_button(user, message["message_id"], choice)
    except ValueError:  # the message was edited meanwhile: its buttons are gone
        return None
    return choice


def _labels(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def _user(api: FakeBotAPI, user: int, results: dict, errors: list) -> None:
    """One worker taking the counted form through the buttons, then asking a question. Each step acts
    on the next bot message; a step whose reply went with a failed worker (or a reply seen twice) is
    got over as a person would: after STEP seconds without a new message, /quiz again (resume)."""
    try:
        api.send_text(user, "/quiz")
        retries = 0
        for _ in range(200):
            try:
                [message] = api.wait_for(user, timeout=STEP)
            except AssertionError:
                retries += 1
                assert retries <= 5, "no progress after five /quiz"
                api.send_text(user, "/quiz")
                continue
            if _act(api, user, message) == "done":
                break
        else:
            raise AssertionError("the quiz did not end")
        api.send_text(user, "噪声作业的工人多久体检一次？")
        api.wait_for(user, lambda m: len(t := m.get("text", "")) > 40 and "出处" not in t and "测验完成" not in t, timeout=REPLY)
        results[user] = retries
    except BaseException as exc:  # reported by the test
        errors.append((user, f"{type(exc).__name__}: {str(exc)[:300]}"))


def _chaos(cluster: Cluster, total: int) -> None:
    """At 20 % of the expected deliveries: the database away for 2 s; at 40 %: every worker connection
    terminated; at 60 %: worker b SIGKILLed and taken out of the rotation."""
    api = cluster.api

    def wait_for_share(share: float) -> None:
        """Until that share of the expected updates was confirmed (a 2xx)."""
        while sum(entry["status"] == 200 for entry in list(api.webhook_log)) < share * total:
            time.sleep(0.05)

    wait_for_share(0.2)
    cluster.proxy.down()
    cluster.chaos.append("database down")
    time.sleep(2.0)
    cluster.proxy.up()
    wait_for_share(0.4)
    engine = make_engine(cluster.direct_url, pool_size=1)
    with engine.begin() as conn:
        killed = conn.execute(text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                   "where application_name = :name"), {"name": cluster.application_name}).scalar()
    engine.dispose()
    cluster.chaos.append(f"terminated {killed} connections" if killed else "no connection to terminate")
    wait_for_share(0.6)
    worker = cluster.workers[1]
    assert worker.proc is not None
    worker.proc.kill()
    worker.proc.wait(10)
    api.set_webhook_targets([cluster.workers[0].url])
    cluster.chaos.append("worker b killed")


def test_fifty_users_on_two_workers_survive_an_outage_cut_connections_and_a_killed_worker(cluster):
    api = cluster.api
    expected_updates = USERS * (2 + 7 + SIZE + 1)  # at least: /quiz, consent, profile, items, question
    results: dict[int, int] = {}
    errors: list = []
    chaos = threading.Thread(target=_chaos, args=(cluster, expected_updates), daemon=True)
    chaos.start()
    users = [threading.Thread(target=_user, args=(api, 70_000 + n, results, errors)) for n in range(USERS)]
    started = time.monotonic()
    for t in users:
        t.start()
    for t in users:
        t.join(300)
    chaos.join(60)
    assert not errors, f"{len(errors)} users failed: {errors[:5]}\nchaos: {cluster.chaos}"
    assert len(results) == USERS
    assert len(cluster.chaos) == 3 and cluster.chaos[0] == "database down" and cluster.chaos[2] == "worker b killed"
    assert cluster.chaos[1].startswith("terminated "), cluster.chaos  # the workers' pools held connections
    api.wait_delivered(timeout=60)  # nothing lost: every update confirmed with a 2xx in the end
    elapsed = time.monotonic() - started

    log = api.webhook_log
    statuses = Counter(entry["status"] for entry in log)
    assert statuses[503] > 0, f"no worker answered 503 while the database was away: {statuses}"
    assert statuses[200] >= expected_updates
    failed = {entry["update_id"] for entry in log if entry["status"] != 200}
    confirmed = Counter(entry["update_id"] for entry in log if entry["status"] == 200)
    assert set(confirmed.values()) == {1}  # every update confirmed once

    # replies: one feedback per item and one summary per user, except around failed deliveries
    touched_chats = {entry["chat"] for entry in log if entry["update_id"] in failed}
    for user in results:
        texts = [m.get("text", "") for m in api.messages(user)]
        feedbacks = sum("出处：" in t for t in texts)
        summaries = sum("测验完成" in t for t in texts)
        if user not in touched_chats:
            assert feedbacks == SIZE and summaries == 1 and results[user] == 0, (user, texts)
        else:  # replies of a failed delivery may be lost with it (/quiz resumes) or sent twice
            assert feedbacks <= SIZE + len(failed) and summaries <= 2, (user, texts)

    engine = make_engine(cluster.direct_url, pool_size=1)
    with engine.connect() as conn:
        forms = conn.execute(text("select kind, count(*), sum(case when completed_at is null then 0 else 1 end) "
                                  "from forms where campaign = :c group by kind"), {"c": CAMPAIGN}).all()
        answers = conn.execute(text("select count(*), count(distinct r.form || ':' || r.item_id) from responses r "
                                    "join forms f on f.id = r.form where r.campaign = :c and f.kind = 'counted'"),
                               {"c": CAMPAIGN}).one()
    engine.dispose()
    by_kind = {kind: (n, done) for kind, n, done in forms}
    assert by_kind.pop("counted") == (USERS, USERS)  # each user counted once, every counted form completed
    # A user whose summary went with a failed delivery types /quiz again after the counted form was
    # complete: that starts a practice form, as it would for a person. Only such retries may leave one.
    assert set(by_kind) <= {"practice"} and by_kind.get("practice", (0, 0))[0] <= sum(results.values()), forms
    assert tuple(answers) == (USERS * SIZE, USERS * SIZE)  # every answer in the database once
    report = json.loads(cluster.ohbot("report", "--campaign", CAMPAIGN, "--json").stdout)
    assert report["overall"]["n"] == USERS
    print(f"\n{len(confirmed)} updates from {USERS} users in {elapsed:.1f} s through {cluster.chaos}; "
          f"deliveries {dict(statuses)}")

