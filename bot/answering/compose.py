"""Compose what the user reads: a one-sentence verdict, at most ~150 characters of detail, the
source line; the full section on "更多".

Every sentence shown is a sentence of the knowledge base (a card's answer, a section's text, a
table row), chosen, never rewritten; only fixed phrases are added (the plan's owner, the review
note, the door lines of decide.py, a cut list's count), and a ； that would end the answer or run
on into another passage becomes 。 (seal), and in a sentence of another unit a citation that names no law
("（同条）", "（第七条）") is left out (BARE_CITATION). Sentences are never cut inside brackets or quotes, and a
colon-introduced list is shown whole or cut between items with its mark (README "Answering").
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bot.answering.query import Query, has_answer
from bot.answering.rank import Candidate
from bot.answering.retrieve import Retriever, in_its_dictionaries, is_plan_question
from bot.text import cached_by_folder, dict_dir
from bot.text.normalize import normalize
from bot.text.regions import is_local, names_region, region_label, region_stem
from bot.text.tokenize import tokens

DETAIL_CHARS = 150
VERDICT_CHARS = 120  # a longer first sentence is cut at its last clause that fits
HEADING_MATCH = 0.90  # the unit's own question is this close to the user's: its opening sentence leads
# A bare opening verdict ("不用。", "算。") answers its own question only: shown when that question is a
# paraphrase of the user's (at ≥ 0.95 the closest card question was a true paraphrase in every case of
# our sets; between 0.90 and 0.95 about one in six was another question, whose yes/no may be the opposite)
BARE_VERDICT_MATCH = 0.95
BARE = 8  # a shorter sentence is a bare verdict ("能。", "不是。"): true only of its own heading
# The detail may go on with sentences of the next units of the ranking (README "Answering", session 4:
# the fact was often in the second or third unit): only after the unit's own sentences, and only a
# sentence sharing a distinctive word of the question (IDF ≥ DISTINCT_IDF: not 用人单位/劳动者/职业病,
# which half the units contain) that the shown text does not already say.
NEIGHBOURS = 2
DISTINCT_IDF = 1.2
# A citation that names no law ("（第二十一条至第二十三条）", "（同法第三十九条）", "（同条）") leans on a law its own unit
# named earlier: in a neighbour's sentence it would read as citing the law of the sentence before it, so it is left
# out there (the source line names the neighbour's text).
BARE_CITATION = re.compile(r"[（(](?:同[条法上页文]|同办法|第[一二三四五六七八九十百零〇\d]+条)[^（()）《]*[）)]")
DRAFT_NOTE = "（本条为防护常识，尚待职业卫生专业人员审核）"
YES_NO = re.compile(r"(?<![什怎这那多])[吗么嘛][?？!！。]*$|能不能|可不可以|是不是|算不算|要不要|有没有|是否|行不行|对不对|合不合法|能否|可否")
# A sentence holding an answer of the kind the question asks for (Query.asks: a duration for 多久, an
# amount for 多少, an authority for 谁/哪个部门 …, knowledge/dict/answer_types.yaml) counts as this many
# more shared words when the verdict and detail are picked (before: figures first for 多少/几/目标 only).
ASKED_BONUS = 1.5


# Brackets and quotation marks (README "Answering", session 10): a sentence or clause is never cut
# inside one. "（《职业病防治法》第五十二条；《职业病诊断与鉴定管理办法》）" is one piece, not two.
OPENERS = "（(《“「【"
CLOSERS = "）)》”」】"
_OPENER_OF = dict(zip(CLOSERS, OPENERS))
_CLOSER_OF = dict(zip(OPENERS, CLOSERS))
SENTENCE_ENDS = frozenset("。！？；!?;")
CLAUSE_ENDS = frozenset("，,、：:")
COLONS = "：:"
# A colon-introduced list ("有下列情形之一的：（一）…；（二）…；") is one piece of the answer: shown whole
# when it fits, else cut between items with this mark naming how many items it has.
LIST_ITEMS = 3  # fewer items after "：…；" are two clauses of a sentence ("指南是：A；B。"), not a list
LIST_MORE = "（共{n}项，回复“更多”看全文）"
LIST_CUT = "（共{n}项）"  # when "更多" would not show this list (another unit's, a later part's)


@lru_cache(maxsize=8)
def _marks(ends: frozenset[str], brackets: bool) -> re.Pattern[str]:
    """The characters _split looks at: end marks, line breaks, and brackets when they count."""
    return re.compile("[" + re.escape("".join(sorted(ends)) + "\n" + (OPENERS + CLOSERS if brackets else "")) + "]")


def _split(text: str, ends: frozenset[str], brackets: bool = True) -> list[str]:
    """Pieces of `text` cut after each mark of `ends` (with the end marks that follow it) and at each
    line break, never inside brackets or quotes (`brackets`); one linear pass over the marks only. A
    line break inside a bracket joins its two lines (a chunk boundary, index_builder.segment). When a
    bracket is still open at the end (a typo), the text from the last cut is split again without
    regard to brackets."""
    pieces: list[str] = []
    stack: list[str] = []  # open brackets, innermost last
    open_count = dict.fromkeys(OPENERS, 0)  # how many of each are on the stack: "is it open" in O(1)
    start = 0
    for m in _marks(ends, brackets).finditer(text):
        i, ch = m.start(), m.group()
        if i < start:  # an end mark already taken with the one before it
            continue
        if ch in _CLOSER_OF:
            stack.append(ch)
            open_count[ch] += 1
        elif ch in _OPENER_OF:
            if open_count[_OPENER_OF[ch]]:  # close it (and any left open inside it)
                while True:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == _OPENER_OF[ch]:
                        break
        elif stack:
            continue
        elif ch == "\n":
            pieces.append(text[start:i])
            start = i + 1
        else:
            j = i + 1
            while j < len(text) and text[j] in ends:
                j += 1
            pieces.append(text[start:j])
            start = j
    if stack:  # an unclosed bracket: what follows the last cut is split as plain text
        return pieces + _split(text[start:], ends, brackets=False)
    pieces.append(text[start:])
    return pieces


def _bracketed(piece: str) -> bool:
    """Whether a piece is one bracketed group alone ("（《职业病防治法》第三十五条）", maybe with its end
    mark): a note on the sentence before it."""
    core = piece.rstrip("".join(SENTENCE_ENDS))
    if not core or core[0] not in _CLOSER_OF or core[-1] != _CLOSER_OF[core[0]]:
        return False
    depth = 0
    for j, ch in enumerate(core):
        depth += (ch == core[0]) - (ch == core[-1])
        if depth == 0:
            return j == len(core) - 1
    return False


def sentences(text: str) -> list[str]:
    """The sentences of a text, each with its end mark; a cut never falls inside brackets or quotes,
    and a bracketed group standing alone after a sentence (its citation) goes with that sentence."""
    return list(_sentences(text))


@lru_cache(maxsize=4096)
def _sentences(text: str) -> tuple[str, ...]:
    """sentences, cached: the same sections are composed again and again."""
    out: list[str] = []
    for piece in _split(text, SENTENCE_ENDS):
        piece = piece.replace("\n", "").strip()
        if not piece:
            continue
        if out and _bracketed(piece):
            out[-1] += piece
        else:
            out.append(piece)
    return tuple(out)


def clauses(sentence: str) -> list[str]:
    """The clauses of a sentence, each with its mark (，、：), never cut inside brackets or quotes."""
    return [c for c in _split(sentence, CLAUSE_ENDS) if c]


def close_brackets(text: str) -> str:
    """A cut text with no bracket left open: cut before the first unclosed bracket when something is
    left before it, else closed (what a bracket opened is then all shown)."""
    stack: list[tuple[str, int]] = []
    for j, ch in enumerate(text):
        if ch in _CLOSER_OF:
            stack.append((ch, j))
        elif ch in _OPENER_OF and any(o == _OPENER_OF[ch] for o, _ in stack):
            while stack and stack.pop()[0] != _OPENER_OF[ch]:
                pass
    if not stack:
        return text
    before = text[:stack[0][1]].rstrip("，,、：:；;")
    return before if before else text + "".join(_CLOSER_OF[o] for o, _ in reversed(stack))


@dataclass(frozen=True)
class Listing:
    """A colon-introduced list: its head (up to the colon) and its items, each with its ；/。."""
    head: str
    items: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole list as it stands in the knowledge base."""
        return self.head + "".join(self.items)


def _head_colon(sentence: str) -> int:
    """Index of the last colon outside brackets, -1 if none."""
    if "：" not in sentence and ":" not in sentence:
        return -1
    depth, found = 0, -1
    for j, ch in enumerate(sentence):
        if ch in _CLOSER_OF:
            depth += 1
        elif ch in _OPENER_OF and depth:
            depth -= 1
        elif not depth and ch in COLONS:
            found = j
    return found


def group_lists(body: list[str]) -> tuple[list[str], dict[int, Listing]]:
    """The sentences with each colon-introduced list made one piece: a sentence with a colon that ends
    in the colon or in ； ("七项权利：" / "情形之一的：（一）…；") and the sentences after it up to the
    first that does not end in ；. Returns the new pieces and the lists by their index there."""
    out: list[str] = []
    lists: dict[int, Listing] = {}
    i = 0
    while i < len(body):
        s = body[i]
        colon = _head_colon(s)
        if colon < 0 or not (s.endswith(tuple(COLONS)) or (s.endswith(("；", ";")) and colon < len(s) - 1)) \
                or i + 1 >= len(body):
            out.append(s)
            i += 1
            continue
        items = [s[colon + 1:]] if colon < len(s) - 1 else []
        j = i + 1
        while j < len(body):
            items.append(body[j])
            j += 1
            if not body[j - 1].endswith(("；", ";")):
                break
        if len(items) < LIST_ITEMS and colon < len(s) - 1:  # "指南是：A；B。": a sentence of two clauses
            out.append(s)
            i += 1
            continue
        listing = Listing(s[:colon + 1], tuple(items))
        lists[len(out)] = listing
        out.append(listing.text)
        i = j
    return out, lists


def fit_list(listing: Listing, budget: int, score: Callable[[str], float], more: bool = True) -> str | None:
    """A list within `budget` characters: whole when it fits, else its head and the items that score
    best (in their own order, "……" where items are left out) with a mark naming how many items there are ("更多" shows the rest when
    `more`); None when not even one item fits."""
    if len(listing.text) <= budget:
        return listing.text
    n = len(listing.items)
    mark = (LIST_MORE if more else LIST_CUT).format(n=n)
    room = budget - len(listing.head) - len(mark) - 2  # the last gap's "……"
    ranked = sorted(range(n), key=lambda k: (-score(listing.items[k]), k))
    chosen: list[int] = []
    for k in ranked:
        if len(listing.items[k]) + 2 <= room:  # with the "……" of a gap before it
            chosen.append(k)
            room -= len(listing.items[k]) + 2
    if not chosen:
        return None
    chosen.sort()
    shown = [("……" if k and (not j or chosen[j - 1] != k - 1) else "") + listing.items[k] for j, k in enumerate(chosen)]
    return listing.head + "".join(shown) + ("" if chosen[-1] == n - 1 else "……") + mark


def section_text(retriever: Retriever, candidate: Candidate) -> str:
    """The whole section a unit belongs to (all chunks with its document and heading path, in order);
    a card's whole answer; a table row's own text."""
    chunk = candidate.chunk
    if chunk.kind in ("faq", "row"):
        return chunk.text
    parts = [c.text for c in retriever.section_chunks(chunk) if c.kind != "row"]
    return "\n".join(parts) or chunk.text


def owner_prefix(candidate: Candidate) -> str:
    """A local plan's sentence says whose plan it is: "柳南区的规划：…"."""
    region = candidate.doc.get("region")
    if not is_local(region) or candidate.chunk.kind == "faq":
        return ""
    label = region_label(region)
    if label and normalize(label) in normalize(candidate.chunk.text[:20]):
        return ""  # a table row already opens with it
    kind = "工作要点" if candidate.doc.get("doc_type") == "work_plan" else "规划"
    return f"{label}的{kind}："


def words(text: str) -> frozenset[str]:
    """The search tokens of a knowledge-base sentence or section (cached: they recur across questions)."""
    return _words(dict_dir(), text)


@lru_cache(maxsize=8192)
def _words(folder: Path, text: str) -> frozenset[str]:
    """words with the tokenizer of `folder` (the one in use; the key keeps two index versions' tokens apart
    while a serving process swaps one for the other)."""
    return frozenset(tokens(text))


cached_by_folder(_words.cache_clear)


def _overlap(wanted: set[str], sentence: str) -> int:
    """How many of the question's words a sentence contains."""
    return len(wanted & words(sentence))


def shorten(sentence: str, limit: int) -> str:
    """A sentence cut at its last clause that fits the limit."""
    if len(sentence) <= limit:
        return sentence
    out = ""
    for clause in clauses(sentence):
        if len(out) + len(clause) > limit:
            break
        out += clause
    return close_brackets(out.rstrip("，,、：:") if out else sentence[:limit]) + "……"


def with_room(sentence: str, shown: str, detail: list[tuple[int, str]], limit: int) -> str:
    """The verdict `shown` of a `sentence` cut short, lengthened into the room the `detail` leaves of its
    `limit`: a unit of one long sentence (a plan's "根据《…》《…》等法律法规……制定本规划") was shown as its first
    clause only and the part that answers cut off. Unchanged when it is whole or the detail fills its room."""
    room = limit - sum(len(text) for _, text in detail)
    return shorten(sentence, VERDICT_CHARS + room) if room > 0 and shown != sentence else shown


def _asked_bonus(query: Query, sentence: str) -> float:
    """ASKED_BONUS when the sentence holds an answer of the kind the question asks for, else 0."""
    return ASKED_BONUS if has_answer(query.asks, sentence) else 0.0


def item_scorer(query: Query) -> Callable[[str], float]:
    """How well a sentence (or one item of a list) answers the question: the question's words it shares,
    ASKED_BONUS more for an answer of the asked kind."""
    wanted = set(query.expanded) | words(query.focus)
    return lambda sentence: _overlap(wanted, sentence) + _asked_bonus(query, sentence)


def _scorer(one: Callable[[str], float], lists: dict[int, Listing]) -> Callable[[int, str], float]:
    """How well piece i answers the question, by `one` (item_scorer): a list counts as its head with its
    best item (as its sentences did before they were one piece), not as all its items' words together."""

    def score(i: int, piece: str) -> float:
        listing = lists.get(i)
        if listing is None:
            return one(piece)
        return max(one(listing.head + item) for item in listing.items)
    return score


def short_answer(query: Query, sentence: str) -> bool:
    """Whether a short opening sentence holds an answer of the kind the question asks for, other than a
    yes/no ("申请工伤认定。" for 怎么办, "40℃。" for 多少度, "人社部门。" for 找谁): it answers the question as it
    stands, unlike a bare "能。"/"不用。", which is true only of its own heading (issue #9: the answer's opening
    was passed over for its second sentence, whose lack of the asked kind lowered the confidence)."""
    return query.asks not in (None, "yesno") and has_answer(query.asks, sentence)


def pick_verdict(query: Query, candidate: Candidate, body: list[str],
                 lists: dict[int, Listing] | None = None) -> int:
    """Index of the verdict sentence: the opening sentence when the unit answers the user's question
    (a card, a section whose heading matches, a table row), else the sentence closest to it (an
    answer of the asked kind counts ASKED_BONUS more). `lists`: the pieces of `body` that are lists."""
    if not body:
        return -1
    if candidate.chunk.kind in ("faq", "row") or candidate.q_dense >= HEADING_MATCH:
        # a bare "能。"/"不用。" answers a yes/no question, and only its own: for "怎么申请…" or a
        # neighbouring question the next sentence leads (a card whose own question the user typed keeps it)
        bare = len(body[0]) < BARE and len(body) > 1 and not candidate.exact and not short_answer(query, body[0])
        if bare and (not YES_NO.search(query.focus) or candidate.q_dense < BARE_VERDICT_MATCH):
            return 1
        return 0
    score = _scorer(item_scorer(query), lists or {})
    scored = [(score(i, s), -i) for i, s in enumerate(body)]
    return -max(scored)[1]


def choose_detail(query: Query, body: list[str], verdict: int, limit: int = DETAIL_CHARS,
                  own: int | None = None, neighbours: int | None = None,
                  distinct: frozenset[str] = frozenset(), lists: dict[int, Listing] | None = None,
                  more_below: int = 0) -> list[tuple[int, str]]:
    """The detail: (index, shown text) of the sentences sharing most words with the question (an
    answer of the kind it asks for counts ASKED_BONUS more: figures for 多少, an authority for 谁 …),
    in their own order, within `limit` characters. The first `own` sentences (the unit's own, before
    those of a card's section) go first; sentences from index `neighbours` on (other units') only
    fill what is left, and only with a `distinct` word. A list (`lists`, group_lists) that does not
    fit the room left is cut between items with its mark (fit_list; "更多" named for lists before
    index `more_below`)."""
    lists = lists or {}
    items = item_scorer(query)
    score = _scorer(items, lists)
    own = len(body) if own is None else own
    ranked = sorted(
        (i for i in range(len(body)) if i != verdict and len(body[i]) >= BARE),
        key=lambda i: (i >= own, -score(i, body[i]), abs(i - verdict)),
    )
    chosen: list[tuple[int, str]] = []
    total = 0
    for i in ranked:
        if neighbours is not None and i >= neighbours and not distinct & words(body[i]):
            continue
        text: str | None = body[i]
        if total + len(body[i]) > limit:
            if i not in lists:
                continue
            text = fit_list(lists[i], limit - total, items, i < more_below)
            if text is None:
                continue
        assert text is not None
        chosen.append((i, text))
        total += len(text)
    return sorted(chosen)


def seal(shown: list[tuple[int, str]], breaks: frozenset[int] = frozenset()) -> list[str]:
    """The shown sentences in order, a sentence that ends in ；/; ending in 。 when the next shown one
    is not the one that follows it in the text (or there is none): the answer never ends on a ；, nor
    runs a clause on into another passage. `breaks`: indices that start another text."""
    out = []
    for k, (i, text) in enumerate(shown):
        nxt = shown[k + 1][0] if k + 1 < len(shown) else None
        if text.endswith(("；", ";")) and (nxt != i + 1 or nxt in breaks):
            text = text[:-1] + "。"
        out.append(text)
    return out


def source_line(candidate: Candidate) -> str:
    """Where the shown text comes from: a card's citation, else document › heading path (date)."""
    chunk = candidate.chunk
    if chunk.kind == "faq":
        return chunk.cite or f"常见问题 › {chunk.section[0]}"
    date = candidate.doc.get("date")
    return chunk.heading + (f"（{date}）" if date else "")


@dataclass
class Composed:
    """What compose chose: the verdict, the detail, whether "更多" has more, and where the shown
    sentences come from (for the review note and the source line)."""
    verdict: str
    detail: str
    more: bool
    from_section: bool = False  # detail sentences were taken from the section a card restates
    section_doc: dict = field(default_factory=dict)
    section_heading: str = ""
    neighbours: list[Candidate] = field(default_factory=list)  # other units whose sentences were shown


def overlaps(sentence: str, text: str, share: float = 0.6) -> bool:
    """Whether most of a sentence's words are already in `text` (a card restating its section)."""
    mine = words(sentence)
    return bool(mine) and len(mine & words(text)) / len(mine) >= share


PLAN_MARKS = ("规划", "工作要点")  # a sentence naming a region with one of these, or a 《title》 naming it, quotes its plan


def unasked_regions(retriever: Retriever, query: Query) -> list[str]:
    """The stems of the local documents' regions (柳南, 秦皇岛, 广东) that neither the question names nor the
    user's region is; none for a question about the plans themselves (is_plan_question)."""
    if is_plan_question(query.text, retriever.regions):
        return []
    stems = []
    for region in dict.fromkeys(r for r in retriever.regions if is_local(r)):
        mine = bool(query.region) and (str(query.region) in str(region) or names_region(str(query.region), region))
        if not mine and not names_region(query.text, region):
            stems.append(normalize(region_stem(region)))
    return stems


def quotes_local(sentence: str, stems: list[str]) -> bool:
    """Whether a sentence quotes the plan or rule of one of these regions (a stem with a PLAN_MARKS word, or
    a 《title》 that names it): "柳南区规划也要求……" in a national section."""
    x = normalize(sentence)
    return any(s in x and (any(m in x for m in PLAN_MARKS) or re.search(f"《[^》]*{re.escape(s)}[^》]*》", x))
               for s in stems)


def compose(retriever: Retriever, query: Query, candidate: Candidate, verdict: str | None = None,
            others: list[Candidate] | None = None, limit: int = DETAIL_CHARS, more_hint: bool = True) -> Composed:
    """The verdict sentence, the detail sentences, and whether "更多" has more to show. A given
    `verdict` (a fixed sentence, e.g. the catalogue lookup's) replaces the unit's own; the detail
    then comes from the whole section. A card's detail may also come from the material section the
    card restates (its `ref`): the card is a summary, the section has the facts around it. Room
    left in the detail goes to sentences of the next units of the ranking (`others`, the first
    NEIGHBOURS of them) that share a distinctive word with the question. `limit`: the detail's
    length (an answer to one part of a question that asks two things gets its share). `more_hint`:
    whether "更多" will show this unit (a cut list of its own then names it; not for a later part)."""
    full = section_text(retriever, candidate)
    body, lists = group_lists(sentences(full))
    if not body:
        return Composed(verdict or full, "", False)
    extra: list[str] = []
    section = retriever.ref_section(candidate.chunk) if candidate.chunk.kind == "faq" else []
    if section:
        pieces, their_lists = group_lists(sentences("\n".join(c.text for c in section)))
        for k, x in enumerate(pieces):  # a list is kept or left out whole (its count stays true)
            if not overlaps(x, full, 0.5):
                if k in their_lists:
                    lists[len(body) + len(extra)] = their_lists[k]
                extra.append(x)
    pool = body + extra
    own = len(pool)
    breaks = {len(body), own}  # where another text starts: a ； there does not run on
    origin: list[Candidate] = []  # the unit of each neighbour sentence, in pool order from `own`
    seen = set().union(*(words(x) for x in pool))  # words already in the pool (per sentence: cached)
    for other in (others or [])[:NEIGHBOURS]:
        if other.position == candidate.position:
            continue
        theirs, their_lists = group_lists(sentences(section_text(retriever, other)))
        breaks.add(len(pool))
        for k, x in enumerate(theirs):
            mine = words(x)
            if k not in their_lists:  # a list is shown by its items (fit_list): left as it is
                x = BARE_CITATION.sub("", x)
            if mine and len(mine & seen) / len(mine) < 0.5:  # not a restatement of what is there
                if k in their_lists:
                    lists[len(pool)] = their_lists[k]
                pool.append(x)
                origin.append(other)
                seen |= mine
    v = pick_verdict(query, candidate, body, lists) if verdict is None else -1
    if v >= 0 and not is_local(candidate.doc.get("region")):
        # an unasked region's plan never leads a national answer (it binds its own region only: issue #9);
        # it may still be detail, where it says whose plan it is
        stems = unasked_regions(retriever, query)
        if quotes_local(body[v], stems):
            v = next((i for i in sorted(range(len(body)), key=lambda i: abs(i - v)) if not quotes_local(body[i], stems)), v)
    shown_verdict = verdict or ""
    if verdict is None:
        if v in lists:  # a list leads: it may use the detail's room too (what it takes is the detail's less)
            shown_verdict = fit_list(lists[v], VERDICT_CHARS + limit, item_scorer(query), more_hint) \
                or shorten(body[v], VERDICT_CHARS)
            limit = max(0, limit - max(0, len(shown_verdict) - VERDICT_CHARS))
        else:
            shown_verdict = shorten(body[v], VERDICT_CHARS)
    distinct = frozenset(w for w in set(query.expanded) | words(query.focus) if retriever.idf(w) >= DISTINCT_IDF)
    chosen = choose_detail(query, pool, v, limit, own=len(body), neighbours=own, distinct=distinct,
                           lists=lists, more_below=len(body) if more_hint else 0)
    if verdict is None and v >= 0 and v not in lists:
        shown_verdict = with_room(body[v], shown_verdict, chosen, limit)
    whole = {i for i, text in chosen if i < len(body) and text == body[i]} | ({v} if v >= 0 and shown_verdict == body[v] else set())
    if v >= 0:
        sealed = seal([(v, shown_verdict)] + chosen, frozenset(breaks))
        shown_verdict, detail = sealed[0], "".join(sealed[1:])
    else:
        detail = "".join(seal(chosen, frozenset(breaks)))
    shown_verdict = owner_prefix(candidate) + shown_verdict if verdict is None else shown_verdict
    used_section = any(len(body) <= i < own for i, _ in chosen)
    used = list({id(origin[i - own]): origin[i - own] for i, _ in chosen if i >= own}.values())
    return Composed(shown_verdict, detail, len(whole) < len(body), used_section,
                    retriever.docs.get(section[0].doc_id, {}) if used_section else {},
                    section[0].heading if used_section else "", used)


def needs_review_note(candidate: Candidate, composed: Composed | None = None) -> bool:
    """Only text from a `draft` material carries the review note (not `sourced` or `reviewed`):
    the unit's own document, or the section a card's detail was taken from."""
    if candidate.doc.get("status") == "draft":
        return True
    if composed and any(n.doc.get("status") == "draft" for n in composed.neighbours):
        return True
    return bool(composed and composed.from_section and composed.section_doc.get("status") == "draft")


@in_its_dictionaries
def full_section(retriever: Retriever, chunk_id: int) -> str | None:
    """What "更多" shows: the whole section (or card) of a unit, with its source line; None when the
    id is not in the index (e.g. an old button after a rebuild)."""
    position = retriever.position.get(chunk_id)
    if position is None:
        return None
    chunk = retriever.chunks[position]
    doc = retriever.docs.get(chunk.doc_id, {})
    candidate = Candidate(position, chunk, doc, 0.0, 0.0, 0.0, 0.0, 0.0)
    title = chunk.section[-1] if chunk.section else chunk.heading
    note = f"\n{DRAFT_NOTE}" if needs_review_note(candidate) else ""
    return f"【{title}】\n{section_text(retriever, candidate)}{note}\n\n来源：{source_line(candidate)}"
