""""X 算不算职业病": a yes/no from the list itself.

The legal occupational diseases are exactly those of 《职业病分类和目录》 (《职业病防治法》第二条), which the
knowledge base holds in full (materials/disease-catalogue.md, one section per category). When a
question asks whether a named disease is an occupational disease, the answer is looked up there:
a listed disease is answered by the section that lists it (with its scope qualifier); a disease the
list does not name gets a fixed verdict in the user's words ("目录里没有单列“颈椎病”"), the
section on diseases outside the list, and the nearest category as a pointer (a diagnosis
institution decides whether an illness is one of the listed diseases). A disease asked by a name workers
use (电焊眼, 潜水病, 热射病: knowledge/dict/names.yaml) is looked up by the catalogue's own name, and the
answer says which entry that is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bot.answering.decide import word_lists
from bot.answering.query import Query
from bot.answering.retrieve import Retriever, matvec
from bot.text.normalize import normalize

CATALOGUE_DOC = "disease-catalogue"
NAMES = "names.yaml"  # a name workers use → the catalogue's name(s) for that disease (knowledge/dict/)
AGENTS = "agents.yaml"  # a hazard → its names (knowledge/dict/): 噪声 → 噪音, 汞 → 水银
OUTSIDE_HEADING = "病不在目录里"  # the section on diseases the list does not name
NEAREST_MIN = 0.75  # a category is offered as the nearest only above this cosine
ASKS = re.compile(
    r"(?:也|又|到底|究竟|还)?(?:算不算|算是|算|是不是|是否|是|属于|属不属于|能不能算|能否算|能算|可以算|可不可以算|认定为|归为)"
    r"(?:是|为)?(?:一种|一个)?(?:法定的?)?(?P<what>职业病|工伤)")
CLAUSE = re.compile(r"[，。！？,.!?；;：:\s“”\"]")
CAUSE = re.compile(r".*(?:得了|患了|患上|患有|得的|导致|引起|引发|造成|出现了|出现|查出|诊断为|所患|患(?!者)"
                   r"|这种|这个|那种|所谓的?|一下)")
# the ending of a disease's name (a symptom such as 眼睛疼 is not one: it is left to retrieval)
DISEASE_LIKE = re.compile(r"(?:病|症|炎|聋|瘤|癌|中毒|损伤|综合征|哮喘|障碍|结节|劳损|突出|曲张|硬化|疹|暑|肺|过敏)$")
NOT_A_NAME = re.compile(r"^(?:我的|我这|这|那|它|啥|什么|哪|上述|以上|这种|这个|那个|这样)|什么|哪|啥|怎么|几")


@dataclass
class Lookup:
    """The result of looking a named disease up in the catalogue."""
    name: str  # the disease as the user wrote it (normalised)
    listed: bool
    section: int | None  # position of a unit of the section that lists it, or of the "outside" section
    nearest: int | None = None  # for an unlisted disease: the closest category's unit, if close enough
    known_as: tuple[str, str] | None = None  # (the name of names.yaml in the question, the catalogue's name)


def asked_disease(text: str) -> str | None:
    """The disease a question asks about ("颈椎病又犯了！颈椎病是职业病吗？" → "颈椎病"), or None."""
    name, _ = asked(text)
    return name


def asked(text: str) -> tuple[str | None, str | None]:
    """(the disease, "职业病" or "工伤") of a "X 算不算职业病/工伤" question, else (None, None)."""
    norm = normalize(text)
    match = ASKS.search(norm)
    if not match:
        return None, None
    return _name(norm[: match.start()]), match.group("what")


def catalogue_name(name: str) -> tuple[str, tuple[str, ...]] | None:
    """The name of names.yaml that the asked disease's name ends with, or with 病/症 after it (the longest:
    "急性电焊眼" → "电焊眼", "黑肺病" → "黑肺"), and the catalogue's name(s) for it ("电光性眼炎",); None when
    there is none. Not a name inside another word: "做电焊眼睛疼" asks about a symptom, not 电焊眼."""
    table = {normalize(k): names for k, names in word_lists(NAMES).items() if names}
    bare = re.sub(r"(?:病|症)$", "", name)
    known = max((k for k in table if k and (name.endswith(k) or bare.endswith(k))), key=len, default=None)
    return (known, table[known]) if known else None


def agent_spellings(name: str) -> list[str]:
    """The name with a hazard's other name replaced by the one the catalogue uses (agents.yaml: 噪音聋 →
    噪声聋, 震动病 → 振动病, 辐射病 → 放射病), each way it can be; none when it names no other name."""
    found = []
    for agent, names in word_lists(AGENTS).items():
        found += [name.replace(n, normalize(agent)) for n in names if n != normalize(agent) and n in name]
    return [f for f in dict.fromkeys(found) if f != name]


def named_verdict(known_as: tuple[str, str]) -> str:
    """The opening of the answer to a disease asked by a name workers use: which catalogue entry it is."""
    return f"“{known_as[0]}”对应《职业病分类和目录》里的“{known_as[1]}”。"


def _name(before: str) -> str | None:
    """The disease named in the text before "算不算职业病": its last clause, without the story."""
    norm = before
    clauses = [c for c in CLAUSE.split(norm) if c.strip()]
    if not clauses:
        return None
    name = CAUSE.sub("", clauses[-1]).strip("的了也 ")
    if len(name) < 2 or NOT_A_NAME.search(name):
        return None
    return name


class Catalogue:
    """The catalogue sections of a loaded index, for lookups."""

    def __init__(self, retriever: Retriever) -> None:
        """Collect the catalogue's sections (first unit, heading, normalised text) from the index."""
        # the vectors, not the retriever: catalogues are kept in a WeakKeyDictionary by retriever, and a
        # value holding its key would keep every index ever swapped in alive (bot/answering/answer.py)
        self.matrix = retriever.matrix
        self.sections: list[tuple[int, str, str]] = []  # (first unit position, normalised heading, normalised text)
        seen: set[tuple] = set()
        for i, chunk in enumerate(retriever.chunks):
            if chunk.doc_id != CATALOGUE_DOC or not chunk.section or tuple(chunk.section) in seen:
                continue
            seen.add(tuple(chunk.section))
            text = "".join(c.text for c in retriever.section_chunks(chunk))
            self.sections.append((i, normalize(chunk.section[-1]), normalize(chunk.section[-1] + text)))
        self.outside = next((i for i, h, _ in self.sections if OUTSIDE_HEADING in h), None)

    def lookup(self, query: Query) -> Lookup | None:
        """Look the disease of a "X 算不算职业病" question up; None for any other question."""
        if not self.sections:
            return None
        name, what = asked(query.original)
        if name is None:
            return None
        named = catalogue_name(name)
        if named:  # a name workers use: the catalogue's own name(s) only (热射病 is 中暑, not 放射病 by its tail)
            keys = list(named[1])
        else:
            stem = re.sub(r"(?:病|症)$", "", name)
            # the name, its stem, and its tails that name a disease ("现在天热了中暑" → "中暑"): longest first
            # (a tail that is only the ending names no disease: 过敏 alone would match 过敏性肺炎)
            tails = [name[i:] for i in range(1, len(name) - 1)
                     if (end := DISEASE_LIKE.search(name[i:])) and end.start() > 0]
            keys = [k for k in dict.fromkeys([name, stem, *tails]) if len(k) >= 2]
        listed = self.listing(keys)
        if listed:
            # the catalogue's name the section lists (the first of several that it does)
            called = next((k for k in keys if k in self.text_of(listed[0])), keys[0]) if named else ""
            return Lookup(name, True, listed[0], known_as=(named[0], called) if named else None)
        for other in [] if named else agent_spellings(name):  # 噪音聋 is the catalogue's 噪声聋
            listed = self.listing([other])
            if listed:
                return Lookup(name, True, listed[0], known_as=(name, other))
        if what != "职业病" or not DISEASE_LIKE.search(name):
            return None  # not recognisably a disease (or a 工伤 question): leave it to retrieval
        return Lookup(name, False, self.outside, self.nearest(query, name))

    def listing(self, keys: list[str]) -> list[int]:
        """The sections naming one of `keys` (not the "outside" one): those whose heading names it, then
        the others by how often their list names it (肺癌: the tumours' six entries, not the one radiation
        entry that comes first), the first of equals."""
        headed = [p for p, h, _ in self.sections if p != self.outside and any(k in h for k in keys)]
        counts = {p: sum(text.count(k) for k in keys) for p, _, text in self.sections if p != self.outside}
        return headed + sorted((p for p, n in counts.items() if n), key=lambda p: -counts[p])

    def text_of(self, position: int) -> str:
        """The normalised heading and text of the section whose first unit is at `position`."""
        return next((text for p, _, text in self.sections if p == position), "")

    def nearest(self, query: Query, name: str = "") -> int | None:
        """The catalogue category closest to the question: one whose heading shares a word of two
        characters with the name's part before its ending (皮肤过敏 → 哪些皮肤病…), else the closest by
        the question match, if close."""
        positions = [p for p, _, _ in self.sections if p != self.outside]
        if not positions:
            return None
        end = DISEASE_LIKE.search(name)
        part = name[: end.start()] if end else name
        for p, heading, _ in self.sections:
            if p != self.outside and any(part[i:i + 2] in heading for i in range(len(part) - 1)):
                return p
        sims = matvec(self.matrix[positions], query.vector)
        best = int(np.argmax(sims))
        return positions[best] if float(sims[best]) >= NEAREST_MIN else None


def unlisted_verdict(name: str) -> str:
    """The fixed verdict for a disease the list does not name, in the user's words."""
    return f"《职业病分类和目录》里没有单列“{name}”。"
