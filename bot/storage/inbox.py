"""Telegram's durable inbox (issue #11): every update is kept in the state database before Telegram is
told it arrived, so that no update is lost to a process killed between the two.

Why: Telegram forgets an update once it is confirmed, by the next getUpdates offset (long polling) or
by the webhook's 200. python-telegram-bot confirms a batch as soon as it has queued it in memory, so
a SIGKILL (OOM killer, a deploy, a crash) lost every queued or half-handled update: an answer and a
question in the adversarial run. Here `InboxQueue.put`, through which every update enters the bot
(polling, PTB's webhook server and `ohbot serve`'s /telegram), first inserts the update into
`telegram_inbox`, keyed by its update_id, and only then lets PTB go on (to confirm it, or to answer
200). After the handlers are done the row is marked handled and its payload erased (it carries the
user's id and text); rows are kept 48 hours more, Telegram's redelivery window, to tell a repeat.

At start the rows not handled yet are handled first (`replay`), oldest first, so the updates of one
user keep their order. Under `ohbot serve`, where several workers may share one database, a worker
replays only rows older than `STALE_AFTER` seconds (an update being handled in another, living
worker is younger) and claims each row by a conditional UPDATE, so two workers never both take it;
it sweeps again every `STALE_AFTER` seconds.

The same update_id delivered again (a batch re-sent because the confirmation was lost, a retried
webhook call) is recognised by the primary key and not handled twice — on SQLite and PostgreSQL alike
(bot/storage/db.py `insert_ignore`).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, and_, delete, select, update

from bot.storage.db import connect, insert_ignore, transaction
from bot.storage.tables import telegram_inbox

KEEP_SECONDS = 48 * 3600  # handled update ids kept this long (Telegram keeps an update at most 24 h)
PRUNE_EVERY = 500  # records between two prunes
STALE_AFTER = 60  # seconds: an unhandled row this old was lost with its process (ohbot serve)


class TelegramInbox:
    """The `telegram_inbox` table of a state database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        """Over the engine of the state database; `clock` gives epoch seconds (tests move it)."""
        self.engine = engine
        self.clock = clock
        self._records = 0

    def record(self, update_id: int, payload: str) -> bool:
        """Keep an update before it is confirmed to Telegram. True: it is new, and the caller handles
        it; False: this update_id was received before (handled, or being handled), so drop it."""
        stamp = int(self.clock())
        with transaction(self.engine) as conn:
            new = insert_ignore(conn, telegram_inbox, {"update_id": update_id, "payload": payload,
                                                       "received_at": stamp, "handled_at": None},
                                on=["update_id"]) == 1
            if not new:  # known, unless it is a row past the window (after a week without updates
                # Telegram may start its numbering anew, at random): then it is another update
                new = conn.execute(update(telegram_inbox).where(
                    telegram_inbox.c.update_id == update_id,
                    telegram_inbox.c.handled_at < stamp - KEEP_SECONDS).values(
                    payload=payload, received_at=stamp, handled_at=None)).rowcount == 1
            self._records += 1
            if self._records % PRUNE_EVERY == 0:
                self._prune(conn, stamp)
        return new

    def done(self, update_id: int) -> None:
        """The update was handled: mark it and erase its payload (ids and text are not kept)."""
        with transaction(self.engine) as conn:
            conn.execute(update(telegram_inbox).where(telegram_inbox.c.update_id == update_id)
                         .values(handled_at=int(self.clock()), payload=None))

    def claim_unhandled(self, older_than: float = 0.0) -> list[tuple[int, str]]:
        """The rows not handled yet and received at least `older_than` seconds ago, oldest first, each
        claimed for this process (its received_at renewed by a conditional UPDATE: a row another
        process claimed a moment earlier is skipped)."""
        stamp = int(self.clock())
        cutoff = stamp - older_than
        with connect(self.engine) as conn:
            rows = conn.execute(select(telegram_inbox.c.update_id, telegram_inbox.c.payload,
                                       telegram_inbox.c.received_at)
                                .where(telegram_inbox.c.handled_at.is_(None), telegram_inbox.c.received_at <= cutoff)
                                .order_by(telegram_inbox.c.update_id)).all()
        claimed = []
        for update_id, payload, received in rows:
            with transaction(self.engine) as conn:
                won = conn.execute(update(telegram_inbox).where(and_(
                    telegram_inbox.c.update_id == update_id, telegram_inbox.c.handled_at.is_(None),
                    telegram_inbox.c.received_at == received)).values(received_at=stamp + 1)).rowcount == 1
            if won and payload:
                claimed.append((int(update_id), str(payload)))
        return claimed

    def _prune(self, conn, stamp: int) -> None:
        """Forget handled updates older than KEEP_SECONDS."""
        conn.execute(delete(telegram_inbox).where(telegram_inbox.c.handled_at < stamp - KEEP_SECONDS))
