"""Quiz forms and answers: drawing a stratified form, presenting items with shuffled options,
recording every answer the moment it is given, and scoring. Tables live in the state database.

A campaign fixes the form rules and awareness threshold; the first form a user starts in a campaign
is the counted one (it can be left and resumed, never restarted), later forms are practice.
"""
from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, Text, bindparam, case, func, select, update

from bot.config import AWARE_THRESHOLD, FORM_SIZE
from bot.errors import CampaignError
from bot.quiz.bank import Item, load_bank
from bot.storage.db import autocommit, backend, insert_ignore
from bot.storage.state import State, now
from bot.storage.tables import PROFILE_FIELDS, campaigns, forms, responses

LETTERS = "ABCDEFGH"
DEFAULT_FORM_SIZE = FORM_SIZE
DEFAULT_THRESHOLD = AWARE_THRESHOLD
INDUSTRY_SHARE = 0.35  # at most this share of a form is drawn from the user's own industry items


@dataclass(frozen=True)
class Campaign:
    name: str
    start: str
    end: str
    region: str | None
    threshold: float
    form_size: int
    status: str  # open | closed


@dataclass
class Form:
    id: str
    campaign: str | None
    user: str
    kind: str  # counted | practice
    items: list[dict]  # [{"id": item id, "order": [bank letters in display order]}]
    position: int  # index of the next unanswered item
    completed_at: str | None


# ---- campaigns ---------------------------------------------------------------------------------
def create_campaign(state: State, name: str, start: str, end: str, region: str | None = None,
                    threshold: float = DEFAULT_THRESHOLD, form_size: int = DEFAULT_FORM_SIZE) -> Campaign:
    if not name.strip():
        raise CampaignError("a campaign needs a name")
    if not 0 < threshold <= 1:
        raise CampaignError("the threshold is a share between 0 and 1, e.g. 0.8")
    if not 4 <= form_size <= 100:
        raise CampaignError("the form size must be between 4 and 100 items")
    for value in (start, end):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise CampaignError(f"dates are YYYY-MM-DD, not {value!r}") from None
    if end < start:
        raise CampaignError("the campaign ends before it starts")
    row = {"name": name, "start": start, "end": end, "region": region, "threshold": threshold,
           "form_size": form_size, "status": "open", "created": now()}
    with state.write() as conn:
        if not insert_ignore(conn, campaigns, row, on=["name"]):
            raise CampaignError(f"a campaign named {name!r} exists already")
    return get_campaign(state, name)


def _campaign(r: Any) -> Campaign:
    """A campaigns row as a Campaign."""
    return Campaign(r.name, r.start, r.end, r.region, r.threshold, r.form_size, r.status)


def get_campaign(state: State, name: str) -> Campaign:
    with state.read() as conn:
        r = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
    if r is None:
        raise CampaignError(f"no campaign named {name!r} (see `ohbot campaign list`)")
    return _campaign(r)


def list_campaigns(state: State) -> list[Campaign]:
    with state.read() as conn:
        return [_campaign(r) for r in conn.execute(select(campaigns).order_by(campaigns.c.created))]


def close_campaign(state: State, name: str) -> None:
    get_campaign(state, name)
    with state.write() as conn:
        conn.execute(update(campaigns).where(campaigns.c.name == name).values(status="closed"))


def open_campaign_for(state: State, region: str | None, today: str) -> Campaign | None:
    """The open campaign running today for this user's region (a campaign without region is for all)."""
    for c in reversed(list_campaigns(state)):
        if c.status == "open" and c.start <= today <= c.end and (not c.region or (region and c.region in region)):
            return c
    return None


# ---- drawing a form ----------------------------------------------------------------------------
def draw_items(bank: list[Item], size: int, audience: str | None, industry: str | None,
               rng: random.Random) -> list[Item]:
    """A stratified draw: the four dimensions as equal as the bank allows, items for the user's
    audience (or for all), up to INDUSTRY_SHARE from the user's own industry, no repeats; never a
    retired item (one kept only to read answers stored under its id)."""
    eligible = [i for i in bank if not i.retired
                and (i.audience == "all" or i.audience == audience or audience in (None, "bureau"))]
    dims = sorted({i.dimension for i in eligible})
    quota = {d: size // len(dims) + (1 if n < size % len(dims) else 0) for n, d in enumerate(dims)}
    own_quota = int(size * INDUSTRY_SHARE) if industry and industry != "other" else 0
    chosen: list[Item] = []
    for d in dims:
        pool = [i for i in eligible if i.dimension == d]
        own = [i for i in pool if industry in i.industries]
        general = [i for i in pool if i not in own]
        rng.shuffle(own)
        rng.shuffle(general)
        take_own = min(len(own), round(own_quota * quota[d] / size), quota[d])
        picked = own[:take_own] + general[: quota[d] - take_own]
        if len(picked) < quota[d]:  # too few general items: fill from the rest of the pool
            rest = [i for i in pool if i not in picked]
            picked += rest[: quota[d] - len(picked)]
        chosen += picked
    rng.shuffle(chosen)
    return chosen


def start_form(state: State, bank: list[Item], user: str, profile: dict, campaign: Campaign | None,
               seed: int | None = None) -> Form:
    """A new form for the user: counted if it is their first in the campaign, else practice.
    One counted form per campaign and user is the database's rule (a partial unique index, migration
    0006): the counted insert is tried first and, when another tap or process won, the form is practice.

    Items and options are drawn at random, seeded by the form's random id; with `seed` set
    (OHBOT_QUIZ_SEED: tests and demonstrations) the draw depends only on the seed, the user and how
    many forms the user already has, so the same run draws the same forms every time."""
    size = campaign.form_size if campaign else DEFAULT_FORM_SIZE
    form_id = secrets.token_hex(8)
    if seed is None:
        rng = random.Random(form_id)
    else:
        with state.read() as conn:
            previous = conn.execute(select(func.count()).select_from(forms).where(forms.c.user == user)).scalar_one()
        rng = random.Random(f"{seed}:{user}:{previous}")
    items = draw_items(bank, size, profile.get("role"), profile.get("industry"), rng)
    layout = []
    for item in items:
        order = list(item.options)
        if item.type != "truefalse":
            rng.shuffle(order)
        layout.append({"id": item.id, "order": order})
    name = campaign.name if campaign else None
    row = {"id": form_id, "campaign": name, "user": user, "kind": "counted",
           "items": json.dumps(layout), "position": 0, "started_at": now(), "completed_at": None, "source": "bot",
           **{f: profile.get(f) for f in PROFILE_FIELDS}}  # the profile it is answered with (reports read it)
    with state.write() as conn:
        counted = campaign is not None and insert_ignore(
            conn, forms, row, on=["campaign", "user"], where=forms.c.kind == "counted") == 1
        if not counted:
            conn.execute(forms.insert(), {**row, "kind": "practice"})
    return Form(form_id, name, user, "counted" if counted else "practice", layout, 0, None)


def get_form(state: State, form_id: str) -> Form | None:
    with state.read() as conn:
        r = conn.execute(select(forms).where(forms.c.id == form_id)).mappings().first()
    if r is None:
        return None
    return Form(r["id"], r["campaign"], r["user"], r["kind"], json.loads(r["items"]), r["position"], r["completed_at"])


def unfinished_form(state: State, user: str) -> Form | None:
    with state.read() as conn:
        found = conn.execute(select(forms.c.id).where(forms.c.user == user, forms.c.completed_at.is_(None),
                                                      forms.c.source == "bot")
                             .order_by(forms.c.started_at.desc()).limit(1)).scalar()
    return get_form(state, found) if found else None


# ---- answering ---------------------------------------------------------------------------------
def to_bank_letters(entry: dict, shown: str) -> str:
    """Display letters (A, B, … in shuffled order; T/F as is) → the bank's own letters, sorted."""
    order = entry["order"]
    if set(order) == {"T", "F"}:
        return "".join(sorted(set(shown)))
    return "".join(sorted({order[LETTERS.index(c)] for c in shown if c in LETTERS[: len(order)]}))


# record_answer's statements, built once (building and keying a statement costs more client CPU than
# running it): advance the form from one position, only while unfinished; then the answer row
_ADVANCE = (update(forms).where(forms.c.id == bindparam("form_id"), forms.c.position == bindparam("at"),
                                forms.c.completed_at.is_(None))
            .values(position=bindparam("to"), completed_at=bindparam("finished"),
                    # the form's score (migration 0010) moves with its answer, in the same statement
                    answered=forms.c.answered + 1, correct=forms.c.correct + bindparam("right", type_=Integer),
                    # and its mark joins the form's JSON array (migration 0013): "[…]" → "[…,mark]"
                    marks=func.substr(forms.c.marks, 1, func.length(forms.c.marks) - 1, type_=Text)
                    .concat(case((forms.c.marks == "[]", ""), else_=",")).concat(bindparam("mark", type_=Text))
                    .concat("]")))
_ANSWER_COLUMNS = ("campaign", "user", "item_id", "answer", "correct", "answered_at")
_RECORD = responses.insert()
# PostgreSQL, both in one statement: the answer row exists exactly when the form advanced (a
# statement is atomic by itself), and a returned row means this call recorded it
_ADVANCED = _ADVANCE.returning(forms.c.id).cte("advanced")
_ADVANCE_AND_RECORD = (responses.insert().from_select(
    ["form", *_ANSWER_COLUMNS],
    select(_ADVANCED.c.id, *(bindparam(f"a_{c}", type_=Integer if c == "correct" else Text) for c in _ANSWER_COLUMNS)))
    .returning(responses.c.id))


def form_mark(correct: bool, item_id: str) -> str:
    """An answer's mark in forms.marks (migration 0013) as JSON text: "1<item id>" right, "0<item id>" wrong."""
    return json.dumps(("1" if correct else "0") + item_id, ensure_ascii=False)


def record_answer(state: State, form: Form, position: int, answer: str, item: Item) -> bool | None:
    """Store the answer to item `position` (bank letters) at once; returns whether it was correct,
    or None when that item was already answered (a repeated button press changes nothing).

    The form advances by a conditional UPDATE (only from `position`, only while unfinished), and the
    answer is inserted only if it did, all or nothing: of two presses that reach two processes at
    once exactly one updates a row and records its answer; the other waits for that row's lock and
    then matches nothing. On PostgreSQL both are one statement (`WITH advanced AS (UPDATE forms …
    RETURNING id) INSERT INTO responses SELECT … FROM advanced`: one round trip, no BEGIN/COMMIT);
    on SQLite two in one BEGIN IMMEDIATE transaction."""
    correct = answer == item.answer
    stamp = now()
    finished = stamp if position + 1 >= len(form.items) else None
    advance = {"form_id": form.id, "at": position, "to": position + 1, "finished": finished, "right": int(correct),
               "mark": form_mark(correct, item.id)}
    row = {"campaign": form.campaign, "user": form.user, "item_id": item.id, "answer": answer,
           "correct": int(correct), "answered_at": stamp}
    if backend(state.engine) == "postgresql":
        with autocommit(state.engine, write=True) as conn:
            if conn.execute(_ADVANCE_AND_RECORD, {**advance, **{f"a_{c}": v for c, v in row.items()}}).first() is None:
                return None
    else:
        with state.write() as conn:
            if conn.execute(_ADVANCE, advance).rowcount != 1:
                return None  # nothing written: the empty transaction just ends
            conn.execute(_RECORD, {"form": form.id, **row})
    form.position = position + 1
    form.completed_at = finished
    return correct


def form_score(state: State, form_id: str) -> tuple[int, int]:
    """(right, answered) of a form: the score its row keeps with every recorded answer (migration 0010)."""
    with state.read() as conn:
        row = conn.execute(select(forms.c.correct, forms.c.answered).where(forms.c.id == form_id)).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def bank_by_id(knowledge_dir: Path) -> dict[str, Item]:
    return {i.id: i for i in load_bank(knowledge_dir)}
