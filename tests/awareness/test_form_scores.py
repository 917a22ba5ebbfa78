"""Each form's score is stored on its row (forms.answered, forms.correct: migration 0010), with its
answers' marks (forms.marks: migration 0013), and always equals what its answers give: after quiz answers (right, wrong, a repeated press), a CSV import, and
the upgrade of a database whose forms have answers but no stored score. Both backends."""
from __future__ import annotations

import csv
import json

from alembic import command
from sqlalchemy import case, func, select, text

from bot.awareness.campaigns import import_responses
from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage import migrate
from bot.storage.state import State
from bot.storage.tables import forms, responses
from bot.taxonomy import load_taxonomy
from tests.helpers import KNOWLEDGE


def stored_and_counted(state: State, campaign: str) -> tuple[dict, dict]:
    """{form: (answered, correct)} as stored on the forms, and as totalled from the answers; each form's
    marks (sorted) checked against its answers on the way."""
    right = case((func.coalesce(responses.c.correct, 0) != 0, 1), else_=0)
    with state.read() as conn:
        rows = conn.execute(select(forms.c.id, forms.c.answered, forms.c.correct, forms.c.marks)
                            .where(forms.c.campaign == campaign)).all()
        stored = {f: (a, c) for f, a, c, _ in rows}
        counted = {f: (int(a), int(c)) for f, a, c in conn.execute(
            select(responses.c.form, func.count(), func.sum(right)).where(responses.c.campaign == campaign)
            .group_by(responses.c.form))}
        answers: dict[str, list[str]] = {f: [] for f in stored}
        for f, item, correct in conn.execute(select(responses.c.form, responses.c.item_id, responses.c.correct)
                                             .where(responses.c.campaign == campaign)):
            answers[f].append(("1" if correct else "0") + item)
    assert {f: sorted(json.loads(m)) for f, _, _, m in rows} == {f: sorted(a) for f, a in answers.items()}
    return stored, {f: counted.get(f, (0, 0)) for f in stored}


def test_quiz_answers_and_a_repeated_press_keep_the_stored_score(state_url):
    state = State(state_url, "salt")
    quiz.create_campaign(state, "C", "2024-01-01", "2099-12-31", form_size=5)
    campaign = quiz.get_campaign(state, "C")
    bank = {i.id: i for i in load_bank(KNOWLEDGE)}
    user = state.get_user("u1")
    form = quiz.start_form(state, list(bank.values()), user.key, user.profile, campaign, seed=3)
    assert stored_and_counted(state, "C")[0] == {form.id: (0, 0)}
    for position, entry in enumerate(form.items):
        item = bank[entry["id"]]
        wrong = next(o for o in item.options if o != item.answer) if item.options else "X"
        answer = item.answer if position % 2 == 0 else wrong
        assert quiz.record_answer(state, form, position, answer, item) is (answer == item.answer)
        if position == 1:  # the same button pressed again: nothing recorded, the score unchanged
            assert quiz.record_answer(state, form, position, item.answer, item) is None
        stored, counted = stored_and_counted(state, "C")
        assert stored == counted
        assert stored[form.id][0] == position + 1
    assert stored_and_counted(state, "C")[0][form.id] == (5, sum(1 for p in range(5) if p % 2 == 0))


def test_an_import_stores_each_forms_score(state_url, tmp_path):
    state = State(state_url, "salt")
    quiz.create_campaign(state, "C", "2024-01-01", "2099-12-31", form_size=5)
    bank = [i for i in load_bank(KNOWLEDGE) if i.type == "single"][:5]
    path = tmp_path / "answers.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["respondent_id", "item_id", "answer", "answered_at"])
        for r, right in enumerate([0, 2, 5, 3]):
            for k, item in enumerate(bank[: 3 + r % 3]):
                answer = item.answer if k < right else next(o for o in item.options if o != item.answer)
                w.writerow([f"r{r}", item.id, answer, "2024-03-05 10:00"])
    count, errors = import_responses(state, "C", path, {i.id: i for i in load_bank(KNOWLEDGE)},
                                     load_taxonomy(KNOWLEDGE))
    assert errors == [] and count == 3 + 4 + 5 + 3
    stored, counted = stored_and_counted(state, "C")
    assert stored == counted
    assert sorted(stored.values()) == [(3, 0), (3, 3), (4, 2), (5, 5)]


def test_the_upgrade_scores_existing_forms_from_their_answers(db_url, engine_for):
    engine = engine_for(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0009")
        conn.execute(text("insert into forms (id, campaign, \"user\", kind, items, position, started_at, "
                          "completed_at, source) values ('f1', 'C', 'u1', 'counted', '[]', 4, "
                          "'2024-01-01T00:00:00+00:00', '2024-01-01T00:10:00+00:00', 'import'), "
                          "('f2', 'C', 'u2', 'counted', '[]', 0, '2024-01-01T00:00:00+00:00', null, 'bot')"))
        for n, correct in enumerate([1, 0, None, 2]):  # NULL is wrong, any value but 0 right
            conn.execute(text("insert into responses (form, campaign, \"user\", item_id, answer, correct) "
                              "values ('f1', 'C', 'u1', :item, 'A', :c)"), {"item": f'q "{n}",\\', "c": correct})
        command.upgrade(migrate.alembic_config(conn), "head")
        assert dict((f, (a, c)) for f, a, c in conn.execute(
            text("select id, answered, correct from forms order by id"))) == {"f1": (4, 2), "f2": (0, 0)}
        # the marks: JSON arrays whatever the item ids hold (quotes, commas, backslashes), [] without answers
        marks = {f: sorted(json.loads(m)) for f, m in conn.execute(text("select id, marks from forms"))}
        assert marks == {"f1": ['0q "1",\\', '0q "2",\\', '1q "0",\\', '1q "3",\\'], "f2": []}
