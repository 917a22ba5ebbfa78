"""Campaign commands, CSV import/export and reports from the state database (bot/campaigns.py).

A known data set (40 respondents × 20 real bank items with chosen scores) is imported through the
CLI; expected counts, rates and Wilson intervals are worked out here from the chosen scores with the
closed form of the interval, not read back from bot.awareness.report. No index and no model are needed.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bot.awareness.campaigns import (  # noqa: E402
    campaign_report,
    export_responses,
    import_responses,
    normalize_answer,
)
from bot.awareness.responses import respondent_key
from bot.config import load_settings
from bot.quiz import forms as quiz  # noqa: E402
from bot.quiz.bank import load_bank
from bot.storage.state import State, load_pseudonym_key  # noqa: E402
from bot.taxonomy import load_taxonomy  # noqa: E402
from tests.awareness.reference import respondent_results
from tests.helpers import REPO_ROOT as REPO
from tests.helpers import count as count_rows  # noqa: E402
from tests.helpers import run_cli, sql, wilson_by_hand  # noqa: E402
from tests.helpers import write_csv as helpers_write_csv

Z = 1.959963984540054
TARGET = 0.85
HEADER = ["respondent_id", "item_id", "answer", "answered_at", "industry", "region", "enterprise_size",
          "role", "sex", "age_band", "education"]
# the export: the import columns (all profile fields) plus correct, which the import ignores
EXPORT_HEADER = ["respondent_id", "item_id", "answer", "correct", "answered_at", "industry", "region",
                 "enterprise_size", "role", "sex", "age_band", "education", "years_service", "enterprise"]


def status_by_hand(x: int, n: int) -> str:
    low, high = wilson_by_hand(x, n)
    return "met" if low >= TARGET else "not_met" if high < TARGET else "undecided"


# ---- the known data set ------------------------------------------------------------------------
# (industry, score out of 20, how many): threshold 0.8 → aware when score ≥ 16 (16 is exactly 0.8)
PLAN = [("construction", 20, 10), ("construction", 16, 8), ("construction", 15, 7),
        ("manufacturing", 18, 5), ("manufacturing", 10, 10)]
# answer times by respondent index % 3, with the local (Asia/Shanghai) month each must count in
TIMES = [
    ("2024-01-15T10:00:{s:02d}+08:00", "2024-01"),
    ("2024-02-01 07:00:{s:02d}", "2024-02"),  # no zone = China time; in UTC still 31 January
    ("2024-03-31T20:00:{s:02d}Z", "2024-04"),  # UTC 31 March = 1 April in China
]


@pytest.fixture(scope="module")
def bank():
    return load_bank(REPO / "knowledge")


@pytest.fixture(scope="module")
def items(bank):
    """20 bank items: 8 single, 6 multiple, 6 true/false."""
    by_type = {t: [i for i in bank if i.type == t] for t in ("single", "multiple", "truefalse")}
    return by_type["single"][:8] + by_type["multiple"][:6] + by_type["truefalse"][:6]


def wrong(item) -> str:
    if item.type == "multiple":
        return item.answer[0]  # a proper subset of the key is wrong
    return next(letter for letter in item.options if letter != item.answer)


def respondents() -> list[dict]:
    out = []
    for industry, score, count in PLAN:
        for _ in range(count):
            idx = len(out)
            out.append({"id": f"R{idx:03d}", "industry": industry, "score": score, "idx": idx,
                        "month": TIMES[idx % 3][1]})
    return out


def dataset_rows(items, people=None) -> list[list[str]]:
    rows = []
    for p in people or respondents():
        fmt = TIMES[p["idx"] % 3][0]
        size = "small_micro" if p["idx"] % 2 else "large"
        industry = "建筑施工" if p["idx"] == 1 else p["industry"]  # a Chinese label is accepted too
        for k, item in enumerate(items):
            answer = item.answer if k < p["score"] else wrong(item)
            if item.type == "multiple" and k < p["score"]:
                answer = " , ".join(reversed(answer)).lower()  # order, case and separators are normalised
            rows.append([p["id"], item.id, answer, fmt.format(s=k), industry, "柳南区", size, "worker",
                         "男" if p["idx"] % 2 else "女", "25-34", "高中/中专/技校"])
    return rows


def write_csv(path: Path, rows, header=HEADER) -> Path:
    return helpers_write_csv(path, rows, header)


def rounded(value):
    """Floats to 9 places (sums in another order differ in the last bit), recursively."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def open_state(data_dir: Path) -> State:
    state = State(os.environ["OHBOT_DATABASE_URL"], load_pseudonym_key(load_settings(str(data_dir))))
    return state


@pytest.fixture(autouse=True)
def _no_env_salt(monkeypatch, state_url):
    """No salt or data dir from the environment; the state database of each backend (OHBOT_DATABASE_URL)."""
    monkeypatch.delenv("OHBOT_SALT", raising=False)
    monkeypatch.delenv("OHBOT_DATA_DIR", raising=False)
    monkeypatch.setenv("OHBOT_DATABASE_URL", state_url)


@pytest.fixture
def imported(tmp_path, items, capsys):
    """A data dir with campaign C1 (threshold 0.8) holding the known data set."""
    assert run_cli(capsys, tmp_path, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    path = write_csv(tmp_path / "answers.csv", dataset_rows(items))
    code, out, err = run_cli(capsys, tmp_path, "responses", "import", str(path), "--campaign", "C1")
    assert code == 0, err
    assert "800" in out
    return tmp_path


def table_counts(state: State) -> tuple[int, int, int]:
    return tuple(count_rows(state, t) for t in ("users", "forms", "responses"))


# ---- campaign commands -------------------------------------------------------------------------
def test_campaign_create_list_close(tmp_path, capsys):
    code, out, _ = run_cli(capsys, tmp_path, "campaign", "create", "春季", "--start", "2024-03-01", "--end",
                       "2024-05-31", "--region", "柳州市", "--threshold", "0.6", "--form-size", "10")
    assert code == 0 and "春季" in out
    assert run_cli(capsys, tmp_path, "campaign", "create", "春季", "--start", "2024-03-01", "--end", "2024-05-31")[0] == 2
    assert run_cli(capsys, tmp_path, "campaign", "create", "x", "--start", "2024-06-01", "--end", "2024-05-31")[0] == 2
    code, out, _ = run_cli(capsys, tmp_path, "campaign", "list", "--json")
    (c,) = json.loads(out)
    assert (c["name"], c["region"], c["threshold"], c["form_size"], c["status"], c["counted"]) == \
        ("春季", "柳州市", 0.6, 10, "open", 0)
    assert run_cli(capsys, tmp_path, "campaign", "close", "春季")[0] == 0
    assert json.loads(run_cli(capsys, tmp_path, "campaign", "list", "--json")[1])[0]["status"] == "closed"
    code, out, _ = run_cli(capsys, tmp_path, "campaign", "list")
    assert "已结束" in out
    assert run_cli(capsys, tmp_path, "campaign", "close", "nope")[0] == 2


# ---- import / export ---------------------------------------------------------------------------
def test_normalize_answer(bank):
    single = next(i for i in bank if i.type == "single" and len(i.options) == 4)
    multiple = next(i for i in bank if i.type == "multiple" and set("ACD") <= set(i.options))
    tf = next(i for i in bank if i.type == "truefalse")
    assert normalize_answer(" b ", single) == "B"
    assert normalize_answer("ｃ", single) == "C"  # full-width
    assert normalize_answer(" d,c a", multiple) == "ACD"
    assert normalize_answer("C、A、D", multiple) == "ACD"
    assert normalize_answer("t", tf) == "T"
    for bad, item in (("E", single), ("AB", single), ("", single), ("TF", tf), ("A", tf), ("AZ", multiple)):
        with pytest.raises(ValueError):
            normalize_answer(bad, item)


def test_import_export_round_trip(imported, items, capsys):
    state = open_state(imported)
    assert table_counts(state) == (40, 40, 800)
    forms = sql(state, "select * from forms")
    assert {(f["kind"], f["source"], f["position"]) for f in forms} == {("counted", "import", 20)}
    assert all(f["completed_at"] for f in forms)
    raw = {p["id"]: p for p in respondents()}
    key_to_raw = {respondent_key(state, "C1", rid): rid for rid in raw}
    # the stored items are the answered items in file order
    first = next(f for f in forms if key_to_raw[f["user"]] == "R000")
    assert [e["id"] for e in json.loads(first["items"])] == [i.id for i in items]

    out_file = imported / "export.csv"
    code, _, _ = run_cli(capsys, imported, "responses", "export", "--campaign", "C1", "--out", str(out_file))
    assert code == 0
    text = out_file.read_text(encoding="utf-8-sig")
    assert not any(rid in text for rid in raw)  # salted keys only, never a raw id
    exported = list(csv.DictReader(io.StringIO(text)))
    assert list(exported[0]) == EXPORT_HEADER and len(exported) == 800
    original = {}
    for row in dataset_rows(items):
        original[(row[0], row[1])] = row
    by_id = {i.id: i for i in items}
    for e in exported:
        rid = key_to_raw[e["respondent_id"]]
        o = original[(rid, e["item_id"])]
        assert e["answer"] == normalize_answer(o[2], by_id[e["item_id"]])
        assert e["correct"] == ("1" if e["answer"] == by_id[e["item_id"]].answer else "0")
        assert e["answered_at"].endswith("+08:00")
        want = datetime.fromisoformat(o[3].replace("Z", "+00:00"))
        if want.tzinfo is None:
            want = want.replace(tzinfo=datetime.fromisoformat(e["answered_at"]).tzinfo)
        assert datetime.fromisoformat(e["answered_at"]) == want
        assert e["industry"] == raw[rid]["industry"]  # the label 建筑施工 was stored as its code
        assert (e["region"], e["role"], e["age_band"], e["education"]) == ("柳南区", "worker", "25-34", "senior")  # labels stored as codes

    # the export imports into another campaign and gives the same report
    assert run_cli(capsys, imported, "campaign", "create", "C2", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    code, _, err = run_cli(capsys, imported, "responses", "import", str(out_file), "--campaign", "C2")
    assert code == 0, err
    r1 = campaign_report(state, "C1", load_bank(REPO / "knowledge"), by=["industry", "month"])
    r2 = campaign_report(state, "C2", load_bank(REPO / "knowledge"), by=["industry", "month"])
    for key in ("overall", "groups", "months", "items", "dimensions"):
        assert rounded(r1[key]) == rounded(r2[key])
    # export to standard output gives the same rows
    code, out, _ = run_cli(capsys, imported, "responses", "export", "--campaign", "C1")
    assert list(csv.DictReader(io.StringIO(out))) == exported


def test_malformed_rows_rejected_with_line_numbers(tmp_path, items, bank, capsys):
    state = open_state(tmp_path)
    quiz.create_campaign(state, "C1", "2024-01-01", "2024-12-31")
    single = next(i for i in items if i.type == "single" and len(i.options) == 4)
    tf = next(i for i in items if i.type == "truefalse")
    ok = ["2024-03-05 10:00", "construction", "", "", "worker", "", "", ""]
    rows = [
        ["R1", single.id, single.answer, *ok],                          # line 2: fine
        ["R1", tf.id, "t", *ok],                                        # line 3: fine
        ["R2", "Q9999", "A", *ok],                                      # line 4: unknown item
        ["R2", single.id, "E", *ok],                                    # line 5: letter not an option
        ["R3", single.id, "AB", *ok],                                   # line 6: two letters, single item
        ["R4", single.id, "A", "2024-02-30 10:00", *ok[1:]],            # line 7: no such date
        ["R5", single.id, "A", "2024-03-05", "astronaut", *ok[2:]],     # line 8: unknown industry code
        ["R6", tf.id, "F", *ok],                                        # line 9: fine
        ["R1", single.id, "C", *ok],                                    # line 10: same item again
        ["R7", single.id, "A", "yesterday", *ok[1:]],                   # line 11: not a date
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    count, errors = import_responses(state, "C1", path, bank, load_taxonomy(REPO / "knowledge"))
    assert count == 0
    lines = [int(e.split(":")[0].split()[1]) for e in errors]
    assert lines == [4, 5, 6, 7, 8, 10, 11]
    text = "\n".join(errors)
    assert "Q9999" in text and "astronaut" in text and "2024-02-30" in text
    assert table_counts(state) == (0, 0, 0)  # nothing half-imported

    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(path), "--campaign", "C1")
    assert code == 1 and "line 4:" in err and "nothing was imported" in err
    assert table_counts(state) == (0, 0, 0)

    # a bad header is one error on line 1
    bad_header = write_csv(tmp_path / "h.csv", [["R1", single.id, "A"]], header=["respondent", "item_id", "answer"])
    count, errors = import_responses(state, "C1", bad_header, bank, load_taxonomy(REPO / "knowledge"))
    assert count == 0 and len(errors) == 1 and errors[0].startswith("line 1:") and "answered_at" in errors[0]
    with pytest.raises(ValueError):
        import_responses(state, "nope", path, bank, {})


def test_respondent_cannot_count_twice(imported, items, bank, capsys):
    state = open_state(imported)
    before = table_counts(state)
    people = [p for p in respondents() if p["id"] == "R005"] + [{**respondents()[0], "id": "R100"}]
    path = write_csv(imported / "again.csv", dataset_rows(items[:2], people))
    count, errors = import_responses(state, "C1", path, bank, load_taxonomy(REPO / "knowledge"))
    assert count == 0
    assert len(errors) == 1 and errors[0].startswith("line 2:") and "lines 2, 3" in errors[0] and "R005" in errors[0]
    assert table_counts(state) == before  # R100 was not imported either

    # a bot user with a counted form cannot get a second counted one either
    campaign = quiz.get_campaign(state, "C1")
    key = respondent_key(state, "C1", "R005")
    assert quiz.start_form(state, bank, key, {}, campaign).kind == "practice"


def test_report_numbers_known_data_set(imported, items, capsys):
    people = respondents()
    aware = [p for p in people if p["score"] >= 16]
    code, out, _ = run_cli(capsys, imported, "report", "--campaign", "C1", "--by", "industry", "--json")
    assert code == 0
    rep = json.loads(out)
    assert {"campaign", "threshold", "target", "overall", "groups", "items"} <= set(rep)
    assert (rep["campaign"], rep["threshold"], rep["target"]) == ("C1", 0.8, 0.85)
    o = rep["overall"]
    n, x = len(people), len(aware)
    assert (o["n"], o["aware"]) == (40, 23) == (n, x)
    assert o["rate"] == pytest.approx(x / n)
    assert (o["ci_low"], o["ci_high"]) == pytest.approx(wilson_by_hand(x, n))
    assert o["status"] == status_by_hand(x, n) == "not_met"

    groups = {g["key"]["industry"]: g for g in rep["groups"]}
    assert set(groups) == {"construction", "manufacturing"}
    for industry, g in groups.items():
        assert {"key", "n", "aware", "rate", "ci_low", "ci_high", "status"} <= set(g)
        members = [p for p in people if p["industry"] == industry]
        gx = sum(p["score"] >= 16 for p in members)
        assert (g["n"], g["aware"]) == (len(members), gx)
        assert g["rate"] == pytest.approx(gx / len(members))
        assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson_by_hand(gx, len(members)))
        assert g["status"] == status_by_hand(gx, len(members))
        assert g["small_sample"] is (len(members) < 30)
    assert (groups["construction"]["n"], groups["construction"]["aware"]) == (25, 18)  # 8 exactly at 0.8 count

    # items: every answered item once per respondent, correct rate from the scores
    rows = {i["item_id"]: i for i in rep["items"]}
    assert set(rows) == {i.id for i in items}
    for k, item in enumerate(items):
        assert rows[item.id]["n"] == 40
        assert rows[item.id]["correct_rate"] == pytest.approx(sum(p["score"] > k for p in people) / 40)

    # by month, in China time (two of the three answer times fall in another UTC month)
    code, out, _ = run_cli(capsys, imported, "report", "--campaign", "C1", "--by", "month", "--json", "--min-n", "10")
    rep = json.loads(out)
    months = {g["key"]["month"]: g for g in rep["groups"]}
    assert set(months) == {"2024-01", "2024-02", "2024-04"}
    for month, g in months.items():
        members = [p for p in people if p["month"] == month]
        gx = sum(p["score"] >= 16 for p in members)
        assert (g["n"], g["aware"]) == (len(members), gx)
        assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson_by_hand(gx, len(members)))
        assert g["small_sample"] is False and g["rank"] is not None  # n ≥ --min-n 10
    assert [m["month"] for m in rep["months"]] == ["2024-01", "2024-02", "2024-04"]

    # text: labels instead of codes
    code, out, _ = run_cli(capsys, imported, "report", "--campaign", "C1", "--by", "industry", "--by", "enterprise_size")
    assert code == 0
    assert "建筑施工" in out and "制造业" in out and "小微型" in out and "construction" not in out
    assert "40 人" in out and "57.5%" in out


def test_threshold_exactly_met_counts_as_aware(tmp_path, items, bank):
    state = open_state(tmp_path)
    taxonomy = load_taxonomy(REPO / "knowledge")
    for name, threshold, score in (("T80", 0.8, 16), ("T70", 0.7, 14), ("T85", 0.85, 17)):
        quiz.create_campaign(state, name, "2024-01-01", "2024-12-31", threshold=threshold)
        people = [{"id": f"{name}-a", "industry": "mining", "score": score, "idx": 0, "month": "2024-01"},
                  {"id": f"{name}-b", "industry": "mining", "score": score - 1, "idx": 3, "month": "2024-01"}]
        path = write_csv(tmp_path / f"{name}.csv", dataset_rows(items, people))
        assert import_responses(state, name, path, bank, taxonomy)[1] == []
        o = campaign_report(state, name, bank)["overall"]
        assert (o["n"], o["aware"]) == (2, 1), name


def test_practice_forms_reported_separately(imported, bank):
    state = open_state(imported)
    campaign = quiz.get_campaign(state, "C1")
    by_id = {i.id: i for i in bank}
    before = campaign_report(state, "C1", bank)

    key = respondent_key(state, "C1", "R000")
    form = quiz.start_form(state, bank, key, {"role": "worker"}, campaign)
    assert form.kind == "practice"
    for k, entry in enumerate(form.items):
        assert quiz.record_answer(state, form, k, by_id[entry["id"]].answer, by_id[entry["id"]]) is True
    unfinished = quiz.start_form(state, bank, key, {}, campaign)  # started, never finished: not reported
    quiz.record_answer(state, unfinished, 0, "Z", by_id[unfinished.items[0]["id"]])

    after = campaign_report(state, "C1", bank)
    assert after["practice"] == {"forms": 1, "respondents": 1, "mean_score_rate": 1.0}
    assert after["overall"] == before["overall"] and after["items"] == before["items"]
    counted, practice = respondent_results(state, "C1")
    assert len(counted) == 40 and len(practice) == 1 and practice[0].respondent == key

    # a bot user's first completed form in the campaign is counted
    bot_user = state.user_key("telegram", 4242)
    form = quiz.start_form(state, bank, bot_user, {}, campaign)
    assert form.kind == "counted"
    for k, entry in enumerate(form.items):
        quiz.record_answer(state, form, k, by_id[entry["id"]].answer, by_id[entry["id"]])
    o = campaign_report(state, "C1", bank, by=["industry"])
    assert (o["overall"]["n"], o["overall"]["aware"]) == (41, 24)
    assert any(g["key"]["industry"] == "未填写" and g["n"] == 1 for g in o["groups"])
    buf = io.StringIO()
    assert export_responses(state, "C1", buf) == 800 + len(form.items)


def test_forget_changes_the_report(imported, bank):
    state = open_state(imported)
    before = campaign_report(state, "C1", bank, by=["industry"])
    gone = next(p for p in respondents() if p["industry"] == "construction" and p["score"] == 20)
    state.forget(respondent_key(state, "C1", gone["id"]))
    after = campaign_report(state, "C1", bank, by=["industry"])
    assert (after["overall"]["n"], after["overall"]["aware"]) == (39, 22)
    assert after["overall"]["ci_low"] == pytest.approx(wilson_by_hand(22, 39)[0])
    groups = {g["key"]["industry"]: g for g in after["groups"]}
    assert (groups["construction"]["n"], groups["construction"]["aware"]) == (24, 17)
    assert {g["key"]["industry"]: g for g in before["groups"]}["manufacturing"] == groups["manufacturing"]
    assert table_counts(state) == (39, 39, 780)


def test_report_out_writes_files(imported, capsys):
    out_dir = imported / "out"
    code, out, _ = run_cli(capsys, imported, "report", "--campaign", "C1", "--by", "industry", "--out", str(out_dir))
    assert code == 0 and "知晓率" in out
    for name in ("report.json", "overall.csv", "groups.csv", "items.csv", "dimensions.csv", "months.csv",
                 "report.xlsx", "awareness_by_group.png", "awareness_by_month.png", "report.html"):
        assert (out_dir / name).stat().st_size > 0, name
    assert (out_dir / "awareness_by_group.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out_dir / "report.xlsx").read_bytes()[:2] == b"PK"
    written = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert (written["overall"]["n"], written["overall"]["aware"]) == (40, 23)
    assert {g["key"]["industry"] for g in written["groups"]} in ({"建筑施工", "制造业"}, {"construction", "manufacturing"})
    groups = (out_dir / "groups.csv").read_text(encoding="utf-8-sig")
    assert "建筑施工" in groups and "制造业" in groups
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "C1" in html and "data:image/png;base64," in html


def test_commands_do_not_load_the_model(imported):
    """campaign, report and responses never load the embedding model (nor torch)."""
    code = (
        "import sys; from bot.cli import main\n"
        f"assert main(['--data-dir', {str(imported)!r}, 'report', '--campaign', 'C1', '--json']) == 0\n"
        f"assert main(['--data-dir', {str(imported)!r}, 'campaign', 'list']) == 0\n"
        "print('LOADED', [m for m in ('torch', 'sentence_transformers', 'onnxruntime') if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OHBOT_SALT"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
