"""The aspect of a question (aspect.py, knowledge/dict/aspects.yaml): among the best units close in
score, the one whose questions ask what the user asks about the subject goes first."""
from __future__ import annotations

from bot.answering.aspect import ASPECT_MARGIN, aspects_in, by_aspect, stages_in, without_subject
from bot.text.normalize import normalize


def test_the_aspect_is_read_without_the_subject_words():
    text = normalize("尘肺病人能拿到哪些补偿")
    assert "尘肺" not in without_subject(text)
    assert aspects_in(without_subject(text)) == {"benefits"}
    assert aspects_in(without_subject(normalize("噪聲聾以後還能繼續上班嗎"))) == {"working"}  # Traditional script
    assert aspects_in(without_subject(normalize("粉尘作业要注意什么"))) == set()  # a subject alone names no aspect


def unit(retriever, heading: str) -> int:
    """The position of the unit whose questions include `heading`."""
    return next(i for i in range(len(retriever.chunks)) if normalize(heading) in retriever.unit_questions(i))


def candidates(retriever, *units: tuple[str, float]):
    """Ranked candidates for the units with these questions, at these scores."""
    from bot.answering.rank import Candidate

    out = []
    for heading, score in units:
        i = unit(retriever, heading)
        chunk = retriever.chunks[i]
        out.append(Candidate(i, chunk, retriever.docs.get(chunk.doc_id, {}), score, 0.8, 0.8, 0.5, 0.5))
    return out


def test_a_close_unit_that_answers_the_asked_aspect_goes_first(retriever):
    from bot.answering.query import analyse

    query = analyse("得了尘肺病能拿到什么补偿", retriever.encode)
    ranked = candidates(retriever, ("尘肺病能治好吗", 1.30), ("确诊尘肺病后有哪些保障", 1.28))
    assert [c.position for c in by_aspect(retriever, query, ranked)] == [ranked[1].position, ranked[0].position]
    # too far behind: the ranking stands
    far = candidates(retriever, ("尘肺病能治好吗", 1.30), ("确诊尘肺病后有哪些保障", 1.30 - ASPECT_MARGIN - 0.01))
    assert by_aspect(retriever, query, far) == far


def test_a_unit_with_the_aspect_but_without_the_subject_stays_behind(retriever):
    from bot.answering.query import analyse

    query = analyse("得了尘肺病能拿到什么补偿", retriever.encode)
    # about compensation, but its questions do not name the disease the best unit names
    ranked = candidates(retriever, ("尘肺病能治好吗", 1.30), ("工伤保险已经赔了，还能找单位要赔偿吗", 1.29))
    assert by_aspect(retriever, query, ranked) == ranked


def test_a_question_without_an_aspect_keeps_its_ranking(retriever):
    from bot.answering.query import analyse

    query = analyse("尘肺病", retriever.encode)
    ranked = candidates(retriever, ("尘肺病能治好吗", 1.30), ("确诊尘肺病后有哪些保障", 1.29))
    assert by_aspect(retriever, query, ranked) == ranked


def test_who_may_not_do_a_job_is_answered_with_its_contraindications(retriever):
    from bot.answering.query import analyse

    # "who is unfit for dust work" (unfit: 不适合/禁忌) is not "which jobs have dust"
    assert aspects_in(without_subject(normalize("有什么病的人不适合干粉尘活"))) == {"unfit"}
    query = analyse("什么样的人不能干粉尘作业", retriever.encode)
    ranked = candidates(retriever, ("哪些工作会接触生产性粉尘", 1.30), ("能去粉尘岗位吗？（粉尘作业的职业禁忌证）", 1.29))
    assert [c.position for c in by_aspect(retriever, query, ranked)] == [ranked[1].position, ranked[0].position]


def test_a_procedure_question_is_answered_with_the_steps(retriever):
    from bot.answering.query import analyse

    query = analyse("申请工伤认定的流程", retriever.encode)
    ranked = candidates(retriever, ("工伤认定多久出结果", 1.30), ("职业病的工伤认定怎么走？从申请到出结果分几步", 1.29))
    assert [c.position for c in by_aspect(retriever, query, ranked)] == [ranked[1].position, ranked[0].position]


def test_the_stage_is_read_on_the_question_as_typed():
    # 诊断 is a subject word: blanked, "诊断了" would name no stage
    assert stages_in(normalize("已经诊断了职业病，接下来怎么办")) == {"diagnosed"}
    assert "diagnosed" not in aspects_in(without_subject(normalize("已经诊断了职业病，接下来怎么办")))
    # 申请…后 around a subject word (工伤): read with the subject words taken out
    assert stages_in(normalize("申请工伤以后要等几天")) == {"applied"}
    assert stages_in(normalize("对鉴定结论不服怎么办")) == {"appraised"}
    assert stages_in(normalize("怀疑得了职业病去哪里看")) == set()  # not yet diagnosed: no stage
    # an earlier stage is never an aspect of its own
    assert aspects_in(without_subject(normalize("疑似职业病怎么办"))) == set()


def test_an_already_diagnosed_worker_is_not_answered_with_the_suspected_stage(retriever):
    from bot.answering.query import analyse

    query = analyse("确诊职业病了，接下来怎么办", retriever.encode)
    ranked = candidates(retriever, ("体检报告写着“疑似职业病”，下一步怎么办", 1.30),
                        ("确诊职业病以后，还要做什么才能享受工伤待遇", 1.28))
    assert [c.position for c in by_aspect(retriever, query, ranked)] == [ranked[1].position, ranked[0].position]


def test_a_stage_counts_only_against_a_unit_that_stops_at_the_earlier_stage(retriever):
    from bot.answering.query import analyse

    # the best unit names no earlier stage (疑似): a unit that merely names 确诊 does not go first
    query = analyse("被诊断为职业病，单位没交工伤保险怎么办", retriever.encode)
    ranked = candidates(retriever, ("单位没给交工伤保险，得了职业病怎么办", 1.30),
                        ("我们没参加工伤保险，员工确诊了职业病怎么办", 1.29))
    assert by_aspect(retriever, query, ranked) == ranked


def test_cold_and_heat_are_read_only_when_one_is_named_alone():
    from bot.answering.aspect import climate

    assert climate(normalize("冷库里干活要注意什么")) == "cold"
    assert climate(normalize("車間溫度很高怎麼辦")) == "heat"  # Traditional script
    assert climate(normalize("冬天冷库夏天高温，哪个更伤身")) is None  # both
    assert climate(normalize("粉尘作业要戴什么口罩")) is None


def test_a_unit_about_the_opposite_climate_goes_after_the_others(retriever):
    from bot.answering.aspect import by_opposite
    from bot.answering.query import analyse

    query = analyse("天冷了在户外干活手脚冻得发麻，有什么危害", retriever.encode)
    heat, cold = "车间里温度很高，单位该做什么", "职业性冻伤指的是什么"
    ranked = by_opposite(retriever, query, candidates(retriever, (heat, 1.30), (cold, 1.20)))
    assert ranked[0].position == unit(retriever, cold) and ranked[1].position == unit(retriever, heat)
    hot = analyse("夏天车间太热了有什么危害", retriever.encode)  # heat asked: the heat unit stays first
    assert by_opposite(retriever, hot, candidates(retriever, (heat, 1.30), (cold, 1.20)))[0].position == unit(retriever, heat)


def test_a_cold_work_question_is_not_answered_with_heat_advice(retriever):
    from bot.answering.answer import answer

    result = answer(retriever, "低温环境下上班要注意什么")  # answered with the heat-stroke tips before by_opposite
    assert "中暑" not in result.text and "防暑" not in result.text and "口渴" not in result.text


def test_a_hazard_is_read_once_by_any_of_its_names():
    from bot.answering.aspect import agents_in

    assert agents_in(normalize("甲苯中毒")) == agents_in(normalize("接触甲苯"))  # 苯 inside 甲苯 is 甲苯 only
    assert len(agents_in(normalize("苯、甲苯都有"))) == 2  # beside it, both
    assert agents_in(normalize("水銀溫度計廠")) == agents_in(normalize("汞中毒"))  # another name, Traditional script
    assert agents_in(normalize("工作压力大怎么办")) == set()


def test_a_unit_about_another_hazard_goes_after_the_others(retriever):
    from bot.answering.aspect import by_agent
    from bot.answering.query import analyse

    benzene, lead = "苯中毒有什么表现", "铅中毒有哪些早期信号和症状"
    query = analyse("天天接触铅，会有什么症状", retriever.encode)
    ranked = by_agent(retriever, query, candidates(retriever, (benzene, 1.30), (lead, 1.20)))
    assert [c.position for c in ranked] == [unit(retriever, lead), unit(retriever, benzene)]
    asked = analyse("苯接触多了会怎样", retriever.encode)  # the hazard of the best unit: the ranking stands
    assert by_agent(retriever, asked, candidates(retriever, (benzene, 1.30), (lead, 1.20)))[0].position == unit(retriever, benzene)
    none = analyse("工作中接触有毒物质会怎样", retriever.encode)  # no hazard named: the ranking stands
    assert by_agent(retriever, none, candidates(retriever, (benzene, 1.30), (lead, 1.20)))[0].position == unit(retriever, benzene)


def test_a_question_on_one_poisoning_is_not_answered_with_another(retriever):
    from bot.answering.answer import answer

    result = answer(retriever, "汞中毒的人会有什么表现")  # answered with 苯中毒's signs before by_agent
    assert "苯中毒" not in result.text and "苯蒸气" not in result.text


def test_a_cure_unit_gives_way_when_the_cure_is_not_asked(retriever):
    from bot.answering.aspect import by_unasked
    from bot.answering.query import analyse

    cure, risk = "尘肺病能治好吗", "做粉尘作业会不会得尘肺病"
    query = analyse("干装修打磨的会不会得尘肺", retriever.encode)
    ranked = by_unasked(retriever, query, candidates(retriever, (cure, 1.32), (risk, 1.30)))
    assert [c.position for c in ranked] == [unit(retriever, risk), unit(retriever, cure)]
    asked = analyse("尘肺到底能不能治愈", retriever.encode)  # the cure asked: the ranking stands
    assert by_unasked(retriever, asked, candidates(retriever, (cure, 1.32), (risk, 1.30)))[0].position == unit(retriever, cure)
    far = by_unasked(retriever, query, candidates(retriever, (cure, 1.40), (risk, 1.30)))  # too far behind
    assert far[0].position == unit(retriever, cure)


def test_a_contagion_unit_gives_way_when_contagion_is_not_asked(retriever):
    """Whether a disease passes to the family (`contagion`) answers only that: a question on who gets the disease
    is not answered with it, a question on contagion is (session 14, coverage pass)."""
    from bot.answering.aspect import by_unasked
    from bot.answering.query import analyse

    contagion, risk = "尘肺病有传染性吗？家里人会被传上、孩子会遗传吗？", "做粉尘作业会不会得尘肺病"
    query = analyse("搞石材切割的会不会得尘肺", retriever.encode)
    ranked = by_unasked(retriever, query, candidates(retriever, (contagion, 1.32), (risk, 1.30)))
    assert ranked[0].position == unit(retriever, risk)
    asked = analyse("矽肺病人跟家里人住一起会传染吗", retriever.encode)
    ranked = by_unasked(retriever, asked, candidates(retriever, (contagion, 1.32), (risk, 1.30)))
    assert ranked[0].position == unit(retriever, contagion)


def test_a_trade_harm_question_is_answered_from_the_trade_s_section(retriever):
    from bot.answering.aspect import by_trade
    from bot.answering.query import analyse

    general, plating = "在某个厂、某个岗位上班，对身体有没有害", "电镀车间接触铬酸，会伤皮肤和鼻子吗"
    query = analyse("干电镀这一行对身体有什么危害", retriever.encode)
    ranked = by_trade(retriever, query, candidates(retriever, (general, 1.30), (plating, 1.20)))
    assert ranked[0].position == unit(retriever, plating) and ranked[0].named
    # another aspect asked (prevention), someone's harm (pregnancy), or no harm asked: the ranking stands
    for other in ("电镀厂的危害怎么预防", "怀孕了在电镀厂有什么危害", "电镀厂一个月工资多少"):
        kept = by_trade(retriever, analyse(other, retriever.encode),
                        candidates(retriever, (general, 1.30), (plating, 1.20)))
        assert kept[0].position == unit(retriever, general) and not kept[0].named, other


def test_a_trade_harm_question_gets_its_trade_s_answer(retriever):
    from bot.answering.answer import answer

    result = answer(retriever, "在印刷厂上班对身体伤害大不大")
    assert result.decision == "answer" and "印刷" in result.text and ("苯" in result.text or "噪声" in result.text)


def test_a_trade_question_that_names_a_disease_needs_a_unit_that_names_it_too(retriever):
    from bot.answering.aspect import by_trade
    from bot.answering.query import analyse

    general, wood = "哪些工作会接触生产性粉尘", "在家具厂、木工车间干活，要防哪些职业病"
    # the woodworking section names the trade but not 尘肺: the ranking stands
    kept = by_trade(retriever, analyse("做木工的容易得尘肺吗", retriever.encode),
                    candidates(retriever, (general, 1.30), (wood, 1.20)))
    assert kept[0].position == unit(retriever, general) and not kept[0].named
    # without a disease named, the trade's harm section goes first
    promoted = by_trade(retriever, analyse("做木工的容易得什么病", retriever.encode),
                        candidates(retriever, (general, 1.30), (wood, 1.20)))
    assert promoted[0].position == unit(retriever, wood) and promoted[0].named


def test_a_unit_about_another_trade_goes_after_the_others(retriever):
    from bot.answering.aspect import by_other_trade
    from bot.answering.query import analyse

    lead, general = "在铅酸蓄电池厂、电瓶厂上班对身体有害吗", "在某个厂、某个岗位上班，对身体有没有害"
    query = analyse("在锂电池车间干活会中毒吗", retriever.encode)  # a trade without a section of its own
    ranked = by_other_trade(retriever, query, candidates(retriever, (lead, 1.30), (general, 1.20)))
    assert [c.position for c in ranked] == [unit(retriever, general), unit(retriever, lead)]
    same = analyse("电瓶厂上班会铅中毒吗", retriever.encode)  # the trade the unit names: the ranking stands
    assert by_other_trade(retriever, same, candidates(retriever, (lead, 1.30), (general, 1.20)))[0].position == \
        unit(retriever, lead)


def test_being_moved_to_another_post_is_the_working_aspect_in_everyday_words():
    for question in ("得了尘肺单位要给我换个岗位吗", "还能在原来的岗位干吗", "能不能调个岗位"):
        assert "working" in aspects_in(without_subject(normalize(question))), question


def test_an_answer_about_one_other_subject_is_told_apart_from_a_general_one():
    # aspect.other_subject: the question names a hazard, trade or kind of dust; the answer (the unit's questions and
    # the verdict shown, or the verdict alone) names exactly one other thing of that list and not the asked one
    from bot.answering.aspect import other_subject

    n = normalize
    asked = n("打磨铜件，铜粉多，会得尘肺吗")
    both = n("吸铝粉、铜粉这类金属粉尘，会得什么职业病？")
    assert other_subject(asked, both, n("铝粉尘可引起铝尘肺。")) == "铝"  # the verdict alone is about 铝
    assert other_subject(asked, both, n("金属粉尘也会引起肺部疾病。")) is None  # the unit names it; the verdict is general
    assert other_subject(asked, n("粉尘作业要注意什么？"), n("要看岗位接触的粉尘种类和浓度。")) is None  # general
    assert other_subject(asked, n("煤尘、矽尘有什么危害？"), n("煤尘、矽尘都可引起尘肺。")) is None  # a list
    assert other_subject(n("汞中毒有什么表现"), n("苯中毒有什么表现？"), n("头晕、乏力。")) == "苯"  # a hazard
    assert other_subject(n("粉尘作业要注意什么"), n("苯中毒有什么表现？"), n("头晕。")) is None  # nothing named asked


def test_an_answer_about_another_subject_stays_below_the_threshold(retriever):
    from bot.answering.decide import OTHER_SUBJECT, THRESHOLD, decide
    from bot.answering.query import analyse
    from bot.answering.rank import rank

    assert OTHER_SUBJECT < THRESHOLD
    query = analyse("职业病诊断需要多长时间", retriever.encode)
    ranked = rank(retriever, query, retriever.unit_scores(query))
    plain = decide(query, ranked, retriever.vocab, threshold=0.0)
    capped = decide(query, ranked, retriever.vocab, other_subject=True)
    assert plain.confidence > OTHER_SUBJECT and capped.confidence == OTHER_SUBJECT and capped.kind == "refuse"


def test_a_general_unit_gives_way_to_a_close_one_that_names_the_asked_hazard(retriever):
    from bot.answering.aspect import by_named
    from bot.answering.query import analyse

    kinds, items = "职业健康检查分哪几种", "职业健康检查都查哪些项目？接粉尘、噪声、苯、铅的各查什么"
    query = analyse("在噪声车间干活，职业健康检查要查些什么", retriever.encode)
    ranked = by_named(retriever, query, candidates(retriever, (kinds, 1.30), (items, 1.28)))
    assert [c.position for c in ranked] == [unit(retriever, items), unit(retriever, kinds)]
    # too far behind, or no hazard named: the ranking stands
    far = candidates(retriever, (kinds, 1.30), (items, 1.30 - ASPECT_MARGIN - 0.01))
    assert by_named(retriever, query, far) == far
    plain = candidates(retriever, (kinds, 1.30), (items, 1.28))
    assert by_named(retriever, analyse("职业健康检查要查些什么", retriever.encode), plain) == plain


def test_a_unit_naming_the_hazard_but_not_the_rest_of_the_question_stays_behind(retriever):
    from bot.answering.aspect import by_named
    from bot.answering.query import analyse

    # the best unit names the pregnancy the question asks about; the radiation unit names only the hazard
    query = analyse("怀孕了，在有辐射的岗位附近上班会影响胎儿吗", retriever.encode)
    ranked = candidates(retriever, ("怀孕了天天对着电脑上班，会影响胎儿吗", 1.30),
                        ("电离辐射属于哪类职业病危害？哪些人是放射工作人员", 1.28))
    assert by_named(retriever, query, ranked) == ranked


def test_a_question_on_one_hazard_s_check_gets_that_hazard_s_items(retriever):
    from bot.answering.answer import answer

    # refused before by_named: the kinds of check in general led, the unit on each hazard's items was close behind
    result = answer(retriever, "接苯的职业健康体检包括哪些")
    assert result.decision == "answer" and "职业健康检查都查哪些项目" in result.text and "苯" in result.text
