"""The Telegram inbox (bot/storage/inbox.py) on SQLite and PostgreSQL: an update is recorded once,
handled rows lose their text, unhandled rows are claimed by one process only, old rows are pruned.
The whole path (a SIGKILL between confirmation and answer) is tested end to end in
tests/channels/test_telegram_reliability.py."""
from __future__ import annotations

import threading

from sqlalchemy import select

from bot.storage import inbox as inbox_module
from bot.storage import migrate
from bot.storage.db import connect
from bot.storage.inbox import TelegramInbox
from bot.storage.tables import telegram_inbox


class Clock:
    def __init__(self, now: float = 1_700_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(engine_for, db_url: str, clock: Clock | None = None) -> TelegramInbox:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    return TelegramInbox(engine, clock=clock or Clock())


def rows(inbox: TelegramInbox) -> list[tuple]:
    with connect(inbox.engine) as conn:
        return [tuple(r) for r in conn.execute(select(telegram_inbox).order_by(telegram_inbox.c.update_id))]


def test_an_update_is_recorded_once_and_forgets_its_text_when_handled(engine_for, db_url):
    inbox = make(engine_for, db_url)
    assert inbox.record(10, '{"update_id": 10, "message": {"text": "体检费"}}') is True
    assert inbox.record(10, '{"update_id": 10}') is False  # delivered again: not handled twice
    inbox.done(10)
    assert rows(inbox) == [(10, None, 1_700_000_000, 1_700_000_000)]
    assert inbox.record(10, "{}") is False  # still known after it was handled
    assert inbox.claim_unhandled() == []


def test_unhandled_rows_are_claimed_oldest_first_by_one_process_only(engine_for, db_url):
    clock = Clock()
    first = make(engine_for, db_url, clock)
    for update_id in (3, 1, 2):
        first.record(update_id, f'{{"update_id": {update_id}}}')
    first.done(2)
    second = TelegramInbox(first.engine, clock=clock)
    assert second.claim_unhandled(older_than=60) == []  # a living worker may be handling them
    clock.now += 61
    claimed: list[list] = []
    workers = [threading.Thread(target=lambda i=i: claimed.append((first, second)[i].claim_unhandled(60)))
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(len(c) for c in claimed) in ([0, 2], [1, 1])
    assert sorted(u for c in claimed for u, _ in c) == [1, 3]  # each row to exactly one of them
    assert second.claim_unhandled(60) == []  # claimed just now: not stale any more


def test_handled_rows_are_pruned_after_the_redelivery_window(engine_for, db_url, monkeypatch):
    monkeypatch.setattr(inbox_module, "PRUNE_EVERY", 2)
    clock = Clock()
    inbox = make(engine_for, db_url, clock)
    inbox.record(1, "{}")
    inbox.done(1)
    clock.now += inbox_module.KEEP_SECONDS + 1
    inbox.record(2, "{}")  # the second record prunes
    assert [r[0] for r in rows(inbox)] == [2]


def test_an_update_id_seen_long_ago_is_a_new_update(engine_for, db_url):
    """After a week without updates Telegram may number them anew: an id handled before the window is
    not a repeat."""
    clock = Clock()
    inbox = make(engine_for, db_url, clock)
    inbox.record(5, "{}")
    inbox.done(5)
    clock.now += inbox_module.KEEP_SECONDS + 1
    assert inbox.record(5, '{"update_id": 5}') is True
    assert rows(inbox) == [(5, '{"update_id": 5}', clock.now, None)]
