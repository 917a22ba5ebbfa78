"""The knowledge index: ingest → clean → segment → embed/store → search → eval, through public functions.

Slow parts are shared: the model and the index of the real knowledge/ folder come from the
session fixtures of conftest.py; the small made-up knowledge folders below are built once per
module and copied by the tests that change them.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.answering.retrieve import Filters, Retriever
from bot.index import store
from bot.text.normalize import normalize
from index_builder.build import build_index
from index_builder.clean import clean_text
from index_builder.ingest import load_documents
from index_builder.segment import MAX_CHARS, MIN_CHARS, segment
from tests.helpers import REPO_ROOT as REPO
from tests.helpers import SHARED

MODEL = "m3e-small"

CORPUS = REPO / "knowledge" / "corpus"
DEV_QUESTIONS = SHARED / "eval" / "dev-questions.jsonl"
SENTENCE_ENDS = "。！？；!?;…"
# the longest a text chunk may be: MAX_CHARS, plus a short tail (< MIN_CHARS) merged into it
CHUNK_BOUND = MAX_CHARS + MIN_CHARS + 1
# characters that exist only in Traditional script (their Simplified forms differ)
TRADITIONAL_ONLY = set("職業衛規劃與區為關個療體檢測護們當應對條經濟發權監險總計開")


# --------------------------------------------------------------------------- helpers


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sidecar(path: Path, **meta) -> None:
    write(path.with_name(path.name + ".meta.yaml"), yaml.safe_dump(meta, allow_unicode=True))


def corpus_file(prefix: str) -> Path:
    (path,) = CORPUS.glob(f"{prefix}_*.txt")
    return path


def read_index(index_dir: Path) -> tuple[list[store.ChunkRow], dict[str, dict]]:
    return store.read_chunks(index_dir)


def doc_chunks(index_dir: Path, doc_id: str) -> list[store.ChunkRow]:
    chunks = [c for c in read_index(index_dir)[0] if c.doc_id == doc_id]
    assert chunks, f"no chunks for {doc_id}"
    return chunks


def shown(chunks: list[store.ChunkRow]) -> str:
    """Everything of these chunks that a user or the ranker sees."""
    return "\n".join(f"{c.heading}\n{c.text}\n{c.search_text}" for c in chunks)


def build(knowledge: Path, index_dir: Path, encoder, **kwargs):
    return build_index(knowledge, index_dir, MODEL, encoder=encoder, **kwargs)


def make_docx(path: Path, title: str, heading: str, body: str, rows: list[list[str]]) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph(title)
    document.add_paragraph(heading)
    document.add_paragraph(body)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    fonts = sorted(font_manager.findSystemFonts(), key=lambda f: ("Sans" not in f, "Regular" not in f, f))
    pattern = re.compile(r"CJK|WenQuanYi|wqy|SimHei|SimSun|Droid ?Sans ?Fallback|SourceHanSans|NotoSansSC", re.I)
    return next((f for f in fonts if pattern.search(Path(f).name)), None)


def make_pdf(path: Path) -> list[str]:
    """A one-page PDF with a text layer, written with matplotlib's PDF backend; returns its lines.
    Chinese where a CJK font is installed (and reads back), English otherwise."""
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from pypdf import PdfReader

    def render(lines: list[str], font: str | None) -> None:
        fig = Figure(figsize=(8.27, 11.69))
        FigureCanvasPdf(fig)
        props = FontProperties(fname=font) if font else None
        for i, line in enumerate(lines):
            fig.text(0.08, 0.92 - 0.04 * i, line, fontproperties=props, fontsize=11)
        fig.savefig(str(path))

    path.parent.mkdir(parents=True, exist_ok=True)
    font = _cjk_font()
    if font:
        lines = ["焊接烟尘防护要点", "焊工作业时应当开启局部排风设施，并佩戴防尘口罩或送风式焊接面罩。"]
        render(lines, font)
        read = normalize(PdfReader(str(path)).pages[0].extract_text())
        if all(normalize(line) in read for line in lines):
            return lines
    lines = ["Welding fume protection", "Welders must switch on local exhaust ventilation and wear a respirator."]
    render(lines, None)
    return lines


SPAM_LINE = (
    "澳门赌场官方网站| 时时彩票开奖直播| 真人娱乐城注册送彩金| 百家乐在线投注| "
    "体育彩票网上购买| 老虎机电子游艺| 棋牌捕鱼游戏下载| 六合彩资料大全"
)
SPAM_WORDS = ["赌场", "彩票", "娱乐城", "百家乐", "老虎机", "六合彩", "彩金"]


# --------------------------------------------------------------------------- a made-up knowledge folder with every format


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, encoder):
    """A small knowledge folder with one document per format, metadata by front matter, by sidecar
    and by inference, injected spam, a near-duplicate of a real document and three bad files.
    Returns (knowledge_dir, index_dir, report, pdf_lines)."""
    root = tmp_path_factory.mktemp("mixed")
    k = root / "knowledge"
    write(k / "materials" / "heat.md", """---
id: guide-heat
title: 高温作业防暑指南
issuer: 测试编写组
region: 全国
date: 2024-06-01
doc_type: protective_knowledge
audience: worker
source: 测试用材料
---
# 高温作业防暑指南

## 中暑的早期症状有哪些？

头晕、口渴、大量出汗、四肢无力，是中暑的先兆。出现这些症状应立即到阴凉通风处休息，补充淡盐水。

## 用人单位在高温季节要提供什么？

用人单位应当在高温季节提供防暑降温饮料，合理安排作业时间，减少高温时段室外作业。
""")
    notice = write(k / "corpus" / "dust-notice.txt", (
        "粉尘作业防护告知\n\n"
        "从事粉尘作业的劳动者应当正确佩戴防尘口罩，口罩要贴合面部，不能用纱布口罩代替。\n\n"
        "用人单位应当定期检测工作场所粉尘浓度，并把检测结果在公告栏公布。\n\n"
        f"{SPAM_LINE}\n"
    ))
    sidecar(notice, id="dust-notice", title="粉尘作业防护告知", issuer="某市卫生健康局", region="广东省",
            date="2023-03-01", doc_type="notice", audience="worker", source="测试用告知书")
    write(k / "corpus" / "inferred.txt", (
        "职业健康检查工作通知\n"
        "发布日期：2023年5月6日\n\n"
        "各用人单位应当组织接触职业病危害的劳动者进行上岗前、在岗期间和离岗时的职业健康检查，费用由用人单位承担。\n"
    ))
    gbk = k / "corpus" / "old-page.txt"  # older government pages are GB18030, not UTF-8
    gbk.write_bytes("尘肺病康复站点建设\n\n尘肺病患者可以在乡镇康复站点接受呼吸康复训练，费用按规定报销。\n".encode("gb18030"))
    sidecar(gbk, id="old-page", title="尘肺病康复站点建设", region="全国", doc_type="notice", source="测试")
    write(k / "web" / "page.html", """<html><head><title>噪声岗位听力保护须知</title>
<style>.nav { color: red }</style><script>var tracker = "页面统计脚本";</script></head>
<body><nav>首页 | 新闻中心 | 政务公开 | 互动交流</nav>
<header>某某市人民政府门户网站</header>
<h1>噪声岗位听力保护须知</h1>
<p>接触噪声的劳动者应当佩戴耳塞或耳罩，并按规定每年进行纯音听阈测试。</p>
<table><tr><th>岗位</th><th>噪声强度</th></tr><tr><td>冲压车间</td><td>92 dB(A)</td></tr></table>
<footer>版权所有 某某市人民政府 网站标识码 4502000001</footer></body></html>
""")
    make_docx(k / "docs" / "chem.docx", "化学毒物作业安全须知", "一、个体防护",
              "接触苯的劳动者应当佩戴防毒面具，下班后更换工作服并洗手。", [["毒物", "接触限值"], ["苯", "6 mg/m³"]])
    pdf_lines = make_pdf(k / "docs" / "welding.pdf")
    # a real document and a copy of it with a few characters changed
    original = corpus_file("002")
    shutil.copy(original, k / "corpus" / original.name)
    shutil.copy(original.with_name(original.name + ".meta.yaml"), k / "corpus" / (original.name + ".meta.yaml"))
    text = original.read_text(encoding="utf-8")
    changed = text.replace("县域全覆盖", "全县全覆盖", 1).replace("不少于1人", "不少于2人", 1)
    assert changed != text
    copy = write(k / "corpus" / "zz-mirror-002.txt", changed)
    sidecar(copy, id="st-plan-mirror", title="石台县职业病防治“十四五”规划（节选）", region="安徽省池州市石台县",
            doc_type="plan", source="另一家网站的转载")
    # three files that cannot be indexed
    write(k / "docs" / "empty.txt", "  \n\n")
    (k / "docs" / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a Word file")
    (k / "docs" / "old-format.doc").write_bytes(b"\xd0\xcf\x11\xe0 an old binary Word file")

    index_dir = root / "data" / "index"
    report = build(k, index_dir, encoder)
    return k, index_dir, report, pdf_lines


# --------------------------------------------------------------------------- ingest


def test_every_format_is_indexed(mixed):
    k, index_dir, report, pdf_lines = mixed
    chunks, docs = read_index(index_dir)
    by_doc = {d: shown([c for c in chunks if c.doc_id == d]) for d in docs}
    assert "补充淡盐水" in by_doc["guide-heat"]                         # .md with front matter
    assert "不能用纱布口罩代替" in by_doc["dust-notice"]                  # .txt with sidecar
    assert "费用由用人单位承担" in by_doc["corpus/inferred"]             # .txt without metadata
    assert "佩戴耳塞或耳罩" in by_doc["web/page"]                          # .html
    assert "佩戴防毒面具" in by_doc["docs/chem"]                           # .docx
    assert "接受呼吸康复训练" in by_doc["old-page"]                        # .txt in GB18030
    assert normalize(pdf_lines[1]) in normalize(by_doc["docs/welding"])  # .pdf text layer
    assert report.documents == 8  # the seven above and the real 002; its copy is a duplicate
    assert report.chunks == len(chunks)


def test_markdown_front_matter_becomes_metadata_and_headings(mixed):
    _, index_dir, report, _ = mixed
    chunks, docs = read_index(index_dir)
    doc = docs["guide-heat"]
    assert (doc["title"], doc["region"], doc["date"], doc["doc_type"], doc["audience"]) == (
        "高温作业防暑指南", "全国", "2024-06-01", "protective_knowledge", "worker")
    headings = [c.heading for c in chunks if c.doc_id == "guide-heat"]
    assert headings == ["高温作业防暑指南 › 中暑的早期症状有哪些？", "高温作业防暑指南 › 用人单位在高温季节要提供什么？"]
    assert "guide-heat" not in report.missing_metadata


def test_sidecar_metadata(mixed):
    _, index_dir, report, _ = mixed
    doc = read_index(index_dir)[1]["dust-notice"]
    assert doc["issuer"] == "某市卫生健康局"
    assert doc["region"] == "广东省"
    assert doc["date"] == "2023-03-01"
    assert doc["doc_type"] == "notice"
    assert doc["audience"] == "worker"
    assert doc["path"] == "corpus/dust-notice.txt"
    assert "dust-notice" not in report.missing_metadata


def test_missing_metadata_is_inferred_from_the_text_and_the_rest_listed(mixed):
    _, index_dir, report, _ = mixed
    docs = read_index(index_dir)[1]
    inferred = docs["corpus/inferred"]  # no id given: the path without extension
    assert inferred["title"] == "职业健康检查工作通知"
    assert inferred["date"] == "2023-05-06"  # from "发布日期：2023年5月6日"
    assert report.missing_metadata["corpus/inferred"] == ["issuer", "region", "doc_type", "source"]
    assert "missing metadata: corpus/inferred: issuer, region, doc_type, source" in report.as_text()
    assert docs["docs/chem"]["title"] == "化学毒物作业安全须知"  # first paragraph of the .docx
    assert docs["web/page"]["title"] == "噪声岗位听力保护须知"    # the page's title line
    assert "date" in report.missing_metadata["docs/chem"]       # nothing in the text says it


def test_html_drops_scripts_navigation_and_footer_and_keeps_table_cells(mixed):
    _, index_dir, _, _ = mixed
    text = shown(doc_chunks(index_dir, "web/page"))
    for gone in ("页面统计脚本", "color", "新闻中心", "门户网站", "版权所有", "网站标识码"):
        assert gone not in text
    row = next(line for line in text.splitlines() if "冲压车间" in line)
    assert "92 dB(A)" in row


def test_docx_headings_and_table_rows(mixed):
    _, index_dir, _, _ = mixed
    chunks = doc_chunks(index_dir, "docs/chem")
    assert any(c.section == ["一、个体防护"] and "佩戴防毒面具" in c.text for c in chunks)
    assert "苯 | 6 mg/m³" in "\n".join(c.text for c in chunks)


def test_bad_files_give_one_error_each_naming_the_file(mixed):
    _, index_dir, report, _ = mixed
    assert len(report.errors) == 3, report.errors
    for name, reason in (("empty.txt", "empty"), ("broken.docx", "not a readable .docx"), ("old-format.doc", "unknown extension")):
        (error,) = [e for e in report.errors if name in e]
        assert reason in error
    assert all(f"error: {e}" in report.as_text() for e in report.errors)
    docs = read_index(index_dir)[1]
    assert not any(d.startswith(("docs/empty", "docs/broken", "docs/old-format")) for d in docs)


def test_metadata_errors_name_the_file(tmp_path):
    k = tmp_path / "knowledge"
    write(k / "materials" / "ok.md", "---\nid: ok\ntitle: 正常\n---\n# 正常\n\n正文。\n")
    write(k / "materials" / "unclosed.md", "---\nid: unclosed\ntitle: 没有结束线\n# 标题\n\n正文。\n")
    write(k / "materials" / "list.md", "---\n- a\n- b\n---\n# 标题\n\n正文。\n")
    write(k / "materials" / "colon.md", "---\nid: colon\ntitle: 期刊 36(5): 424\n---\n# 标题\n\n正文。\n")
    write(k / "corpus" / "bad-sidecar.txt", "标题\n\n正文。\n")
    write(k / "corpus" / "bad-sidecar.txt.meta.yaml", "- not a mapping\n")
    write(k / "materials" / "same-id.txt", "另一篇\n\n正文。\n")  # sorts after ok.md: the second "ok"
    sidecar(k / "materials" / "same-id.txt", id="ok")
    docs, errors = load_documents(k)
    assert [(d.doc_id, d.path.name) for d in docs] == [("ok", "ok.md")]
    messages = {e.path.name: str(e) for e in errors}
    assert set(messages) == {"unclosed.md", "list.md", "colon.md", "bad-sidecar.txt", "same-id.txt"}
    assert "mapping values" in messages["colon.md"] and "\n" not in messages["colon.md"]  # a YAML error, on one line
    assert "closing '---'" in messages["unclosed.md"]
    assert "mapping" in messages["list.md"] and "mapping" in messages["bad-sidecar.txt"]
    assert "duplicate id 'ok'" in messages["same-id.txt"]
    assert all(str(e.path) in str(e) for e in errors)


def test_load_documents_reports_errors_without_stopping(mixed):
    k, _, _, _ = mixed
    docs, errors = load_documents(k)
    assert {d.doc_id for d in docs} == {"guide-heat", "dust-notice", "corpus/inferred", "old-page", "web/page",
                                        "docs/chem", "docs/welding", "st-plan", "st-plan-mirror"}
    assert sorted(e.path.name for e in errors) == ["broken.docx", "empty.txt", "old-format.doc"]


# --------------------------------------------------------------------------- clean


def test_injected_spam_of_the_real_page_never_reaches_the_index(built_index):
    index_dir, report = built_index
    spam_line = corpus_file("000").read_text(encoding="utf-8").strip().splitlines()[-1]
    phrases = [p.strip() for p in re.split(r"[|｜]", spam_line) if len(p.strip()) >= 4]
    assert len(phrases) >= 10  # the fixture really is a link farm
    everything = normalize(shown(read_index(index_dir)[0]))
    leaked = [p for p in phrases if normalize(p) in everything]
    assert not leaked
    assert report.lines_removed["spam"] >= 1


def test_spam_appended_to_a_made_up_document_is_not_indexed(mixed):
    _, index_dir, report, _ = mixed
    chunks = doc_chunks(index_dir, "dust-notice")
    text = shown(chunks)
    assert not [w for w in SPAM_WORDS if w in text]
    assert "正确佩戴防尘口罩" in text and "公告栏公布" in text  # the document itself is whole
    assert report.lines_removed["spam"] >= 1


@pytest.mark.parametrize("spam", [
    SPAM_LINE,
    SPAM_LINE.replace("| ", "｜"),                                      # full-width bars, no spaces
    " | ".join(["www.caipiao-888.com 彩票", "澳门赌场 点击进入", "真人娱乐 注册送88元", "百家乐 官网",
                "六合彩 开奖", "老虎机 下载", "娱乐城 app"]),
])
def test_link_list_spam_is_removed_from_any_document(spam):
    title = "夏季高温作业职业健康提示"
    body = [
        "进入夏季，高温作业岗位的劳动者容易发生中暑，用人单位应当提前做好防暑降温准备。",
        "高温作业时间应当避开中午最热时段，作业场所要设置休息室，并供应含盐清凉饮料。",
        "劳动者出现头晕、恶心、心慌等症状时，应当立即停止作业，到阴凉处休息并报告班组长。",
    ]
    raw = "\n\n".join([title, *body[:2], spam, body[2], spam])
    cleaned = clean_text(raw, title)
    assert cleaned.lines == body
    assert cleaned.removed["spam"] == 2
    assert not any(w in "".join(c.text for c in segment(cleaned.lines)) for w in SPAM_WORDS)


def test_link_list_one_link_per_line_is_removed():
    raw = corpus_file("001").read_text(encoding="utf-8")
    links = [p.strip() for p in SPAM_LINE.split("|")]
    cleaned = clean_text(raw + "\n\n" + "\n".join(links) + "\n", "柳南区职业病防治“十四五”规划")
    assert not any(w in line for line in cleaned.lines for w in SPAM_WORDS)


def test_off_topic_paragraph_is_removed_from_a_long_document():
    raw = corpus_file("001").read_text(encoding="utf-8")
    spam = ("最新澳门赌场线上娱乐平台注册即送彩金，时时彩票开奖直播，百家乐真人荷官在线发牌，体育投注赔率全网最高，"
            "老虎机电子游艺每日返水，棋牌捕鱼游戏下载，充值提款秒到账，诚邀代理加盟高额佣金，扫码加客服领取新人礼包。")
    plain = clean_text(raw, "柳南区职业病防治“十四五”规划")
    injected = clean_text(raw.replace("三、主要任务", f"{spam}\n\n三、主要任务", 1), "柳南区职业病防治“十四五”规划")
    assert injected.lines == plain.lines
    assert injected.removed["spam"] == plain.removed["spam"] + 1


def test_duplicated_body_is_kept_once(built_index):
    index_dir, report = built_index
    chunks = doc_chunks(index_dir, "cz-interpretation")
    text = "\n".join(c.text for c in chunks)
    raw = corpus_file("000").read_text(encoding="utf-8")
    first_copy = raw.split("政策解讀\n柳州市城中區")[0]  # the page prints its body a second time after this
    body = first_copy[first_copy.index("一、《規劃》制定的背景"):]
    paragraphs = [p.strip() for p in body.splitlines() if len(p.strip()) > 40]
    assert len(paragraphs) >= 10
    for para in paragraphs:
        first_sentence = clean_text(para, web=False).lines[0].split("。")[0]
        assert text.count(first_sentence) == 1, first_sentence
    headings = {c.section[0] for c in chunks if c.section}
    assert headings == {"一、《规划》制定的背景是什么?", "二、城中区职业病防治十四五的目标是什么?",
                        "三、《规划》明确了哪些方面的主要任务?", "四、如何保障《规划》组织实施?"}
    assert report.lines_removed["duplicate_body"] >= 10


def test_navigation_footer_disclaimer_and_comment_box_are_gone(built_index):
    index_dir, _ = built_index
    cz = shown(doc_chunks(index_dir, "cz-interpretation"))
    for gone in ("当前位置", "首页 >", "版权所有", "网站信箱", "czqgxj@126.com", "公网安备", "ICP备", "承办",
                 "2623162", "来源:"):
        assert gone not in cz, gone
    st = shown(doc_chunks(index_dir, "st-plan"))
    for gone in ("仅代表作者观点", "不代表本站立场", "不得转载", "本文地址", "/guihua/", ".html", "留言与评论",
                 "条评论", "验证码", "网站地图"):
        assert gone not in st, gone
    assert "(七)切实提高全社会职业健康意识" in st  # the content right before the disclaimer stays


def test_cover_letter_before_the_title_is_gone(built_index):
    index_dir, _ = built_index
    chunks = doc_chunks(index_dir, "qhd-2021")
    text = shown(chunks)
    for gone in ("印发你们", "市卫生健康综合监督执法所:", "信息公开形式", "2021年3月23日"):
        assert gone not in text, gone
    assert chunks[0].text.startswith("2021年,全市职业健康监管工作总体思路是")


def test_traditional_documents_are_shown_in_simplified(built_index):
    index_dir, _ = built_index
    docs = read_index(index_dir)[1]
    for doc_id in ("cz-interpretation", "gd-plan"):
        text = shown(doc_chunks(index_dir, doc_id))
        assert not TRADITIONAL_ONLY & set(text), doc_id
        assert "职业病防治" in text
        assert not TRADITIONAL_ONLY & set(docs[doc_id]["title"])
    gd = shown(doc_chunks(index_dir, "gd-plan"))
    # Taiwan terms of the machine conversion fixed; ordinary mainland words left alone
    assert "数据库" in gd and "资料库" not in gd
    assert "互联网" in gd and "网际网路" not in gd
    assert "建立" in gd


def test_near_duplicate_document_is_indexed_once_and_reported(mixed):
    _, index_dir, report, _ = mixed
    chunks, docs = read_index(index_dir)
    assert "st-plan" in docs and "st-plan-mirror" not in docs
    assert not [c for c in chunks if c.doc_id == "st-plan-mirror"]
    (line,) = report.duplicates
    assert "st-plan-mirror" in line and "st-plan" in line.replace("st-plan-mirror", "")
    assert "duplicate documents dropped: 1" in report.as_text()


def test_real_corpus_has_no_duplicates_or_errors(built_index):
    _, report = built_index
    assert report.duplicates == []
    assert report.errors == []


# --------------------------------------------------------------------------- segment


def test_heading_paths(built_index):
    index_dir, _ = built_index
    chunks = doc_chunks(index_dir, "ln-plan")
    goal = [c for c in chunks if "二、总体要求 › (三)规划目标" in c.heading]
    assert goal and all(c.heading.startswith("柳南区职业病防治“十四五”规划 › ") for c in goal)
    assert any("到2025年" in c.text for c in goal)
    assert any(c.section and c.section[-1].startswith("专栏1") and c.section[0] == "三、主要任务" for c in chunks)


def test_indicator_table_is_rebuilt_and_kept_whole(built_index):
    index_dir, _ = built_index
    (table,) = [c for c in doc_chunks(index_dir, "ln-plan") if "非医疗放射工作人员个人剂量监测率" in c.text
                and c.kind == "table"]
    row = next(line for line in table.text.splitlines() if "非医疗放射工作人员个人剂量监测率" in line)
    assert "≥90%" in row
    assert "职业病防治指标与目标" in table.text  # caption
    assert "指标名称" in table.text and "目标值" in table.text  # header
    assert "重点人群职业健康知识知晓率 | ≥85%" in table.text
    assert "职业卫生违法案件查处率 | 100%" in table.text  # every row, first to last
    assert table.section == ["二、总体要求", "(三)规划目标"]


def test_chunk_sizes_are_bounded(built_index):
    index_dir, _ = built_index
    chunks = read_index(index_dir)[0]
    texts = [c for c in chunks if c.kind == "text"]
    assert texts
    too_long = [(c.doc_id, len(c.text)) for c in texts if len(c.text) > CHUNK_BOUND]
    assert not too_long
    assert all(c.text.strip() for c in chunks)


def test_long_paragraph_is_split_at_sentence_ends():
    sentences = [
        f"第{i}项要求是用人单位应当为接触职业病危害的劳动者建立职业健康监护档案，并按规定妥善保存{'；' if i % 3 else '。'}"
        for i in range(1, 30)
    ] + ["劳动者离开用人单位时，有权索取本人职业健康监护档案复印件！", "单位拒绝怎么办？"]
    paragraph = "".join(sentences)
    assert len(paragraph) > 3 * MAX_CHARS
    pieces = [c.text for c in segment(["一、职业健康监护", paragraph])]
    assert len(pieces) >= 3
    assert all(len(p) <= CHUNK_BOUND for p in pieces)
    assert all(p[-1] in SENTENCE_ENDS for p in pieces[:-1]), [p[-5:] for p in pieces]
    assert "".join(p.replace("\n", "") for p in pieces) == paragraph  # nothing lost or repeated


def test_long_paragraphs_of_the_corpus_are_split_at_sentence_ends():
    split = 0
    for path in sorted(CORPUS.glob("*.txt")):
        cleaned = clean_text(path.read_text(encoding="utf-8"))
        for para in (p for p in cleaned.lines if len(p) > MAX_CHARS):
            pieces = [c.text for c in segment([para])]
            split += len(pieces) > 1
            assert all(len(p) <= CHUNK_BOUND for p in pieces), path.name
            assert all(p[-1] in SENTENCE_ENDS for p in pieces[:-1]), (path.name, [p[-5:] for p in pieces])
    assert split >= 10  # the corpus really has long paragraphs


# --------------------------------------------------------------------------- index: incremental builds, failures


def _section(title: str, n: int) -> str:
    return (f"## {title}\n\n{title}的第{n}条要点：用人单位应当落实职业病防治责任制，"
            f"为劳动者提供符合要求的防护设施和个人防护用品，并组织上岗前培训。\n")


def _material(doc_id: str, title: str, sections: list[str]) -> str:
    meta = f"---\nid: {doc_id}\ntitle: {title}\nregion: 全国\ndoc_type: protective_knowledge\n---\n# {title}\n\n"
    return meta + "\n".join(_section(s, i) for i, s in enumerate(sections, 1))


@pytest.fixture(scope="module")
def small(tmp_path_factory, encoder):
    """A three-document knowledge folder and its index, built once: (knowledge_dir, index_dir, report)."""
    root = tmp_path_factory.mktemp("small")
    k = root / "knowledge"
    write(k / "materials" / "a.md", _material("doc-a", "粉尘防护", ["防尘口罩", "湿式作业", "通风除尘"]))
    write(k / "materials" / "b.md", _material("doc-b", "噪声防护", ["耳塞佩戴", "耳罩选择", "听力检查"]))
    write(k / "materials" / "c.md", _material("doc-c", "高温防护", ["防暑饮料", "作业时间", "中暑急救"]))
    index_dir = root / "data" / "index"
    report = build(k, index_dir, encoder)
    return k, index_dir, report


@pytest.fixture
def small_copy(small, tmp_path):
    """A private copy of the small knowledge folder and its index, free to change."""
    k, index_dir, _ = small
    shutil.copytree(k, tmp_path / "knowledge")
    shutil.copytree(index_dir, tmp_path / "data" / "index")
    return tmp_path / "knowledge", tmp_path / "data" / "index"


def test_first_build_embeds_everything(small):
    _, index_dir, report = small
    assert (report.documents, report.chunks, report.embedded, report.reused, report.removed_chunks) == (3, 9, 9, 0, 0)
    assert report.errors == []
    assert {c.doc_id for c in read_index(index_dir)[0]} == {"doc-a", "doc-b", "doc-c"}


def test_rebuild_without_changes_embeds_nothing(small_copy, encoder):
    k, index_dir = small_copy
    before = [c.id for c in read_index(index_dir)[0]]
    report = build(k, index_dir, encoder)
    assert (report.embedded, report.reused, report.removed_chunks) == (0, 9, 0)
    assert [c.id for c in read_index(index_dir)[0]] == before


def test_changing_one_document_re_embeds_only_its_changed_chunk(small_copy, encoder):
    k, index_dir = small_copy
    before = {c.id: c for c in read_index(index_dir)[0]}
    path = k / "materials" / "b.md"
    path.write_text(path.read_text(encoding="utf-8").replace("耳罩选择的第2条要点", "耳罩选择的第2条要点（已修订）"),
                    encoding="utf-8")
    report = build(k, index_dir, encoder)
    assert report.embedded == 1
    assert report.reused == 8
    assert report.removed_chunks == 1  # the old version of the edited chunk
    after = read_index(index_dir)[0]
    changed = [c for c in after if c.id not in before]
    assert len(changed) == 1 and "已修订" in changed[0].text and changed[0].doc_id == "doc-b"
    assert {c.id for c in after} - {changed[0].id} == set(before) - {
        c.id for c in before.values() if c.doc_id == "doc-b" and "耳罩选择" in c.heading}
    # the new text is searchable right away, with a vector of its own
    retriever = Retriever(index_dir, MODEL, encoder=encoder)
    assert retriever.search("耳罩选择已修订", top_k=1, method="bm25")[0].chunk.id == changed[0].id
    vectors = store.read_vectors(index_dir)  # exactly the chunks' and the unit questions' vectors: none stale
    assert set(vectors) == {c.hash for c in after} | {q.hash for q in store.read_questions(index_dir)[0]}


def test_deleting_a_document_removes_its_chunks(small_copy, encoder):
    k, index_dir = small_copy
    before = read_index(index_dir)[0]
    (k / "materials" / "c.md").unlink()
    report = build(k, index_dir, encoder)
    assert (report.documents, report.embedded, report.reused, report.removed_chunks) == (2, 0, 6, 3)
    chunks, docs = read_index(index_dir)
    assert "doc-c" not in docs and all(c.doc_id != "doc-c" for c in chunks)
    assert [c.id for c in chunks] == [c.id for c in before if c.doc_id != "doc-c"]  # stable ids
    retriever = Retriever(index_dir, MODEL, encoder=encoder)
    assert retriever.dense_index.ntotal == 6
    assert all(p.chunk.doc_id != "doc-c" for p in retriever.search("中暑急救", top_k=6))


def test_changing_the_model_re_embeds_everything(small_copy, encoder):
    k, index_dir = small_copy
    report = build_index(k, index_dir, "another-model", encoder=encoder)  # same vectors, another name
    assert (report.embedded, report.reused) == (9, 0)
    assert any("model changed" in n and "another-model" in n for n in report.notes)
    assert store.read_manifest(index_dir)["model"] == "another-model"


def test_another_model_is_refused_with_the_fix(small, encoder):
    _, index_dir, _ = small
    with pytest.raises(store.IndexUnavailable) as info:
        Retriever(index_dir, "bge-small-zh-v1.5", encoder=encoder)
    message = str(info.value)
    assert "m3e-small" in message and "bge-small-zh-v1.5" in message and "build-index" in message


def test_another_model_is_refused_by_the_cli(small, capsys):
    from bot.cli import main

    _, index_dir, _ = small
    code = main(["--data-dir", str(index_dir.parent), "--model", "bge-small-zh-v1.5", "search", "噪声"])
    err = capsys.readouterr().err
    assert code != 0
    assert "m3e-small" in err and "bge-small-zh-v1.5" in err and "build-index" in err


def test_corrupt_index_db_is_reported_with_the_fix(small_copy, encoder):
    k, index_dir = small_copy
    (index_dir / "index.db").write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(store.IndexUnavailable, match=r"build-index --full"):
        Retriever(index_dir, MODEL, encoder=encoder)
    report = build(k, index_dir, encoder)  # a build repairs it, from scratch, and says so
    assert report.embedded == 9 and any("not reused" in n for n in report.notes)
    assert len(Retriever(index_dir, MODEL, encoder=encoder).chunks) == 9


def test_missing_dense_index_is_reported_with_the_fix(small_copy, encoder):
    _, index_dir = small_copy
    (index_dir / "dense.faiss").unlink()
    with pytest.raises(store.IndexUnavailable, match=r"build-index --full"):
        Retriever(index_dir, MODEL, encoder=encoder)


def test_missing_index_says_to_build_it(tmp_path, encoder):
    with pytest.raises(store.IndexUnavailable, match=r"ohbot build-index"):
        Retriever(tmp_path / "index", MODEL, encoder=encoder)


def test_failed_build_leaves_the_previous_index_intact(small_copy, encoder, monkeypatch):
    import bm25s

    k, index_dir = small_copy
    before = [(c.id, c.text) for c in read_index(index_dir)[0]]
    (k / "materials" / "a.md").unlink()
    write(k / "materials" / "d.md", _material("doc-d", "化学防护", ["防毒面具"]))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bm25s.BM25, "save", disk_full)  # fails after the database and FAISS are written
    with pytest.raises(OSError):
        build(k, index_dir, encoder)
    assert [(c.id, c.text) for c in read_index(index_dir)[0]] == before
    retriever = Retriever(index_dir, MODEL, encoder=encoder)
    assert retriever.search("湿式作业", top_k=1)[0].chunk.doc_id == "doc-a"

    monkeypatch.undo()
    report = build(k, index_dir, encoder)
    assert report.errors == [] and report.removed_chunks == 3
    assert {c.doc_id for c in read_index(index_dir)[0]} == {"doc-b", "doc-c", "doc-d"}
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["index", "index.versions"]
    versions = store.versions_dir(index_dir)
    assert not [p for p in versions.iterdir() if p.name.startswith(".")]  # no half-written folder left
    assert index_dir.resolve().parent == versions.resolve()


# --------------------------------------------------------------------------- search


def test_traditional_question_finds_the_simplified_passage(retriever):
    question = "單位有沒有義務在崗位設置警示標識"  # dev item d28
    passages = retriever.search(question, top_k=5)
    assert any("警示标识" in f"{p.chunk.heading}\n{p.chunk.text}" for p in passages)
    simplified = retriever.search("单位有没有义务在岗位设置警示标识", top_k=5)
    assert [p.chunk.id for p in passages] == [p.chunk.id for p in simplified]


def test_filters_restrict_results(retriever):
    query = "职业健康监管工作要点 信息化监管系统"
    unfiltered = {p.chunk.doc_id for p in retriever.search(query, top_k=10)}
    assert "qhd-2021" in unfiltered

    by_region = retriever.search(query, top_k=10, filters=Filters(region="柳南区"))
    assert by_region
    for p in by_region:
        assert "柳南区" in p.doc["region"] or p.doc["region"] == "全国"
    assert "qhd-2021" not in {p.chunk.doc_id for p in by_region}

    by_type = retriever.search(query, top_k=10, filters=Filters(doc_type="work_plan"))
    assert by_type and {p.chunk.doc_id for p in by_type} == {"qhd-2021"}

    plans = retriever.search("职业病防治规划目标", top_k=30, filters=Filters(doc_type="plan"))
    assert len({p.chunk.doc_id for p in plans}) >= 2 and all(p.doc["doc_type"] == "plan" for p in plans)

    for_workers = retriever.search(query, top_k=10, filters=Filters(audience="worker"))
    assert for_workers and all(p.doc["audience"] in ("worker", "all") for p in for_workers)
    assert "qhd-2021" not in {p.chunk.doc_id for p in for_workers}  # written for bureaus


def test_search_json_on_the_command_line(built_index, capsys, monkeypatch):
    from bot.cli import main

    index_dir, _ = built_index
    for name in ("OHBOT_EMBEDDING_MODEL", "OHBOT_EMBEDDING_BACKEND", "OHBOT_KNOWLEDGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OHBOT_DATA_DIR", str(index_dir.parent))
    query = "非医疗放射工作人员个人剂量监测率的目标是多少"
    assert main(["search", query, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["query"] == query
    assert len(result["passages"]) == 5  # --top-k defaults to 5
    for p in result["passages"]:
        assert set(p) == {"text", "title", "section", "date", "score", "doc_id"}
        assert isinstance(p["score"], float) and p["text"] and p["title"] and p["doc_id"]
    scores = [p["score"] for p in result["passages"]]
    assert scores == sorted(scores, reverse=True)

    # --data-dir instead of the environment, with filter flags
    argv = ["--data-dir", str(index_dir.parent), "search", query, "--json", "--top-k", "3",
            "--region", "柳南区", "--doc-type", "plan"]
    assert main(argv) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    assert len(passages) == 3 and {p["doc_id"] for p in passages} == {"ln-plan"}
    row = passages[0]  # the table's row is a unit of its own, with the caption and the plan's region
    assert row["text"].startswith("柳南区 ") and "非医疗放射工作人员个人剂量监测率 ≥90%" in row["text"]
    assert any("非医疗放射工作人员个人剂量监测率 | ≥90%" in p["text"] for p in passages)  # and the whole table
    table = row
    assert table["title"] == "柳南区职业病防治“十四五”规划" and table["section"] == "二、总体要求 › (三)规划目标"
    assert table["date"] is None  # unknown, and not made up


# --------------------------------------------------------------------------- eval


@pytest.fixture(scope="module")
def dev_questions():
    if not DEV_QUESTIONS.exists():
        pytest.skip(f"dev questions not found at {DEV_QUESTIONS} (shared eval folder absent)")
    return DEV_QUESTIONS


def test_fused_retrieval_on_the_dev_questions(retriever, dev_questions):
    from bot.answering.evaluate import evaluate, load_questions

    result = evaluate(retriever, load_questions(dev_questions))
    corpus = result["hybrid"]["corpus"]
    assert corpus["n"] >= 10
    assert corpus["hit@5"] == 1.0, result["misses"]
    assert corpus["mrr@10"] >= 0.9, result["misses"]
    # the weighted fusion keeps BM25's lead on policy-plan questions (the 50/50 one lost it)
    assert corpus["mrr@10"] >= result["bm25"]["corpus"]["mrr@10"] - 0.02, result["misses"]


def test_eval_json_on_the_command_line(built_index, dev_questions, capsys, monkeypatch):
    from bot.cli import main

    index_dir, _ = built_index
    for name in ("OHBOT_EMBEDDING_MODEL", "OHBOT_EMBEDDING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--data-dir", str(index_dir.parent), "eval", "retrieval", str(dev_questions), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"bm25", "dense", "hybrid"} <= set(result)
    for method in ("bm25", "dense", "hybrid"):
        assert set(result[method]["all"]) == {"n", "hit@1", "hit@5", "mrr@10"}
        assert 0.0 <= result[method]["all"]["mrr@10"] <= 1.0
