"""Issue #11, finding 2: one campaign's data never rewrites another's report.

A form keeps the profile it was answered with, and reports group by it; imported respondent ids
are the campaign's own unless the bureau links them (`--link-campaigns`); existing databases get
the snapshot from the current profile when they are upgraded (migration 0009).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage import migrate
from bot.storage.state import State
from tests.helpers import KNOWLEDGE, run_cli

HEADER = ["respondent_id", "item_id", "answer", "answered_at", "industry", "region", "enterprise_size", "role"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("OHBOT_SALT", "OHBOT_DATA_DIR", "OHBOT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def items():
    return [i for i in load_bank(KNOWLEDGE) if i.type == "single"][:5]


def answers_csv(path: Path, people: dict[str, str], right: int = 5) -> Path:
    """respondent id → region; each answers 5 items, the first `right` correctly."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for rid, region in people.items():
            for k, item in enumerate(items()):
                answer = item.answer if k < right else next(o for o in item.options if o != item.answer)
                w.writerow([rid, item.id, answer, "2024-03-05 10:00", "construction", region, "large", "worker"])
    return path


def by_region(capsys, data_dir: Path, campaign: str) -> dict[str, int]:
    code, out, err = run_cli(capsys, data_dir, "report", "--campaign", campaign, "--by", "region", "--json")
    assert code == 0, err
    return {g["key"]["region"]: g["n"] for g in json.loads(out)["groups"]}


def campaigns(capsys, data_dir: Path, *names: str) -> None:
    for name in names:
        assert run_cli(capsys, data_dir, "campaign", "create", name, "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0


def test_importing_the_same_respondent_id_into_another_campaign_leaves_the_first_report(tmp_path, capsys):
    campaigns(capsys, tmp_path, "A", "B")
    a = answers_csv(tmp_path / "a.csv", {"1": "柳南区", "2": "柳南区", "3": "柳北区"})
    assert run_cli(capsys, tmp_path, "responses", "import", str(a), "--campaign", "A")[0] == 0
    before = by_region(capsys, tmp_path, "A")
    assert before == {"柳南区": 2, "柳北区": 1}
    b = answers_csv(tmp_path / "b.csv", {"1": "城中区", "2": "城中区"})
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(b), "--campaign", "B")
    assert code == 0, err
    assert by_region(capsys, tmp_path, "A") == before
    assert by_region(capsys, tmp_path, "B") == {"城中区": 2}
    # two campaigns, two people each time: the exports share no respondent key
    keys = {}
    for name in ("A", "B"):
        out = run_cli(capsys, tmp_path, "responses", "export", "--campaign", name)[1]
        keys[name] = {r["respondent_id"] for r in csv.DictReader(io.StringIO(out))}
    assert len(keys["A"]) == 3 and len(keys["B"]) == 2 and not keys["A"] & keys["B"]


def test_linked_campaigns_share_the_key_and_still_keep_each_forms_profile(tmp_path, capsys):
    campaigns(capsys, tmp_path, "A", "B")
    a = answers_csv(tmp_path / "a.csv", {"1": "柳南区", "2": "柳北区"})
    assert run_cli(capsys, tmp_path, "responses", "import", str(a), "--campaign", "A", "--link-campaigns")[0] == 0
    b = answers_csv(tmp_path / "b.csv", {"1": "城中区"})
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(b), "--campaign", "B", "--link-campaigns")
    assert code == 0, err
    assert by_region(capsys, tmp_path, "A") == {"柳南区": 1, "柳北区": 1}
    assert by_region(capsys, tmp_path, "B") == {"城中区": 1}
    exported = {name: {r["respondent_id"] for r in csv.DictReader(io.StringIO(
        run_cli(capsys, tmp_path, "responses", "export", "--campaign", name)[1]))} for name in ("A", "B")}
    assert len(exported["A"] & exported["B"]) == 1  # respondent 1 is one person in both


def test_a_bot_user_changing_region_later_does_not_change_an_earlier_form(tmp_path):
    state = State(tmp_path / "ohbot.db", "salt")
    quiz.create_campaign(state, "C", "2024-01-01", "2099-12-31", form_size=5)
    campaign = quiz.get_campaign(state, "C")
    user = state.get_user("u1")
    user.profile.update(region="柳南区", role="worker", industry="construction", enterprise_size="large")
    state.save_user(user)
    bank = {i.id: i for i in load_bank(KNOWLEDGE)}
    form = quiz.start_form(state, list(bank.values()), user.key, user.profile, campaign, seed=3)
    for position, entry in enumerate(form.items):
        item = bank[entry["id"]]
        assert quiz.record_answer(state, form, position, item.answer, item) is True
    from bot.awareness.campaigns import campaign_report

    def regions() -> dict:
        return {g["key"]["region"]: g["n"] for g in campaign_report(state, "C", list(bank.values()), by=["region"])["groups"]}

    assert regions() == {"柳南区": 1}
    user.profile["region"] = "城中区"
    state.save_user(user)
    assert regions() == {"柳南区": 1}


def test_the_upgrade_copies_the_current_profile_into_existing_forms(tmp_path):
    path = tmp_path / "ohbot.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0006")
        conn.execute(text("insert into users (key, region, industry) values ('u1', '柳南区', 'mining')"))
        conn.execute(text("insert into forms (id, campaign, \"user\", kind, items, position, started_at, "
                          "completed_at, source) values ('f1', 'C', 'u1', 'counted', '[]', 0, "
                          "'2024-01-01T00:00:00+00:00', '2024-01-01T00:10:00+00:00', 'bot')"))
    engine.dispose()
    state = State(path, "salt")  # a SQLite file upgrades itself when opened
    assert migrate.current(state.engine) == migrate.head()
    with state.read() as conn:
        assert conn.execute(text("select region, industry, role from forms where id = 'f1'")).one() == \
            ("柳南区", "mining", None)
