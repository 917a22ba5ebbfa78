"""The answering engine and `ohbot ask`: short sourced answers, referrals to the right door, refusals."""
from __future__ import annotations

import io
import json

import pytest

from bot.answering.answer import REFUSAL, answer
from bot.answering.compose import DETAIL_CHARS, DRAFT_NOTE, sentences
from bot.answering.decide import DOOR_TEXTS
from bot.answering.evaluate import is_hit, load_questions
from bot.cli import main
from tests.helpers import REPO_ROOT as REPO

OWN = [REPO / "tests" / "eval" / name for name in ("materials-a.jsonl", "materials-b.jsonl", "ood.jsonl")]


def question_sets() -> list[dict]:
    """Our authored questions (in-domain with gold, and out-of-domain)."""
    return [q for f in OWN for q in load_questions(f)]


def answered(result) -> str:
    """The answer and the passages behind it (the authored sets' original metric)."""
    return "\n".join([result.text] + [f"{p.chunk.heading}\n{p.chunk.text}" for p in result.passages])


def body(result) -> str:
    """The answer without its source line."""
    return result.text.split("\n\n来源：")[0]


def test_answerable_questions_are_answered_with_their_gold(retriever):
    items = [q for q in question_sets() if q.get("gold")]
    results = [answer(retriever, q["q"]) for q in items]
    hits = [r.found and is_hit(answered(r), q["gold"]) for r, q in zip(results, items)]
    assert len(items) >= 100
    assert sum(hits) / len(hits) >= 0.80, f"only {sum(hits)}/{len(hits)} answered with a gold group"


def test_every_out_of_domain_question_is_refused(retriever):
    items = [q for q in question_sets() if q["kind"] == "ood"]
    assert len(items) >= 40
    wrongly = [q["q"] for q in items if answer(retriever, q["q"]).found]
    assert wrongly == []


def test_a_source_line_names_each_source_once(retriever):
    # a card and the neighbour it was written from often cite the same page: it is named once
    items = [q for q in question_sets() if q.get("gold")]
    lines = [r.text.split("\n\n来源：")[1] for r in (answer(retriever, q["q"]) for q in items) if r.found]
    assert len(lines) >= 80
    repeated = [line for line in lines if len(line.split("；")) != len(set(line.split("；")))]
    assert repeated == []


def test_answer_is_a_verdict_a_short_detail_and_the_source(retriever):
    result = answer(retriever, "职业健康检查的费用要我自己出吗？")
    assert result.found and result.decision == "answer"
    text, source = result.text.split("\n\n来源：")
    assert source
    lines = body(result).replace(DRAFT_NOTE, "").split("\n")
    first = sentences(lines[0])
    assert first and first[0].startswith("不")  # the verdict comes first and answers the question: no, you don't pay
    detail = "".join(first[1:])
    assert len(detail) <= DETAIL_CHARS
    assert "用人单位" in text


def test_extractive_answer_is_text_from_the_knowledge_base(retriever):
    result = answer(retriever, "怀孕了还能在接触有害物质的岗位上干吗")
    assert result.found
    corpus = "\n".join(c.text.replace("\n", "") for c in retriever.chunks)  # a sentence runs on over a line break
    fixed = {DRAFT_NOTE, *DOOR_TEXTS.values()}
    for line in body(result).split("\n"):
        if line in fixed or not line:
            continue
        for sentence in sentences(line.split("：", 1)[-1] if line.endswith("规划：") else line):
            # a sentence cut at its ； ends in 。 (compose.seal)
            assert sentence.rstrip("…") in corpus or sentence[:-1] + "；" in corpus or sentence.endswith("……"), sentence


def test_refusal_points_to_help(retriever):
    result = answer(retriever, "今天天气怎么样")
    assert not result.found and result.decision == "refuse" and result.text == REFUSAL
    assert "12320" in result.text and "卫生健康主管部门" in result.text


@pytest.mark.parametrize("question, door, named", [
    ("公司拖欠了我三个月的工资怎么办", "labour", "12333"),
    ("被公司辞退了，经济补偿金怎么算", "labour", "劳动争议仲裁"),
    ("单位一直不给交社保合法吗", "labour", "劳动保障监察"),
    ("最近老是胃疼反酸是怎么回事", "medical", "医院"),
    ("感冒发烧咳嗽吃什么药好", "medical", "就医"),
    ("楼下饭店油烟和噪音扰民向哪里反映", "environment", "12345"),
    # who the worker is (哺乳期, 听力) does not make a pay, leave or retirement question ours
    ("哺乳期的女职工单位能扣工资吗", "labour", "12333"),
    ("听力不好可以提前退休吗", "labour", "12333"),
    ("未满16岁可以去打工吗", "labour", "12333"),
    ("我儿子15岁能去工厂上班吗", "labour", "12333"),  # a minor's age: whether a 15-year-old may work
    # 赔偿 alone is every claim's word: with a labour side it is a labour claim, not 工伤
    ("没签劳动合同干了三个月被赶走能要赔偿吗", "labour", "劳动争议仲裁"),
    # a worker's death and its benefits go to 人社部门, also after an occupational disease
    ("尘肺病人去世了家属能领什么补助", "injury", "社会保险行政部门"),
    ("干活时手指被机器压断了怎么办", "injury", "社会保险行政部门"),  # an accident at work
    ("厂里每天让干12个小时合法吗", "labour", "劳动保障监察"),
    # an ordinary illness found at a health check is not an occupational-health question
    ("入职体检查出小三阳，公司不录用我怎么办", "labour", "12333"),
    ("体检查出血压高是怎么回事", "medical", "医院"),
    ("单位组织体检说我肝功能有问题", "medical", "医院"),  # a liver test is a hospital's question
    ("流感季节出门戴哪种口罩", "medical", "医院"),  # masks against an epidemic: not protection at work
    ("多大年龄才可以进厂打工", "labour", "12333"),  # the working age asked without a health word
    # who pays the work-injury insurance is social insurance: 人社部门 / 12333, not our law's text
    ("工伤保险费是公司交还是自己交", "injury", "12333"),
    # a trade (化工, 煤矿) names where the worker is, not what is asked: pay and transfers are labour
    ("在化工厂上班，被调到别的部门降了工资合法吗", "labour", "12333"),
    # how much a disability grade pays is set by 人社部门's rules, not by our texts on the procedure
    ("伤残七级能拿多少一次性补助", "injury", "社会保险行政部门"),
    # ... also when it names an occupational disease: the grade is the 劳动能力鉴定委员会's, not our texts'
    ("矽肺二期大概能评几级伤残", "injury", "社会保险行政部门"),
    # a pregnant or breastfeeding worker sent on a trip or a posting, with no hazard: an employment question
    ("怀孕三个多月，领导让我下周出差去外省，能不去吗", "labour", "12333"),
    ("还在喂奶，公司要把我派到外地驻场两个月，可以拒绝吗", "labour", "12333"),
    # shift words with an ordinary illness only (睡不着, 吃什么药): a doctor's question, not 12333's
    ("倒了几年夜班现在老是睡不着，吃什么药好", "medical", "医院"),
    # her pay for the hours stays a labour question (a pregnant worker's night shifts themselves are answered)
    ("怀孕了还天天加班，加班费一直不给怎么办", "labour", "12333"),
    # money under the labour contract (培训费 within a 服务期, 违约金) with a hazard as the reason for leaving
    ("厂里出钱让我考了叉车证，约定服务期三年，现在仓库粉尘大不想干了，要还培训费吗", "labour", "劳动争议仲裁"),
    # the treatment or course of an occupational disease is a doctor's question (rubric: treatment is `medical`)
    ("确诊矽肺二期，这半年爬楼越来越喘，该吃什么药", "medical", "医院"),
    # a patient's X-ray while unknowingly pregnant: not occupational exposure
    ("上个月体检拍了胸片，后来才知道那时已经怀孕，孩子还能要吗", "medical", "医院"),
    # a child under 16 may not be taken on at all (《劳动法》第十五条), whatever the hazard named
    ("十四岁在工地上干活，天这么热，老板这样合法吗", "labour", "12333"),
])
def test_questions_outside_occupational_health_go_to_the_right_door(retriever, question, door, named):
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == door, (result.decision, result.door)
    assert named in result.text and not result.found
    assert "来源：" not in result.text  # never an occupational-health passage


def test_a_refused_question_with_a_labour_side_names_12333(retriever):
    # below the threshold (forced here) an occupational-health question is refused; when it also has
    # a labour side (退休), the refusal names that door too, and only then
    from bot.answering.answer import answer_query
    from bot.answering.query import analyse
    # (提前退休 itself is a pension question, sent to 12333 whatever the hazard: decide.pension)
    retire = answer_query(retriever, analyse("接触粉尘的岗位快退休了，还要做体检吗", retriever.encode), threshold=1.0)
    plain = answer_query(retriever, analyse("接触粉尘的岗位要戴什么口罩", retriever.encode), threshold=1.0)
    assert retire.decision == plain.decision == "refuse"
    assert "12333" in retire.text and "12333" not in plain.text


def test_a_group_word_alone_keeps_a_question_ours(retriever):
    result = answer(retriever, "孕期女职工不能从事哪些有毒作业")
    assert result.decision == "answer" and result.found


def test_a_pregnant_workers_night_shifts_are_answered_with_the_12333_note(retriever):
    # 《女职工劳动保护特别规定》第六条 answers it (from the 7th month no night shifts); the labour note stays
    result = answer(retriever, "怀孕七个多月了单位还排夜班，对身体不好能拒绝吗")
    assert result.decision == "answer" and result.found, (result.decision, result.door)
    assert "7个月" in result.text and "夜班" in result.text and "12333" in result.text


def test_a_minors_age_with_a_hazardous_trade_stays_ours(retriever):
    # 17岁 alone asks whether a minor may work (12333); with a hazardous trade (化工) it asks what work a
    # minor may not do, which 《职业病防治法》第三十八条 answers
    result = answer(retriever, "17岁能去化工厂上班吗")
    assert result.decision == "answer" and result.found, (result.decision, result.door)
    assert "未成年工" in result.text


@pytest.mark.parametrize("question, named", [
    ("下化粪池干活的工友晕倒了能不能下去救", "盲目"),  # a confined space (有限空间) names its hazard
    ("护士被病人用过的针扎了一下怎么办", "碘伏"),  # a needle-stick without 针头
])
def test_field_words_without_a_hazard_name_keep_a_question_ours(retriever, question, named):
    result = answer(retriever, question)
    assert result.decision == "answer" and result.found, (result.decision, result.door)
    assert named in result.text


def test_night_shifts_asked_about_with_the_body_are_ours(retriever):
    # 夜班 is a labour word (its hours, its pay), but asked with the body's health it is our topic:
    # night-shift work is IARC group 2A, which our text on shifts says
    result = answer(retriever, "在医院轮了十几年夜班，听说得乳腺癌的几率会高，是真的吗")
    assert result.decision == "answer" and result.found, (result.decision, result.door)
    assert "2A" in result.text
    pay = answer(retriever, "夜班费一晚上该给多少，上夜班伤身体单位该多给吗")  # its pay stays 12333's
    assert pay.decision == "refer" and pay.door == "labour"


@pytest.mark.parametrize("question, named", [
    ("楼顶上晒到42度了，工头还叫我们接着干", "40℃"),  # no 高温, a bare temperature with a work word
    ("外面都40°C了，中午还要在工地扎钢筋吗", "40℃"),
])
def test_a_bare_temperature_at_work_is_the_heat_topic(retriever, question, named):
    result = answer(retriever, question)
    assert result.decision == "answer" and result.found, (result.decision, result.door, result.confidence)
    assert named in result.text and "防暑降温措施管理办法" in result.text


def test_a_bare_temperature_is_answered_by_its_own_grade(retriever):
    # the 40 ℃ card matches the colloquial form best; 39 度 falls in the grade below it (37–40 ℃: at most
    # 6 hours outdoors, none in the 3 hottest), which a close unit names (aspect.by_temperature)
    result = answer(retriever, "在工地上扎钢筋，中午都39度了，工头说干完才能歇")
    assert result.decision == "answer" and result.found, (result.decision, result.confidence)
    assert "6小时" in result.text and "停止当日室外露天作业" not in body(result).split("\n")[0]


def test_a_health_check_without_an_ordinary_illness_stays_ours(retriever):
    result = answer(retriever, "体检费要我自己出吗")
    assert result.decision == "answer" and result.found


def test_work_injury_questions_name_the_human_resources_department(retriever):
    result = answer(retriever, "确诊职业病以后怎么申请工伤认定")
    assert result.found
    assert "人社" in result.text or "社会保险行政部门" in result.text
    commute = answer(retriever, "下班路上被车撞了能不能算工伤")
    assert not commute.found and "社会保险行政部门" in commute.text
    # an accident has no occupational-health part: the door's line on occupational disease is left out (session 14)
    assert "第十四条第四项" not in commute.text and "职业病防治法" not in commute.text
    # a question with a word of ours keeps it: an occupational disease is a 工伤
    grade = answer(retriever, "尘肺病一期能评几级伤残")
    assert grade.door == "injury" and "患职业病的，应当认定为工伤（《工伤保险条例》第十四条第四项）" in grade.text
    accident = answer(retriever, "在厂里摔伤了手算工伤吗")  # an accident: not an occupational disease
    assert not accident.found and accident.door == "injury"
    # the procedure itself, without an occupational-health word: our work-injury texts answer it
    steps = answer(retriever, "工伤认定要交哪些材料")
    assert steps.found and "社会保险行政部门" in steps.text


def test_what_an_occupational_disease_patient_is_owed_is_answered_with_the_injury_door(retriever):
    """A death and its benefits, or a disability grade's money, go to the work-injury door by their words
    (decide.door_by_words); with a word naming the field (尘肺, 职业病) and a work-injury unit that answers it,
    the occupational-health part is answered from 《工伤保险条例》 and the door's 人社 line goes with it
    (decide.disease_benefit_answer, issue #9)."""
    death = answer(retriever, "尘肺病职工去世了，家属能领哪些工亡待遇")
    assert death.decision == "answer" and "丧葬补助金" in death.text and "一次性工亡补助金" in death.text, death.text
    assert "人社部门" in death.text
    grade = answer(retriever, "职业病评了五级伤残能拿多少补助")
    assert grade.decision == "answer" and "18个月" in grade.text and "人社部门" in grade.text, grade.text
    # without a word naming the field, a death at work and its money keep the plain referral
    accident = answer(retriever, "工人在车间干活时死亡，家属能领哪些补助")
    assert accident.decision == "refer" and accident.door == "injury", (accident.decision, accident.door)


def test_an_answer_made_from_a_referral_by_the_catalogue_still_names_the_door(retriever):
    # below the threshold (forced here) a work-injury question with a topic word is sent to 人社部门; the
    # disease catalogue then answers it (中暑 is on the list), and the answer keeps the door's line
    from bot.answering.answer import answer_query
    from bot.answering.query import analyse
    result = answer_query(retriever, analyse("热天干活中暑了，算工伤不", retriever.encode), threshold=1.0)
    assert result.decision == "answer" and result.found
    assert "人社部门" in body(result)


def test_a_question_about_people_not_at_work_is_not_ours_without_a_field_word(retriever):
    # an old villager's deafness is welfare or medicine, not occupational health
    elderly = answer(retriever, "村里听力不好的老年人能领什么补助")
    assert not elderly.found and "来源：" not in elderly.text
    # at work, or naming the field itself, it stays ours
    assert answer(retriever, "老年人还能在噪声车间上班吗").found
    assert answer(retriever, "尘肺病老人能领什么补助").found


def test_a_question_with_a_workplace_topic_is_not_sent_away_for_a_labour_word(retriever):
    result = answer(retriever, "离职的时候单位要给我做职业健康检查吗")
    assert result.found, result.text
    assert "离岗" in result.text


def test_whether_a_job_harms_the_body_is_answered_by_how_to_find_out(retriever):
    """Whether a job harms the body is answered with how to find out: the contract's 告知 (第三十三条). A battery
    plant had no section when this was written (the answer was what decides the harm, 第十五条, and how to find out);
    hazards-by-trade-4's section on battery plants now answers it, and names 第三十三条 too (it was refused: no topic
    word)."""
    result = answer(retriever, "去那家电池厂上班会不会伤身体")
    assert result.decision == "answer" and "第三十三条" in result.text, result.text


def test_an_answer_sending_to_work_injury_benefits_says_where_they_are_claimed(retriever):
    """职业病待遇 are paid "按国家工伤保险的规定执行" (第五十七条): the answer names 人社部门, where 工伤认定 is applied for."""
    result = answer(retriever, "确诊了职业病，能享受哪些待遇")
    assert result.decision == "answer" and "工伤保险" in result.text and "社会保险行政部门" in result.text, result.text


def test_traditional_script_question_is_answered(retriever):
    result = answer(retriever, "體檢費要我自己出嗎？")
    assert result.found and "用人单位" in result.text


def test_faq_card_answers_a_close_question(retriever):
    result = answer(retriever, "职业健康检查的费用要我自己出吗？")
    card = retriever.by_faq[result.faq_id]  # KeyError when no card (or an unknown one) answered
    assert "费" in card.section[0]  # the card about who pays for the examination
    assert "用人单位" in result.text and "来源" in result.text


def test_the_review_note_only_for_draft_material(retriever):
    for question in ("防尘口罩怎么戴才密合", "噪声多大算超标", "体检费要我自己出吗"):
        result = answer(retriever, question)
        assert result.found
        top = result.passages[0]
        assert (DRAFT_NOTE in result.text) == (top.doc.get("status") == "draft" and top.chunk.kind != "faq"), question


def test_local_plans_are_quoted_only_for_their_own_region(retriever):
    question = "非医疗放射工作人员个人剂量监测率的目标是多少"
    national = answer(retriever, question)
    assert "ln-plan" not in {p.chunk.doc_id for p in national.passages}
    named = answer(retriever, "柳南区" + question)
    assert named.found and named.passages[0].chunk.doc_id == "ln-plan"
    assert "90%" in named.text and "柳南区" in named.text  # the figure, and whose plan it is
    mine = answer(retriever, question, region="广西壮族自治区柳州市柳南区", top_k=10)
    assert "ln-plan" in {p.chunk.doc_id for p in mine.passages}  # the user's own region's plan may be quoted


def test_a_national_answer_never_opens_with_another_region_s_plan(retriever):
    from bot.answering.compose import quotes_local

    # a national section on radiation work quotes 城中区's plan as an example: not as the verdict
    result = answer(retriever, "医院CT室的技师会受到辐射伤害吗")
    assert result.decision == "answer"
    opening = result.text.split("。")[0]
    assert not quotes_local(opening, ["城中", "柳南", "秦皇岛", "广东", "石台"]), opening
    assert quotes_local("城中区还开展专项治理（《柳州市城中区职业病防治“十四五”规划政策解读》）。", ["城中"])
    assert not quotes_local("电光性眼炎属于法定职业病（广东省职业病防治院）。", ["广东"])  # an institute, not a plan


def test_a_table_row_is_a_unit_of_its_own(retriever):
    result = answer(retriever, "柳南区工业企业职业病危害项目申报率目标是多少")
    assert result.found
    top = result.passages[0].chunk
    assert top.kind == "row" and "申报率" in top.text and "≥90%" in top.text
    assert "柳南区" in top.text  # the plan's region goes with the row


def test_follow_up_is_read_with_the_previous_question(retriever):
    alone = answer(retriever, "那离职的时候呢？")
    follow = answer(retriever, "那离职的时候呢？", context="职业健康检查的费用谁出")
    assert follow.follow_up_of == "职业健康检查的费用谁出" and alone.follow_up_of is None
    assert follow.found and "离岗" in follow.text
    unrelated = answer(retriever, "噪声多大算超标", context="职业健康检查的费用谁出")
    assert unrelated.follow_up_of is None  # a full question of its own is not a follow-up


def test_ask_json_prints_the_documented_object(built_index, data_dir, capsys):
    assert main(["--data-dir", str(data_dir), "ask", "噪声多大算超标", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"question", "answer", "found", "decision", "door", "confidence", "passages", "faq_id"}
    assert out["found"] is True and out["decision"] == "answer" and 0.0 <= out["confidence"] <= 1.0
    assert set(out["passages"][0]) == {"text", "title", "section", "date", "score"}


def test_ask_json_batch_reads_one_question_per_line(built_index, data_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("体检费谁出\n\n怎么做红烧肉\n"))
    assert main(["--data-dir", str(data_dir), "ask", "-", "--json"]) == 0
    lines = [json.loads(row) for row in capsys.readouterr().out.splitlines()]
    # every line gets one object; an empty line an error field (issue #11)
    assert [row["question"] for row in lines] == ["体检费谁出", "", "怎么做红烧肉"]
    assert lines[1]["error"] == "empty question"
    assert [row["found"] for row in (lines[0], lines[2])] == [True, False]


@pytest.mark.parametrize("model", ["another-model"])
def test_ask_with_another_model_fails_clearly(built_index, data_dir, capsys, model):
    assert main(["--data-dir", str(data_dir), "--model", model, "ask", "体检费谁出"]) == 2
    err = capsys.readouterr().err
    assert "m3e-small" in err and model in err and "build-index" in err


def test_a_card_answers_only_a_paraphrase_of_its_own_question(retriever):
    # the riders card says "算。" about being a key group; it must not answer a work-injury question
    result = answer(retriever, "外卖骑手夏天中暑了算工伤吗")
    assert not result.text.startswith("算。")
    assert answer(retriever, "外卖骑手算不算职业健康重点人群").found


def test_near_domain_questions_are_never_answered_from_our_texts(retriever):
    near = load_questions(REPO / "tests" / "eval" / "near-ood.jsonl")
    answered_ = [q["q"] for q in near if answer(retriever, q["q"]).found]
    assert answered_ == []


def test_eval_retrieval_reads_real_question_rows(tmp_path):
    rows = [
        {"id": "r1", "question": "噪声聋怎么诊断", "scope": "oh", "kind": "diagnosis", "must": [["噪声聋"]]},
        {"id": "r2", "question": "单位拖欠工资怎么办", "scope": "labour", "must": [], "door": ["12333"]},
    ]
    path = tmp_path / "real.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    items = load_questions(path)
    assert [(i["q"], i["gold"], i["kind"]) for i in items] == [
        ("噪声聋怎么诊断", [["噪声聋"]], "diagnosis"), ("单位拖欠工资怎么办", [], "?")]


def test_search_fusion_is_bm25_heavy_and_heavier_for_plan_questions():
    from bot.answering.retrieve import BM25_WEIGHT, BM25_WEIGHT_PLAN, bm25_weight

    regions = ["全国", "广西壮族自治区柳州市柳南区"]
    assert bm25_weight("柳南区的职业病防治目标是什么", regions) == BM25_WEIGHT_PLAN
    assert bm25_weight("十四五规划要求的申报率是多少", regions) == BM25_WEIGHT_PLAN
    assert bm25_weight("离岗时单位要给我体检吗", regions) == BM25_WEIGHT
    assert 0.5 < BM25_WEIGHT < BM25_WEIGHT_PLAN < 1.0


def test_plan_questions_are_ranked_with_bm25_heavier_weights(retriever):
    from bot.answering.query import analyse
    from bot.answering.rank import PLAN_WEIGHTS, WEIGHTS, weights_for

    plan = analyse("柳南区规划的职业健康检查覆盖率目标是多少", retriever.encode)
    worker = analyse("离岗时单位要给我做体检吗", retriever.encode)
    assert weights_for(retriever, plan) == PLAN_WEIGHTS and weights_for(retriever, worker) == WEIGHTS
    assert PLAN_WEIGHTS["bm25"] > WEIGHTS["bm25"]


def test_room_left_in_the_detail_goes_to_the_next_units_sentences_with_their_source(retriever):
    from bot.answering.answer import compose_answer
    from bot.answering.compose import (
        DISTINCT_IDF,
        NEIGHBOURS,
        compose,
        group_lists,
        section_text,
        source_line,
        words,
    )
    from bot.answering.query import analyse
    from bot.answering.rank import rank

    query = analyse("电焊工要戴什么防护", retriever.encode)
    ranked = rank(retriever, query, retriever.unit_scores(query))
    composed = compose(retriever, query, ranked[0], None, ranked[1:])
    assert composed.neighbours, "the top unit's own sentences leave room: the next units fill it"
    assert all(n in ranked[1:1 + NEIGHBOURS] for n in composed.neighbours)
    own = sentences(section_text(retriever, ranked[0]))
    theirs = {s for n in composed.neighbours for s in sentences(section_text(retriever, n))}
    distinct = {w for w in set(query.expanded) | words(query.focus) if retriever.idf(w) >= DISTINCT_IDF}
    # a sentence cut at its ； ends in 。 (compose.seal); a borrowed list is one piece (compose.group_lists)
    borrowed = [s for s in sentences(composed.detail) if s not in own and s[:-1] + "；" not in own]
    assert borrowed and all(s in theirs or s[:-1] + "；" in theirs for s in borrowed)
    assert all(distinct & words(piece) for piece in group_lists(borrowed)[0])
    assert len(composed.detail) <= DETAIL_CHARS
    text, _ = compose_answer(retriever, query, ranked[0], [], None, ranked[1:])
    source = text.split("\n\n来源：")[1]
    assert all(part in source.split("；") for n in composed.neighbours for part in source_line(n).split("；"))
    alone = compose(retriever, query, ranked[0])  # without the ranking, the unit's own sentences only
    assert not alone.neighbours and all(s in own for s in sentences(alone.detail))


def test_a_province_s_own_figure_is_not_answered_with_the_national_rule(retriever):
    """A province's standard (the amount of 高温津贴 each province sets) asked where no unit of ours is that
    province's: the national text would be another jurisdiction's answer, so it is refused."""
    from bot.answering.decide import OTHER_SUBJECT
    from bot.text.regions import provinces_named

    assert provinces_named("江苏的高温津贴标准是多少") == {"江苏"}
    assert provinces_named("高温津贴标准是多少") == set()
    result = answer(retriever, "江苏的高温津贴标准是多少")
    assert result.decision == "refuse" and result.confidence <= OTHER_SUBJECT
    # the province's own rule in our texts (广东's), or a yes/no the national rule answers, is still answered
    assert answer(retriever, "广东高温天停工标准是多少度").decision == "answer"
    assert answer(retriever, "天津高温天单位必须发防暑降温费吗").decision == "answer"


def test_who_must_not_do_the_work_is_not_answered_by_a_unit_that_names_no_contraindication(retriever):
    """The `unfit` aspect (禁忌, 不宜, 哪些人不能 …) asked where the best unit neither asks nor says it: a unit on
    the hazard in general would be a neighbouring answer, so it is refused (answer.CAPPED_ASPECTS)."""
    from bot.answering.decide import OTHER_SUBJECT

    result = answer(retriever, "什么人不适合干接触甲苯的活")
    assert result.decision == "refuse" and result.confidence <= OTHER_SUBJECT
    # a unit that sets out the contraindications still answers
    assert answer(retriever, "粉尘作业的职业禁忌证有哪些").decision == "answer"
