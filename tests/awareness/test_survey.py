"""Survey-grade campaigns end to end (issue #15): enterprise clusters, post-stratification, the wide
import layout with errors by line and column, and exports for statisticians (CSV, XLSX, SPSS, Stata).

Data are imported through the CLI as a bureau would; expected figures are worked out here from the
data with the textbook formulas (ultimate-cluster variance, Wilson bounds), not read back from the code.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
from pathlib import Path

import pytest
from scipy.stats import t as student_t

from bot.awareness.campaigns import campaign_report, import_responses
from bot.config import load_settings
from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage.state import State, load_pseudonym_key
from bot.taxonomy import load_taxonomy
from tests.helpers import REPO_ROOT, run_cli, sql, wilson_by_hand
from tests.helpers import count as count_rows
from tests.storage.legacy_schema import FIRST_DDL

TARGET = 0.85
BANK = load_bank(REPO_ROOT / "knowledge")
TAXONOMY = load_taxonomy(REPO_ROOT / "knowledge")
ITEMS = [i for i in BANK if i.type == "single" and len(i.options) == 4][:4]
PROFILE = ["industry", "region", "enterprise_size", "role", "sex", "age_band", "education", "years_service",
           "enterprise"]
# 10 enterprises × 30 workers; aware workers per enterprise: 270 of 300 in all, three weak enterprises
AWARE = [30, 30, 30, 30, 30, 30, 30, 21, 20, 19]
PER = 30


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, state_url):
    """No salt or data dir from the environment; the state database of each backend (OHBOT_DATABASE_URL)."""
    monkeypatch.delenv("OHBOT_SALT", raising=False)
    monkeypatch.delenv("OHBOT_DATA_DIR", raising=False)
    monkeypatch.setenv("OHBOT_DATABASE_URL", state_url)


def wrong(item) -> str:
    return next(o for o in item.options if o != item.answer)


def workers() -> list[dict]:
    """The clustered sample: enterprise code, profile and whether the worker is aware."""
    out = []
    for e, aware in enumerate(AWARE):
        for k in range(PER):
            out.append({"id": f"W{e:02d}{k:02d}", "enterprise": f"ENT-柳南-{e:03d}", "aware": k < aware,
                        "industry": "construction" if e % 2 else "manufacturing",
                        "enterprise_size": "small_micro" if e < 5 else "large",
                        "region": "柳南区" if e < 6 else "柳北区", "sex": "男" if k % 2 else "女"})
    return out


def long_rows(people: list[dict]) -> list[list[str]]:
    """One row per answer; aware workers answer all 4 items right, the others 2 of 4 (threshold 0.8)."""
    rows = []
    for p in people:
        for j, item in enumerate(ITEMS):
            answer = item.answer if p["aware"] or j < 2 else wrong(item)
            rows.append([p["id"], item.id, answer, f"2024-05-0{1 + j} 10:00", p["industry"], p["region"],
                         p["enterprise_size"], "worker", p["sex"], "", "", "", p["enterprise"]])
    return rows


def wide_rows(people: list[dict]) -> list[list[str]]:
    """The same answers, one row per worker (profile labels in Chinese, as survey tools export them)."""
    rows = []
    for p in people:
        answers = [item.answer if p["aware"] or j < 2 else wrong(item).lower() for j, item in enumerate(ITEMS)]
        rows.append([p["id"], "2024-05-01 10:00", TAXONOMY["industries"][p["industry"]], p["region"],
                     TAXONOMY["enterprise_sizes"][p["enterprise_size"]], "worker", p["sex"], p["enterprise"],
                     *answers])
    return rows


LONG_HEADER = ["respondent_id", "item_id", "answer", "answered_at", *PROFILE]
WIDE_HEADER = ["respondent_id", "answered_at", "industry", "region", "enterprise_size", "role", "sex", "enterprise",
               *[i.id for i in ITEMS]]


def write(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def open_state(data_dir: Path) -> State:
    return State(os.environ["OHBOT_DATABASE_URL"], load_pseudonym_key(load_settings(str(data_dir))))


@pytest.fixture
def clustered(tmp_path, capsys) -> Path:
    """Campaign C1 (threshold 0.8) holding the clustered sample, imported in the long layout."""
    assert run_cli(capsys, tmp_path, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    path = write(tmp_path / "answers.csv", LONG_HEADER, long_rows(workers()))
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(path), "--campaign", "C1")
    assert code == 0, err
    return tmp_path


def cluster_figures(aware_by_cluster: list[tuple[int, int]]) -> tuple[float, float, float, int]:
    """(p, variance, deff, df) for one stratum of equally weighted clusters (aware, size), by hand."""
    n = sum(size for _, size in aware_by_cluster)
    p = sum(a for a, _ in aware_by_cluster) / n
    totals = [(a - p * size) / n for a, size in aware_by_cluster]
    m = len(totals)
    mean = sum(totals) / m
    v = m / (m - 1) * sum((t - mean) ** 2 for t in totals)
    s2 = n / (n - 1) * p * (1 - p)
    return p, v, v / (s2 / n), m - 1


def design_interval(p: float, n: int, deff: float, df: int) -> tuple[float, float]:
    n_star = n / deff * (student_t.ppf(0.975, n - 1) / student_t.ppf(0.975, df)) ** 2
    z = 1.959963984540054
    centre = (p + z * z / (2 * n_star)) / (1 + z * z / n_star)
    half = z / (1 + z * z / n_star) * math.sqrt(p * (1 - p) / n_star + z * z / (4 * n_star * n_star))
    return centre - half, centre + half


# ---- strong clustering ---------------------------------------------------------------------------
def test_strong_clustering_wilson_says_met_design_says_undecided(clustered, capsys):
    code, out, _ = run_cli(capsys, clustered, "report", "--campaign", "C1", "--by", "region", "--json")
    assert code == 0
    rep = json.loads(out)
    o = rep["overall"]
    assert rep["design"] == "cluster" and rep["respondents_without_enterprise"] == 0
    # the simple interval: 270 of 300, wholly above 85 %
    assert (o["n"], o["aware"]) == (300, 270)
    assert (o["ci_low"], o["ci_high"]) == pytest.approx(wilson_by_hand(270, 300))
    assert wilson_by_hand(270, 300)[0] >= TARGET and o["simple_status"] == "met"
    # the design: ten enterprises, three of them weak
    p, v, deff, df = cluster_figures([(a, PER) for a in AWARE])
    assert o["deff"] == pytest.approx(deff, rel=1e-9) and deff > 5
    assert o["n_effective"] == pytest.approx(300 / deff, rel=1e-9) and (o["df"], o["enterprises"]) == (9, 10)
    low, high = design_interval(p, 300, deff, 9)
    assert (o["design_ci_low"], o["design_ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert low < TARGET < high and o["status"] == "undecided"
    # extra enterprises: the smallest k whose projected interval decides, with the same deff and 30 per enterprise
    k = o["extra_enterprises"]
    assert k and o["extra_n"] == k * PER

    def decided(j: int) -> bool:
        total = 300 + j * PER
        lo, hi = design_interval(p, total, deff, 9 + j)
        return lo >= TARGET or hi < TARGET

    assert decided(k) and not decided(k - 1)
    # groups: 柳南区 holds enterprises 0–5 (all aware), 柳北区 6–9; the domain variance uses every enterprise
    groups = {g["key"]["region"]: g for g in rep["groups"]}
    assert groups["柳北区"]["enterprises"] == 4 and groups["柳北区"]["df"] == 3
    assert groups["柳南区"]["deff"] is None  # everybody aware: no variance to speak of
    # text: the design line and the extra enterprises; nowhere a raw enterprise code
    code, text, _ = run_cli(capsys, clustered, "report", "--campaign", "C1", "--by", "region", "--out",
                        str(clustered / "out"))
    assert "设计效应" in text and f"约再需 {k} 家企业" in text and "尚难判定" in text
    for path in [*(clustered / "out").iterdir()]:
        data = path.read_bytes()
        assert "ENT-柳南".encode() not in data and "ENT-柳南".encode("utf-8-sig") not in data, path.name
    assert "ENT-" not in out and "ENT-" not in text


def test_without_enterprise_codes_the_report_is_the_simple_one(tmp_path, capsys):
    run_cli(capsys, tmp_path, "campaign", "create", "S", "--start", "2024-01-01", "--end", "2024-12-31")
    rows = [r[:-1] + [""] for r in long_rows(workers())]
    run_cli(capsys, tmp_path, "responses", "import", str(write(tmp_path / "a.csv", LONG_HEADER, rows)), "--campaign", "S")
    rep = json.loads(run_cli(capsys, tmp_path, "report", "--campaign", "S", "--json")[1])
    o = rep["overall"]
    assert rep["design"] == "srs" and o["status"] == o["simple_status"] == "met"
    assert (o["deff"], o["n_effective"], o["design_ci_low"], o["design_ci_high"]) == \
        (1.0, 300.0, o["ci_low"], o["ci_high"])
    # strata alone (no clusters): a stratified design-based interval
    rep = json.loads(run_cli(capsys, tmp_path, "report", "--campaign", "S", "--strata", "region", "--json")[1])
    assert rep["design"] == "srs" and rep["strata"] == ["region"] and rep["overall"]["deff"] < 1.0


def test_population_weights(clustered, capsys):
    pop = write(clustered / "pop.csv", ["industry", "enterprise_size", "region", "count"], [
        ["construction", "small_micro", "柳南区", "4000"], ["制造业", "小微型", "柳南区", "1000"],
        ["construction", "large", "柳南区", "500"], ["construction", "large", "柳北区", "900"],
        ["manufacturing", "large", "柳北区", "2600"], ["mining", "large", "柳北区", "777"]])
    code, out, err = run_cli(capsys, clustered, "report", "--campaign", "C1", "--population", str(pop), "--json")
    assert code == 0, err
    rep = json.loads(out)
    # by hand: each cell's share aware, weighted by its workers
    people = workers()
    cells: dict[tuple, list[int]] = {}
    for p in people:
        cells.setdefault((p["industry"], p["enterprise_size"], p["region"]), []).append(int(p["aware"]))
    counts = {("construction", "small_micro", "柳南区"): 4000, ("manufacturing", "small_micro", "柳南区"): 1000,
              ("construction", "large", "柳南区"): 500, ("construction", "large", "柳北区"): 900,
              ("manufacturing", "large", "柳北区"): 2600}
    assert set(cells) == set(counts)
    weighted = sum(counts[c] * sum(v) / len(v) for c, v in cells.items()) / sum(counts.values())
    o = rep["overall"]
    assert rep["weighted"] is True and o["weighted_rate"] == pytest.approx(weighted, rel=1e-12)
    assert rep["population"] == {"source": "pop.csv", "fields": ["industry", "enterprise_size", "region"],
                                 "matched": 300, "unmatched": 0, "cells": 6, "covered_cells": 5,
                                 "population": 9777.0, "covered_population": 9000.0}
    assert o["design_ci_low"] < o["weighted_rate"] < o["design_ci_high"]

    bad = write(clustered / "bad.csv", ["industry", "region", "count"],
                [["astronaut", "柳南区", "10"], ["construction", "柳南区", "-4"], ["construction", "柳南区", "3"]])
    code, _, err = run_cli(capsys, clustered, "report", "--campaign", "C1", "--population", str(bad))
    assert code == 2 and "line 2, column industry" in err and "construction (建筑施工)" in err
    assert "line 3, column count" in err


# ---- the wide layout -----------------------------------------------------------------------------
def test_wide_layout_gives_the_same_report_as_long(clustered, capsys):
    run_cli(capsys, clustered, "campaign", "create", "W", "--start", "2024-01-01", "--end", "2024-12-31")
    path = write(clustered / "wide.csv", WIDE_HEADER, wide_rows(workers()), encoding="gb18030")
    code, out, err = run_cli(capsys, clustered, "responses", "import", str(path), "--campaign", "W", "--layout", "wide")
    assert code == 0, err
    assert "1200" in out
    state = open_state(clustered)
    a = campaign_report(state, "C1", BANK, by=["region", "industry"])
    b = campaign_report(state, "W", BANK, by=["region", "industry"])
    for key in ("overall", "groups", "items", "dimensions"):
        assert a[key] == b[key], key
    stored = [tuple(r.values()) for r in sql(state, "select distinct enterprise from users")]
    assert len(stored) == 10 and all(len(e) == 32 and "ENT" not in e for (e,) in stored)  # hashed


def test_wide_layout_errors_by_line_and_column(tmp_path):
    state = open_state(tmp_path)
    quiz.create_campaign(state, "C", "2024-01-01", "2024-12-31")
    good = wide_rows(workers()[:1])[0]
    q0, q1 = ITEMS[0].id, ITEMS[1].id
    rows = [
        good,                                                          # line 2: fine
        ["R3", "2024-05-01", "建筑施工", "x", "大型", "worker", "男", "E1", "E", "B", "", ""],     # 3: E
        ["R4", "2024-05-01", "astronaut", "x", "大型", "worker", "男", "E1", "A", "", "", ""],     # 4: industry
        ["R5", "yesterday", "建筑施工", "x", "大型", "worker", "男", "E1", "A", "", "", ""],        # 5: date
        ["R6", "2024-05-01", "建筑施工", "x", "大型", "worker", "男", "E1", "", " ", "", ""],       # 6: no answer
        [good[0], "2024-05-01", "建筑施工", "x", "大型", "worker", "男", "E1", "A", "", "", ""],   # 7: again
    ]
    path = write(tmp_path / "w.csv", WIDE_HEADER, rows)
    count, errors = import_responses(state, "C", path, BANK, TAXONOMY, layout="wide")
    assert count == 0
    assert [e.split(":")[0] for e in errors] == [
        f"line 3, column {q0}", "line 4, column industry", "line 5, column answered_at", "line 6, column *",
        "line 7, column respondent_id"]
    assert "construction (建筑施工)" in errors[1] and "mining (矿山开采)" in errors[1]  # every accepted value
    assert all(f"{code} ({label})" in errors[1] for code, label in TAXONOMY["industries"].items())
    assert "line 2" in errors[-1]
    assert count_rows(state, "responses") == 0
    # a column that is neither a field nor an item id: one error on line 1
    bad = write(tmp_path / "h.csv", [*WIDE_HEADER, "IP地址"], [good + ["1.2.3.4"]])
    count, errors = import_responses(state, "C", bad, BANK, TAXONOMY, layout="wide")
    assert count == 0 and len(errors) == 1 and errors[0].startswith("line 1") and "IP地址" in errors[0]
    assert q1 in WIDE_HEADER
    # no staging folder is left behind, after errors or success
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ohbot-import-")]


def test_long_layout_lists_accepted_values_and_caps_errors(tmp_path):
    state = open_state(tmp_path)
    quiz.create_campaign(state, "C", "2024-01-01", "2024-12-31")
    item = ITEMS[0]
    rows = [[f"R{k}", item.id, "A", "2024-05-01", "大型企业", "", "", "", "", "", "", "", ""] for k in range(1200)]
    path = write(tmp_path / "bad.csv", LONG_HEADER, rows)
    count, errors = import_responses(state, "C", path, BANK, TAXONOMY)
    assert count == 0 and len(errors) == 1001
    assert errors[0].startswith("line 2: industry '大型企业' is not an accepted value")
    assert errors[-1].startswith("… and 200 more problems")


def test_correct_and_years_service_columns_and_respondents_counted_once(tmp_path):
    state = open_state(tmp_path)
    quiz.create_campaign(state, "C", "2024-01-01", "2024-12-31")
    rows = [r[:3] + ["1"] + r[3:] for r in long_rows(workers()[:2])]
    rows[0][-2] = "1-5"  # years_service on one row only
    path = write(tmp_path / "a.csv", LONG_HEADER[:3] + ["correct"] + LONG_HEADER[3:], rows)
    assert import_responses(state, "C", path, BANK, TAXONOMY) == (8, [])
    assert count_rows(state, "users", "years_service = '1-5'") == 1
    count, errors = import_responses(state, "C", path, BANK, TAXONOMY)
    assert count == 0 and len(errors) == 2 and "lines 2, 3, 4, 5" in errors[0] and "cannot count twice" in errors[0]


def test_old_database_gains_the_enterprise_column(tmp_path):
    """A data directory made before users.enterprise (and before migrations): adopted and upgraded."""
    conn = sqlite3.connect(tmp_path / "ohbot.db")
    for statement in FIRST_DDL:
        conn.execute(statement)
    conn.execute("insert into users (key, role) values ('k1', 'worker')")
    conn.commit()
    conn.close()
    state = State(tmp_path / "ohbot.db", "salt")
    user = state.get_user("k1")
    assert user.profile["role"] == "worker" and user.profile["enterprise"] is None
    State(tmp_path / "ohbot.db", "salt")  # opening again changes nothing


# ---- exports ---------------------------------------------------------------------------------
def test_respondent_level_csv(clustered, capsys):
    code, out, _ = run_cli(capsys, clustered, "responses", "export", "--campaign", "C1", "--level", "respondent")
    assert code == 0
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 300
    assert list(rows[0])[:15] == ["respondent_id", "completed_at", *PROFILE, "answered", "correct", "score_rate",
                                  "aware"]
    assert list(rows[0])[14:] == ["aware", *sorted(i.id for i in ITEMS)]
    assert sum(int(r["aware"]) for r in rows) == 270
    weak = [r for r in rows if r["aware"] == "0"]
    assert all((r["answered"], r["correct"], r["score_rate"]) == ("4", "2", "0.5") for r in weak)
    assert all(r[ITEMS[0].id] == "1" and r[ITEMS[3].id] == "0" for r in weak)
    assert len({r["enterprise"] for r in rows}) == 10 and "ENT-" not in out


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_files_carry_labels(clustered, capsys, fmt):
    import pyreadstat

    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    path = clustered / f"r.{fmt}"
    code, _, err = run_cli(capsys, clustered, "responses", "export", "--campaign", "C1", "--level", "respondent",
                       "--out", str(path))  # the format follows the extension
    assert code == 0, err
    frame, meta = read(str(path), output_format="dict")
    assert len(frame["respondent_id"]) == 300 and sum(frame["aware"]) == 270
    labels = meta.column_names_to_labels
    assert labels["industry"] == "行业" and labels["aware"] == "知晓" and labels["enterprise"] == "企业编码（加密）"
    assert labels[ITEMS[0].id].startswith(ITEMS[0].id + " ")  # item id and knowledge point
    values = meta.variable_value_labels
    industries = list(TAXONOMY["industries"].values())
    assert {int(k): v for k, v in values["industry"].items()} == dict(enumerate(industries, 1))
    assert {int(k): v for k, v in values["aware"].items()} == {0: "否", 1: "是"}
    assert {int(k): v for k, v in values[ITEMS[0].id].items()} == {0: "错", 1: "对"}
    construction = industries.index("建筑施工") + 1
    assert sum(1 for v in frame["industry"] if v == construction) == 150
    assert b"ENT-" not in path.read_bytes()

    items_path = clustered / f"i.{fmt}"
    code, _, err = run_cli(capsys, clustered, "responses", "export", "--campaign", "C1", "--format", fmt,
                       "--out", str(items_path))
    assert code == 0, err
    frame, meta = read(str(items_path), output_format="dict")
    assert len(frame["item_id"]) == 1200 and sum(frame["correct"]) == 270 * 4 + 30 * 2
    assert meta.column_names_to_labels["answered_at"] == "作答时间（北京时间）"
    assert str(frame["answered_at"][0]).startswith("2024-05-0")


def test_xlsx_export_and_formula_cells(clustered, capsys):
    from openpyxl import load_workbook

    state = open_state(clustered)
    for table in ("users", "forms"):  # the form's own profile is what exports show (issue #11)
        sql(state, f"update {table} set region = '=HYPERLINK(\"http://x\",\"y\")' where region = '柳北区'")
    path = clustered / "r.xlsx"
    code, _, err = run_cli(capsys, clustered, "responses", "export", "--campaign", "C1", "--format", "xlsx",
                       "--level", "respondent", "--out", str(path))
    assert code == 0, err
    ws = load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 301 and rows[0][0] == "respondent_id"
    regions = {r[3] for r in rows[1:]}
    assert regions == {"柳南区", "'=HYPERLINK(\"http://x\",\"y\")"}  # text, never a live formula
    code, _, err = run_cli(capsys, clustered, "responses", "export", "--campaign", "C1", "--format", "sav")
    assert code == 2 and "--out" in err


def test_long_layout_with_one_profile_column(tmp_path):
    """A file with only the enterprise column beside the required ones still makes a clustered report."""
    state = open_state(tmp_path)
    quiz.create_campaign(state, "C", "2024-01-01", "2024-12-31")
    rows = [r[:4] + [r[-1]] for r in long_rows(workers())]
    path = write(tmp_path / "a.csv", LONG_HEADER[:4] + ["enterprise"], rows)
    assert import_responses(state, "C", path, BANK, TAXONOMY) == (1200, [])
    rep = campaign_report(state, "C", BANK)
    assert rep["design"] == "cluster" and rep["overall"]["enterprises"] == 10
    assert rep["overall"]["deff"] == pytest.approx(cluster_figures([(a, PER) for a in AWARE])[2], rel=1e-9)
