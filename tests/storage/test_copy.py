"""`ohbot db copy/import/export`: a pilot's SQLite state database (made by today's State and quiz code)
moves into PostgreSQL and back, all or nothing, verified by counts; reports agree after the round trip."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.awareness.campaigns import campaign_report
from bot.cli import main
from bot.dialogue.types import Button
from bot.errors import InputError, OhbotError
from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage import migrate
from bot.storage.channels import DbMenus, Inbox, TokenStore
from bot.storage.copy import copy_database
from bot.storage.db import connect, transaction
from bot.storage.staff import StaffStore
from bot.storage.state import State, User
from bot.storage.tables import TABLES, responses, users
from tests.helpers import KNOWLEDGE

USERS = 12
FORM_SIZE = 4


@pytest.fixture(scope="module")
def bank():
    """The real quiz bank (YAML only: no index, no model)."""
    return load_bank(KNOWLEDGE)


def make_pilot(path: Path, bank) -> State:
    """A pilot's ohbot.db as today's code writes it: profiles, a campaign, counted and practice forms
    answered item by item (seeded draws), one unfinished form, logged questions."""
    state = State(path, "pilot-salt")
    campaign = quiz.create_campaign(state, "试点", "2024-01-01", "2030-12-31", form_size=FORM_SIZE)
    by_id = {i.id: i for i in bank}
    for n in range(USERS):
        key = state.user_key("telegram", n)
        profile = {"role": "worker", "industry": "construction", "region": "广东省", "enterprise_size": "small"}
        state.save_user(User(key=key, profile=profile, consent=True))
        for kind in range(2 if n % 3 == 0 else 1):  # every third user also takes a practice form
            form = quiz.start_form(state, bank, key, profile, campaign, seed=7 + kind)
            answered = FORM_SIZE if n != USERS - 1 else 2  # the last user's form stays unfinished
            for position, entry in enumerate(form.items[:answered]):
                item = by_id[entry["id"]]
                answer = item.answer if (n + position) % 4 else min(item.options)
                quiz.record_answer(state, form, position, answer, item)
    state.log_unanswered("夜班补贴怎么算？", state.user_key("telegram", 1))
    state.log_unanswered("夜班补贴怎么算", state.user_key("telegram", 2))
    # the text channels' rows (WeChat): a taken callback with its reply, a stored menu, an access token
    inbox = Inbox(state, clock=lambda: 1_700_000_000)
    inbox.claim("wechat", "m:6172839405")
    inbox.set_reply("wechat", "m:6172839405", "回复 1 劳动者 · 2 用人单位")
    DbMenus(state).set(state.user_key("wechat", "oPilot"), [Button("劳动者", "role:worker")])
    TokenStore(state, clock=lambda: 1_700_000_000).get("wechat:wxpilot", lambda: ("PILOT-TOKEN", 7200))
    # the answers' rows: a kept reply, the user's last question, a 👎 with its reason
    asker = state.user_key("telegram", 3)
    shown = state.log_answer(asker, "噪声多大算超标", "85 dB(A)……", "answer", faq_id="faq-haz-001", confidence=0.8)
    state.remember(asker, "噪声多大算超标", shown, 1234567890123456789)
    state.set_feedback_reason(state.add_feedback(shown, asker, "down"), "没说夜班")
    return state


def rows_of(engine) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: what a faithful copy must reproduce exactly."""
    with connect(engine) as conn:
        return {t.name: sorted(conn.execute(select(t)).all(), key=repr) for t in TABLES}


def test_a_pilot_moves_to_postgresql_and_back_unchanged(tmp_path: Path, pg_url: str, engine_for, bank) -> None:
    pilot = make_pilot(tmp_path / "pilot.db", bank)
    report_before = campaign_report(pilot, "试点", bank)
    source = engine_for(f"sqlite:///{tmp_path / 'pilot.db'}")
    target = engine_for(pg_url)
    console = StaffStore(source)  # the web console's account and audit log move too
    console.audit(console.add("boss", "admin", "correct horse battery"), "export", "试点", "report xlsx")

    counts = copy_database(source, target)
    assert counts == {"users": USERS, "unanswered": 2, "campaigns": 1, "forms": USERS + USERS // 3,
                      "responses": (USERS + USERS // 3) * FORM_SIZE - 2,
                      "channel_inbox": 1, "access_tokens": 1, "text_menus": 1,
                      "conversation": 1, "answers": 1, "feedback": 1, "rate_limits": 0,
                      "staff": 1, "staff_sessions": 0, "staff_login_failures": 0, "staff_audit": 1, "telegram_inbox": 0,
                      "report_snapshots": 0}
    assert migrate.check_schema(target) == migrate.head()
    assert rows_of(target) == rows_of(source)
    with transaction(target) as conn:  # new answers continue after the copied ids
        new_id = conn.execute(responses.insert().returning(responses.c.id), {"form": "new", "item_id": "q"}).scalar_one()
        assert new_id == counts["responses"] + 1
        conn.execute(responses.delete().where(responses.c.id == new_id))

    back = tmp_path / "back.db"
    copy_database(target, engine_for(f"sqlite:///{back}"))
    assert rows_of(engine_for(f"sqlite:///{back}")) == rows_of(source)
    assert campaign_report(State(back, "pilot-salt"), "试点", bank) == report_before


def test_the_target_must_be_empty(tmp_path: Path, db_url: str, engine_for, bank) -> None:
    make_pilot(tmp_path / "pilot.db", bank)
    target = engine_for(db_url)
    migrate.upgrade(target)
    with transaction(target) as conn:
        conn.execute(users.insert(), {"key": "already-here"})
    with pytest.raises(InputError, match=r"already holds data \(users 1 rows\): copy only into an empty database"):
        copy_database(engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"), target)
    with connect(target) as conn:
        assert conn.execute(select(users.c.key)).scalars().all() == ["already-here"]


def test_a_count_mismatch_rolls_everything_back(tmp_path: Path, db_url: str, engine_for, bank) -> None:
    """A target that silently drops a row (a trigger here; a buggy replica, a rule in real life):
    the counts disagree, nothing is committed, the error is one line."""
    make_pilot(tmp_path / "pilot.db", bank)
    target = engine_for(db_url)
    migrate.upgrade(target)
    with transaction(target) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("create function drop_second() returns trigger language plpgsql as "
                              "$$ begin if new.id = 2 then return null; end if; return new; end $$"))
            conn.execute(text("create trigger drop_second before insert on responses for each row "
                              "execute function drop_second()"))
        else:
            conn.execute(text("create trigger drop_second before insert on responses when new.id = 2 "
                              "begin select raise(ignore); end"))
    expected = (USERS + USERS // 3) * FORM_SIZE - 2
    with pytest.raises(OhbotError, match=rf"failed verification \(rows in target of source: responses {expected - 1} "
                                         rf"of {expected}\); nothing was copied") as caught:
        copy_database(engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"), target)
    assert "\n" not in str(caught.value)
    assert all(not rows for rows in rows_of(target).values())


@pytest.mark.postgres
def test_a_value_postgresql_rejects_stops_the_copy_with_nothing_written(tmp_path: Path, pg_url: str, engine_for,
                                                                         bank) -> None:
    """SQLite stores text in an INTEGER column; PostgreSQL refuses it: one line naming the table."""
    make_pilot(tmp_path / "pilot.db", bank)
    conn = sqlite3.connect(tmp_path / "pilot.db")
    conn.execute("update responses set correct = 'yes' where id = 3")
    conn.commit()
    conn.close()
    target = engine_for(pg_url)
    with pytest.raises(OhbotError, match="failed in table responses: .*; nothing was copied") as caught:
        copy_database(engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"), target)
    assert "\n" not in str(caught.value)
    assert all(not rows for rows in rows_of(target).values())


def test_a_source_with_tables_ohbot_does_not_know_is_refused(tmp_path: Path, sqlite_url: str, engine_for,
                                                            bank) -> None:
    make_pilot(tmp_path / "pilot.db", bank)
    conn = sqlite3.connect(tmp_path / "pilot.db")
    conn.execute("create table scratch_notes (id integer primary key, text text)")  # not a table of ours
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match=r"has tables this ohbot cannot copy \(scratch_notes\)"):
        copy_database(engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"), engine_for(sqlite_url))
    with pytest.raises(InputError, match="same database"):
        copy_database(engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"), engine_for(f"sqlite:///{tmp_path / 'pilot.db'}"))


def test_cli_import_export_and_copy(tmp_path: Path, pg_url: str, bank, engine_for,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    make_pilot(tmp_path / "pilot.db", bank)
    pilot = engine_for(f"sqlite:///{tmp_path / 'pilot.db'}")
    assert main(["--database-url", pg_url, "db", "import", str(tmp_path / "pilot.db")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("copied ") and "(counts verified): users 12, unanswered 2, campaigns 1, forms 16" in out
    assert rows_of(engine_for(pg_url)) == rows_of(pilot)

    assert main(["--database-url", pg_url, "db", "import", str(tmp_path / "pilot.db")]) == 2  # not twice
    assert "already holds data" in capsys.readouterr().err

    assert main(["--database-url", pg_url, "db", "export", str(tmp_path / "snapshot.db")]) == 0
    assert rows_of(engine_for(f"sqlite:///{tmp_path / 'snapshot.db'}")) == rows_of(pilot)
    assert main(["--database-url", pg_url, "db", "export", str(tmp_path / "snapshot.db")]) == 2
    assert "exists already" in capsys.readouterr().err

    copy_to = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["db", "copy", "--from", f"sqlite:///{tmp_path / 'snapshot.db'}", "--to", copy_to]) == 0
    assert rows_of(engine_for(copy_to)) == rows_of(pilot)
    assert main(["--database-url", pg_url, "db", "import", str(tmp_path / "missing.db")]) == 2
    assert "no SQLite file" in capsys.readouterr().err


def test_a_failed_export_leaves_no_file(tmp_path: Path, sqlite_url: str, engine_for,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(tmp_path / "odd.db")
    conn.execute("create table scratch_notes (id integer primary key)")  # not a table of ours
    conn.commit()
    conn.close()
    assert main(["--database-url", f"sqlite:///{tmp_path / 'odd.db'}", "db", "export", str(tmp_path / "out.db")]) == 2
    assert "cannot copy (scratch_notes)" in capsys.readouterr().err
    assert not list(tmp_path.glob("out.db*"))
