"""Decide: answer from our texts, refer to the right door, or refuse.

Doors are chosen by cue words (knowledge/dict/doors.yaml, general vocabulary of each field):
wages, dismissal, hours, contracts and social insurance go to 12333 / 劳动保障监察 / 劳动争议仲裁;
ordinary illness to a hospital; work-injury procedure to 人社部门 (with the occupational-health part
answered where there is one); homes and neighbourhoods to 12345; products one uses oneself to a note on
product safety; fire and production safety to 应急管理部门 / 消防救援机构; injuries outside work to a note on
司法鉴定 and the courts; anything else we cannot answer gets the refusal (12320, the health authority). A question with an occupational-health topic word
stays ours; below the confidence threshold no answer is shown.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bot.answering.query import Query, asking_parts, verdict_answers
from bot.answering.rank import Candidate
from bot.text import MAX_FOLDERS, cached_by_folder, dict_dir, read_dictionary
from bot.text.normalize import normalize

DOORS = ("labour", "medical", "injury", "injury_cost", "environment", "product", "safety", "civil")

REFUSAL = (
    "抱歉，我的知识库里没有找到可靠的答案，不想给你猜一个。你可以：\n"
    "· 拨打 12320 卫生健康热线咨询；\n"
    "· 向当地卫生健康主管部门（卫生健康局/委）咨询或反映；\n"
    "· 怀疑得了职业病，可到依法承担职业病诊断的医疗卫生机构咨询。"
)
# Fixed texts of the doors; every institution and number is cited (README "Answering").
# Sources of the session-13 doors: 《工伤保险条例》(2010) 第十四条、第十七条、第二十一条、第三十条、第三十三条、第六十二条
# https://github.com/LawRefBook/Laws/blob/2f4c5c23716267af9dbebbbbd6cbbf732b101981/行政法规/工伤保险条例(2010-12-20).md;
# 《消防法》第四条 (2019/2021 text) http://uianet.net/dictionary/b11147768.html and
# http://jijian.byfy.cn/bencandy.php?fid=111&aid=1902&page=4; 《安全生产法》(2021) 第十条
# http://m.jxly88.cn/Laws/naqscf/twjdsy/202109/5649300.shtml; 《全国人民代表大会常务委员会关于司法鉴定管理问题的决定》
# 第一条 https://jxxfw.com/periodical/3759f590d823d8969a863f6b8fa5a5b7.html, 第二条 http://uianet.net/dictionary/b814985.html.
# The work-injury door in two parts: the procedure at 人社部门, and its occupational-health part, which only a
# question with a word of ours is shown (door_text)
INJURY_PROCEDURE = (
    "这是工伤保险方面的问题。工伤认定和劳动能力鉴定由人社部门办理：向统筹地区社会保险行政部门申请工伤认定，"
    "向设区的市级劳动能力鉴定委员会申请劳动能力鉴定（《工伤保险条例》第十七条、第二十三条）；"
    "政策问题可拨打 12333 咨询（劳社部函〔2003〕84号）。"
)
INJURY_DISEASE = (
    "其中和职业健康有关的一条：职工患职业病的，应当认定为工伤（《工伤保险条例》第十四条第四项）；"
    "是不是职业病，由依法承担职业病诊断的医疗卫生机构诊断（《职业病防治法》第四十四条）。"
)
DOOR_TEXTS = {
    "labour": (
        "这是劳动保障方面的问题（工资、加班、工时、劳动合同、辞退补偿、社保、休假等），不属于职业健康，"
        "我答不准，不想给你猜。可以找：\n"
        "· 12333 人力资源和社会保障咨询电话（劳社部函〔2003〕84号）；\n"
        "· 当地人社部门的劳动保障监察机构投诉（《劳动保障监察条例》第九条）；\n"
        "· 发生劳动争议的，向劳动争议仲裁委员会申请仲裁（《劳动争议调解仲裁法》第五条）。"
    ),
    "medical": (
        "这是看病方面的问题，不属于职业健康，我不能替医生判断。请到正规医院就医，向医生说明症状。\n"
        "如果怀疑和工作中接触的粉尘、噪声、化学毒物等有关，就诊时说明接触史；想确认是不是职业病，"
        "可以问我“怀疑得了职业病去哪里诊断”。"
    ),
    "injury": INJURY_PROCEDURE + "\n" + INJURY_DISEASE,
    "injury_cost": (
        "这是工伤医疗待遇方面的问题，不属于职业健康，具体怎么报、报多少由人社部门按规定和当地标准办理，我答不准。"
        "按《工伤保险条例》：治疗工伤所需费用，符合工伤保险诊疗项目目录、药品目录和住院服务标准的，从工伤保险基金支付，"
        "住院治疗工伤的伙食补助费也从基金支付（第三十条）；停工留薪期内原工资福利待遇不变，由所在单位按月支付"
        "（第三十三条）；单位应当参加工伤保险而没有参加的，由该单位按同样的项目和标准支付（第六十二条）。"
        "工伤要先向社会保险行政部门申请认定（第十七条）。\n"
        "· 具体办理向当地人社部门咨询，或拨打 12333 人力资源和社会保障咨询电话（劳社部函〔2003〕84号）。"
    ),
    "environment": (
        "住处周边的噪声、粉尘、异味属于环境问题，不是工作场所的职业健康问题，我答不了。"
        "可以拨打 12345 政务服务便民热线反映（国办发〔2020〕53号）。"
    ),
    "product": (
        "染发剂、消毒液、化妆品、补牙材料这类生活中自己用的东西对身体有没有害，是产品安全和看病方面的问题，"
        "不属于工作中的职业健康，我答不准，不想给你猜。身体不舒服的，请到正规医院就医，告诉医生用过什么、用了多久；"
        "误服、误吸后不舒服的，要马上就医。\n"
        "如果是工作中天天接触这些东西（理发、保洁、消毒等岗位），可以说明你的工作再问我。"
    ),
    "safety": (
        "这是消防或安全生产方面的问题（防火灭火、消防培训和演练、安全生产培训、特种作业操作证等），不属于职业健康，"
        "我答不准，不想给你猜。可以找：\n"
        "· 消防工作：县级以上地方人民政府应急管理部门监督管理，由本级消防救援机构负责实施（《消防法》第四条）；\n"
        "· 安全生产：县级以上地方各级人民政府应急管理部门综合监督管理（《安全生产法》第十条）。\n"
        "如果问的是工作中粉尘、噪声、毒物等职业病危害的防护，可以说明后再问我。"
    ),
    "civil": (
        "打架、车祸这类不是因工作受的伤，不属于职业健康，我答不了。劳动能力鉴定是给工伤职工做的（《工伤保险条例》"
        "第二十一条）；诉讼中需要评定伤情、伤残的，由依法登记的司法鉴定机构做法医类鉴定（《全国人民代表大会常务委员会"
        "关于司法鉴定管理问题的决定》第一条、第二条）。怎么索赔，可以咨询律师或向人民法院起诉。\n"
        "如果是在工作中、因工外出或上下班途中受的伤，可能认定为工伤（《工伤保险条例》第十四条），由人社部门认定，"
        "政策问题可拨打 12333 咨询。"
    ),
}
# Lines added under an occupational-health answer when the question also touches another door.
DOOR_NOTES = {
    "injury": "工伤认定、劳动能力鉴定找人社部门（社会保险行政部门）办理（《工伤保险条例》第十七条、第二十三条），"
              "政策咨询可拨打 12333。",
    "medical": "身体已经不舒服的，请尽快到医院就医，并向医生说明接触史。",
    "labour": "工资、合同等劳动保障问题可拨打 12333 咨询（劳社部函〔2003〕84号）。",
}

# The confidence model and threshold, fitted and chosen by benchmarks/calibrate_answers.py on the
# authored sets (materials-a/b, the shared dev set, ood, near-ood); README "Answering". Refitted on the
# real-question sets too and measured leave-one-set-out (session 9) they did worse on the held-out sets
# (real-a..d in-scope AUC 0.855 → 0.829, 20 → 25 wrong answers), so they stay.
COEFFICIENTS = {"agree": 2.561, "lead": 2.152, "topic": 3.613, "kind": 0.750}
INTERCEPT = -5.053
THRESHOLD = 0.50
# the most confidence an answer about another subject than the asked one may have (aspect.other_subject): a wrong
# answer given with confidence is worse than the refusal
OTHER_SUBJECT = 0.3
KIND_UNASKED = 0.5  # the `kind` feature of a question whose interrogative names no kind of answer
# The best unit's own question (a heading, a card question or variant) is the user's question in other
# words at this cosine or above: the three rankings' agreement is then taken as full (1.0), as for a trade's
# section (Candidate.named). Session 14: "粉尘对人体有什么危害" matched its section's variant at 0.99 but
# was refused at 0.45 because BM25 ranked the hazard's other sections as high; at 0.97 no row of the
# question sets moved and no wrong answer was added (0.95 turned a two-part question into a wrong answer).
PARAPHRASE = 0.97
WITHOUT_TOPIC = 0.85  # a question without any occupational-health topic word needs this much
LEANING_MAX_CHARS = 20  # a question this short without any cue word leans on the previous one (leans_on)
# words by which a short question points back to what was said before (以后谁管我, 这样还能…, 真查出来了…)
LEANING_WORDS = ("以后", "之后", "后来", "这样", "这种", "那样", "那种", "还", "都", "真", "再", "万一", "要是", "如果", "那")
INJURY_GENERIC = ("赔偿",)  # an injury cue that every kind of claim uses: not the procedure's own word
# kinds of doors.yaml that only qualify another kind (where a question is, what a temperature or a shift word
# is about): not a topic of their own (topic_words, leans_on)
QUALIFIERS = ("workplace", "work_harm", "shift_health", "maternity", "hours", "heat_context", "hot", "body_heat", "weather",
              "contract_money", "duty_cost", "child", "care", "care_ours", "care_employer", "imaging", "radiation",
              "radiation_work", "consumer_worker", "check_other", "news", "body_sense", "responder", "shared",
              "commute", "work_injury", "injury_cost")
# a bare temperature a worker may meet, 30–60 度/℃/摄氏度 in digits or in words (“40度”, “37°c”, “三十七八度”)
TEMPERATURE = re.compile(r"(?<![\d.])[3-6]\d(?:\.\d)?\s*(?:摄氏度|度|°c|°)|[三四五六]十[一二三四五六七八九]{0,2}\s*(?:摄氏度|度)")


@dataclass
class Decision:
    """What to do with a question: answer | refer | refuse, the door, and notes for an answer."""
    kind: str
    confidence: float
    door: str | None = None
    notes: list[str] = field(default_factory=list)
    cues: dict[str, list[str]] = field(default_factory=dict)


def door_text(decision: Decision) -> str:
    """The fixed text of a referral's door. The work-injury door's occupational-health part (INJURY_DISEASE) is
    shown only to a question with a word of ours (职业病, 尘肺, 粉尘 …): "工伤补贴一般补多少" asks about an accident's
    money, for which that part is an occupational-health passage it did not ask for (session 14)."""
    assert decision.door is not None
    if decision.door == "injury" and not (decision.cues.get("oh") or decision.cues.get("oh_field")):
        return INJURY_PROCEDURE
    return DOOR_TEXTS[decision.door]


def cue_words() -> dict[str, tuple[str, ...]]:
    """The cue words per door (and `oh`, `workplace`) of doors.yaml in the dictionaries in use."""
    return word_lists("doors.yaml")


def word_lists(name: str) -> dict[str, tuple[str, ...]]:
    """A YAML file of named word lists in the dictionaries in use (doors.yaml, aspects.yaml): name → its
    words, normalised; empty when the file is absent."""
    return _word_lists(dict_dir(), name)


@lru_cache(maxsize=MAX_FOLDERS * 4)
def _word_lists(folder: Path, name: str) -> dict[str, tuple[str, ...]]:
    """One word-list file of one dictionary folder, read once and normalised."""
    path = folder / name
    table = read_dictionary(path)
    return {str(k): tuple(dict.fromkeys(normalize(str(w)) for w in (v or []) if str(w).strip()))
            for k, v in (table or {}).items()}


cached_by_folder(_word_lists.cache_clear)


def door_notes(cues: dict[str, list[str]]) -> list[str]:
    """The DOOR_NOTES line an occupational-health answer carries when the question also has a work-injury,
    medical or labour cue (the first of them, in that order), however the answer was reached: a card
    typed as it stands, the ranking, or the disease catalogue's lookup."""
    return [DOOR_NOTES[d] for d in ("injury", "medical", "labour") if cues.get(d)][:1]


# "工伤" read across two words: 加工/打工/施工/员工 … followed by 伤身/伤肺/伤眼/伤害 … ("人造石加工伤肺吗",
# "打工伤身体吗"): not the word 工伤, which sent such questions to the work-injury door
ACROSS_GONGSHANG = re.compile(r"(?<=[加施打做务员职民用开完复上])工(?=伤[身肺眼耳手脚腰胃脑皮害人到残])")


def cues_in(text: str) -> dict[str, list[str]]:
    """The cue words of every kind found in a (normalised) text; a bare temperature in the weather or at
    work (`heat_reading`) counts as an `oh` word. A 工伤 read across two words (ACROSS_GONGSHANG) is none."""
    text = ACROSS_GONGSHANG.sub("工\u2060", text)  # a word joiner: no cue word spans it
    text = text.replace("家里人", "家人")  # one's family, not one's home (`environment`: 家里)
    cues = {kind: [w for w in words if w in text] for kind, words in cue_words().items()}
    if cues.get("care_employer"):  # the employer counts for a patient only in the asking part (patient_care)
        asked = "".join(asking_parts(text)) or text
        cues["care_employer"] = [w for w in cues["care_employer"] if w in asked]
    heat = heat_reading(text, cues)
    if heat:
        cues["oh"] = [*cues.get("oh", []), heat]
    return cues


def heat_reading(text: str, cues: dict[str, list[str]]) -> str | None:
    """The temperature a (normalised) text names (30–60 度/℃, “三十七八度”) when a `heat_context` word (外面,
    楼顶, 厂房 …) or a `workplace` word places it in the weather or at work and nothing makes it a body
    temperature (`body_heat`: 发烧, 体温): “今天40度还要在外面干活吗”, “车间38℃” ask about working in the heat,
    which 《防暑降温措施管理办法》第八条 grades by temperature, though they name no 高温; so does a word of how hot
    it is without a figure (`hot`: 太热, 闷热, “夏天车间里闷热”). None otherwise."""
    if cues.get("body_heat") or not (cues.get("heat_context") or cues.get("workplace")):
        return None
    found = TEMPERATURE.search(text)
    if found is not None:
        return found.group(0)
    # how hot, said without a figure (`hot`: 太热, 闷热): "夏天车间里闷热" asks about heat at work too
    return cues["hot"][0] if cues.get("hot") else None


def features(query: Query, ranked: list[Candidate], has_topic: bool, verdict: str | None = None) -> dict[str, float]:
    """What the confidence is computed from (measured on the question sets, README "Answering"):
    how far the three measurements agree on the best unit (mean of 1/rank by the unit's dense
    score, its question match and its BM25 alone; full when its own question is a PARAPHRASE of the user's), how far it stands above the fifth unit,
    whether the question has an occupational-health topic word, and whether the `verdict` to be
    shown holds an answer of the kind the question asks for (Query.asks: a duration for 多久, an
    authority for 谁 …; KIND_UNASKED when it asks for none). Absolute similarities separate right
    from wrong answers less well: long questions that tell a story score low everywhere."""
    top = ranked[0]
    ranks = top.ranks or {"bm25": 10, "dense": 10, "q_dense": 10}
    fifth = sorted((c.score for c in ranked), reverse=True)[min(4, len(ranked) - 1)]
    # a question that tells a story first: the better of the agreement on all of it and on its asking part
    # alone (Candidate.focus_ranks), which the story's words do not pull elsewhere
    agree = max(agreement(ranks), agreement(top.focus_ranks) if top.focus_ranks else 0.0)
    out = {
        "agree": 1.0 if top.named or top.q_dense >= PARAPHRASE else agree,
        "lead": max(0.0, min(top.score - fifth, 1.0)),
        "topic": 1.0 if has_topic else 0.0,
    }
    out["kind"] = KIND_UNASKED if query.asks is None else float(verdict_answers(query.asks, verdict or ""))
    return out


def agreement(ranks: dict[str, int]) -> float:
    """How far the measurements agree on a unit: the mean of 1/rank by each alone (1.0 when all rank it first)."""
    return sum(1.0 / r for r in ranks.values()) / len(ranks)


def confidence_of(x: dict[str, float]) -> float:
    """0–1: the chance that the best unit's answer is right, a logistic function of `features`
    fitted on the authored question sets (benchmarks/calibrate_answers.py, README "Answering")."""
    z = INTERCEPT + sum(c * x[k] for k, c in COEFFICIENTS.items())
    return 1.0 / (1.0 + math.exp(-z))


def leans_on(question: str, context: str) -> bool:
    """A short question about the user's work (公司, 老板, 单位 …) that points back (以后, 这样, 还 …) and has
    no cue word of any door or topic ("公司都倒闭了，以后谁管我？"), after a question about occupational
    health: it carries no topic of its own, so it is read with that one, like "那离职的时候呢". A question
    with a word of its own (加班费, 感冒, 体检) keeps its own reading, and so do one not about work
    ("今天天气怎么样") and one that does not point back ("公司团建去哪里玩好")."""
    text = normalize(question)
    if len(text.rstrip("?？!！。. ")) > LEANING_MAX_CHARS:
        return False
    own = cues_in(text)
    if not own.get("workplace") or any(words for kind, words in own.items() if kind not in QUALIFIERS):
        return False
    if not any(w in text for w in LEANING_WORDS):  # nothing in it points back ("公司团建去哪里玩好")
        return False
    before = cues_in(normalize(context))
    return bool(before.get("oh") or before.get("oh_check"))


def labour_words(cues: dict[str, list[str]]) -> bool:
    """The question has a labour word (strong or weak)."""
    return bool(cues.get("labour") or cues.get("labour_weak"))


def minor_only(cues: dict[str, list[str]]) -> bool:
    """The question's only labour words are a minor's age (`minor` of doors.yaml: 16岁, 未满18) and it names a
    hazardous trade (`hazard_trade`: 化工, 井下, 电镀): it asks what work a minor may not do, which the law on
    occupational diseases and the rules on 未成年工 answer (《劳动法》第六十四条, 《职业病防治法》第三十八条).
    An age alone asks whether a minor may work at all, a labour question (《劳动法》第十五条)."""
    minor = set(cues.get("minor", []))
    return (bool(minor) and bool(cues.get("hazard_trade")) and not cues.get("labour")
            and set(cues.get("labour_weak", [])) <= minor)


def shift_health(cues: dict[str, list[str]]) -> bool:
    """The question's only strong labour words are shift words (`shift`: 夜班, 倒班) and it names the body's
    health (`shift_health`: 身体, 癌, 睡眠) or an ordinary illness (`medical`), with no pregnant or breastfeeding
    worker (`maternity`): it asks what night or rotating shifts do to health (a nurse's night shifts and cancer),
    which our texts answer (IARC: night-shift work is group 2A; NIOSH "Work Schedules"), not about their hours
    or pay (夜班费 is a labour word of its own). A pregnant worker's night shifts are `maternity_hours`."""
    shift = set(cues.get("shift", []))
    return (bool(shift) and set(cues.get("labour", [])) <= shift and not cues.get("maternity")
            and bool(cues.get("shift_health") or cues.get("medical")))


def hours_harm(cues: dict[str, list[str]]) -> bool:
    """The question's only labour words are working-time words (`hours`: 上班时间, 个小时), it asks what the work
    does to the body (`work_harm`: 对身体有影响, 伤身体) and names a hazard or a trade (`oh`, `oh_weak`: 冷库, 粉尘):
    "在冷库上班时间长了对身体有影响吗" asks about the cold after years of it, not about hours of work."""
    hours = set(cues.get("hours", []))
    return (bool(hours) and set(cues.get("labour", [])) <= hours and set(cues.get("labour_weak", [])) <= hours
            and not cues.get("maternity") and not cues.get("shift") and bool(cues.get("work_harm"))
            and bool(cues.get("oh") or cues.get("oh_weak")))


def maternity_hours(cues: dict[str, list[str]]) -> bool:
    """A pregnant or breastfeeding worker (`maternity`) asks about night shifts or longer hours (`shift`,
    `hours`) and the question has no other labour word (pay, leave, a posting): the special protection
    of 《女职工劳动保护特别规定》 answers it (第六条: from the 7th month no longer hours or night shifts;
    第九条: the same while nursing a baby under 1), with the 人社 door for enforcement (第十三条、第十四条).
    With 夜班费, 产假 or 出差 it stays a labour question."""
    timing = set(cues.get("shift", [])) | set(cues.get("hours", []))
    return (bool(cues.get("maternity")) and bool(timing) and set(cues.get("labour", [])) <= timing
            and set(cues.get("labour_weak", [])) <= timing)


def contract_money(cues: dict[str, list[str]]) -> bool:
    """The question asks about money under the labour contract (`contract_money`: 培训费 and 违约金 within a 服务期,
    《劳动合同法》第二十二条; 经济补偿, 赔偿金, 押金) and names neither the field itself (`oh_field`: 职业病, 尘肺), a
    work-injury procedure word, a death nor what the employer must pay for (`duty_cost`: 防护用品, 体检; the cost of
    masks deducted from 经济补偿 is a question of that duty): a labour-contract dispute for 12333 / 劳动争议仲裁, even
    when the worker also names a hazard of the job (粉尘, 噪声: the background, not what is asked)."""
    return (bool(cues.get("contract_money")) and not cues.get("oh_field") and not procedure_words(cues)
            and not cues.get("death") and not cues.get("duty_cost"))


def child_work(cues: dict[str, list[str]]) -> bool:
    """The question is about a child under 16 or 童工 (`child`) and names no hazardous trade (`hazard_trade`, read
    by `minor_only`) nor the field itself (`oh_field`): nobody under 16 may be taken on at all (《劳动法》第十五条),
    so it asks about the minimum working age or child labour, for 12333 / 劳动保障监察, whatever hazard it names."""
    return bool(cues.get("child")) and not cues.get("hazard_trade") and not cues.get("oh_field")


def patient_care(cues: dict[str, list[str]]) -> bool:
    """The question asks about the treatment or course of an illness (`care`: 吃什么药, 加重, 治好, 能活多久) and
    nothing that is ours (`care_ours`: diagnosis, appraisal, who pays, staying on the job; `care_employer`: the
    employer, named in the asking part: cues_in) nor a labour, work-injury or benefit word: a doctor's question
    (rubric of tests/eval/README-real.md: treatment, cure and life expectancy of any illness, occupational or not,
    are `medical`), even when it names 矽肺 or 中毒."""
    return (bool(cues.get("care")) and not cues.get("care_ours") and not cues.get("care_employer")
            and not labour_words(cues) and not cues.get("injury") and not cues.get("benefit"))


def patient_exam(cues: dict[str, list[str]]) -> bool:
    """The question is about medical imaging (`imaging`: 拍片, x光, ct) a person underwent, with no topic word but
    radiation's (`radiation`: 辐射, 射线) and no word of radiation work (`radiation_work`: 放射工作人员, 技师, 上班):
    a patient's dose (an X-ray taken before she knew she was pregnant) is a doctor's question, not occupational
    exposure; a radiation worker's, or an X-ray at an occupational health check (职业健康), stays ours."""
    return (bool(cues.get("imaging")) and not cues.get("radiation_work")
            and set(cues.get("oh", [])) <= set(cues.get("radiation", [])))


def pension(cues: dict[str, list[str]]) -> bool:
    """The question asks about a pension or early retirement (`pension`: 特殊工种, 提前退休, 养老金) and names neither
    the field itself (`oh_field`: what an occupational-disease patient is owed), a work-injury procedure word nor a
    death: the retirement age of 特殊工种 and pensions are decided by 人社部门 (12333), even when the worker names the
    heat or dust that makes the job arduous."""
    return (bool(cues.get("pension")) and not cues.get("oh_field") and not procedure_words(cues)
            and not cues.get("death"))


def product_use(cues: dict[str, list[str]]) -> bool:
    """The question is about a product a person uses on themselves or at home, or a material a dentist puts in
    (`consumer`: 染发, 消毒液, 化妆品, 补牙), and nothing places it at work (`workplace`, `consumer_worker`: 理发师,
    保洁, 这行), names the field (`oh_field`) or has a labour word: whether hair dye or a household bleach harms its
    user is product safety and medicine (the `product` door: a hospital), not occupational health, though it names
    有害 or 中毒; a hairdresser's dye or a cleaner's bleach stays ours."""
    return (bool(cues.get("consumer")) and not cues.get("workplace") and not cues.get("consumer_worker")
            and not cues.get("oh_field") and not labour_words(cues))


def only_shared(cues: dict[str, list[str]]) -> bool:
    """The question's topic words are all words fire or production safety and injuries outside work use too (`shared`:
    培训, 防护, 检测, 急救, 诊断 …) and none names the field (`oh_field`) or a health check (`oh_check`)."""
    return (set(cues.get("oh", [])) <= set(cues.get("shared", [])) and not cues.get("oh_field")
            and not cues.get("oh_check"))


def safety_matter(cues: dict[str, list[str]]) -> bool:
    """The question is about fire safety or general production safety (`safety`: 消防培训, 灭火器, 人员密集场所, 安全生产,
    特种作业, 安全员) and its topic words are only `shared` ones (消防培训 names 培训, which is not 职业卫生培训): not
    occupational health, for 应急管理部门 / 消防救援机构 (《消防法》第四条, 《安全生产法》第十条), even at work. A word
    of ours keeps it ours: the field (职业卫生培训), a health check (an electrician's pre-job check, GBZ 188), a hazard
    (有限空间, 粉尘), a firefighter's own health (`responder`), a strong labour word or a work-injury procedure word."""
    return (bool(cues.get("safety")) and only_shared(cues) and not cues.get("responder")
            and not cues.get("labour") and not procedure_words(cues))


def civil_injury(cues: dict[str, list[str]]) -> bool:
    """An injury outside work (`civil`: 打架, 车祸, 交通事故, 人身损害, 狗咬) with nothing placing it at work (`workplace`),
    on the way to or from work or a work trip (`commute`: 上下班, 途中, 出差: may be 工伤, 《工伤保险条例》第十四条), no
    work-injury word proper (`work_injury`: 工伤, 劳动能力鉴定), no labour word and no topic word but `shared`'s: its
    disability grade and damages are a civil matter (司法鉴定, courts), not 劳动能力鉴定 (《工伤保险条例》第二十一条)."""
    return (bool(cues.get("civil")) and not cues.get("workplace") and not cues.get("commute")
            and not cues.get("work_injury") and not labour_words(cues) and only_shared(cues))


def injury_cost(cues: dict[str, list[str]]) -> bool:
    """The cost of treating a work injury (`injury_cost`: 医疗费, 住院, 报销, 看病) asked with a work-injury procedure
    word (工伤, 伤残) and no word naming the field (`oh_field`: 职业病, 尘肺): 工伤医疗待遇, paid from the work-injury
    insurance fund (《工伤保险条例》第三十条), for 人社部门 / 12333, not what an occupational-disease patient is owed."""
    return bool(cues.get("injury_cost")) and bool(procedure_words(cues)) and not cues.get("oh_field")


def elsewhere(cues: dict[str, list[str]]) -> str | None:
    """The door a question goes to whatever occupational-health topic words it has: contract money, a child's
    work and a pension to 12333 (`contract_money`, `child_work`, `pension`), a patient's care or imaging to a
    hospital (`patient_care`, `patient_exam`), a product one uses oneself to the product door (`product_use`),
    the cost of treating a work injury to 人社部门 (`injury_cost`, a door of its own: its text gives 《工伤保险条例》's
    rules on who pays, not the occupational-disease part of the injury door), fire and production safety to the safety door
    (`safety_matter`), an injury outside work to the civil door (`civil_injury`); None otherwise. Its topic words
    then do not make it ours (`topic_of`)."""
    if contract_money(cues) or child_work(cues) or pension(cues):
        return "labour"
    if patient_care(cues) or patient_exam(cues):
        return "medical"
    if product_use(cues):
        return "product"
    if injury_cost(cues):
        return "injury_cost"
    if safety_matter(cues):
        return "safety"
    if civil_injury(cues):
        return "civil"
    return None


def points_to(cues: dict[str, list[str]], door: str) -> bool:
    """The question's words name this door (the labour door by a weak labour word too)."""
    return labour_words(cues) if door == "labour" else bool(cues.get(door))


def procedure_words(cues: dict[str, list[str]]) -> list[str]:
    """The question's work-injury words that name the procedure itself (工伤认定, 劳动能力鉴定 …): not
    INJURY_GENERIC's 赔偿, which every kind of claim uses."""
    return [w for w in cues.get("injury", []) if w not in INJURY_GENERIC]


def topic_of(cues: dict[str, list[str]], ranked: list[Candidate]) -> bool:
    """Whether the question is about occupational health by its words (and, for a work-injury
    question, by the best unit); `cues` gains the `oh` words that made it so. Shift words asked about with
    the body's health (`shift_health`) are not labour words: with a word of health they are our topic, with
    an ordinary illness only (失眠, 胃) the question goes to a hospital."""
    if shift_health(cues):
        shifts = cues.get("shift", [])
        cues["labour"] = []
        if cues.get("shift_health"):
            cues["oh"] = [*cues.get("oh", []), *shifts]
    if hours_harm(cues):  # years of work in the cold or the dust asked about the body: not a question of hours
        cues["labour"] = cues["labour_weak"] = []
    if maternity_hours(cues):  # her limits on hours are ours; the labour words keep the 12333 note
        cues["oh"] = [*cues.get("oh", []), *cues.get("maternity", [])]
    door = elsewhere(cues)
    if door is not None:  # contract money, a child's work, a patient's care, fire safety …: not ours by any word
        cues["oh"] = cues["oh_weak"] = cues["oh_check"] = []
        if door == "medical":
            cues["medical"] = list(dict.fromkeys([*cues.get("medical", []), *cues.get("care", []),
                                                  *cues.get("imaging", [])]))
        return False
    labour = labour_words(cues)
    # about people who are not at work (老人, 儿童) or an epidemic (疫情, 流感) and nothing placing it at work:
    # only a word naming the field itself (职业病, 尘肺) keeps it ours; an old person's deafness, a child's
    # lead level or masks against a flu are not
    # (or at work, when a labour word asks about the job: coming to work in an epidemic)
    if ((cues.get("others") or cues.get("epidemic")) and not cues.get("workplace")
            or cues.get("epidemic") and labour):
        cues["oh"] = [w for w in cues.get("oh", []) if any(f in w for f in cues.get("oh_field", []))]
        cues["oh_weak"] = cues["oh_check"] = []
    # news and rumours (事件, 网传): who the worker is or what trade (外卖, 快递) does not make them ours; a health
    # check for a licence, school or the army (驾照, 入学, 当兵) is not an occupational health check, nor is its
    # hearing or eyesight a worker's
    if cues.get("news") or cues.get("check_other"):
        cues["oh_weak"] = cues["oh_check"] = []
    # a body function (听力, 耳鸣) asked with a doctor's word (什么原因, 怎么回事) and no word of work is an everyday
    # complaint ("耳鸣是什么原因"), like a health check with an ordinary illness; with 噪声 or 车间 it stays ours
    if cues.get("body_sense") and cues.get("medical") and not cues.get("workplace"):
        cues["oh_weak"] = [w for w in cues.get("oh_weak", []) if w not in cues["body_sense"]]
    # a body temperature (发烧, 体温) and the weather (气温, 降温) with nothing placing it at work: a fever, not heat at work
    if cues.get("body_heat") and not cues.get("workplace"):
        cues["oh"] = [w for w in cues.get("oh", []) if w not in cues.get("weather", [])]
    # who the worker is (孕期, 未成年工) or a body function (听力) is our topic only without a labour word
    # (a minor's age with a hazardous trade excepted: `minor_only`);
    # a health check (体检) only without an ordinary illness: 乙肝 found at a check is not our topic
    if not cues.get("oh"):
        weak = [] if labour and not minor_only(cues) else cues.get("oh_weak", [])
        cues["oh"] = weak + ([] if cues.get("medical") else cues.get("oh_check", []))
    # harm to the body asked of a job ("去那个厂上班伤身体吗") is an occupational hazard question when a workplace
    # word places it at work and no labour or medical word is there; alone ("熬夜伤身体吗") it is not
    if not cues.get("oh") and cues.get("work_harm") and cues.get("workplace") and not labour and not cues.get("medical"):
        cues["oh"] = list(cues["work_harm"])
    if cues.get("oh"):
        return True
    # a work-injury question (工伤认定, 劳动能力鉴定) is ours where the best unit is about that very
    # procedure: our texts name the steps of 人社部门 for occupational diseases (the procedure's own
    # words: not 赔偿, which every kind of claim uses; not with a labour word; not about an accident)
    procedure = procedure_words(cues)
    if ranked and procedure and not labour and not cues.get("accident"):
        unit = normalize(" ".join(ranked[0].chunk.section) + ranked[0].chunk.text)
        return any(w in unit for w in procedure)
    return False


def disease_benefit(cues: dict[str, list[str]]) -> bool:
    """The question asks what an occupational-disease patient (or the family) is owed: a word naming the field
    (`oh_field`: 职业病, 尘肺, 矽肺) and a benefit word (`benefit`: 待遇, 补助, 抚恤, 丧葬, 赔偿). Such money is paid
    under 工伤保险 (《职业病防治法》第五十七条, 《工伤保险条例》第十四条第四项、第三十条至第三十九条), which our
    work-injury texts set out: the issue asks for that part answered, with the 人社 door (disease_benefit_answer)."""
    return bool(cues.get("oh_field")) and bool(cues.get("benefit"))


def answers_injury_benefit(cues: dict[str, list[str]], top: Candidate) -> bool:
    """The best unit is a work-injury unit (it names 工伤, 工亡, 劳动能力鉴定 or 停工留薪: `work_injury`) and, for a
    question about a death, names a death too (因工死亡: 丧葬补助金, 供养亲属抚恤金): a unit on the relief of a patient
    without an employer, or on treatment costs, does not answer what a family is owed."""
    unit = cues_in(normalize(" ".join(top.chunk.section) + top.chunk.text))
    return bool(unit.get("work_injury")) and (not cues.get("death") or bool(unit.get("death")))


def disease_benefit_answer(cues: dict[str, list[str]], top: Candidate | None, confidence: float,
                           needed: float) -> bool:
    """A question sent to the work-injury door by its words (door_by_words: a death and its benefits, the amount of
    a disability grade) is answered all the same when it asks what an occupational-disease patient is owed
    (disease_benefit), the best unit is a work-injury unit that answers it (answers_injury_benefit) and the
    confidence reaches what is needed; the door's line (DOOR_NOTES["injury"]) goes with the answer. Without a word naming the field (an accident's or an
    injury's money: "工伤十级赔多少") the question keeps the plain referral."""
    return (top is not None and confidence >= needed and disease_benefit(cues)
            and answers_injury_benefit(cues, top))


def door_by_words(query: Query, cues: dict[str, list[str]], has_topic: bool) -> str | None:
    """The door a question is sent to by its words alone, whatever the confidence (`cues` as topic_of left
    them); None when the confidence decides. benchmarks/calibrate_answers.py fits the confidence on the
    questions it decides."""
    door = elsewhere(cues)
    if door is not None:  # contract money, a child's work, a patient's care, fire safety … (`elsewhere`), also at home
        return door
    at_work = bool(cues.get("workplace"))
    if cues.get("environment") and not at_work:
        return "environment"
    if cues.get("death") and cues.get("benefit"):  # a worker's death and its benefits: 工亡待遇, by 人社部门
        return "injury"
    # an accident at work: 工伤, also where only a trade or a place of work made the question ours (`oh_weak`:
    # 油田, 矿山 — "油田被钻杆砸伤算工伤吗" was answered from the list of what counts as 工伤)
    only_weak = all(w in cues.get("oh_weak", []) for w in cues.get("oh", []))
    if (not has_topic or only_weak) and cues.get("accident") and (at_work or cues.get("injury")):
        return "injury"
    if query.asks == "amount" and procedure_words(cues):
        # a work-injury procedure word (工伤, 伤残, 评残; not the generic 赔偿) asking how much or which grade,
        # with or without an occupational-health word (尘肺一期评几级伤残): a work injury's grade and benefits are
        # set by 劳动能力鉴定委员会, 《工伤保险条例》 and local wages, paid out by 人社部门; our texts hold the
        # procedure's steps, not the grades or amounts (session 8 sent it only without a topic word)
        return "injury"
    if not has_topic and not cues.get("injury"):  # work injury: answered where our texts answer it well
        for door in ("labour", "medical"):
            if points_to(cues, door):
                return door
    return None


def decide(query: Query, ranked: list[Candidate], vocab: set[str],
           threshold: float | None = None, verdict: str | None = None, other_subject: bool = False) -> Decision:
    """Answer, refer or refuse, from the cue words and the confidence of the best unit (`verdict`:
    the verdict sentence composed from it, see `features`). A question sent to another door by its
    cue words has confidence 0: no occupational-health answer applies. `other_subject`: the best unit and its
    verdict are about another hazard or trade than the one the question names (aspect.other_subject): its
    confidence is at most OTHER_SUBJECT, below the threshold."""
    cues = cues_in(query.normalized)
    has_topic = topic_of(cues, ranked)
    top = ranked[0] if ranked else None
    threshold = THRESHOLD if threshold is None else threshold
    confidence = confidence_of(features(query, ranked, has_topic, verdict)) if top is not None else 0.0
    if other_subject:
        confidence = min(confidence, OTHER_SUBJECT)
    notes = door_notes(cues)
    if top is not None and top.exact:  # the user typed a reviewed card's own question
        return Decision("answer", 1.0, None, notes, cues)

    def refer(door: str) -> Decision:
        """Sent to a door by its words: no occupational-health answer applies (confidence 0). The notes
        stay with the decision: an answer made of it later (the catalogue's lookup) carries them."""
        return Decision("refer", 0.0, door, notes, cues)

    door = door_by_words(query, cues, has_topic)
    needed = threshold if has_topic else max(threshold, WITHOUT_TOPIC)
    if door == "injury" and disease_benefit_answer(cues, top, confidence, needed):
        return Decision("answer", confidence, None, [DOOR_NOTES["injury"]], cues)
    if door is not None:
        return refer(door)
    if top is None or confidence < needed:
        # 赔偿 is every claim's word: alone (no procedure word, no occupational-health word) it is most often
        # a labour claim (辞退、解散、没签合同怎么赔偿); 12333 answers work-injury insurance too
        specific = procedure_words(cues)
        if cues.get("injury") and not labour_words(cues) and (specific or has_topic):
            return Decision("refer", confidence, "injury", notes, cues)  # 人社部门 decides what our texts cannot answer
        if not has_topic:  # not ours by its words, and nothing close enough: the door its words point to
            if cues.get("injury") and not specific:
                return Decision("refer", confidence, "labour", notes, cues)
            for door in ("injury", "labour", "medical"):
                if points_to(cues, door):
                    return Decision("refer", confidence, door, notes, cues)
        if not notes and cues.get("labour_weak"):  # refused: a labour side (退休, 劳动合同) still gets its door
            notes = [DOOR_NOTES["labour"]]
        return Decision("refuse", confidence, None, notes, cues)
    return Decision("answer", confidence, None, notes, cues)
