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

from bot.config import AWARE_THRESHOLD, FORM_SIZE
from bot.errors import CampaignError
from bot.quiz.bank import Item, load_bank
from bot.storage.state import State, now

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
    with state.lock:
        if state.db["campaigns"].count_where("name = ?", [name]):
            raise CampaignError(f"a campaign named {name!r} exists already")
        state.db.table("campaigns").insert({"name": name, "start": start, "end": end, "region": region,
                                      "threshold": threshold, "form_size": form_size, "status": "open",
                                      "created": now()})
    return get_campaign(state, name)


def get_campaign(state: State, name: str) -> Campaign:
    rows = list(state.db["campaigns"].rows_where("name = ?", [name]))
    if not rows:
        raise CampaignError(f"no campaign named {name!r} (see `ohbot campaign list`)")
    r = rows[0]
    return Campaign(r["name"], r["start"], r["end"], r["region"], r["threshold"], r["form_size"], r["status"])


def list_campaigns(state: State) -> list[Campaign]:
    return [get_campaign(state, r["name"]) for r in state.db["campaigns"].rows_where(order_by="created")]


def close_campaign(state: State, name: str) -> None:
    get_campaign(state, name)
    with state.lock:
        state.db.table("campaigns").update(name, {"status": "closed"})


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
    The check and the insert are one transaction, so two taps or two processes cannot both count.

    Items and options are drawn at random, seeded by the form's random id; with `seed` set
    (OHBOT_QUIZ_SEED: tests and demonstrations) the draw depends only on the seed, the user and how
    many forms the user already has, so the same run draws the same forms every time."""
    size = campaign.form_size if campaign else DEFAULT_FORM_SIZE
    form_id = secrets.token_hex(8)
    if seed is None:
        rng = random.Random(form_id)
    else:
        previous = state.db.execute("select count(*) from forms where user = ?", [user]).fetchone()[0]
        rng = random.Random(f"{seed}:{user}:{previous}")
    items = draw_items(bank, size, profile.get("role"), profile.get("industry"), rng)
    layout = []
    for item in items:
        order = list(item.options)
        if item.type != "truefalse":
            rng.shuffle(order)
        layout.append({"id": item.id, "order": order})
    with state.write() as conn:
        counted = campaign is not None and not conn.execute(
            "select 1 from forms where campaign = ? and user = ? and kind = 'counted'",
            [campaign.name, user]).fetchone()
        form = Form(form_id, campaign.name if campaign else None, user, "counted" if counted else "practice",
                    layout, 0, None)
        conn.execute(
            "insert into forms (id, campaign, user, kind, items, position, started_at, completed_at, source) "
            "values (?, ?, ?, ?, ?, 0, ?, null, 'bot')",
            [form.id, form.campaign, user, form.kind, json.dumps(layout), now()])
    return form


def get_form(state: State, form_id: str) -> Form | None:
    rows = list(state.db["forms"].rows_where("id = ?", [form_id]))
    if not rows:
        return None
    r = rows[0]
    return Form(r["id"], r["campaign"], r["user"], r["kind"], json.loads(r["items"]), r["position"], r["completed_at"])


def unfinished_form(state: State, user: str) -> Form | None:
    rows = list(state.db["forms"].rows_where("user = ? and completed_at is null and source = 'bot'", [user],
                                             order_by="started_at desc", limit=1))
    return get_form(state, rows[0]["id"]) if rows else None


# ---- answering ---------------------------------------------------------------------------------
def to_bank_letters(entry: dict, shown: str) -> str:
    """Display letters (A, B, … in shuffled order; T/F as is) → the bank's own letters, sorted."""
    order = entry["order"]
    if set(order) == {"T", "F"}:
        return "".join(sorted(set(shown)))
    return "".join(sorted({order[LETTERS.index(c)] for c in shown if c in LETTERS[: len(order)]}))


def record_answer(state: State, form: Form, position: int, answer: str, item: Item) -> bool | None:
    """Store the answer to item `position` (bank letters) at once; returns whether it was correct,
    or None when that item was already answered (a repeated button press changes nothing)."""
    correct = answer == item.answer
    with state.write() as conn:
        current = conn.execute("select position, completed_at from forms where id = ?", [form.id]).fetchone()
        if current is None or current[0] != position or current[1]:
            return None  # nothing written: the empty transaction just ends
        conn.execute(
            "insert into responses (form, campaign, user, item_id, answer, correct, answered_at) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [form.id, form.campaign, form.user, item.id, answer, int(correct), now()])
        finished = now() if position + 1 >= len(form.items) else None
        conn.execute("update forms set position = ?, completed_at = ? where id = ?",
                     [position + 1, finished, form.id])
    form.position = position + 1
    form.completed_at = finished
    return correct


def form_score(state: State, form_id: str) -> tuple[int, int]:
    row = next(state.db.query("select sum(correct) as c, count(*) as n from responses where form = ?", [form_id]))
    return int(row["c"] or 0), int(row["n"] or 0)


def bank_by_id(knowledge_dir: Path) -> dict[str, Item]:
    return {i.id: i for i in load_bank(knowledge_dir)}
