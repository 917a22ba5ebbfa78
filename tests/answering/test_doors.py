"""The door rules' readings of a question (decide.py, knowledge/dict/doors.yaml): a bare temperature as the heat
topic, shift words asked about with the body's health, a pregnant worker's trip as a labour word. Questions are
our own wording."""
from __future__ import annotations

import pytest

from bot.answering.aspect import degrees, fits
from bot.answering.decide import cues_in, door_notes, heat_reading, maternity_hours, points_to, shift_health, topic_of
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
    硫化氢 and 一氧化碳: a question about it is ours (disease-definitions "遇到氯气泄漏、吸了氯气，第一步怎么做？")."""
    found = cues(question)
    assert topic_of(found, []) and "氯气" in found["oh"]
