"""The statements the port of state.py / forms.py / campaigns.py uses, proven on both backends:
quoting of `user`, one counted form per campaign and user under concurrency (the partial unique
index of migration 0006 with INSERT … ON CONFLICT … WHERE), and an answer recorded once per position
(a conditional UPDATE, and the real record_answer: on PostgreSQL one data-modifying WITH)."""
from __future__ import annotations

import threading

from sqlalchemy import select, text, update

from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage import migrate
from bot.storage.db import connect, insert_ignore, transaction
from bot.storage.state import State
from bot.storage.tables import forms
from tests.helpers import KNOWLEDGE


def _race(n: int, attempt) -> list:
    """Run attempt(i) in n threads released together; their results."""
    start = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        """One contender."""
        start.wait()
        results[i] = attempt(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_user_must_be_quoted_in_hand_written_sql(db_url: str, engine_for) -> None:
    """On PostgreSQL an unquoted `user` is CURRENT_USER: no error, just the wrong value."""
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        conn.execute(forms.insert(), {"id": "f1", "user": "respondent-key"})
    with connect(engine) as conn:
        assert conn.execute(select(forms.c.user)).scalar_one() == "respondent-key"  # Core quotes it
        assert conn.execute(text('select "user" from forms')).scalar_one() == "respondent-key"
        unquoted = conn.execute(text("select user from forms")).scalar_one()
    if engine.dialect.name == "postgresql":
        assert unquoted != "respondent-key"  # the login role's name
    else:
        assert unquoted == "respondent-key"


def test_one_counted_form_per_campaign_and_user_under_concurrency(db_url: str, engine_for) -> None:
    """Six taps on 开始测评 reach six workers at once: one counted form, five practice forms."""
    engine = engine_for(db_url, pool_size=6)
    migrate.upgrade(engine)

    def start_form(i: int) -> str:
        """The ported start_form: try the counted form, else a practice one, in one transaction."""
        with transaction(engine) as conn:
            row = {"id": f"f{i}", "campaign": "c", "user": "u", "kind": "counted", "position": 0, "source": "bot"}
            if insert_ignore(conn, forms, row, on=["campaign", "user"], where=forms.c.kind == "counted"):
                return "counted"
            conn.execute(forms.insert(), {**row, "kind": "practice"})
            return "practice"

    assert sorted(_race(6, start_form)) == ["counted"] + ["practice"] * 5
    with connect(engine) as conn:
        kinds = conn.execute(select(forms.c.kind, forms.c.user)).all()
    assert sorted(kinds) == [("counted", "u")] + [("practice", "u")] * 5


def test_an_answer_is_recorded_once_per_position(db_url: str, engine_for) -> None:
    """A double tap delivered to two workers: a conditional UPDATE lets exactly one advance the form."""
    engine = engine_for(db_url, pool_size=4)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        conn.execute(forms.insert(), {"id": "f", "user": "u", "kind": "counted", "position": 3})

    def answer(_: int) -> int:
        """The ported record_answer's first statement: advance only from the expected position."""
        with transaction(engine) as conn:
            return conn.execute(update(forms).where(forms.c.id == "f", forms.c.position == 3,
                                                    forms.c.completed_at.is_(None)).values(position=4)).rowcount

    assert sorted(_race(4, answer)) == [0, 0, 0, 1]
    with connect(engine) as conn:
        assert conn.execute(select(forms.c.position)).scalar_one() == 4


def test_one_counted_form_holds_once_the_driver_prepares_the_statement(db_url: str, engine_for) -> None:
    """psycopg prepares a statement on its 6th run on a connection; the partial index's predicate must
    then still match the ON CONFLICT clause (a bound parameter there made every later counted form
    fail on PostgreSQL: "no unique or exclusion constraint matching the ON CONFLICT specification")."""
    engine = engine_for(db_url, pool_size=1, max_overflow=0)  # one connection: every run on it
    migrate.upgrade(engine)
    kinds = []
    for n in range(8):
        for attempt in range(2):  # the second start of each user is practice
            with transaction(engine) as conn:
                row = {"id": f"f{n}-{attempt}", "campaign": "c", "user": f"u{n}", "kind": "counted", "position": 0}
                kinds.append(insert_ignore(conn, forms, row, on=["campaign", "user"], where=forms.c.kind == "counted"))
    assert kinds == [1, 0] * 8


def test_record_answer_stores_each_position_once_when_presses_race(state_url: str) -> None:
    """Four presses of every answer button at once (four workers): each position is recorded by
    exactly one of them, the others change nothing; the form ends complete, its answers all there."""
    bank = load_bank(KNOWLEDGE)
    by_id = {i.id: i for i in bank}
    state = State(state_url, "race-salt-race-salt")
    campaign = quiz.create_campaign(state, "race", "2024-01-01", "2099-12-31", form_size=4)
    form = quiz.start_form(state, bank, state.user_key("t", 1), {"role": "worker"}, campaign, seed=5)
    for position, entry in enumerate(form.items):
        item = by_id[entry["id"]]
        copies = [quiz.Form(**{**form.__dict__}) for _ in range(4)]  # each worker read the form itself
        results = _race(4, lambda i, item=item, position=position, copies=copies: quiz.record_answer(
            state, copies[i], position, item.answer, item))
        assert sorted(results, key=str) == [None, None, None, True], results
    stored = quiz.get_form(state, form.id)
    assert stored is not None and stored.position == 4 and stored.completed_at is not None
    assert quiz.form_score(state, form.id) == (4, 4)
    assert quiz.record_answer(state, stored, 3, "A", by_id[form.items[3]["id"]]) is None  # finished: nothing
    assert quiz.form_score(state, form.id) == (4, 4)
    state.close()
