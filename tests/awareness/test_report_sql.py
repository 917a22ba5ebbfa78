"""Reports aggregated in the database (bot.awareness.report_sql) give the figures of the forms counted
one by one: a seeded random campaign with ties, empty and unfinished forms, missing profile values,
answers stored out of order, months that change at China midnight and enterprises, on both backends.

Two oracles: plain Python written here for the counts, rates, item statistics and ties of the upper–lower
index; and `build_report` over `respondent_results` (every form loaded as an object, the path reports
took before) for the whole report, design-based figures included."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

from bot.awareness import report_sql
from bot.awareness.campaigns import campaign_report
from bot.awareness.report import MISSING, build_report
from bot.awareness.report_sql import _ties
from bot.awareness.stats import point_biserial, upper_lower_discrimination
from bot.quiz import forms as quiz
from bot.storage.state import State
from bot.storage.tables import forms, responses
from tests.awareness.reference import rescore_forms, respondent_results

ITEMS = [f"Q{i:02d}" for i in range(12)]
REGIONS = ["柳南区", "柳北区", "城中区", None, "", " "]
THRESHOLD = 0.6
BASE = datetime(2024, 1, 31, 12, 0)  # China midnight of Feb 1 is 16:00 UTC: months change inside the data


def make_campaign(state: State, seed: int, n: int = 160) -> list[dict]:
    """Random forms of campaign R (and a few of campaign X, which must not leak in); returns the forms."""
    rnd = random.Random(seed)
    quiz.create_campaign(state, "R", "2024-01-01", "2024-12-31", threshold=THRESHOLD)
    quiz.create_campaign(state, "X", "2024-01-01", "2024-12-31", threshold=THRESHOLD)
    made, answers = [], []
    times = [(BASE + timedelta(minutes=37 * k)).strftime("%Y-%m-%dT%H:%M:%S+00:00") for k in range(40)]
    for f in range(n):
        kind = rnd.choices(["counted", "practice", "superseded"], [0.85, 0.1, 0.05])[0]
        done = rnd.random() > 0.05
        length = rnd.choice([0, 1, 3, 5, 5, 5, 6]) if rnd.random() < 0.95 else 0
        form = {"id": f"f{rnd.randrange(10**6):06d}-{f}", "campaign": "R", "user": f"u{f}" if kind != "practice"
                else f"u{rnd.randrange(5)}", "kind": kind, "items": "[]", "position": length,
                "started_at": times[0], "completed_at": rnd.choice(times) if done else None, "source": "import",
                "region": rnd.choice(REGIONS), "industry": rnd.choice(["mining", "construction", None]),
                "enterprise": rnd.choice(["e1", "e2", "e3", "e4", None])}
        made.append(form)
        for item in rnd.sample(ITEMS, length):
            correct = rnd.choice([0, 1, 1, None, 2])
            answers.append({"form": form["id"], "campaign": "R", "user": form["user"], "item_id": item,
                            "answer": "A", "correct": correct, "answered_at": times[0]})
    other = {"id": "x1", "campaign": "X", "user": "u1", "kind": "counted", "items": "[]", "position": 1,
             "started_at": times[0], "completed_at": times[0], "source": "import", "region": "柳南区",
             "industry": None, "enterprise": None}
    answers.append({"form": "x1", "campaign": "X", "user": "u1", "item_id": ITEMS[0], "answer": "A",
                    "correct": 0, "answered_at": times[0]})
    rnd.shuffle(answers)  # stored answer order ≠ form order: it must not matter
    with state.write() as conn:
        conn.execute(insert(forms), made + [other])
        conn.execute(insert(responses), answers)
        rescore_forms(conn, "R")  # answers written directly: the stored scores follow them
        rescore_forms(conn, "X")
    for form in made:
        form["answers"] = [(a["item_id"], bool(a["correct"])) for a in answers if a["form"] == form["id"]]
    return made


def month(iso: str) -> str:
    return (datetime.fromisoformat(iso) + timedelta(hours=8)).strftime("%Y-%m")


def region_of(form: dict) -> str:
    value = form["region"]
    return MISSING if value is None or value.strip() == "" else value


def reference(made: list[dict], region: str | None = None) -> dict:
    """The report's counts and item statistics, computed plainly."""
    counted = [f for f in made if f["kind"] == "counted" and f["completed_at"]
               and (region is None or f["region"] == region)]
    counted.sort(key=lambda f: (f["completed_at"], f["id"]))  # the form order: completion time, then id
    kept = [f for f in counted if f["answers"]]

    def aware(f: dict) -> bool:
        return sum(c for _, c in f["answers"]) / len(f["answers"]) >= THRESHOLD - 1e-9

    groups, months = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for f in kept:
        for table, key in ((groups, region_of(f)), (months, month(f["completed_at"]))):
            table[key][0] += 1
            table[key][1] += aware(f)
    items = {}
    for item in ITEMS:
        xs, ys, n, right = [], [], 0, 0
        for f in kept:
            score = sum(c for _, c in f["answers"])
            for answered, c in f["answers"]:
                if answered == item:
                    n, right = n + 1, right + c
                    if len(f["answers"]) > 1:
                        xs.append(c)
                        ys.append((score - c) / (len(f["answers"]) - 1))
        if n:
            usable = len(xs) >= 10
            items[item] = (n, right / n, upper_lower_discrimination(xs, ys) if usable else None,
                           point_biserial(xs, ys, rest=False) if usable else None)
    practice = [f for f in made if f["kind"] == "practice" and f["completed_at"]
                and (region is None or f["region"] == region)]
    return {"n": len(kept), "aware": sum(map(aware, kept)), "empty": len(counted) - len(kept),
            "groups": {k: tuple(v) for k, v in groups.items()}, "months": {k: tuple(v) for k, v in months.items()},
            "items": items, "practice": (len(practice), len({f["user"] for f in practice}))}


def close(a, b, path="report") -> None:
    """Equal, floats to 1e-9 (sums formed in another order differ in the last bits)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_report_matches_plain_python(state_url, seed):
    state = State(state_url, "salt")
    made = make_campaign(state, seed)
    for region in (None, "柳南区"):
        ref = reference(made, region)
        rep = campaign_report(state, "R", {}, by=["region"], region=region)
        o = rep["overall"]
        assert (o["n"], o["aware"]) == (ref["n"], ref["aware"])
        assert rep["excluded"] == {"empty_forms": ref["empty"], "duplicate_forms": 0}
        assert {g["key"]["region"]: (g["n"], g["aware"]) for g in rep["groups"]} == ref["groups"]
        assert {m["month"]: (m["n"], m["aware"]) for m in rep["months"]} == ref["months"]
        assert {"2024-01", "2024-02"} <= set(ref["months"]) or region
        got = {i["item_id"]: (i["n"], i["correct_rate"], i["discrimination"], i["point_biserial"])
               for i in rep["items"]}
        assert got.keys() == ref["items"].keys()
        for item, (n, rate, d, pb) in ref["items"].items():
            assert got[item][:3] == (n, rate, d), item  # D exactly: ties in form order
            assert (got[item][3] is None) == (pb is None) and (pb is None or math.isclose(got[item][3], pb,
                                                                                           rel_tol=1e-9)), item
        assert (rep["practice"]["forms"], rep["practice"]["respondents"]) == ref["practice"]
        assert region or sum(i["discrimination"] is not None for i in rep["items"]) >= 8  # not a vacuous check
    # the whole report, design-based figures too, as build_report gives it for the forms one by one
    counted, practice = respondent_results(state, "R")
    for by, strata in ((["region"], ()), (["industry", "month"], ("region",)), ([], ("industry",))):
        close(campaign_report(state, "R", {}, by=by, strata=strata),
              build_report("R", THRESHOLD, counted, {}, by=by, practice=practice, strata=strata))


@pytest.mark.parametrize("bucket_chars", [report_sql.BUCKET_CHARS, (1,), (13,), (16,), (1, 13, 15), (4, 16)])
def test_upper_lower_ties_follow_form_order(state_url, monkeypatch, bucket_chars):
    """Many respondents with the same rest score, right and wrong mixed: the 27 % boundary falls inside
    them, and which of them are in the lower and upper groups is decided by completion order.

    bucket_chars: buckets of the form order of any sizes give the same figures (1: one bucket, so every
    position is ordered inside it; 13: hours; 16: minutes, one form each, so no position falls inside
    a bucket and no tied answer is read; (1, 13, 15): the cut's bucket split twice, into hours, then
    ten-minute buckets)."""
    monkeypatch.setattr(report_sql, "BUCKET_CHARS", bucket_chars)
    state = State(state_url, "salt")
    quiz.create_campaign(state, "T", "2024-01-01", "2024-12-31", threshold=THRESHOLD)
    made, answers = [], []
    rnd = random.Random(7)
    for f in range(40):
        when = (BASE + timedelta(minutes=f)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        made.append({"id": f"t{f:02d}", "campaign": "T", "user": f"u{f}", "kind": "counted", "items": "[]",
                     "position": 2, "started_at": when, "completed_at": when, "source": "import"})
        rest = 1 if f % 4 else 0  # 30 forms with rest score 1, 10 with 0
        answers += [{"form": f"t{f:02d}", "campaign": "T", "user": f"u{f}", "item_id": "A",
                     "answer": "A", "correct": rnd.choice([0, 1]), "answered_at": when},
                    {"form": f"t{f:02d}", "campaign": "T", "user": f"u{f}", "item_id": "B",
                     "answer": "A", "correct": rest, "answered_at": when}]
    with state.write() as conn:
        conn.execute(insert(forms), made)
        conn.execute(insert(responses), answers)
        rescore_forms(conn, "T")
    xs = [a["correct"] == 1 for a in answers if a["item_id"] == "A"]
    ys = [float(a["correct"]) for a in answers if a["item_id"] == "B"]
    expected = upper_lower_discrimination(xs, ys)
    item = {i["item_id"]: i for i in campaign_report(state, "T", {})["items"]}["A"]
    assert item["discrimination"] == expected
    # the same rest scores in the reverse completion order give another D: the order is what decides
    assert upper_lower_discrimination(xs[::-1], ys[::-1]) != expected

    # a whole bank asks for hundreds of tied scores at once (SQLite caps UNION ALL at 500 terms)
    wanted = [("A", y, side, m) for y, size in ((0.0, 10), (1.0, 30)) for side in ("lower", "upper")
              for m in range(1, size + 1)] * 8
    assert len(wanted) > 500
    with state.read() as conn:
        got = _ties(conn, "T", None, wanted)
    for item, y, side, m in wanted:
        tied = [x for x, rest in zip(xs, ys) if rest == y]
        assert got[(item, y, side, m)] == sum(tied[:m] if side == "lower" else tied[-m:])
