"""The door rules' readings of a question (decide.py, knowledge/dict/doors.yaml): a bare temperature as the heat
topic, shift words asked about with the body's health, a pregnant worker's trip as a labour word. Questions are
our own wording."""
from __future__ import annotations

import numpy as np
import pytest

from bot.answering.answer import answer
from bot.answering.aspect import degrees, fits
from bot.answering.decide import (
    DOOR_NOTES,
    child_work,
    civil_injury,
    contract_money,
    cues_in,
    door_by_words,
    door_notes,
    elsewhere,
    heat_reading,
    hours_harm,
    injury_cost,
    maternity_hours,
    patient_care,
    patient_exam,
    pension,
    points_to,
    product_use,
    shift_health,
    topic_of,
)
from bot.answering.query import analyse
from bot.text.normalize import normalize
from tests.helpers import KNOWLEDGE


def cues(question: str) -> dict[str, list[str]]:
    """The cue words of a question as decide reads them."""
    return cues_in(normalize(question))


@pytest.mark.parametrize("question, reading", [
    ("今天42度了还得在外面搬砖吗", "42度"),
    ("车间里常年36℃左右，有没有规定", "36°c"),
    ("厂房里三十八九度，能要求停工吗", "三十八九度"),
    ("夏天中午39.5摄氏度还要送货吗", "39.5摄氏度"),
])
def test_a_temperature_in_the_weather_or_at_work_reads_as_heat(question, reading):
    found = cues(question)
    assert heat_reading(normalize(question), found) == reading
    assert reading in found["oh"] and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "孩子发烧到39度要不要去医院",  # a body temperature
    "上班的时候体温37.5度要请假吗",  # a body temperature, even at work
    "空调开到26度省电吗",  # not a temperature of heat
    "明天38度，适合去海边玩吗",  # nothing places it at work or outdoors
    "年满35岁还能进厂上班吗",  # an age, not a temperature
])
def test_other_numbers_and_body_temperatures_are_not_the_heat_topic(question):
    found = cues(question)
    assert heat_reading(normalize(question), found) is None


def test_the_trades_short_form_of_exposure_is_our_topic():
    """接害 (接触职业病危害: 接害岗位, 接害人员) names the field: without it such a question had no topic word."""
    found = cues("安排员工去接害岗位前，公司得先办哪些事")
    assert "接害" in found["oh"] and topic_of(found, [])


def test_shift_words_with_the_bodys_health_are_our_topic():
    nurse = cues("当护士老上夜班，会不会更容易得癌")
    assert shift_health(nurse) and topic_of(nurse, []) and "夜班" in nurse["oh"]
    assert not nurse["labour"]  # 夜班 is not read as a labour word here


@pytest.mark.parametrize("question", [
    "夜班费一个月该发多少",  # pay: no word of health
    "夜班补贴太少了，熬夜伤身体，能找谁",  # its pay named (夜班补贴), even with the body
    "怀孕了上夜班对身体有影响吗，能不能不上",  # a pregnant worker's night shifts: maternity_hours, not shift_health
    "三班倒还不给加班费，身体都垮了",  # another labour word (加班费)
])
def test_shift_words_stay_labour_words_otherwise(question):
    found = cues(question)
    assert not shift_health(found)
    topic_of(found, [])
    assert not {"夜班", "三班倒"} & set(found.get("oh", []))  # no shift word was made a topic word


@pytest.mark.parametrize("question", [
    "怀孕八个月了厂里还排我上夜班，这样合法吗",
    "在哺乳期，单位让我天天加班到晚上十点可以吗",
    "孕妇每天工作时间能超过8个小时吗",
])
def test_a_pregnant_or_nursing_workers_night_shifts_and_hours_are_ours_with_the_labour_note(question):
    """《女职工劳动保护特别规定》第六条、第九条 limit them: answered, with the 12333 note (第十三条、第十四条)."""
    found = cues(question)
    assert maternity_hours(found) and topic_of(found, [])
    assert door_notes(found) and "12333" in door_notes(found)[0]


@pytest.mark.parametrize("question", [
    "怀孕了上夜班，夜班费怎么算",  # pay
    "哺乳期加班，单位不给加班费怎么办",  # pay
    "孕期被安排出差一个月还要加班，可以拒绝吗",  # a posting
    "产假期间公司要我回去上夜班吗",  # leave
])
def test_her_pay_leave_or_posting_stays_a_labour_question(question):
    found = cues(question)
    assert not maternity_hours(found) and not topic_of(found, [])


def test_a_pregnant_workers_trip_is_a_labour_question_but_her_hazards_are_ours():
    trip = cues("孕期被安排出差一个月，可以拒绝吗")
    assert not topic_of(trip, []) and trip["labour_weak"]
    lead = cues("孕期被安排去接触铅的岗位出差，可以拒绝吗")  # a hazard word keeps it ours
    assert topic_of(lead, [])


@pytest.mark.parametrize("text, named", [
    ("工地上中午39度", [39.0]),
    ("厂房里三十七八度", [37.5]),  # two units named: between them
    ("气温37°c到40°c之间（38°c、39°c）", [37.0, 40.0, 38.0, 39.0]),
    ("35到37度的天气", [35.0, 37.0]),
    ("干了35年的老工人", []),  # no word of degrees
])
def test_degrees_reads_the_temperatures_a_text_names(text, named):
    assert degrees(text) == named


def test_a_temperature_fits_the_grade_a_unit_names():
    assert fits(39, [37, 40, 38, 39])  # 37℃以上、40℃以下
    assert not fits(40, [37, 40])  # 40 belongs to the grade above
    assert fits(41, [40]) and not fits(39, [40])  # one temperature named: that one or above
    assert fits(36, []) is None  # a unit naming no temperature neither fits nor fails


CATALOGUE = KNOWLEDGE / "materials" / "disease-catalogue.md"


@pytest.mark.parametrize("question, name", [
    ("棉尘病是什么病", "棉尘病"),
    ("硬金属肺病是怎么得的", "硬金属肺病"),
    ("金属烟热是什么症状", "金属烟热"),
    ("铬鼻病能赔偿吗", "铬鼻病"),
    ("牙酸蚀病是什么原因", "牙酸蚀病"),
    ("爆震聋还能恢复吗", "爆震聋"),
    ("铍病是什么病", "铍病"),
    ("胸膜间皮瘤是怎么回事", "间皮瘤"),
    ("电光性皮炎怎么处理", "电光性皮炎"),
    ("航空病是什么病", "航空病"),
])
def test_a_distinctive_disease_of_the_catalogue_makes_a_question_ours(question, name):
    """A disease of 《职业病分类和目录》 whose name is distinctive of occupational disease is a topic word:
    the question is ours even with a doctor's words (是什么病, 怎么回事), not sent to a hospital."""
    assert name in CATALOGUE.read_text(encoding="utf-8")  # the name is the catalogue's
    found = cues(question)
    assert topic_of(found, []) and found["oh"]


@pytest.mark.parametrize("question", [
    "我有哮喘能吃什么药",  # 哮喘: in the catalogue, but an ordinary illness
    "最近脸上长痤疮怎么回事",  # 痤疮
    "我妈白内障要不要做手术",  # 白内障
    "我爸得了白血病怎么治",  # 白血病
    "脚冻伤了又痒又肿怎么办",  # 冻伤
])
def test_an_ordinary_illness_named_in_the_catalogue_still_goes_to_a_hospital(question):
    """Catalogue names that also name common illness are not topic words: without a word of work or
    hazard the question is a doctor's (the medical door)."""
    found = cues(question)
    assert not topic_of(found, []) and points_to(found, "medical")


@pytest.mark.parametrize("question", [
    "干木工活天天吸木屑，会不会得肺病",
    "锯末满车间飞，对肺有没有伤害",
])
def test_wood_dust_by_its_everyday_names_makes_a_question_ours(question):
    """木屑 and 锯末 name wood dust (IARC group 1; hazard-dust "木粉尘、棉麻粉尘、金属粉尘也会引起尘肺吗"): a worker's
    risk question about them is ours, not a hospital's for its 肺病 (it was refused at confidence 0.06)."""
    found = cues(question)
    assert topic_of(found, []) and found["oh"]


@pytest.mark.parametrize("question", [
    "车间里氯气泄漏了怎么办",
    "吸了氯气一直咳嗽胸闷要紧吗",
])
def test_chlorine_makes_a_question_ours(question):
    """氯气 is an irritant gas with its own diagnostic standard (GBZ 65) and catalogue entry (氯气中毒), like
    硫化氢 and 一氧化碳: a question about it is ours (disease-definitions "氯气是什么样的毒物？吸进去伤哪里？")."""
    found = cues(question)
    assert topic_of(found, []) and "氯气" in found["oh"]


@pytest.mark.parametrize("question", [
    "去那家电池厂上班会不会伤身体",
    "在喷涂车间干活对人体有影响吗",
    "这个岗位天天干下去对身体不好吧",
    "在车间打磨铁件对肺有伤害吗",  # harm asked of one organ
    "工地上天天切砖，对眼睛有影响吗",
])
def test_harm_to_the_body_asked_of_a_job_is_ours(question):
    """伤身体, 对人体有影响 asked of a job (a `workplace` word) is an occupational hazard question: with no topic word
    of its own it needed confidence 0.85 and was refused."""
    found = cues(question)
    assert topic_of(found, []) and found["oh"]


@pytest.mark.parametrize("question, door", [
    ("熬夜追剧伤身体吗", None),  # not at work
    ("抽烟对肺有伤害吗", None),
    ("加班太多伤身体，加班费怎么算", "labour"),  # a labour word
])
def test_harm_to_the_body_alone_or_with_a_labour_word_is_not_ours(question, door):
    found = cues(question)
    assert not topic_of(found, [])
    assert door_of(question) == door


@pytest.mark.parametrize("question", [
    "夏天厂房里闷热得喘不过气，单位该管吗",
    "车间太热了干活头晕，有没有规定",
    "中午在外面干活热得受不了怎么办",
])
def test_how_hot_at_work_said_without_a_figure_is_the_heat_topic(question):
    """太热, 闷热 with a word placing it at work or outdoors reads like a bare temperature (session 14, coverage pass): with
    no topic word such a question needed confidence 0.85 and was refused."""
    found = cues(question)
    assert heat_reading(normalize(question), found) in found["hot"]
    assert topic_of(found, [])


@pytest.mark.parametrize("question", [
    "今天好热啊，晚上吃什么",  # nothing places it at work
    "发烧浑身很热是怎么回事",  # a body temperature
])
def test_how_hot_alone_or_of_the_body_is_not_the_heat_topic(question):
    found = cues(question)
    assert heat_reading(normalize(question), found) is None


def test_years_of_work_with_a_hazard_asked_about_the_body_are_ours():
    """上班时间 is an hours word, but "在冷库上班时间长了对身体有影响吗" asks what the cold does over years (session
    session 14: it went to 12333); with another labour word or without a hazard or trade it stays a labour question."""
    assert hours_harm(cues("在冷库上班时间长了对身体有影响吗"))
    assert door_of("在冷库上班时间长了对身体有影响吗") is None
    assert not hours_harm(cues("粉尘岗位上班时间长了对身体有影响，加班费怎么算"))
    assert not hours_harm(cues("上班时间太长对身体有影响吗"))


def test_hand_held_vibrating_tools_are_our_topic():
    assert topic_of(cues("天天打风镐手指发麻要紧吗"), [])


def test_the_temperature_of_a_place_of_work_is_ours():
    """车间温度 (and the like) is heat at work with or without a figure: it was refused at 0.03 without one."""
    assert topic_of(cues("夏天车间温度多少度可以停工"), [])
    assert not topic_of(cues("明天温度多少度，要不要加衣服"), [])  # no place of work


def test_a_fever_after_the_weather_changed_is_not_heat_at_work():
    """气温 is our topic word for work in the heat; with a body temperature and no word of work it is a fever."""
    assert door_of("这两天气温忽冷忽热，晚上突然发烧到38度5，要紧吗") == "medical"
    assert topic_of(cues("气温38度了还在工地干活，工友发烧了怎么办"), [])  # at work: ours


def door_of(question: str) -> str | None:
    """The door a question is sent to by its words alone (topic_of, then door_by_words), as decide reads it;
    the question's vector plays no part in it."""
    query = analyse(question, lambda _text: np.zeros(4, dtype="float32"))
    found = cues_in(query.normalized)
    return door_by_words(query, found, topic_of(found, []))


@pytest.mark.parametrize("question", [
    "厂里出钱让我考了叉车证，约定服务期三年，现在仓库粉尘大不想干了，要还培训费吗",
    "合同写着提前离开要交违约金，可车间天天闻稀料，我走了要赔吗",
    "没干满服务期就走，公司从工资里扣培训费，车间噪声又大，这样行吗",
    "打磨车间灰尘太多我要走人，老板扣着押金不退",
    "在噪声岗位签过竞业协议，走了以后还要赔钱吗",
])
def test_money_under_the_labour_contract_is_a_labour_question_whatever_hazard_is_named(question):
    """培训费 within a 服务期, 违约金, 押金 (《劳动合同法》第九条、第二十二条): a contract dispute for 12333 / 劳动争议仲裁;
    the hazard the worker names is why he leaves, not what he asks."""
    found = cues(question)
    assert contract_money(found) and elsewhere(found) == "labour"
    assert not topic_of(found, []) and not found["oh"]
    assert door_of(question) == "labour"


@pytest.mark.parametrize("question", [
    "查出尘肺病后公司要跟我解除合同，给经济补偿就行了吗",  # the field named: what a patient is owed
    "辞职的时候公司把发的防尘口罩钱从补偿金里扣了，合法吗",  # the cost of protective equipment: the employer's duty
    "离职前单位不安排离岗体检，还扣我押金，怎么办",  # the exit health check: the employer's duty
])
def test_contract_money_with_the_field_or_an_employer_duty_stays_ours(question):
    found = cues(question)
    assert not contract_money(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "确诊矽肺二期，这半年爬楼越来越喘，该吃什么药",
    "尘肺病人平时用什么药好一点",
    "我爸铅中毒出院了，后面还要怎么治疗",
    "得了噪声聋还能治好吗",
    "矽肺三期的人一般还能活多久",
    "锰中毒以后手抖越来越厉害是怎么回事",
    "老伴尘肺病喘得厉害，家里要不要备一台制氧机",  # at home: still a hospital's, not 12345's
])
def test_the_treatment_or_course_of_an_illness_goes_to_a_hospital_even_an_occupational_one(question):
    """Treatment, cure and life expectancy of any illness are a doctor's (tests/eval/README-real.md, scope audit)."""
    found = cues(question)
    assert patient_care(found) and not topic_of(found, []) and door_of(question) == "medical"


@pytest.mark.parametrize("question", [
    "得了矽肺吃药的钱能不能找单位报销",  # who pays: 《职业病防治法》第五十六条
    "确诊尘肺二期还要吃药，能申请工伤吗",  # the work-injury procedure
    "尘肺病越来越重了，还能继续干粉尘活吗",  # staying on the job: 职业禁忌, 调离
    "怀疑得了尘肺，去哪里诊断，要带什么",  # diagnosis
])
def test_a_patients_question_of_diagnosis_benefits_or_the_job_stays_ours(question):
    found = cues(question)
    assert not patient_care(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "上个月体检拍了胸片，后来才知道那时已经怀孕，孩子还能要吗",
    "刚做完肺部CT就查出怀孕了，射线对胎儿有影响吗",
    "拍一次X光的辐射大不大",
])
def test_a_patients_medical_imaging_goes_to_a_hospital(question):
    found = cues(question)
    assert patient_exam(found) and not topic_of(found, []) and door_of(question) == "medical"


@pytest.mark.parametrize("question", [
    "我是放射科技师，怀孕了还能继续做CT吗",  # a radiation worker
    "在放射科上班，怀孕以后还能接触射线吗",
    "职业健康检查为什么要拍胸片",  # an occupational health check
    "粉尘岗位干了八年，拍片说肺上有小阴影，是尘肺吗",  # what a finding of work exposure means
])
def test_a_radiation_workers_or_an_occupational_checks_imaging_stays_ours(question):
    found = cues(question)
    assert not patient_exam(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "15岁能不能去厂里打工",
    "几岁才可以出去打工",
    "十四岁在工地上干活，天这么热，老板这样合法吗",
    "厂里招了童工在车间吸粉尘，该找谁",
    "多大可以出来打工",
    "未成年可以去饭馆打工吗",
])
def test_a_childs_work_and_the_minimum_working_age_are_labour_questions(question):
    """Nobody under 16 may be taken on (《劳动法》第十五条): 12333 / 劳动保障监察, whatever hazard is named."""
    found = cues(question)
    assert not topic_of(found, []) and door_of(question) == "labour"


@pytest.mark.parametrize("question", [
    "17岁可以去煤矿井下干活吗",  # a 16–17-year-old and a hazardous trade: what a minor may not do (minor_only)
    "未成年工能不能安排在噪声大的岗位",
    "多大年龄可以干电焊",  # the age for a hazardous job
    "未成年可以去化工厂上班吗",
])
def test_a_minor_and_a_hazard_stay_ours(question):
    found = cues(question)
    assert not child_work(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "干了二十年高温岗位，算不算特殊工种，能提前几年退休",
    "井下粉尘大，听说这种活退休年龄早，要去哪里申请",
    "噪声车间的工人养老金会多一点吗",
])
def test_a_pension_and_early_retirement_are_labour_questions_whatever_hazard_is_named(question):
    """The retirement age of 特殊工种 and pensions are 人社部门's (12333), though the worker names the heat or dust."""
    found = cues(question)
    assert pension(found) and not topic_of(found, []) and door_of(question) == "labour"


def test_an_occupational_disease_patients_retirement_stays_ours():
    """A word naming the field keeps it ours: what a patient is owed (rubric of tests/eval/README-real.md)."""
    found = cues("得了尘肺病可以提前退休吗")
    assert not pension(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "每个月都去染头发，时间长了会不会中毒",
    "家里天天用消毒水拖地，闻多了有害吗",
    "孩子补牙用的材料含汞，有毒吗",
    "口红里有铅，对身体有害吗",
])
def test_a_product_one_uses_oneself_goes_to_the_product_door(question):
    """Hair dye, a household disinfectant, a filling, cosmetics used by the asker: product safety and medicine,
    not occupational health, though 中毒, 有害 or 铅 are named; also at home (not 12345's)."""
    found = cues(question)
    assert product_use(found) and not topic_of(found, []) and door_of(question) == "product"


@pytest.mark.parametrize("question", [
    "在理发店当学徒天天给人染发，手上起疹子算职业病吗",
    "保洁员每天兑消毒液，要戴什么口罩",
    "医院上班天天用含氯消毒液，对身体有害吗",
])
def test_a_product_handled_at_work_stays_ours(question):
    found = cues(question)
    assert not product_use(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "单位组织体检，血小板有点低，要紧吗",
    "年度体检红细胞偏高是怎么回事",
    "体检报告说淋巴细胞偏高，要不要紧",
])
def test_a_routine_checks_blood_count_without_an_exposure_goes_to_a_hospital(question):
    found = cues(question)
    assert not topic_of(found, []) and door_of(question) == "medical"


def test_a_blood_count_with_an_exposure_stays_ours():
    assert topic_of(cues("接触苯的岗位，职业健康检查白细胞偏低怎么办"), [])


def test_a_blood_count_with_an_exposure_is_answered_with_the_hospital_line():
    """Every value of a blood count (中性粒细胞, 淋巴细胞 too) is a doctor's word: with an exposure the question
    stays ours, and its answer tells the worker to see a doctor (door_notes)."""
    found = cues("长期接触苯，中性粒细胞偏低要紧吗")
    assert found["medical"] and topic_of(found, [])
    assert door_notes(found) == [DOOR_NOTES["medical"]]


def test_a_cure_asked_by_a_patient_who_names_the_factory_only_as_background_goes_to_a_hospital():
    """The employer words of a patient's question count only in what it asks (query.asking_parts)."""
    assert door_of("我在厂里干了十年打磨，前年确诊矽肺，这个病能治好吗？") == "medical"
    found = cues("得了矽肺还要吃药，厂里管不管？")
    assert not patient_care(found) and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "单位派我去驻村一年，孩子还在哺乳期，能不能不去",
    "公司的工作服要自己掏钱买吗",
    "疫情期间老板不发口罩，我不去上班算旷工吗",
])
def test_a_posting_a_uniform_or_staying_away_in_an_epidemic_are_labour_questions(question):
    found = cues(question)
    assert not topic_of(found, []) and door_of(question) == "labour"


def test_refusing_work_without_protection_stays_ours():
    """《职业病防治法》第三十九条: a worker may refuse work without protection against occupational hazards."""
    assert topic_of(cues("车间不给发防尘口罩，我能拒绝干活吗"), [])


@pytest.mark.parametrize("question", [
    "考驾照体检听力不过怎么办",
    "快递员猝死的新闻是真的吗",
])
def test_a_licence_check_or_a_news_story_is_not_ours_by_a_check_or_a_trade(question):
    assert not topic_of(cues(question), [])


@pytest.mark.parametrize("question", ["落枕了要几天才好", "偏头痛怎么缓解"])
def test_everyday_ailments_go_to_a_hospital(question):
    assert door_of(question) == "medical"


@pytest.mark.parametrize("question", [
    "刚被裁员，失业金去哪里申请，多久能批下来",
    "在外地看病住院，医保能报多少",
    "生完孩子以后生育津贴找谁领",
    "换了城市工作，社保关系怎么转过去",
    "想提前取住房公积金买房，要什么手续",
])
def test_social_insurance_benefits_by_their_own_names_go_to_12333(retriever, question):
    """失业金, 医保, 生育津贴, 公积金, a transfer of 社保: social insurance named without a wage or contract word is
    人社部门's (12333, 劳社部函〔2003〕84号), not refused without a door."""
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "labour", (result.decision, result.door)
    assert "12333" in result.text and "来源：" not in result.text


@pytest.mark.parametrize("question", [
    "最近一到太阳底下眼睛就怕光，原因是什么",
    "早上起来眼睛干涩发红是怎么回事",
    "晚上睡觉耳鸣是什么原因",
    "手臂上起了一片红疹子是怎么回事",
])
def test_everyday_eye_ear_and_skin_complaints_go_to_a_hospital(retriever, question):
    """An eye, ear or skin complaint asked with 原因/怎么回事 and no word of work or hazard is a doctor's question;
    耳鸣 (a body function, `body_sense`) is not read as noise at work then."""
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "medical", (result.decision, result.door)
    assert "医院" in result.text and "来源：" not in result.text


@pytest.mark.parametrize("question", [
    "噪声车间下班后一直耳鸣是什么原因",  # a hazard word
    "在厂里上班天天耳鸣是怎么回事",  # a word of work
    "电焊的时候没戴面罩，晚上眼睛怕光流泪是怎么回事",  # welding: 电光性眼炎
])
def test_an_ear_or_eye_complaint_at_work_stays_ours(question):
    found = cues(question)
    assert topic_of(found, []) and found["oh"]


@pytest.mark.parametrize("question", [
    "公司的消防培训一年要搞几次",
    "商场这种人员密集场所多久要组织一次消防演练",
    "安全生产培训新员工要上多少学时",
    "特种作业操作证过期了怎么复审",
    "办公室的灭火器多长时间换一次",
])
def test_fire_and_production_safety_are_not_occupational_health(retriever, question):
    """消防, 安全生产 and 特种作业 are the 应急管理部门's and the 消防救援机构's (《消防法》第四条, 《安全生产法》第十条):
    never answered from occupational-health passages (a fire drill's interval is not the workplace-testing one)."""
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "safety", (result.decision, result.door)
    assert "应急管理部门" in result.text and "来源：" not in result.text


@pytest.mark.parametrize("question", [
    "职业卫生培训和安全生产培训能一起上吗",  # the field named
    "有限空间作业前要做哪些安全培训",  # a hazard of ours
    "电工上岗前要做哪些职业健康检查",  # an occupational check (GBZ 188 special work)
    "消防员参加火灾救援后得了创伤后应激障碍，算不算职业病",  # a firefighter's own health
    "粉尘车间发生火灾时工人怎么防毒",  # a hazard of ours
])
def test_safety_words_with_a_word_of_ours_stay_ours(question):
    found = cues(question)
    assert elsewhere(found) != "safety" and topic_of(found, [])


@pytest.mark.parametrize("question", [
    "跟人打架被打断了鼻梁，伤残等级怎么评",
    "骑电动车被汽车撞了，伤残鉴定去哪里做",
    "被邻居家的狗咬伤了，能要求赔偿多少",
])
def test_injuries_outside_work_are_not_work_injuries(retriever, question):
    """A fight, a road accident off the job, a dog bite: not 工伤 and not ours; the civil door says that
    劳动能力鉴定 is for work injuries and a lawsuit's grade is a 司法鉴定."""
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "civil", (result.decision, result.door)
    assert "司法鉴定" in result.text and "来源：" not in result.text


@pytest.mark.parametrize("question, door", [
    ("下班路上被车撞了，能不能算工伤", "injury"),  # on the way from work: 《工伤保险条例》第十四条第六项
    ("在车间和同事打架受了伤，算工伤吗", "injury"),  # at work
])
def test_an_injury_on_the_way_to_work_or_at_work_stays_a_work_injury(question, door):
    found = cues(question)
    assert not civil_injury(found) and door_of(question) == door


@pytest.mark.parametrize("question", [
    "厨房用的除垢剂闻多了对身体有害吗",
    "卧室里开空气净化器能去掉甲醛吗",
    "洗衣粉残留在衣服上对皮肤有害吗",
])
def test_household_products_go_to_the_product_door(retriever, question):
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "product", (result.decision, result.door)
    assert "来源：" not in result.text


@pytest.mark.parametrize("question", [
    "工伤住院花的钱能报销吗，找谁报",
    "工伤以后的医药费是单位出还是社保出",
])
def test_the_cost_of_treating_a_work_injury_goes_to_the_work_injury_door(retriever, question):
    """工伤医疗待遇 (《工伤保险条例》第三十条: the work-injury insurance fund) is 人社部门's, not an occupational-disease
    patient's benefits: its door names 12333 and the fund, not 《职业病防治法》."""
    result = answer(retriever, question)
    assert result.decision == "refer" and result.door == "injury_cost", (result.decision, result.door)
    assert "12333" in result.text and "工伤保险基金" in result.text and "职业病" not in result.text


def test_an_occupational_disease_patients_costs_stay_ours():
    found = cues("得了尘肺病，工伤住院的医疗费谁承担")
    assert not injury_cost(found) and topic_of(found, [])


@pytest.mark.parametrize("question, door", [
    ("胃里查出幽门螺杆菌要紧吗", "medical"),  # ordinary illnesses, care and symptoms: a doctor's questions
    ("晚上睡觉打鼾很厉害怎么办", "medical"),
    ("脚崴了先冷敷还是热敷", "medical"),
    ("干活的时候崴脚了，单位要不要管", "injury"),  # the same accident at work: 工伤, 人社部门
    ("单位今年不发取暖补贴了，找谁", "labour"),  # an allowance of the contract or local rules
    ("室内空气的甲醛标准是多少", "environment"),  # the air of one's home, not a workplace limit
])
def test_ordinary_illnesses_and_allowances_go_to_their_doors(question, door):
    """The wider lists of session 14: illnesses and care (幽门螺杆菌, 打鼾, 冷敷) send a question without a word of
    ours to a hospital, a twisted ankle at work is a work accident, and 取暖补贴 is a labour question."""
    assert door_of(question) == door


def test_an_ordinary_illness_with_a_hazard_stays_ours():
    """With a hazard named the same symptom is our topic: dust and a sore throat."""
    assert topic_of(cues("车间粉尘大，嗓子老是疼"), [])


@pytest.mark.parametrize("question", ["人造石加工伤肺吗", "在电子厂打工伤身体吗", "天天做工伤眼睛吗"])
def test_gongshang_read_across_two_words_is_not_a_work_injury(question):
    """加工伤肺, 打工伤身体: 工 ends one word and 伤 starts the next; they used to reach the work-injury door by 工伤."""
    found = cues(question)
    assert not found["injury"] and not found["work_injury"]
    assert door_of(question) != "injury"


def test_the_word_gongshang_itself_is_still_read():
    assert cues("打工受伤算工伤吗")["injury"] == ["工伤"]
    assert door_of("打工受伤算工伤吗") == "injury"


@pytest.mark.parametrize("question, door", [
    ("油田被钻杆砸伤算工伤吗", "injury"),  # an accident at work where only a trade word (oh_weak) made it ours
    ("在矿山干活被石头砸伤了怎么办", "injury"),
    ("焦化厂一个月多少钱", "labour"),  # pay in everyday words, with a trade named
    ("矿工一个月能挣多少", "labour"),
])
def test_a_trade_word_does_not_keep_an_accident_or_a_pay_question(question, door):
    assert door_of(question) == door


def test_an_accident_word_with_a_hazard_of_ours_stays_ours():
    assert door_of("在煤矿干了十年查出尘肺算不算工伤") is None  # 尘肺: a topic word of its own


def test_ones_family_is_not_ones_home():
    """家里人 (one's family) is not 家里 (one's home, the `environment` door): whether 尘肺 passes to them is ours."""
    assert not cues("尘肺会传染给家里人吗")["environment"]
    assert door_of("家里装修甲醛多久能散") == "environment"


@pytest.mark.parametrize("question, door", [
    ("做美甲的对身体有伤害吗", None),  # the nail technician: ours
    ("做美甲对指甲有伤害吗", "product"),  # getting one's nails done: the product door
    ("我在矿上干了二十年现在咳嗽气短怎么办", None),  # a miner's cough: ours, not a hospital's alone
])
def test_who_does_the_work_decides_whose_question_it_is(question, door):
    assert door_of(question) == door


@pytest.mark.parametrize("question, word", [
    ("用电锤打孔时手一直震动，会得病吗", "震动"),  # the everyday spelling of 振动
    ("厂里天天搬氨水桶，要注意什么", "氨水"),  # ammonia as most workplaces handle it
])
def test_everyday_names_of_a_hazard_are_topic_words(question, word):
    found = cues(question)
    assert word in found["oh"] and topic_of(found, [])
