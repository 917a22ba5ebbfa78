"""The aspect of a question (aspect.py, knowledge/dict/aspects.yaml): among the best units close in
score, the one whose questions ask what the user asks about the subject goes first."""
from __future__ import annotations

from bot.answering.aspect import ASPECT_MARGIN, aspects_in, by_aspect, without_subject
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
