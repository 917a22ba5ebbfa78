"""Analyse a question once: every later stage (retrieve → rank → decide → compose) reads this value
instead of normalising, tokenising and encoding the question again.

A follow-up ("那离职的时候呢？", "要是单位不给呢") carries no topic of its own: it is read together
with the same user's previous question (`context`, kept by the dialogue for ten minutes).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.text import MAX_FOLDERS, cached_by_folder, dict_dir, read_dictionary
from bot.text.normalize import normalize
from bot.text.tokenize import query_tokens, tokens

# A follow-up opens with one of these, or is a short question ending in 呢.
FOLLOW_UP_OPENERS = ("那么", "那", "要是", "如果", "假如", "万一", "还有", "另外", "可是", "但是", "但", "那如果")
FOLLOW_UP_MAX_CHARS = 20
ASKING = re.compile(r"[?？吗呢么]|怎么|怎样|如何|什么|哪|多少|几|是否|能否|可否|能不能|可不可以|算不算|是不是|有没有|要不要|合法")
SENTENCES = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]?")
FOCUS_MIN_CHARS = 40  # a question this long usually tells a story before it asks
# A question that asks two things ("职业病的定义，还有哪些职业容易得", "噪声有哪些危害？如何预防？"):
# its asking parts are the sentences (and clauses opened by one of PART_JOINERS) of its asking part that
# ask something (PART_ASKS), each from its first asking clause on.
PART_JOINERS = re.compile(r"[，,]\s*(?=还有|以及|另外|同时|并且)")
PART_ASKS = re.compile(ASKING.pattern + r"|谁|想了解|想知道|想问|想咨询|请问")  # also 谁 and a lead-in
CLAUSES = re.compile(r"[^，,]+[，,]?")
PART_MIN_CHARS = 4  # shorter pieces ("怎么办") ask nothing of their own
PART_MAX_CHARS = 40  # a longer piece tells a story or restates the question at length: not a part of its own
# what opens a part without asking anything: the joiner, a lead-in (还有 / 我想知道， / 请问：)
PART_OPENER = re.compile(r"^(?:还有|以及|另外|同时|并且)?(?:我?(?:想了解|想知道|想问|想咨询|请问)(?:一?下)?[:：,，]?)?")
RESTATES = 0.6  # a part with this share of its words in an earlier part restates it
# A follow-up's vector: this much of its own, the rest of the previous question's. Measured on
# short follow-ups (那粉尘呢 after 噪声多大算超标 → the dust limits): at 0.5 the previous topic still won,
# at 0.8 its aspect (超标 → 标准) was lost.
FOLLOW_UP_WEIGHT = 0.7


@dataclass(frozen=True)
class Query:
    """One question, analysed once.

    `text` is what retrieval reads: the question itself, or for a follow-up the previous question
    and this one together. `focus` is the asking part of a long question (its last sentences that
    ask something), used to pick the sentences of the answer.
    """
    original: str
    text: str
    normalized: str
    tokens: tuple[str, ...]
    expanded: tuple[str, ...]
    vector: np.ndarray = field(repr=False, compare=False)
    focus: str = ""
    context: str | None = None  # the previous question, when this one is read as its follow-up
    role: str | None = None
    region: str | None = None
    asks: str | None = None  # the kind of answer its interrogative asks for (asked_kind): duration, amount …

    @property
    def is_follow_up(self) -> bool:
        """Read together with the user's previous question."""
        return self.context is not None


def is_follow_up(question: str) -> bool:
    """A question that leans on the previous one: short, and opening with 那/要是/如果 … or ending
    in 呢 ("那离职的时候呢？", "要是单位不给呢", "孕妇呢")."""
    text = normalize(question).rstrip("?？!！。. ")
    if not text or len(text) > FOLLOW_UP_MAX_CHARS:
        return False
    return text.startswith(FOLLOW_UP_OPENERS) or text.endswith("呢")


def focus_of(question: str) -> str:
    """The asking part of a long question: the sentences from the first one that asks something
    to the end, when the question opens with a story; else the whole question."""
    text = normalize(question)
    if len(text) < FOCUS_MIN_CHARS:
        return text
    sentences = [s for s in SENTENCES.findall(text) if s.strip()]
    asking = [i for i, s in enumerate(sentences) if ASKING.search(s)]
    if not asking:
        return text
    return "".join(sentences[asking[0]:]) if asking[0] > 0 else text


def asking_parts(question: str) -> list[str]:
    """The parts of a question that each ask something, in order: the asking sentences of its asking
    part (focus_of) and the clauses opened by 还有/以及/另外 …, each from its first clause that asks (an
    interrogative, 谁, or a lead-in such as 想了解) to its end, without its joiner or lead-in; not one longer
    than PART_MAX_CHARS (a story) or restating an earlier part ("标题？" then the same question again).
    One part (or none) for a question that asks one thing."""
    parts: list[str] = []
    found = [s for s in SENTENCES.findall(focus_of(question)) if s.strip(" ，,。；;")]
    # a sentence asks when it ends with a question mark, or is the last one ("……想了解下职业病的定义。"):
    # 是不是/几 inside a statement ("怀疑是不是得了职业病。") ask nothing
    for sentence in [s for i, s in enumerate(found) if s.rstrip().endswith(("?", "？")) or i == len(found) - 1]:
        for piece in PART_JOINERS.split(sentence):
            clauses = CLAUSES.findall(piece)
            first = next((i for i, c in enumerate(clauses) if PART_ASKS.search(c)), None)
            if first is None:
                continue
            part = PART_OPENER.sub("", "".join(clauses[first:]).strip(" ，,。；;")).strip(" ，,")
            if PART_MIN_CHARS <= len(part.rstrip("?？!！")) <= PART_MAX_CHARS and not restates(part, parts):
                parts.append(part)
    return parts


def outermost(words: set[str]) -> set[str]:
    """The words that are not inside a longer one of them (职业 in 职业病)."""
    return {w for w in words if not any(w != longer and w in longer for longer in words)}


def content_words(text: str) -> set[str]:
    """A text's words of two or more characters, without those inside a longer one (职业 in 职业病)."""
    return outermost({w for w in tokens(normalize(text)) if len(w) >= 2})


def restates(part: str, before: list[str]) -> bool:
    """Whether a part and an earlier one are mostly the same words (RESTATES of the shorter one's): the
    same question asked again, at length or in short."""
    mine = content_words(part)
    for earlier in before:
        theirs = content_words(earlier)
        if mine and theirs and len(mine & theirs) / min(len(mine), len(theirs)) >= RESTATES:
            return True
    return False


@dataclass(frozen=True)
class AnswerKind:
    """One kind of answer (knowledge/dict/answer_types.yaml): the interrogatives that ask for it, what a
    sentence holding such an answer contains, and what holds one only in a verdict (`verdict`: the answer's
    opening, where a bare "要先组织体检" answers "需要体检吗"; in the detail the same form is an instruction
    that answers nothing asked, so compose does not prefer it); None when the kind has no such forms."""
    name: str
    asks: re.Pattern
    answer: re.Pattern
    verdict: re.Pattern | None = None


def answer_kinds() -> tuple[AnswerKind, ...]:
    """The kinds of answer of the dictionaries in use, in the order they are tried."""
    return _answer_kinds(dict_dir())


@lru_cache(maxsize=MAX_FOLDERS)
def _answer_kinds(folder: Path) -> tuple[AnswerKind, ...]:
    """answer_types.yaml of one dictionary folder, read and compiled once."""
    path = folder / "answer_types.yaml"
    table = read_dictionary(path)
    return tuple(
        AnswerKind(name, re.compile("|".join(f"(?:{normalize(str(p))})" for p in spec["asks"])),
                   re.compile("|".join(f"(?:{p})" for p in spec["answer"])),
                   re.compile("|".join(f"(?:{p})" for p in spec["verdict"])) if spec.get("verdict") else None)
        for name, spec in (table or {}).items() if spec.get("asks") and spec.get("answer"))


def asked_kind(question: str) -> str | None:
    """The kind of answer a question asks for, by its interrogative (多久 → duration, 多少 → amount,
    谁/哪个部门 → authority, 能不能/吗 → yesno, 怎么办/如何 → procedure, 哪些/什么 → list); None when
    it has none of them. Read on the asking part of a long question (focus_of)."""
    text = normalize(question).strip()
    for kind in answer_kinds():
        if kind.asks.search(text):
            return kind.name
    return None


def has_answer(kind: str | None, text: str) -> bool:
    """Whether a text (a sentence, a unit) holds an answer of the kind; False for no kind."""
    return kind is not None and _has_answer(dict_dir(), kind, text)


@lru_cache(maxsize=16384)
def _has_answer(folder: Path, kind: str, text: str) -> bool:
    """has_answer with the dictionaries of `folder` (cached: knowledge-base sentences recur across questions)."""
    found = next((k for k in _answer_kinds(folder) if k.name == kind), None)
    return bool(found and found.answer.search(text))


def verdict_answers(kind: str | None, verdict: str) -> bool:
    """Whether an answer's verdict holds an answer of the kind: a form any sentence holds (has_answer), or one
    that answers only as the verdict (AnswerKind.verdict: a clause opening with the bare 要 / 不要 / 一定要 says
    yes or no to 需要…吗). False for no kind."""
    if has_answer(kind, verdict):
        return True
    found = next((k for k in answer_kinds() if k.name == kind), None)
    return bool(found and found.verdict and found.verdict.search(verdict))


cached_by_folder(_answer_kinds.cache_clear)
cached_by_folder(_has_answer.cache_clear)


def analyse(question: str, encode: Callable[[str], np.ndarray], context: str | None = None, role: str | None = None,
            region: str | None = None, follow_up: bool | None = None) -> Query:
    """The question analysed once. `encode(normalised text) → unit vector` (the retriever's cached
    encoder); `context` is the user's previous question, used only when this one is a follow-up
    (`follow_up`: the caller's reading of that, else `is_follow_up`)."""
    use_context = bool(context) and (is_follow_up(question) if follow_up is None else follow_up)
    text = f"{context} {question}" if use_context else question
    normalized = normalize(text)
    if use_context:  # the new aspect leads, the previous question keeps the topic
        own = np.asarray(encode(normalize(question)), dtype="float32")
        before = np.asarray(encode(normalize(context or "")), dtype="float32")
        mixed = FOLLOW_UP_WEIGHT * own + (1 - FOLLOW_UP_WEIGHT) * before
        vector = (mixed / np.linalg.norm(mixed)).astype("float32")
    else:
        vector = encode(normalized)
    words = tokens(normalized)
    focus = normalize(question) if use_context else focus_of(question)
    return Query(
        original=question, text=text, normalized=normalized, tokens=tuple(words),
        expanded=tuple(query_tokens(normalized, words)), vector=vector,
        focus=focus, context=context if use_context else None, role=role, region=region,
        asks=asked_kind(focus),
    )
