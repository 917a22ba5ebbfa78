"""The web console's routes through starlette's TestClient on the real app (`create_app`), a real
SQLite state database and the real bank: log-in, CSRF, roles, region scoping, escaping, and the
report page showing the numbers of `ohbot report --json`."""
from __future__ import annotations

import html
import json
import re
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from bot.cli import main
from bot.config import LOGIN_MAX_FAILURES, load_settings
from bot.quiz.bank import load_bank
from bot.storage.staff import open_staff
from bot.web.app import create_app
from tests.web.data import plan_rows, single_items, write_csv

PASSWORD = "correct horse battery"
CAMPAIGN = "2024 重点人群<b>监测</b>"
EVIL = "<script>alert(1)</script>"
ACCOUNTS = {"boss": ("admin", None), "ana": ("analyst", None), "zone": ("analyst", "城中区"),
            "rev": ("reviewer", None)}
# (industry, region, score of 10, respondents): 城中区 25 of 30 aware (score ≥ 8); 北区 0 of 12, whose
# region is then overwritten with EVIL in the database (imports refuse it; older data or another
# channel might not have): pages must escape whatever is stored
PLAN = [("construction", "城中区", 10, 25), ("construction", "城中区", 5, 5), ("manufacturing", "北区", 6, 12)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A data directory with four accounts and a campaign of 42 imported respondents."""
    data = tmp_path_factory.mktemp("console")
    # pages wait for the figures of new data however loaded the machine is (the default 0.5 s, then the
    # previous figures: test_a_report_of_new_data_not_ready_in_time_shows_the_previous_figures)
    settings = replace(load_settings(str(data)), report_wait=60.0)
    store = open_staff(settings)
    for name, (role, region) in ACCOUNTS.items():
        store.add(name, role, PASSWORD, region=region)
    assert main(["--data-dir", str(data), "campaign", "create", CAMPAIGN, "--start", "2024-01-01",
                 "--end", "2024-12-31"]) == 0
    items = single_items(load_bank(settings.knowledge_dir))
    csv_path = write_csv(data / "responses.csv", plan_rows(items, PLAN))
    assert main(["--data-dir", str(data), "responses", "import", str(csv_path), "--campaign", CAMPAIGN]) == 0
    with sqlite3.connect(data / "ohbot.db") as conn:
        for table in ("users", "forms"):  # reports read the profile each form was answered with (issue #11)
            conn.execute(f"update {table} set region = ? where region = '北区'", [EVIL])
    return settings


@pytest.fixture
def app(site):
    with TestClient(create_app(site, dialogue=SimpleNamespace()), base_url="http://testserver") as client:
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client: TestClient, name: str, password: str = PASSWORD):
    page = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(page.text), "name": name, "password": password,
                                                "next": "/console/"}, follow_redirects=False)


def logged_in(client: TestClient, name: str) -> str:
    """Log in; the session's CSRF token (from the overview page)."""
    response = login(client, name)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/").text)


def campaign_url(suffix: str = "") -> str:
    return f"/console/campaigns/{quote(CAMPAIGN, safe='')}{suffix}"


def report_json(settings, *extra: str) -> dict:
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["--data-dir", str(settings.data_dir), "report", "--campaign", CAMPAIGN, "--json", *extra]) == 0
    return json.loads(out.getvalue())


def test_every_page_needs_a_session(app) -> None:
    for path in ("/console/", "/console/campaigns", campaign_url(), campaign_url("/report.xlsx"), "/console/users",
                 "/console/audit", "/console/gaps", campaign_url("/responses")):
        response = app.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/console/login?next={quote(path, safe='')}"
    assert app.post("/console/campaigns", data={"name": "x"}, follow_redirects=False).status_code == 403
    assert app.get("/console", follow_redirects=False).headers["location"] == "/console/"


def test_login_logout_and_the_session_cookie(app) -> None:
    response = login(app, "boss", "not the password")
    assert response.status_code == 401 and "账户名或密码错误" in response.text
    response = login(app, "boss")
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/console" in cookie
    page = app.get("/console/")
    assert page.status_code == 200 and "boss（管理员）" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    app.post("/console/logout", data={"csrf": csrf_of(page.text)})
    assert app.get("/console/", follow_redirects=False).status_code == 303


def test_login_form_without_its_token_is_refused(app) -> None:
    app.get("/console/login")
    response = app.post("/console/login", data={"csrf": "forged", "name": "boss", "password": PASSWORD})
    assert response.status_code == 403 and app.get("/console/", follow_redirects=False).status_code == 303


def test_an_open_redirect_after_login_is_not_followed(app) -> None:
    page = app.get("/console/login?next=https://evil.example/")
    response = app.post("/console/login", data={"csrf": csrf_of(page.text), "name": "boss", "password": PASSWORD,
                                                "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/console/"


def test_a_post_without_the_sessions_csrf_token_is_rejected(app, site) -> None:
    logged_in(app, "boss")
    for token in (None, "forged"):
        data = {"name": "csrf-test", "start": "2024-01-01", "end": "2024-02-01"} | ({"csrf": token} if token else {})
        response = app.post("/console/campaigns", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert "csrf-test" not in app.get("/console/campaigns").text


def test_lock_out_after_repeated_failures(site) -> None:
    with TestClient(create_app(site, dialogue=SimpleNamespace())) as client:
        open_staff(site).add("victim", "reviewer", PASSWORD)
        for _ in range(LOGIN_MAX_FAILURES):
            assert login(client, "victim", "wrong password").status_code == 401
        response = login(client, "victim")
        assert response.status_code == 429 and "锁定" in response.text


def test_the_report_page_shows_the_numbers_of_ohbot_report_json(app, site) -> None:
    logged_in(app, "boss")
    page = app.get(campaign_url("?by=region"))
    assert page.status_code == 200
    expected = report_json(site, "--by", "region")
    overall = expected["overall"]
    assert overall["n"] == 42 and overall["aware"] == 25
    assert f'class="n" data-value="{overall["n"]}"' in page.text
    assert f'class="rate" data-value="{overall["rate"]}"' in page.text
    assert f'{overall["rate"] * 100:.1f}%' in page.text
    assert f'{overall["ci_low"] * 100:.1f}%–{overall["ci_high"] * 100:.1f}%' in page.text
    for group in expected["groups"]:
        assert f'class="rate" data-value="{group["rate"]}"' in page.text
    assert "<svg" in page.text and "目标 85.0%" in page.text


def test_user_text_is_escaped_in_pages_and_chart_labels(app) -> None:
    logged_in(app, "boss")
    for path in (campaign_url("?by=region"), "/console/", "/console/campaigns"):
        text = app.get(path).text
        assert "<script>alert" not in text and "<b>监测</b>" not in text, path
    text = app.get(campaign_url("?by=region")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the region, as a label in the table and the chart
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2


def test_an_analyst_of_a_region_sees_only_that_regions_respondents(app, site) -> None:
    logged_in(app, "zone")
    page = app.get(campaign_url("?by=region")).text
    assert 'class="n" data-value="30"' in page and 'class="aware" data-value="25"' in page
    assert "alert(1)" not in page
    overview = app.get("/console/").text
    assert 'class="n" data-value="30"' in overview
    groups = app.get(campaign_url("/report.csv?by=region"))
    assert groups.status_code == 200 and "城中区" in groups.text and "alert" not in groups.text
    answers = app.get(campaign_url("/responses.csv?level=item"))
    assert answers.status_code == 200
    lines = answers.text.lstrip("\ufeff").splitlines()
    assert len(lines) == 1 + 30 * 10 and all(",城中区," in line for line in lines[1:])
    assert report_json(site, "--region", "城中区")["overall"]["n"] == 30  # the CLI's view of the same scope
    cli = Path(site.data_dir) / "zone-export.csv"
    assert main(["--data-dir", str(site.data_dir), "responses", "export", "--campaign", CAMPAIGN, "--region", "城中区",
                 "--out", str(cli)]) == 0
    assert answers.content == cli.read_bytes()


def test_a_reviewer_cannot_export_or_import(app) -> None:
    csrf = logged_in(app, "rev")
    for kind in ("csv", "xlsx", "html"):
        assert app.get(campaign_url(f"/report.{kind}")).status_code == 403
    assert app.get(campaign_url("/responses.csv")).status_code == 403
    upload = app.post(campaign_url("/responses"), data={"csrf": csrf},
                      files={"file": ("a.csv", b"respondent_id,item_id,answer,answered_at\n", "text/csv")})
    assert upload.status_code == 403
    assert app.get(campaign_url()).status_code == 200  # the aggregates are shown


def test_an_analyst_cannot_create_users_or_read_the_audit_log(app) -> None:
    csrf = logged_in(app, "ana")
    assert app.get("/console/users").status_code == 403
    response = app.post("/console/users", data={"csrf": csrf, "name": "intruder", "role": "admin"})
    assert response.status_code == 403
    assert app.get("/console/audit").status_code == 403
    assert app.get("/console/gaps").status_code == 403


def test_an_admin_creates_an_account_whose_one_time_password_must_be_changed(app, site) -> None:
    csrf = logged_in(app, "boss")
    page = app.post("/console/users", data={"csrf": csrf, "name": "newbie", "role": "reviewer"})
    password = re.search(r'id="one-time-password">([^<]+)<', page.text).group(1)
    with TestClient(create_app(site, dialogue=SimpleNamespace())) as other:
        assert login(other, "newbie", password).status_code == 303
        assert other.get("/console/", follow_redirects=False).headers["location"] == "/console/password"
        form = other.get("/console/password").text
        response = other.post("/console/password", data={"csrf": csrf_of(form), "old": password,
                                                          "new": "my own password", "again": "my own password"},
                              follow_redirects=False)
        assert response.status_code == 303
        assert other.get("/console/").status_code == 200
    audit = app.get("/console/audit").text
    assert "user_add" in audit and "newbie" in audit


def test_downloads_are_audited_with_who_what_when(app) -> None:
    logged_in(app, "ana")
    response = app.get(campaign_url("/report.xlsx?by=industry"))
    assert response.status_code == 200 and response.content[:2] == b"PK"
    assert "attachment" in response.headers["content-disposition"]
    app.cookies.clear()
    logged_in(app, "boss")
    audit = app.get("/console/audit").text
    assert re.search(r"<td>\d{4}-\d\d-\d\dT[\d:]+\+00:00</td><td>ana</td><td>export</td><td>2024 重点人群&lt;b&gt;监测"
                     r"&lt;/b&gt;</td><td>report xlsx by=industry</td>", audit)


def test_create_and_close_a_campaign(app) -> None:
    csrf = logged_in(app, "ana")
    response = app.post("/console/campaigns", data={"csrf": csrf, "name": "秋季测评", "start": "2024-09-01",
                                                    "end": "2024-11-30", "threshold": "0.8", "form_size": "20"})
    assert response.status_code == 200 and "秋季测评" in response.text and "进行中" in response.text
    again = app.post("/console/campaigns", data={"csrf": csrf, "name": "秋季测评", "start": "2024-09-01",
                                                 "end": "2024-11-30"})
    assert again.status_code == 400 and "exists already" in html.unescape(again.text)
    closed = app.post(f"/console/campaigns/{quote('秋季测评')}/close", data={"csrf": csrf})
    assert closed.status_code == 200 and "已结束" in closed.text


def test_a_region_analysts_new_campaign_is_for_that_region(app) -> None:
    csrf = logged_in(app, "zone")
    app.post("/console/campaigns", data={"csrf": csrf, "name": "城中区春季", "start": "2025-03-01",
                                         "end": "2025-05-31", "region": "别的区"})
    assert "城中区春季" in app.get("/console/campaigns").text
    from bot.quiz import forms as quiz
    from bot.storage.state import open_state

    assert quiz.get_campaign(open_state(app.app.state.services.settings), "城中区春季").region == "城中区"


def test_report_files_match_the_cli_report(app, site, tmp_path) -> None:
    logged_in(app, "boss")
    response = app.get(campaign_url("/report.csv?by=industry"))
    assert response.status_code == 200
    out = tmp_path / "cli"
    assert main(["--data-dir", str(site.data_dir), "report", "--campaign", CAMPAIGN, "--by", "industry",
                 "--out", str(out)]) == 0
    assert response.content == (out / "groups.csv").read_bytes()
    summary = app.get(campaign_url("/report.html?by=industry"))
    assert summary.status_code == 200 and "attachment" in summary.headers["content-disposition"]
    assert "<b>监测</b>" not in summary.text and "&lt;b&gt;监测&lt;/b&gt;" in summary.text


def test_static_assets_are_served_by_the_app(app) -> None:
    css = app.get("/console/static/console.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    page = app.get("/console/login").text
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_start_prints_the_address_and_the_first_admin_password_once(monkeypatch, tmp_path, capsys) -> None:
    import os

    for name in [n for n in os.environ if n.startswith(("WECHAT_", "WECOM_", "TELEGRAM_"))]:
        monkeypatch.delenv(name)
    served = []
    monkeypatch.setattr("bot.web.app.serve", lambda settings, host, port, **kw: served.append((host, port, kw)))
    assert main(["--data-dir", str(tmp_path), "start"]) == 0
    first = capsys.readouterr().out
    assert "http://127.0.0.1:8000/console/" in first
    password = re.search(r"一次性密码 (\S+)", first).group(1)
    assert main(["--data-dir", str(tmp_path), "start"]) == 0
    second = capsys.readouterr().out
    assert "http://127.0.0.1:8000/console/" in second and password not in second and "一次性密码" not in second
    assert served == [("127.0.0.1", 8000, {}), ("127.0.0.1", 8000, {})]
    session = open_staff(load_settings(str(tmp_path))).login("admin", password, "127.0.0.1")
    assert session.staff.role == "admin" and session.staff.must_change
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    assert main(["--data-dir", str(tmp_path), "start"]) == 0
    assert served[-1] == ("127.0.0.1", 8000, {"telegram_polling": True})
    assert not list(Path(tmp_path).glob("*.log"))


# ---- responses: upload and export -----------------------------------------------------------------
def _upload(app, csrf: str, name: str, body: bytes, campaign: str = CAMPAIGN, layout: str = "long"):
    return app.post(f"/console/campaigns/{quote(campaign, safe='')}/responses", data={"csrf": csrf, "layout": layout},
                    files={"file": (name, body, "text/csv")})


@pytest.fixture
def upload_campaign(site):
    """A fresh campaign for one upload test."""
    import secrets

    name = f"上传-{secrets.token_hex(3)}"
    assert main(["--data-dir", str(site.data_dir), "campaign", "create", name, "--start", "2024-01-01",
                 "--end", "2024-12-31"]) == 0
    return name


def _csv(site, plan, prefix: str) -> bytes:
    import csv as csvlib
    import io

    from tests.web.data import HEADER

    out = io.StringIO()
    writer = csvlib.writer(out)
    writer.writerow(HEADER)
    writer.writerows(plan_rows(single_items(load_bank(site.knowledge_dir)), plan, prefix=prefix))
    return out.getvalue().encode("utf-8")


def test_an_upload_with_errors_lists_them_by_line_and_imports_nothing(app, site, upload_campaign) -> None:
    csrf = logged_in(app, "ana")
    lines = _csv(site, [("construction", "城中区", 9, 3)], "u").decode().splitlines()
    lines[4] = lines[4].replace(",construction,", ",no-such-industry,")
    lines[7] = lines[7].replace("2024-03-05 10:00", "not a date")
    response = _upload(app, csrf, "answers.csv", ("\n".join(lines) + "\n").encode(), upload_campaign)
    shown = html.unescape(response.text)
    assert response.status_code == 400
    assert "line 5: industry 'no-such-industry' is not an accepted value" in shown
    assert "line 8: answered_at 'not a date' is not a date" in shown
    assert "未导入任何数据" in response.text
    assert report_json(site).get("campaign") == CAMPAIGN  # (the CLI still works on the shared file)
    assert "已导入" not in response.text
    report = f"/console/campaigns/{quote(upload_campaign, safe='')}?by=industry"
    assert 'class="n" data-value="0"' in app.get(report).text  # computed, and kept while nothing changes
    good = _upload(app, csrf, "answers.csv", _csv(site, [("construction", "城中区", 9, 3)], "u"), upload_campaign)
    assert good.status_code == 200 and "已从“answers.csv”导入 30 条作答" in good.text
    assert 'class="n" data-value="3"' in app.get(report).text  # the import shows at once
    logged_in(app, "boss")
    audit = app.get("/console/audit").text
    assert "import_refused" in audit and "answers.csv (long): 2 problem(s), nothing imported" in audit
    assert "answers.csv (long): 30 answers" in audit


def test_non_csv_and_oversized_uploads_are_refused(app, site, upload_campaign) -> None:
    csrf = logged_in(app, "boss")
    assert "不是 .csv 文件" in _upload(app, csrf, "answers.xlsx", b"PK\x03\x04rest", upload_campaign).text
    renamed = _upload(app, csrf, "answers.csv", b"PK\x03\x04\x14\x00\x06\x00", upload_campaign)
    assert renamed.status_code == 400 and "不是 CSV 文本文件" in renamed.text
    from bot.config import UPLOAD_MAX_BYTES

    big = b"respondent_id,item_id,answer,answered_at\n" + b"x" * (UPLOAD_MAX_BYTES + 1024 * 1024)
    response = _upload(app, csrf, "big.csv", big, upload_campaign)
    assert response.status_code == 413 and "50 MB" in response.text


def test_a_region_analyst_imports_only_rows_of_that_region(app, site, upload_campaign) -> None:
    csrf = logged_in(app, "zone")
    mixed = _csv(site, [("construction", "城中区", 9, 1), ("construction", "别的区", 9, 1)], "z")
    response = _upload(app, csrf, "mixed.csv", mixed, upload_campaign)
    assert response.status_code == 400 and "line 12: region '别的区'" in html.unescape(response.text)
    ok = _upload(app, csrf, "own.csv", _csv(site, [("construction", "城中区", 9, 2)], "z"), upload_campaign)
    assert ok.status_code == 200 and "导入 20 条作答" in ok.text


def test_responses_export_equals_the_cli_export(app, site, tmp_path) -> None:
    logged_in(app, "ana")
    response = app.get(campaign_url("/responses.csv?level=item"))
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    out = tmp_path / "cli.csv"
    assert main(["--data-dir", str(site.data_dir), "responses", "export", "--campaign", CAMPAIGN,
                 "--out", str(out)]) == 0
    assert response.content == out.read_bytes()
    xlsx = app.get(campaign_url("/responses.xlsx?level=respondent"))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


# ---- gaps and FAQ drafts --------------------------------------------------------------------------
def test_gaps_most_frequent_first_and_a_reviewer_drafts_a_faq_card(site, tmp_path) -> None:
    import shutil

    from bot.storage.state import open_state
    from index_builder.cards import load_cards

    knowledge = tmp_path / "knowledge"
    shutil.copytree(site.knowledge_dir, knowledge)
    settings = load_settings(str(site.data_dir), str(knowledge))
    state = open_state(settings)
    for question in ("夜班补贴<script>x</script>怎么算", "夜班补贴<script>x</script>怎么算？", "宿舍能不能养猫"):
        state.log_unanswered(question, "u1")
    with TestClient(create_app(settings, dialogue=SimpleNamespace())) as client:
        logged_in(client, "rev")
        page = client.get("/console/gaps").text
        rows = re.findall(r'<td class="n">(\d+)</td><td class="question">([^<]*)</td>', page)
        assert rows[:2] == [("2", "夜班补贴&lt;script&gt;x&lt;/script&gt;怎么算"), ("1", "宿舍能不能养猫")]
        assert page.count("<script>") == 0
        assert state.gaps(2)[0]["n"] == 2  # the same function as `ohbot gaps`
        link = re.search(r'<a class="draft" href="([^"]+)"', page).group(1).replace("&amp;", "&")
        form = client.get(link).text
        assert 'value="夜班补贴&lt;script&gt;x&lt;/script&gt;怎么算"' in form
        saved = client.post("/console/faq", data={
            "csrf": csrf_of(form), "question": "夜班补贴怎么算？", "variants": "夜班费有没有\n上夜班有补贴吗",
            "answer": "国家没有统一的夜班津贴标准，看单位的规章制度和劳动合同。", "cite": "《劳动法》第四十四条",
            "ref": "", "audience": "worker", "gap": "夜班补贴scriptxscript怎么算"})
        assert saved.status_code == 200 and "faq-draft-001" in saved.text
        too_long = client.post("/console/faq", data={"csrf": csrf_of(form), "question": "问", "answer": "长" * 301,
                                                     "cite": "x", "audience": "all"})
        assert too_long.status_code == 400 and "longer than 300" in html.unescape(too_long.text)
    cards, errors = load_cards(knowledge)  # what the next incremental build reads
    card = next(c for c in cards if c.id == "faq-draft-001")
    assert (card.question, card.variants, card.audience) == ("夜班补贴怎么算？", ["夜班费有没有", "上夜班有补贴吗"], "worker")
    assert not [e for e in errors if "console-drafts" in e]


@pytest.fixture
def held_back_reports(monkeypatch):
    """The real campaign report, held back while `.gate` is closed (closed at first), with each call's
    (campaign, by) in `.calls`: the test decides when a computation ends, not the machine's speed."""
    from bot.awareness import campaigns

    held = SimpleNamespace(gate=threading.Event(), calls=[])
    real = campaigns.campaign_report

    def gated(*args, **kwargs):
        held.calls.append((args[1], kwargs.get("by")))
        assert held.gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(campaigns, "campaign_report", gated)
    return held


def test_a_report_of_new_data_not_ready_in_time_shows_the_previous_figures(site, upload_campaign,
                                                                            held_back_reports) -> None:
    """A page waits `report_wait` for the figures of new data, then shows the previous ones with their
    time and a refresh; the downloads wait for the current data; the page shows the new figures once
    they are computed."""
    settings = replace(site, report_wait=0.0)
    gate = held_back_reports.gate
    gate.set()
    with TestClient(create_app(settings, dialogue=SimpleNamespace()), base_url="http://testserver") as client:
        csrf = logged_in(client, "ana")
        report = f"/console/campaigns/{quote(upload_campaign, safe='')}?by=industry"
        first = client.get(report).text
        assert 'class="n" data-value="0"' in first and 'id="as-of"' in first and "refresh" not in first
        gate.clear()  # the next computation takes as long as the test says
        good = _upload(client, csrf, "answers.csv", _csv(site, [("construction", "城中区", 9, 3)], "v"), upload_campaign)
        assert good.status_code == 200
        stale = client.get(report).text
        assert 'class="n" data-value="0"' in stale  # the previous figures, said to be so, refreshed
        assert 'id="as-of-stale"' in stale and '<meta http-equiv="refresh" content="5">' in stale
        overview = client.get("/console/").text
        assert "正在重新统计" in overview
        gate.set()
        groups = client.get(f"/console/campaigns/{quote(upload_campaign, safe='')}/report.csv?by=industry")
        assert groups.status_code == 200 and ",3," in groups.text  # a download waits for the current data
        fresh = client.get(report).text
        assert 'class="n" data-value="3"' in fresh and 'id="as-of-stale"' not in fresh


def test_a_new_worker_shows_the_stored_report_at_once_and_its_age_after_a_change(site, upload_campaign,
                                                                                  held_back_reports) -> None:
    """The last computed report is kept in the database (report_snapshots): a worker that has computed
    nothing yet shows it without computing while the data are unchanged, and marked with its time
    while it computes the current one after a change."""
    report = f"/console/campaigns/{quote(upload_campaign, safe='')}?by=industry"
    gate, calls = held_back_reports.gate, held_back_reports.calls
    gate.set()  # the first worker computes freely
    with TestClient(create_app(site, dialogue=SimpleNamespace()), base_url="http://testserver") as first:
        csrf = logged_in(first, "ana")
        good = _upload(first, csrf, "answers.csv", _csv(site, [("construction", "城中区", 9, 4)], "w"), upload_campaign)
        assert good.status_code == 200
        computed = first.get(report).text
    assert 'class="n" data-value="4"' in computed

    gate.clear()  # from here on the test says when a computation ends
    calls.clear()
    settings = replace(site, report_wait=0.0)
    with TestClient(create_app(settings, dialogue=SimpleNamespace()), base_url="http://testserver") as worker:
        csrf = logged_in(worker, "ana")
        shown = worker.get(report).text  # another worker, nothing computed: the stored report, current
        assert (upload_campaign, ["industry"]) not in calls
        strip = re.compile(r'<p class="meta" id="as-of">.*?</p>|name="csrf" value="[^"]+"')
        assert strip.sub("", shown) == strip.sub("", computed)
        more = _upload(worker, csrf, "answers.csv", _csv(site, [("construction", "城中区", 9, 2)], "x"), upload_campaign)
        assert more.status_code == 200
        stale = worker.get(report).text  # the stored figures, said to be older, while it computes
        assert 'class="n" data-value="4"' in stale and 'id="as-of-stale"' in stale
        gate.set()
        for _ in range(300):
            page = worker.get(report).text
            if 'id="as-of-stale"' not in page:
                break
            threading.Event().wait(0.1)
        assert 'class="n" data-value="6"' in page
