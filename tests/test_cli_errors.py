"""One-line errors that name the file and the fix, never a traceback (issue #11): a CSV field over
csv's 128 KiB limit, a full disk, a damaged ohbot.db; and a Big5 CSV read as Big5, not as GB18030
mojibake. The real `ohbot` commands (no index, no model), except where a full disk is simulated."""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from tests.helpers import REPO_ROOT

OHBOT = Path(sys.executable).parent / "ohbot"
HEADER = "respondent_id,item_id,answer,answered_at,region\n"


def ohbot(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OHBOT_", "TELEGRAM_"))}
    return subprocess.run([str(OHBOT), "--data-dir", str(data), *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=120)


def one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    """The single stderr line of a failed command, checked to contain `words`."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ohbot: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """A data directory with campaign C1 (2024–2029)."""
    data = tmp_path / "data"
    assert ohbot(data, "campaign", "create", "C1", "--start", "2024-01-01", "--end", "2029-12-31").returncode == 0
    return data


def test_a_population_field_over_128_kib_is_one_line_naming_the_file(campaign, tmp_path):
    population = tmp_path / "population.csv"
    with population.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["industry", "region", "count"], ["manufacturing", "y" * 140_000, "5"]])
    one_line_error(ohbot(campaign, "report", "--campaign", "C1", "--population", str(population)),
                   str(population), "line 2", "field larger than field limit")


def test_an_import_field_over_128_kib_names_the_line_and_imports_nothing(campaign, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text(HEADER + "1,Q0751,F,2024-05-01 10:00:00," + "x" * 140_000 + "\n", encoding="utf-8")
    done = ohbot(campaign, "responses", "import", str(answers), "--campaign", "C1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "line 2: cannot read the CSV: field larger than field limit" in done.stderr
    assert f"in {answers}: nothing was imported" in done.stderr


@pytest.mark.parametrize("damage", ["random bytes", "damaged pages"])
def test_a_damaged_state_database_is_one_line_with_the_fix(campaign, damage):
    path = campaign / "ohbot.db"
    if damage == "random bytes":
        path.write_bytes(os.urandom(8192))
    else:
        data = bytearray(path.read_bytes())
        for i in range(4096, len(data), 97):  # the first page (header, schema root) intact
            data[i] = 0xAB
        path.write_bytes(bytes(data))
    line = one_line_error(ohbot(campaign, "responses", "export", "--campaign", "C1"), str(path), "damaged",
                          "backup")
    assert "not a database" in line or "malformed" in line


def test_an_import_on_a_full_disk_is_one_line_and_leaves_the_database_as_it_was(campaign, tmp_path, monkeypatch,
                                                                                 capsys):
    """ENOSPC simulated where SQLite reports it (SQLITE_FULL), while the answers are staged."""
    from bot.awareness import responses

    answers = tmp_path / "answers.csv"
    answers.write_text(HEADER + "".join(f"{n},Q0751,F,2024-05-01 10:00:00,柳南区\n" for n in range(1, 50)),
                       encoding="utf-8")

    batched = responses._batched

    def full(rows, size=responses.BATCH):
        yield next(iter(batched(rows, size)))
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(responses, "_batched", full)
    code = cli.main(["--data-dir", str(campaign), "responses", "import", str(answers), "--campaign", "C1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert str(campaign / "ohbot.db") in err and "disk is full" in err and "free some space" in err
    with sqlite3.connect(campaign / "ohbot.db") as conn:
        assert conn.execute("select count(*) from responses").fetchone() == (0,)
        assert conn.execute("select count(*) from forms").fetchone() == (0,)


def test_an_export_to_a_full_disk_names_the_file(campaign, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text(HEADER + "1,Q0751,F,2024-05-01 10:00:00,柳南区\n", encoding="utf-8")
    assert ohbot(campaign, "responses", "import", str(answers), "--campaign", "C1").returncode == 0
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    one_line_error(ohbot(campaign, "responses", "export", "--campaign", "C1", "--out", "/dev/full"),
                   "/dev/full", "No space left on device", "free some space")


def test_a_big5_csv_is_imported_as_big5_not_as_gb18030_mojibake(campaign, tmp_path):
    regions = ["臺北市職業安全衛生處", "高雄市", "新北市勞工局"]
    answers = tmp_path / "big5.csv"
    answers.write_bytes((HEADER + "".join(f"{n},Q0751,F,2024-05-01 10:00:00,{r}\n" for n, r in enumerate(regions, 1)))
                        .encode("cp950"))
    done = ohbot(campaign, "responses", "import", str(answers), "--campaign", "C1")
    assert done.returncode == 0, done.stderr
    exported = ohbot(campaign, "responses", "export", "--campaign", "C1").stdout
    stored = sorted(row["region"] for row in csv.DictReader(exported.splitlines()))
    assert stored == sorted(regions)


def test_gb18030_still_reads_as_gb18030(campaign, tmp_path):
    regions = ["广西壮族自治区柳州市柳南区", "河北省秦皇岛市", "石台县"]
    answers = tmp_path / "gb.csv"
    answers.write_bytes((HEADER + "".join(f"{n},Q0751,F,2024-05-01 10:00:00,{r}\n" for n, r in enumerate(regions, 1)))
                        .encode("gb18030"))
    assert ohbot(campaign, "responses", "import", str(answers), "--campaign", "C1").returncode == 0
    exported = ohbot(campaign, "responses", "export", "--campaign", "C1").stdout
    assert sorted(row["region"] for row in csv.DictReader(exported.splitlines())) == sorted(regions)


def test_a_file_in_no_chinese_encoding_is_refused_with_save_as_utf8(campaign, tmp_path):
    answers = tmp_path / "utf16.csv"
    answers.write_bytes((HEADER + "1,Q0751,F,2024-05-01 10:00:00,柳南区\n").encode("utf-16"))
    one_line_error(ohbot(campaign, "responses", "import", str(answers), "--campaign", "C1"),
                   str(answers), "UTF-8")


def test_responses_erase_removes_one_imported_respondent_from_one_campaign(campaign, tmp_path):
    assert ohbot(campaign, "campaign", "create", "C2", "--start", "2024-01-01", "--end", "2029-12-31").returncode == 0
    answers = tmp_path / "answers.csv"
    answers.write_text(HEADER + "".join(f"{rid},{item},F,2024-05-01 10:00:00,柳南区\n" for rid in ("R1", "R2")
                                        for item in ("Q0751",)), encoding="utf-8")
    for name in ("C1", "C2"):
        assert ohbot(campaign, "responses", "import", str(answers), "--campaign", name).returncode == 0

    def respondents(name: str) -> list[str]:
        out = ohbot(campaign, "responses", "export", "--campaign", name).stdout
        return sorted(row["respondent_id"] for row in csv.DictReader(out.splitlines()))

    before_c1, before_c2 = respondents("C1"), respondents("C2")
    assert len(before_c1) == 2
    done = ohbot(campaign, "responses", "erase", "R1", "--campaign", "C1")
    assert done.returncode == 0, done.stderr
    assert "R1" in done.stdout and "C1" in done.stdout
    after = respondents("C1")
    assert len(after) == 1 and after[0] in before_c1
    assert respondents("C2") == before_c2  # the other campaign keeps its respondent R1
    report = json.loads(ohbot(campaign, "report", "--campaign", "C1", "--json").stdout)
    assert report["overall"]["n"] == 1
    one_line_error(ohbot(campaign, "responses", "erase", "R1", "--campaign", "C1"), "R1", "C1")  # gone already
    one_line_error(ohbot(campaign, "responses", "erase", "R9", "--campaign", "C2"), "R9")
    one_line_error(ohbot(campaign, "responses", "erase", "R2", "--campaign", "无此活动"), "无此活动")
