"""The form-by-form reading of a campaign that reports used before they were aggregated in the database
(bot/awareness/report_sql.py): every completed form and answer loaded as an object. Kept here as the
reference the SQL path is checked against (`build_report(*respondent_results(...))` must give the
figures `campaign_report` gives), not used by the product; and `rescore_forms`, the stored scores of
answers a test wrote into the tables directly."""
from __future__ import annotations

import importlib
from datetime import datetime

from sqlalchemy import case, func, select, text, update
from sqlalchemy.engine import Connection

from bot.awareness.campaigns import TZ
from bot.awareness.report import AnswerRecord, RespondentResult
from bot.storage.state import PROFILE_FIELDS, State
from bot.storage.tables import forms, responses

#: migration 0013's statement that marks every form from its answers, by database
MARKS: dict[str, str] = importlib.import_module("bot.storage.migrations.versions.0013_form_marks").BACKFILL


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(TZ)


def respondent_results(state: State, campaign: str) -> tuple[list[RespondentResult], list[RespondentResult]]:
    """(counted, practice) completed forms of a campaign as report inputs.

    counted: one per user, their earliest completed counted form; practice: every completed practice form.
    completed_at is in China time, so report months are local months. Forms come in the reports' form
    order: completion time (the stored text), then form id, both by code point (the upper–lower
    discrimination index depends on the order of respondents with equal scores; bot.awareness.report_sql).
    """
    with state.read() as conn:
        fields = ", ".join(f'"{f}"' for f in PROFILE_FIELDS)
        forms = conn.execute(text(  # with the profile each form was answered with (migration 0009)
            f'select id, "user", kind, completed_at, {fields} from forms where campaign = :campaign '
            "and completed_at is not null and kind in ('counted', 'practice')"), {"campaign": campaign}).all()
        rows = conn.execute(text("select form, item_id, correct from responses where campaign = :campaign order by id"),
                            {"campaign": campaign}).all()
    records: dict[str, list[AnswerRecord]] = {f[0]: [] for f in forms}
    shared: tuple[dict[str, AnswerRecord], dict[str, AnswerRecord]] = ({}, {})  # frozen: one object per answer kind
    for form_id, item_id, correct in rows:
        answers = records.get(form_id)
        if answers is None:  # an unfinished form
            continue
        cache = shared[1 if correct else 0]
        a = cache.get(item_id)
        if a is None:
            a = cache[item_id] = AnswerRecord(item_id, bool(correct))
        answers.append(a)
    counted: list[RespondentResult] = []
    practice: list[RespondentResult] = []
    seen: set[str] = set()
    for form_id, user, kind, completed_at, *profile in sorted(forms, key=lambda f: (f[3], f[0])):
        if kind == "counted":
            if user in seen:  # a second counted form (should not happen): never count anybody twice
                continue
            seen.add(user)
        result = RespondentResult(user, dict(zip(PROFILE_FIELDS, profile)), _local(completed_at), records[form_id])
        (counted if kind == "counted" else practice).append(result)
    return counted, practice


def rescore_forms(conn: Connection, campaign: str) -> None:
    """Score a campaign's forms again from their stored answers (forms.answered, forms.correct: an
    answer is right when its `correct` is neither 0 nor NULL, and forms.marks), in one UPDATE … FROM
    (GROUP BY) each, the statements of migrations 0010 and 0013. For answers a test wrote directly: `record_answer`
    and the CSV import keep the score themselves."""
    scores = (select(responses.c.form, func.count().label("answered"),
                     func.sum(case((func.coalesce(responses.c.correct, 0) != 0, 1), else_=0)).label("correct"))
              .where(responses.c.campaign == campaign).group_by(responses.c.form).subquery("s"))
    conn.execute(update(forms).where(forms.c.id == scores.c.form, forms.c.campaign == campaign)
                 .values(answered=scores.c.answered, correct=scores.c.correct))
    conn.execute(update(forms).where(forms.c.campaign == campaign,
                                     ~select(responses.c.id).where(responses.c.form == forms.c.id).exists())
                 .values(answered=0, correct=0, marks="[]"))
    # and their marks, by migration 0013's own statement (every form with answers: a test's campaigns
    # are small, and a form's marks depend on its answers only)
    conn.execute(text(MARKS[conn.dialect.name]))
